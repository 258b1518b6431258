import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { ProbeContext } from '../types.js';
import {
  type Backup,
  type Check,
  type CheckOutcome,
  type DrillOutcome,
  firstCsvField,
  judge,
  quoteTable,
  runTool,
  stderrTail,
  type ToolResult,
  toolFailure,
  verifyMessage,
} from './shared.js';

/** Where scratch databases are made, as the definition gives it. */
export interface PostgresTarget {
  url?: string;
  password?: string;
  binDir?: string;
}

/** What a PostgreSQL drill needs besides the backup. */
export interface PostgresDrill {
  probeId: string;
  target: PostgresTarget;
  checks: Check[];
  amcheck: boolean;
  jobs: number;
  requireTrailer: boolean;
  /** The run's timeout: scratch databases of this probe older than it (plus a margin) are leftovers. */
  timeoutMs: number;
}

/** How a dump is restored: pg_restore for archives, psql for plain SQL. */
export type DumpFormat = 'custom' | 'tar' | 'directory' | 'plain' | 'plain-gzip';

/** Every scratch database starts with this; nothing else vigil makes does. */
export const SCRATCH_PREFIX = 'vigil_drill_';

/** How long dropping the scratch database may take once the run itself is over. */
const DROP_TIMEOUT_MS = 30_000;
/** A leftover of a crashed run is dropped once it is this much older than the run's timeout. */
const LEFTOVER_MARGIN_MS = 5 * 60_000;
/** What psql prints for SQL NULL in check results: a string no query returns by accident. */
const NULL_MARK = '\u0001NULL\u0001';
const PLAIN_HEAD_SCAN = 1024 * 1024;
const PLAIN_TRAILER = '-- PostgreSQL database dump complete';

const LIBPQ_PARAMS: Record<string, string> = {
  host: 'PGHOST',
  hostaddr: 'PGHOSTADDR',
  port: 'PGPORT',
  user: 'PGUSER',
  password: 'PGPASSWORD',
  passfile: 'PGPASSFILE',
  dbname: 'PGDATABASE',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  application_name: 'PGAPPNAME',
  options: 'PGOPTIONS',
  sslmode: 'PGSSLMODE',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslrootcert: 'PGSSLROOTCERT',
  sslcrl: 'PGSSLCRL',
  sslsni: 'PGSSLSNI',
  requirepeer: 'PGREQUIREPEER',
  gssencmode: 'PGGSSENCMODE',
  channel_binding: 'PGCHANNELBINDING',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
  krbsrvname: 'PGKRBSRVNAME',
  service: 'PGSERVICE',
};

/** Problems with a target URL, phrased without echoing it (it may hold a password). */
export function targetProblems(url: string | undefined): string[] {
  if (url === undefined || url.trim() === '') return ['expected a postgres:// URL of a server where scratch databases may be created'];
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return ['expected a postgres:// URL (postgresql://user@host:5432/postgres); the value does not parse as a URL'];
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:')
    return [`expected a postgres:// or postgresql:// URL, got a ${u.protocol.replace(/:$/, '')}: URL`];
  const unknown = [...u.searchParams.keys()].filter((k) => !(k in LIBPQ_PARAMS));
  return unknown.length > 0 ? [`expected libpq connection parameters, got unknown ${unknown.join(', ')}`] : [];
}

