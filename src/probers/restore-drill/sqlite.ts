import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { messageOf } from '../../lib/errors.js';
import type { ProbeContext } from '../types.js';
import { type Backup, type Check, type DrillOutcome, judge, quoteTable, runTool, stderrTail, verifyMessage } from './shared.js';

/** What a SQLite drill needs besides the backup. */
export interface SqliteDrill {
  checks: Check[];
  /** Where the working copy goes; the system temp folder by default. */
  scratchDir?: string;
}

/** What the checker process answers on stdout; checked on arrival, since it is the output of another process. */
const CheckerReport = Type.Object({
  /** Opening or reading the file failed before any check (not a database, unreadable). */
  openError: Type.Optional(Type.String()),
  /** `PRAGMA integrity_check` rows: `['ok']` when sound. */
  integrity: Type.Optional(Type.Array(Type.String())),
  integrityError: Type.Optional(Type.String()),
  results: Type.Optional(
    Type.Array(Type.Object({ got: Type.Optional(Type.Union([Type.String(), Type.Null()])), error: Type.Optional(Type.String()) })),
  ),
});
type CheckerReport = Static<typeof CheckerReport>;

/**
 * Runs in a separate Node process: better-sqlite3 is synchronous, and an integrity check of a
 * large file would block vigil's event loop for minutes; a process can also be killed at the deadline.
 */
const CHECKER = `
const job = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
const Database = require(job.module);
const text = (v) => v === null || v === undefined ? null : Buffer.isBuffer(v) ? '\\\\x' + v.toString('hex') : String(v);
const out = {};
let db;
try {
  db = new Database(job.file, { fileMustExist: true });
  db.prepare('select count(*) from sqlite_schema').get();
} catch (e) {
  out.openError = e.message;
}
if (!out.openError) {
  try {
    out.integrity = db.prepare('pragma integrity_check(20)').raw(true).all().map((r) => String(r[0]));
  } catch (e) {
    out.integrityError = e.message;
  }
  if (out.integrity && out.integrity.length === 1 && out.integrity[0] === 'ok') {
    out.results = job.sqls.map((sql) => {
      try {
        const stmt = db.prepare(sql);
        if (!stmt.reader) return { error: 'the check is not a query returning rows' };
        const row = stmt.raw(true).get();
        return { got: row === undefined ? undefined : text(row[0]) };
      } catch (e) {
        return { error: e.message };
      }
    });
  }
  db.close();
}
process.stdout.write(JSON.stringify(out));
`;

/** Copies the newest SQLite backup aside, checks its integrity and runs the checks; deletes the copy always. */
export async function drillSqlite(backup: Backup, drill: SqliteDrill, ctx: ProbeContext): Promise<DrillOutcome> {
  const outcome: DrillOutcome = { rowsChecked: 0, checks: [], details: { format: 'sqlite' } };
  const dir = await mkdtemp(path.join(drill.scratchDir ?? os.tmpdir(), 'vigil-drill-'));
  try {
    const copy = path.join(dir, 'restore.db');
    const restoreStart = ctx.clock.now();
    try {
      await pipeline(createReadStream(backup.path), createWriteStream(copy), { signal: ctx.signal });
    } catch (err) {
      return {
        ...outcome,
        failure: {
          code: 'RESTORE_FAILED',
          step: 'restore',
          message: `restore: cannot copy ${backup.path} to ${dir}: ${messageOf(err)}`,
        },
      };
    }
    outcome.restoreMs = ctx.clock.now() - restoreStart;

    const verifyStart = ctx.clock.now();
    const sqls = drill.checks.map((c) => (c.kind === 'table' ? `select count(*) from ${quoteTable(c.table)}` : c.sql));
    const job = JSON.stringify({ module: createRequire(import.meta.url).resolve('better-sqlite3'), file: copy, sqls });
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const r = await runTool(process.execPath, ['-e', CHECKER], {
      env,
      signal: ctx.signal,
      input: [Readable.from([job])],
      maxStdout: 4 * 1024 * 1024,
    });
    outcome.verifyMs = ctx.clock.now() - verifyStart;
    let report: CheckerReport;
    try {
      if (r.code !== 0) throw new Error(stderrTail(r.stderr, []) || `exit ${r.code}`);
      const parsed: unknown = JSON.parse(r.stdout);
      if (!Value.Check(CheckerReport, parsed)) throw new Error(`unexpected answer from the checker: ${r.stdout.slice(0, 200)}`);
      report = parsed;
    } catch (err) {
      return {
        ...outcome,
        failure: { code: 'VERIFY_FAILED', step: 'verify', message: `verify: checking ${backup.path} failed: ${messageOf(err)}` },
      };
    }
    if (report.openError !== undefined) {
      return {
        ...outcome,
        failure: {
          code: 'RESTORE_FAILED',
          step: 'restore',
          message: `restore: ${backup.path} does not open as a SQLite database: ${report.openError}`,
        },
      };
    }
    const integrity = report.integrity ?? [];
    if (integrity.length !== 1 || integrity[0] !== 'ok') {
      // The checks do not run on a damaged file: their answers would mean nothing.
      const got = report.integrityError ?? stderrTail(integrity.join('\n'), [], 300);
      outcome.checks.push({ name: 'integrity_check', ok: false, expected: 'ok', got });
      return {
        ...outcome,
        failure: {
          code: 'VERIFY_FAILED',
          step: 'verify',
          message: `verify: integrity_check failed on ${backup.path}: expected ok, got ${got}`,
        },
      };
    }
    outcome.checks.push({ name: 'integrity_check', ok: true, expected: 'ok', got: 'ok' });
    drill.checks.forEach((check, i) => {
      const res = report.results?.[i];
      const judged = judge(check, res?.got, res === undefined ? 'no answer from the checker' : res.error);
      outcome.checks.push({ name: judged.name, ok: judged.ok, expected: judged.expected, got: judged.got });
      outcome.rowsChecked += judged.rows ?? 0;
    });
    if (outcome.checks.some((c) => !c.ok)) {
      return { ...outcome, failure: { code: 'VERIFY_FAILED', step: 'verify', message: verifyMessage(backup.path, outcome.checks) } };
    }
    return outcome;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
