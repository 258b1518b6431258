import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type Static, Type } from '@sinclair/typebox';
import { formatDuration, ms } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { Duration } from '../lib/schema.js';
import { drillPostgres, targetProblems } from './restore-drill/postgres.js';
import { type Backup, type Check, clip, type DrillOutcome } from './restore-drill/shared.js';
import { drillSqlite } from './restore-drill/sqlite.js';
import { defineProber, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';

const Expect = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()], {
  expected: 'the value the first column of the first row must have: text, a number, true/false or null',
});

const CheckSchema = Type.Union(
  [
    Type.Object(
      {
        table: Type.String({ minLength: 1, expected: 'a table name, optionally schema-qualified (public.users)' }),
        /** Default 1: a restored table that came back empty is a failed restore. */
        minRows: Type.Optional(Type.Integer({ minimum: 0 })),
        maxRows: Type.Optional(Type.Integer({ minimum: 0 })),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      { sql: Type.String({ minLength: 1 }), expect: Expect, name: Type.Optional(Type.String({ minLength: 1 })) },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        /** A file of one SQL query, relative to the probes folder. */
        file: Type.String({ minLength: 1 }),
        expect: Expect,
        name: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false },
    ),
  ],
  { expected: 'a check: { table, minRows }, { sql, expect } or { file, expect }' },
);

const schema = Type.Object(
  {
    source: Type.Object(
      {
        type: Type.Union([Type.Literal('postgres'), Type.Literal('sqlite')], { expected: 'postgres or sqlite' }),
        /** The folder the backups are written to. */
        dir: Type.String({ minLength: 1, expected: 'the folder backups are written to' }),
        /** File names to consider, matched in `dir` (not recursively); defaults depend on `type`. */
        glob: Type.Optional(Type.String({ minLength: 1, expected: 'a file-name pattern like "*.dump"' })),
        /** `auto` checks `<backup>.sha256` when present, `required` fails without it, `off` ignores it. */
        checksum: Type.Union([Type.Literal('auto'), Type.Literal('required'), Type.Literal('off')], {
          default: 'auto',
          expected: 'auto, required or off',
        }),
        /** Files modified more recently than this are still being written and are skipped. */
        settle: Duration('0s'),
        /** Plain SQL dumps must end with pg_dump's completion line (catches truncated dumps psql would half-apply). */
        requireTrailer: Type.Boolean({ default: true }),
      },
      { additionalProperties: false },
    ),
    target: Type.Object(
      {
        /** postgres:// URL of a server where scratch databases may be created (use `${ENV}` for secrets). */
        url: Type.Optional(Type.String({ minLength: 1, expected: 'a postgres:// URL' })),
        /** Password, when it is not in the URL (e.g. `${file:/run/secrets/drill_pg}`). */
        password: Type.Optional(Type.String()),
        /** Folder of pg_restore, psql, createdb, dropdb, pg_amcheck; PATH when unset. */
        binDir: Type.Optional(Type.String({ minLength: 1 })),
        /** SQLite: folder the working copy goes to; the system temp folder when unset. */
        dir: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false, default: {} },
    ),
    /** The newest backup may be this old (plus 10 % grace) before the drill fails as stale. */
    maxAge: Duration('1h'),
    /** Restore time objective: a restore slower than this fails. */
    rto: Duration('4h'),
    checks: Type.Array(CheckSchema, { default: [] }),
    /** PostgreSQL: run `pg_amcheck --heapallindexed` on the restored database. */
    amcheck: Type.Boolean({ default: false }),
    /** PostgreSQL: parallel pg_restore jobs (custom and directory formats), as a real restore would use. */
    jobs: Type.Integer({ minimum: 1, maximum: 64, default: 1, expected: 'a number of parallel restore jobs, 1-64' }),
  },
  { additionalProperties: false },
);

/** The kind-specific fields of a `restore-drill` definition. */
export type RestoreDrillSpec = Static<typeof schema>;

/** Backups may be this much older than `maxAge` before they count as stale: backup jobs do not run to the second. */
export const FRESHNESS_GRACE = 0.1;

const DEFAULT_GLOB = { postgres: '*.{dump,backup,sql,sql.gz,tar}', sqlite: '*.{db,sqlite,sqlite3}' } as const;