/** The libpq environment for the target (the password never goes on a command line), and its secrets. */
export function connection(target: PostgresTarget): { env: NodeJS.ProcessEnv; database: string; secrets: string[] } {
  const u = new URL(target.url ?? '');
  const dec = (s: string) => decodeURIComponent(s);
  const params: Record<string, string> = {};
  if (u.hostname) params.host = dec(u.hostname).replace(/^\[(.*)\]$/, '$1');
  if (u.port) params.port = u.port;
  if (u.username) params.user = dec(u.username);
  if (u.password) params.password = dec(u.password);
  const db = dec(u.pathname.replace(/^\//, ''));
  if (db) params.dbname = db;
  for (const [k, v] of u.searchParams) params[k] = v;
  if (params.password === undefined && target.password !== undefined) params.password = target.password;
  params.connect_timeout ??= '10';
  params.application_name ??= 'vigil-restore-drill';

  // Only the target URL decides where the tools connect: PG* variables of vigil's own environment do not leak in.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG') && k !== 'LC_ALL' && k !== 'NODE_OPTIONS') env[k] = v;
  env.LC_MESSAGES = 'C';
  for (const [k, v] of Object.entries(params)) {
    const name = LIBPQ_PARAMS[k];
    if (name) env[name] = v;
  }
  const secrets = [params.password, u.password].filter((s): s is string => s !== undefined && s !== '');
  return { env, database: params.dbname ?? 'postgres', secrets };
}

/** `vigil_drill_<probe>_<yyyymmddhhmmss>_<rand>`, at most 63 bytes (PostgreSQL's identifier limit). */
export function scratchName(probeId: string, now: number): string {
  const stamp = new Date(now).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${SCRATCH_PREFIX}${probeSlug(probeId)}_${stamp}_${randomBytes(3).toString('hex')}`;
}

function probeSlug(probeId: string): string {
  const slug = probeId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 29)
    .replace(/^_+|_+$/g, '');
  return slug === '' ? 'probe' : slug;
}

/** Tells a custom, tar or directory archive (pg_restore) from plain SQL, gzipped or not (psql). */
export async function dumpFormat(backup: Backup): Promise<DumpFormat> {
  if (backup.directory) return 'directory';
  const fh = await open(backup.path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    if (head.subarray(0, 5).toString('latin1') === 'PGDMP') return 'custom';
    if (bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    if (head[0] === 0x1f && head[1] === 0x8b) return 'plain-gzip';
    return 'plain';
  } finally {
    await fh.close();
  }
}

const CONNECT_ERROR =
  /connection to server .* failed|could not connect to server|could not translate host name|password authentication failed|no pg_hba\.conf entry|timeout expired|server closed the connection unexpectedly/i;

type Run = (name: string, args: string[], extra?: { input?: [Readable, ...Writable[]]; signal?: AbortSignal }) => Promise<ToolResult>;
type Failure = NonNullable<DrillOutcome['failure']>;

/** Restores the backup into a scratch database, verifies it, and drops it whatever happened. */
export async function drillPostgres(backup: Backup, drill: PostgresDrill, ctx: ProbeContext): Promise<DrillOutcome> {
  const conn = connection(drill.target);
  const run: Run = (name, args, extra = {}) =>
    runTool(drill.target.binDir ? path.join(drill.target.binDir, name) : name, args, {
      env: conn.env,
      signal: extra.signal ?? ctx.signal,
      input: extra.input,
    });
  const fail = (step: string, tool: string, r: ToolResult, what: string): Failure => ({
    code: !r.spawnError && CONNECT_ERROR.test(r.stderr) ? 'CONNECT' : step === 'verify' ? 'VERIFY_FAILED' : 'RESTORE_FAILED',
    step,
    message: `${step}: ${what}: ${toolFailure(tool, r, conn.secrets)}`,
  });

  const format = await dumpFormat(backup);
  const outcome: DrillOutcome = { rowsChecked: 0, checks: [], details: { format } };

  const swept = await sweepLeftovers(drill, conn.database, ctx, run);
  if ('failure' in swept) return { ...outcome, failure: fail('connect', 'psql', swept.failure, 'cannot reach the target server') };
  if (swept.dropped.length > 0) outcome.details.leftoversDropped = swept.dropped;

  // Past the deadline already (the sweep used it up): no scratch database is made, so none needs dropping.
  if (ctx.signal.aborted) {
    return {
      ...outcome,
      failure: { code: 'TIMEOUT', step: 'connect', message: 'connect: the deadline passed while listing leftover scratch databases' },
    };
  }
  const name = scratchName(drill.probeId, ctx.clock.now());
  outcome.details.scratchDatabase = name;
  const restoreStart = ctx.clock.now();
  const created = await run('createdb', ['--maintenance-db', conn.database, '--template', 'template0', name]);
  // createdb is atomic: when it fails on its own there is nothing to drop; when we killed it, there may be.
  const mayExist = created.code === 0 || created.aborted;
  try {
    if (created.code !== 0) return { ...outcome, failure: fail('createdb', 'createdb', created, `cannot create scratch database ${name}`) };

    ctx.logger.debug({ step: 'restore', file: backup.path, format, database: name }, 'restore drill step');
    const tool = format === 'plain' || format === 'plain-gzip' ? 'psql' : 'pg_restore';
    const restored = await restore(backup, format, name, drill, run);
    if ('result' in restored) {
      return { ...outcome, failure: fail('restore', tool, restored.result, `${tool} could not restore ${backup.path} into ${name}`) };
    }
    if (restored.failure) return { ...outcome, failure: restored.failure };
    outcome.restoreMs = ctx.clock.now() - restoreStart;

    ctx.logger.debug({ step: 'verify', file: backup.path, database: name }, 'restore drill step');
    const verifyStart = ctx.clock.now();
    const verified = await verify(name, drill, run, conn.secrets);
    outcome.checks = verified.checks;
    outcome.rowsChecked = verified.rowsChecked;
    if (verified.result) {
      return { ...outcome, failure: fail('verify', verified.result.tool, verified.result.r, `${verified.result.what} on ${backup.path}`) };
    }
    outcome.verifyMs = ctx.clock.now() - verifyStart;
    if (outcome.checks.some((c) => !c.ok)) {
      return { ...outcome, failure: { code: 'VERIFY_FAILED', step: 'verify', message: verifyMessage(backup.path, outcome.checks) } };
    }
    return outcome;
  } finally {
    if (mayExist) {
      // The run's own signal may be spent (often why we are here): the drop gets a fresh, short deadline.
      const dropped = await run('dropdb', ['--maintenance-db', conn.database, '--if-exists', '--force', name], {
        signal: AbortSignal.timeout(DROP_TIMEOUT_MS),
      });
      if (dropped.code !== 0) {
        outcome.details.dropFailed = toolFailure('dropdb', dropped, conn.secrets);
        ctx.logger.warn({ database: name, error: outcome.details.dropFailed }, 'restore drill scratch database not dropped');
      }
    }
  }
}

/** Runs the checks (and pg_amcheck) on the scratch database; a tool that could not run at all comes back as `result`. */
async function verify(
  name: string,
  drill: PostgresDrill,
  run: Run,
  secrets: string[],
): Promise<{ checks: CheckOutcome[]; rowsChecked: number; result?: { tool: string; what: string; r: ToolResult } }> {
  const checks: CheckOutcome[] = [];
  let rowsChecked = 0;
  const psqlArgs = ['-X', '-q', '--csv', '-t', '-P', `null=${NULL_MARK}`, '-v', 'ON_ERROR_STOP=1', '-v', 'SHOW_ALL_RESULTS=off'];
  for (const check of drill.checks) {
    const sql = check.kind === 'table' ? `select count(*) from ${quoteTable(check.table)}` : check.sql;
    const r = await run('psql', [...psqlArgs, '-d', name, '-c', sql]);
    if (r.aborted || r.spawnError) return { checks, rowsChecked, result: { tool: 'psql', what: `check ${check.name}`, r } };
    // A check whose query fails (missing table, syntax) is a failed check, not a failed drill step.
    const judged = judge(check, firstCsvField(r.stdout, NULL_MARK), r.code === 0 ? undefined : stderrTail(r.stderr, secrets, 300));
    checks.push({ name: judged.name, ok: judged.ok, expected: judged.expected, got: judged.got });
    rowsChecked += judged.rows ?? 0;
  }
  if (drill.amcheck) {
    const r = await run('pg_amcheck', ['--heapallindexed', '--install-missing', name]);
    if (r.aborted || r.spawnError) return { checks, rowsChecked, result: { tool: 'pg_amcheck', what: 'pg_amcheck', r } };
    const got = r.code === 0 ? 'no corruption' : stderrTail(`${r.stdout}\n${r.stderr}`, secrets, 300) || `exit ${r.code}`;
    checks.push({ name: 'pg_amcheck', ok: r.code === 0, expected: 'no corruption', got });
  }
  return { checks, rowsChecked };
}

/** Runs pg_restore or psql; a failed tool comes back as its result, a judged problem as a failure. */
async function restore(
  backup: Backup,
  format: DumpFormat,
  name: string,
  drill: PostgresDrill,
  run: Run,
): Promise<{ result: ToolResult } | { failure?: Failure }> {
  if (format === 'custom' || format === 'tar' || format === 'directory') {
    const jobs = drill.jobs > 1 && format !== 'tar' ? ['--jobs', String(drill.jobs)] : [];
    const r = await run('pg_restore', ['--no-owner', '--no-acl', '--exit-on-error', ...jobs, '-d', name, backup.path]);
    return r.code === 0 ? {} : { result: r };
  }
  const guard = new PlainDumpGuard();
  const source = createReadStream(backup.path);
  const input: [Readable, ...Writable[]] = format === 'plain-gzip' ? [source, createGunzip(), guard] : [source, guard];
  const r = await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', name, '-f', '-'], { input });
  if (r.code !== 0 || r.inputError) return { result: r };
  if (drill.requireTrailer && !guard.tail.includes(PLAIN_TRAILER)) {
    return {
      failure: {
        code: 'RESTORE_FAILED',
        step: 'restore',
        message: `restore: ${backup.path} does not end with pg_dump's "${PLAIN_TRAILER}" line: the dump is truncated or was not written by pg_dump (psql applied what was there)`,
      },
    };
  }
  return {};
}

