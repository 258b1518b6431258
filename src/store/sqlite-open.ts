import { mkdirSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { codeOf, messageOf, VigilError } from '../lib/errors.js';

/** The runbook for a damaged or missing database, and its section for one that takes no writes. */
export const RESTORE_RUNBOOK = 'docs/runbooks/restore-vigil-database.md';
export const READONLY_RUNBOOK = `${RESTORE_RUNBOOK}#the-database-is-read-only-or-the-disk-is-full`;

/** Why vigil cannot use its database file: which file, what is wrong with it, what to follow. */
export class DatabaseError extends VigilError {
  readonly file: string;
  readonly problem: string;
  readonly runbook: string;
  /** The one step that fixes it, where one is known (a folder vigil's user cannot write). */
  readonly fix: string | undefined;
  /** The folder vigil's user must be able to write, when that is the fix: see `ownerFix`. */
  readonly folder: string | undefined;
  constructor(file: string, problem: string, runbook: string, cause?: unknown, fix?: { text: string; folder?: string }) {
    super('VIGIL_ERR_STORE', `${file}: ${problem} (follow ${runbook})`, { cause });
    this.name = 'DatabaseError';
    this.file = file;
    this.problem = problem;
    this.runbook = runbook;
    this.fix = fix?.text;
    this.folder = fix?.folder;
  }
}

/** The real folder behind a path (a container's /app/data is a symlink to the /data volume). */
function realFolder(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return dir;
  }
}

/**
 * The step that makes a database path usable: a folder where the file should be is renamed or the
 * path changed; a read-only mount is remounted; otherwise the folder is given to the user vigil runs
 * as (a root-owned host folder mounted at a container's /data is the usual case: uid 10001 there).
 */
export function writeFix(file: string, code: string): { text: string; folder?: string } {
  try {
    if (statSync(file).isDirectory()) return { text: `${file} is a folder: set storage.sqlite.path to a file name` };
  } catch {
    // Missing is the usual case: the folder is what vigil cannot write.
  }
  const dir = realFolder(path.dirname(file));
  if (code === 'EROFS') return { text: `mount ${dir} read-write, or set storage.sqlite.path to a writable folder` };
  return { text: `give the user vigil runs as write access to ${dir}, or set storage.sqlite.path to a folder it can write`, folder: dir };
}

/**
 * The fix for a folder vigil's user cannot write, naming that user: the entry point knows who it
 * runs as (the store does not touch the process).
 */
export function ownerFix(folder: string, uid: number, gid: number): string {
  const chown = `chown -R ${uid}:${gid}`;
  return `give uid ${uid} write access to ${folder}: ${chown} ${folder} (a host folder mounted there: ${chown} on that folder, on the host), or set storage.sqlite.path to a folder it can write`;
}

/** True for SQLite's own words for a damaged file (a write or read that hit a bad page). */
export function isCorruption(err: unknown): boolean {
  const code = codeOf(err);
  return code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB';
}

/**
 * What a person must do about an error met while opening the file. SQLite's and the file system's
 * codes map to three problems an operator can act on; anything else keeps its own message.
 */
export function describeOpenError(file: string, err: unknown): DatabaseError {
  const code = codeOf(err);
  const message = messageOf(err);
  if (isCorruption(err)) return new DatabaseError(file, `the database is damaged: ${message}`, RESTORE_RUNBOOK, err);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return new DatabaseError(file, `the disk is full: ${message}`, READONLY_RUNBOOK, err);
  if (
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_READONLY') ||
    ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'EEXIST'].includes(code)
  )
    return new DatabaseError(
      file,
      `cannot open the database for writing (a read-only mount, a file or folder owned by another user, or a path that is not a folder): ${message}`,
      READONLY_RUNBOOK,
      err,
      writeFix(file, code),
    );
  return new DatabaseError(file, message, RESTORE_RUNBOOK, err);
}

/**
 * SQLite's quick_check: every page and record well formed, without matching indexes to tables
 * (what makes integrity_check slow). Returns the problems, or undefined when the file is sound.
 * It reads the whole file (3.1-3.3 s for 1.5 GB here, see the README), so it runs here only at start,
 * before anything writes; a running store checks on a worker thread (quickCheckAside).
 */
export function quickCheck(db: Database.Database): string | undefined {
  // A prepared PRAGMA (not db.pragma(), which returns unknown): one text column per row, typed.
  return problemsOf(db.prepare<[], string>(QUICK_CHECK).pluck().all());
}

const QUICK_CHECK = 'PRAGMA quick_check(20)';

/** quick_check's rows as one line of problems, or undefined for its single `ok`. */
function problemsOf(rows: string[]): string | undefined {
  const problems = rows.filter((r) => r !== 'ok');
  return problems.length === 0 ? undefined : problems.join('; ');
}

const driver = createRequire(import.meta.url).resolve('better-sqlite3');

/** The worker of quickCheckAside: CommonJS (an eval'd worker), given the driver's resolved path so it loads the same build. */
const CHECK_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
let answer;
try {
  const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
  try {
    answer = { rows: db.prepare(workerData.sql).pluck().all() };
  } finally {
    db.close();
  }
} catch (err) {
  answer = { error: { code: String((err && err.code) || ''), message: String((err && err.message) || err) } };
}
parentPort.postMessage(answer);
`;

/**
 * quickCheck on a worker thread with a read-only connection of its own, for a store that is running:
 * it reads the whole file (seconds for a file of some GB), and the event loop must not wait on it.
 * Resolves with the problems (SQLite's damage codes met while reading count as one), or undefined
 * when the file is sound or the check could not tell (the worker failed to start, the file is gone).
 */
export function quickCheckAside(file: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const worker = new Worker(CHECK_SOURCE, { eval: true, workerData: { driver, path: file, sql: QUICK_CHECK } });
    // A check still reading when vigil stops is no reason to stay.
    worker.unref();
    let answered = false;
    worker.once('message', (m: { rows?: string[]; error?: { code: string; message: string } }) => {
      answered = true;
      // SQLite's damage codes met while opening or reading count as problems, as in quickCheck's callers.
      if (m.error !== undefined) resolve(isCorruption(m.error) ? m.error.message : undefined);
      else resolve(problemsOf(m.rows ?? []));
    });
    worker.once('error', () => resolve(undefined));
    worker.once('exit', () => {
      if (!answered) resolve(undefined);
    });
  });
}

/**
 * Opens (creating it and its folder when missing) the database file and checks it is sound,
 * before anything else touches it. Every failure is a DatabaseError naming the file, the problem
 * and the runbook: the start fails with one line a person can act on, not a stack trace.
 */
export function openSqlite(
  file: string,
  steps: { configure(db: Database.Database): void; migrate(db: Database.Database): void },
): Database.Database {
  const where = file === ':memory:' ? file : path.resolve(file);
  let db: Database.Database | undefined;
  try {
    if (file !== ':memory:') mkdirSync(path.dirname(where), { recursive: true });
    db = new Database(file);
    steps.configure(db);
    // Before the migrations write anything: a damaged file is restored, not written to.
    const problems = file === ':memory:' ? undefined : quickCheck(db);
    if (problems !== undefined) throw new DatabaseError(where, `the database is damaged (quick_check: ${problems})`, RESTORE_RUNBOOK);
    steps.migrate(db);
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // Closing a file that failed to open can fail too; the first error is the one to report.
    }
    throw err instanceof DatabaseError ? err : describeOpenError(where, err);
  }
}