export const restoreDrill = defineProber({
  schema,
  report: {
    target: (spec) => `${spec.source.type} backups in ${spec.source.dir}`,
    // A drill is rare and long: its newest success is the evidence, however old.
    lastSuccess: true,
    evidence(spec, w, targets) {
      const s = w.lastSuccess;
      const restoreS = s?.values.restore_s ?? null;
      const ageS = s?.values.backup_age_s ?? null;
      return {
        section: 'restoreDrills',
        item: {
          probeId: spec.id,
          source: spec.source.type,
          lastSuccessAt: s?.at ?? null,
          restoreS,
          backupAgeS: ageS,
          withinRto: restoreS === null ? null : restoreS * 1000 <= targets.rtoMs,
          withinRpo: ageS === null ? null : ageS * 1000 <= targets.rpoMs,
          runs: w.runs,
          failures: w.failures,
        },
      };
    },
  },
  // A drill fills a server with a whole database: one at a time per vigil instance.
  concurrency: 1,
  // A drill runs as long as a restore takes: by default allow the RTO plus time to verify and drop.
  defaultTimeout: (spec) => formatDuration(ms(spec.rto) + 10 * 60_000),
  // After the deadline the scratch database still gets dropped (up to 30 s): wait for that.
  abortGraceMs: () => 35_000,
  values: () => ['backup_age_s', 'backup_bytes', 'restore_s', 'verify_s', 'rows_checked'],
  check(spec) {
    const problems: SpecProblem[] = [];
    if (spec.source.type === 'postgres') {
      for (const message of targetProblems(spec.target.url)) problems.push({ path: 'target.url', message });
      if (spec.target.dir !== undefined)
        problems.push({ path: 'target.dir', message: 'expected no dir for a postgres source (it is for sqlite)' });
    } else {
      for (const key of ['url', 'password', 'binDir'] as const) {
        if (spec.target[key] !== undefined) problems.push({ path: `target.${key}`, message: `expected no ${key} for a sqlite source` });
      }
      if (spec.amcheck)
        problems.push({ path: 'amcheck', message: 'expected amcheck only with a postgres source (sqlite runs integrity_check)' });
      if (spec.jobs !== 1) problems.push({ path: 'jobs', message: 'expected jobs only with a postgres source' });
    }
    spec.checks.forEach((c, i) => {
      if ('table' in c && c.maxRows !== undefined && c.maxRows < (c.minRows ?? 1)) {
        problems.push({ path: `checks[${i}].maxRows`, message: `expected maxRows ≥ minRows (${c.minRows ?? 1}), got ${c.maxRows}` });
      }
      if ('file' in c && path.isAbsolute(c.file)) {
        problems.push({ path: `checks[${i}].file`, message: 'expected a path relative to the probes folder' });
      }
    });
    return problems;
  },
  async probe(spec, ctx) {
    const values: Record<string, number> = {};
    const started = ctx.clock.now();
    const step = { name: 'find', file: spec.source.dir };
    try {
      const found = await newestBackup(spec, ctx);
      if ('failure' in found) return { ok: false, code: 'BACKUP_MISSING', message: found.failure, values };
      const backup = found.backup;
      step.file = backup.path;
      values.backup_bytes = backup.bytes;
      values.backup_age_s = Math.max(0, Math.round((ctx.clock.now() - backup.mtimeMs) / 1000));

      step.name = 'freshness';
      const maxAge = ms(spec.maxAge);
      if (values.backup_age_s * 1000 > maxAge * (1 + FRESHNESS_GRACE)) {
        const when = new Date(backup.mtimeMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
        return {
          ok: false,
          code: 'BACKUP_STALE',
          message: `freshness: newest backup ${backup.path} is ${formatDuration(values.backup_age_s * 1000)} old (written ${when}); limit ${spec.maxAge} + ${FRESHNESS_GRACE * 100}% grace`,
          values,
          details: { file: backup.path },
        };
      }

      step.name = 'checksum';
      const sum = await verifyChecksum(backup, spec.source.checksum, ctx.signal);
      if (sum.failure) return { ok: false, ...sum.failure, values, details: { file: backup.path } };

      step.name = 'verify';
      const checks = await resolveChecks(spec.checks, ctx.probesDir);
      if ('failure' in checks) return { ok: false, code: 'VERIFY_FAILED', message: checks.failure, values, details: { file: backup.path } };

      step.name = 'restore';
      ctx.logger.debug({ step: 'restore', file: backup.path }, 'restore drill step');
      const outcome =
        spec.source.type === 'postgres'
          ? await drillPostgres(
              backup,
              {
                probeId: spec.id,
                target: spec.target,
                checks: checks.checks,
                amcheck: spec.amcheck,
                jobs: spec.jobs,
                requireTrailer: spec.source.requireTrailer,
                timeoutMs: ms(spec.timeout),
              },
              ctx,
            )
          : await drillSqlite(backup, { checks: checks.checks, scratchDir: spec.target.dir }, ctx);
      return judgeDrill(spec, backup, outcome, values, ctx, started);
    } catch (err) {
      if (ctx.signal.aborted) return timedOut(spec, step.name, step.file, ctx, started, values);
      return { ok: false, code: 'INTERNAL', message: `${step.name}: ${step.file}: ${messageOf(err)}`, values };
    }
  },
});

function judgeDrill(
  spec: RestoreDrillSpec & { timeout: string },
  backup: Backup,
  outcome: DrillOutcome,
  values: Record<string, number>,
  ctx: ProbeContext,
  started: number,
): ProbeResult {
  if (outcome.restoreMs !== undefined) values.restore_s = round(outcome.restoreMs / 1000);
  if (outcome.verifyMs !== undefined) values.verify_s = round(outcome.verifyMs / 1000);
  values.rows_checked = outcome.rowsChecked;
  const details = { file: backup.path, ...outcome.details, checks: outcome.checks };
  const dropFailed = typeof outcome.details.dropFailed === 'string' ? outcome.details.dropFailed : undefined;
  const dropNote = dropFailed ? `; and the scratch database ${outcome.details.scratchDatabase} was not dropped (${dropFailed})` : '';

  if (outcome.failure) {
    if (ctx.signal.aborted) {
      const r = timedOut(spec, outcome.failure.step, backup.path, ctx, started, values);
      return { ...r, message: `${r.message}${dropNote}`, details };
    }
    return { ok: false, code: outcome.failure.code, message: `${outcome.failure.message}${dropNote}`, values, details };
  }
  const rto = ms(spec.rto);
  if (outcome.restoreMs !== undefined && outcome.restoreMs > rto) {
    return {
      ok: false,
      code: 'RTO_EXCEEDED',
      message: `rto: restoring ${backup.path} took ${formatDuration(outcome.restoreMs)}, over the ${spec.rto} RTO${dropNote}`,
      values,
      details,
    };
  }
  if (dropFailed) {
    return {
      ok: false,
      code: 'CLEANUP_FAILED',
      message: `drop: the drill passed but scratch database ${outcome.details.scratchDatabase} was not dropped: ${dropFailed}; drop it by hand (the next run retries once it is older than the timeout)`,
      values,
      details,
    };
  }
  return { ok: true, values, details };
}

function timedOut(
  spec: { timeout: string; rto: string },
  step: string,
  file: string,
  ctx: ProbeContext,
  started: number,
  values: Record<string, number>,
): ProbeResult {
  const hint =
    ms(spec.timeout) < ms(spec.rto) ? ` (the run's timeout ${spec.timeout} is shorter than the ${spec.rto} RTO: raise timeout)` : '';
  return {
    ok: false,
    code: 'TIMEOUT',
    message: `${step}: timed out after ${formatDuration(ctx.clock.now() - started)} at ${file}${hint}`,
    values,
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** The newest file (or pg_dump directory archive) in the source folder matching the glob. */
async function newestBackup(spec: RestoreDrillSpec, ctx: ProbeContext): Promise<{ backup: Backup } | { failure: string }> {
  const { dir, type } = spec.source;
  const glob = spec.source.glob ?? DEFAULT_GLOB[type];
  const pattern = globToRegExp(glob);
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = codeOf(err);
    return { failure: `find: cannot read backup folder ${dir}: ${code === 'ENOENT' ? 'it does not exist' : messageOf(err)}` };
  }
  const settle = ms(spec.source.settle);
  const candidates: Backup[] = [];
  let settling = 0;
  for (const e of entries) {
    if (!pattern.test(e.name) || e.name.endsWith('.sha256')) continue;
    const full = path.join(dir, e.name);
    const found = await describeBackup(full, type).catch(() => undefined);
    if (found === undefined) continue;
    if (ctx.clock.now() - found.mtimeMs < settle) settling++;
    else candidates.push(found);
  }
  candidates.sort((a, b) => b.mtimeMs - a.mtimeMs || (a.path < b.path ? 1 : -1));
  const newest = candidates[0];
  if (newest) return { backup: newest };
  const note = settling > 0 ? ` (${settling} still being written: modified within the last ${spec.source.settle})` : '';
  return { failure: `find: no backup matching "${glob}" in ${dir}${note}` };
}

/** Size and time of a backup file, or of a pg_dump directory archive (its newest file). */
async function describeBackup(full: string, type: 'postgres' | 'sqlite'): Promise<Backup | undefined> {
  const st = await stat(full);
  if (st.isFile()) return { path: full, bytes: st.size, mtimeMs: st.mtimeMs, directory: false };
  if (!st.isDirectory() || type !== 'postgres') return undefined;
  const names = await readdir(full);
  if (!names.includes('toc.dat')) return undefined;
  let bytes = 0;
  let mtimeMs = 0;
  for (const name of names) {
    const f = await stat(path.join(full, name));
    if (!f.isFile()) continue;
    bytes += f.size;
    mtimeMs = Math.max(mtimeMs, f.mtimeMs);
  }
  return { path: full, bytes, mtimeMs, directory: true };
}

/** A file-name glob (`*`, `?`, `[abc]`, `{a,b}`) as an anchored regular expression. Dotfiles need an explicit dot. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let depth = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charAt(i);
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        const body = glob
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = end;
      }
    } else if (c === '{') {
      depth++;
      re += '(?:';
    } else if (c === '}' && depth > 0) {
      depth--;
      re += ')';
    } else if (c === ',' && depth > 0) re += '|';
    else re += c.replace(/[.+^$()|\\\]{}]/g, '\\$&');
  }
  const dot = glob.startsWith('.') ? '' : '(?!\\.)';
  return new RegExp(`^${dot}${re}$`);
}

/** Checks `<backup>.sha256` (sha256sum format) when there is one, or fails without it when required. */
async function verifyChecksum(
  backup: Backup,
  mode: 'auto' | 'required' | 'off',
  signal: AbortSignal,
): Promise<{ failure?: { code: string; message: string } }> {
  if (mode === 'off' || backup.directory) return {};
  const sumFile = `${backup.path}.sha256`;
  let text: string;
  try {
    text = await readFile(sumFile, { encoding: 'utf8', signal });
  } catch (err) {
    if (codeOf(err) !== 'ENOENT' || mode === 'required') {
      return { failure: { code: 'CHECKSUM_MISSING', message: `checksum: cannot read ${sumFile}: ${messageOf(err)}` } };
    }
    return {};
  }
  const want = expectedSum(text, path.basename(backup.path));
  if (want === undefined) {
    return { failure: { code: 'CHECKSUM_MISMATCH', message: `checksum: ${sumFile} holds no sha256 for ${path.basename(backup.path)}` } };
  }
  const hash = createHash('sha256');
  await pipeline(createReadStream(backup.path), hash, { signal });
  const got = hash.digest('hex');
  if (got !== want) {
    return {
      failure: {
        code: 'CHECKSUM_MISMATCH',
        message: `checksum: ${backup.path} has sha256 ${got.slice(0, 16)}…, ${path.basename(sumFile)} says ${want.slice(0, 16)}…: the file changed or was damaged after it was written`,
      },
    };
  }
  return {};
}

/** The sum for `name` in sha256sum output (`<hex>  <name>` or `<hex> *<name>`), or a lone hash. */
export function expectedSum(text: string, name: string): string | undefined {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const parsed = lines
    .map((l) => /^([0-9a-fA-F]{64})(?:\s+\*?(.+))?$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ sum: (m[1] ?? '').toLowerCase(), file: m[2] }));
  const named = parsed.find((p) => p.file !== undefined && path.basename(p.file) === name);
  if (named) return named.sum;
  return parsed.length === 1 ? parsed[0]?.sum : undefined;
}

/** Turns definition checks into runnable ones: file checks read from the probes folder. */
async function resolveChecks(specs: RestoreDrillSpec['checks'], probesDir: string): Promise<{ checks: Check[] } | { failure: string }> {
  const checks: Check[] = [];
  for (const c of specs) {
    if ('table' in c) {
      checks.push({ kind: 'table', name: `table ${c.table}`, table: c.table, minRows: c.minRows ?? 1, maxRows: c.maxRows });
    } else if ('sql' in c) {
      checks.push({
        kind: 'query',
        name: c.name ?? JSON.stringify(clip(c.sql.replace(/\s+/g, ' ').trim(), 80)),
        sql: c.sql,
        expect: c.expect,
      });
    } else {
      const file = path.resolve(probesDir, c.file);
      try {
        const sql = (await readFile(file, 'utf8')).trim();
        checks.push({ kind: 'query', name: c.name ?? c.file, sql, expect: c.expect });
      } catch (err) {
        return { failure: `verify: cannot read check file ${file}: ${messageOf(err)}` };
      }
    }
  }
  return { checks };
}