/**
 * Passes a plain SQL dump through, after refusing one that switches database: a dump made with
 * `pg_dump --create` or `pg_dumpall` would `\connect` away from the scratch database and restore
 * over a real one. Keeps the last bytes to check pg_dump's completion trailer.
 */
class PlainDumpGuard extends Transform {
  tail = '';
  private head: Buffer[] = [];
  private headBytes = 0;
  private passing = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.tail = (this.tail + chunk.subarray(-256).toString('latin1')).slice(-256);
    if (this.passing) {
      cb(null, chunk);
      return;
    }
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes < PLAIN_HEAD_SCAN) cb();
    else this.release(cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.passing) cb();
    else this.release(cb);
  }

  private release(cb: TransformCallback) {
    const head = Buffer.concat(this.head);
    this.head = [];
    this.passing = true;
    const text = head.toString('latin1');
    if (/^\\c(onnect)?\s/m.test(text) || /^CREATE DATABASE\s/im.test(text)) {
      cb(
        new Error(
          'refusing a plain dump that creates or switches databases (CREATE DATABASE / \\connect: made with pg_dump --create or pg_dumpall); dump one database without --create',
        ),
      );
      return;
    }
    cb(null, head);
  }
}

/** Drops scratch databases of this probe left by a vigil that died mid-drill (kill -9, power loss). */
async function sweepLeftovers(
  drill: PostgresDrill,
  database: string,
  ctx: ProbeContext,
  run: Run,
): Promise<{ dropped: string[] } | { failure: ToolResult }> {
  const slug = probeSlug(drill.probeId);
  const like = `${SCRATCH_PREFIX}${slug}_`.replaceAll('_', '\\_');
  const listed = await run('psql', [
    '-X',
    '-q',
    '-A',
    '-t',
    '-v',
    'ON_ERROR_STOP=1',
    '-d',
    database,
    '-c',
    `select datname from pg_database where datname like '${like}%'`,
  ]);
  if (listed.code !== 0) {
    if (!listed.spawnError && CONNECT_ERROR.test(listed.stderr)) return { failure: listed };
    return { dropped: [] };
  }
  const pattern = new RegExp(`^${SCRATCH_PREFIX}${slug}_(\\d{4})(\\d{2})(\\d{2})(\\d{2})(\\d{2})(\\d{2})_[0-9a-f]{6}$`);
  const dropped: string[] = [];
  for (const datname of listed.stdout.split('\n').map((l) => l.trim())) {
    const m = pattern.exec(datname);
    if (!m) continue;
    const [, y, mo, d, h, mi, s] = m;
    const made = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
    if (ctx.clock.now() - made < drill.timeoutMs + LEFTOVER_MARGIN_MS) continue;
    const r = await run('dropdb', ['--maintenance-db', database, '--if-exists', '--force', datname]);
    if (r.code === 0) dropped.push(datname);
  }
  return { dropped };
}
