import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSqliteStore, type RunRecord } from '../../src/store/index.js';
import {
  DatabaseError,
  describeOpenError,
  ownerFix,
  quickCheckAside,
  READONLY_RUNBOOK,
  RESTORE_RUNBOOK,
  writeFix,
} from '../../src/store/sqlite-open.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';

// A damaged or unusable database file: refused at open with one error naming the file, the
// problem and the runbook; and a file damaged while vigil runs is reported by health() once a
// write fails, rather than /health staying at 200.

const T0 = Date.UTC(2026, 11, 2, 9, 0, 0);
const run = (i: number): RunRecord => ({
  probeId: `p${i % 20}`,
  kind: 'http',
  startedAt: T0 + i,
  durationMs: 3,
  ok: i % 7 !== 0,
  message: `run ${i} ${'x'.repeat(100)}`,
  values: { status: 200 },
  attempts: 1,
  trigger: 'schedule',
});

/** Writes garbage over every page but the first (the header stays, so the file still opens). */
function garble(file: string) {
  const size = statSync(file).size;
  const fd = openSync(file, 'r+');
  const junk = Buffer.alloc(4096, 0xa5);
  for (let at = 4096; at < size; at += 4096) writeSync(fd, junk, 0, junk.length, at);
  closeSync(fd);
}

/**
 * A running store with 3,000 runs, all checkpointed into the main file, whose pages are then
 * overwritten under it, and the pages it had cached dropped, as a busy server's cache would drop them.
 */
async function garbledUnder(file: string, logger: ReturnType<typeof memoryLogger>['logger']) {
  const store = createSqliteStore({ path: file, clock: new ManualClock(T0), logger });
  for (let i = 0; i < 3_000; i++) store.append(run(i));
  await store.flush();
  expect(store.health()).toEqual({ writable: true, queued: 0 });
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  garble(file);
  store.db.pragma('shrink_memory');
  return store;
}

describe('the SQLite file is damaged or unusable', () => {
  const dirs: string[] = [];
  const temp = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'vigil-integrity-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function filledDb(file: string) {
    const store = createSqliteStore({ path: file, clock: new ManualClock(T0), logger: memoryLogger().logger });
    for (let i = 0; i < 3_000; i++) store.append(run(i));
    await store.flush();
    await store.close();
  }

  it('refuses a file whose pages were overwritten, naming the file, quick_check and the restore runbook', async () => {
    const file = path.join(temp(), 'vigil.db');
    await filledDb(file);
    garble(file);
    let thrown: unknown;
    try {
      createSqliteStore({ path: file, clock: new ManualClock(T0), logger: memoryLogger().logger });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(DatabaseError);
    const e = thrown as DatabaseError;
    expect(e.file).toBe(file);
    expect(e.problem).toMatch(/^the database is damaged/);
    expect(e.runbook).toBe(RESTORE_RUNBOOK);
  });

  it('refuses a file that is not a database at all (SQLITE_NOTADB)', () => {
    const file = path.join(temp(), 'vigil.db');
    writeFileSync(file, Buffer.alloc(8192, 0x42));
    expect(() => createSqliteStore({ path: file, clock: new ManualClock(T0), logger: memoryLogger().logger })).toThrow(
      expect.objectContaining({ problem: expect.stringMatching(/damaged: file is not a database/), runbook: RESTORE_RUNBOOK }),
    );
  });

  it('a path SQLite cannot open (a folder where the file should be: SQLITE_CANTOPEN) points to the read-only section', () => {
    const file = path.join(temp(), 'vigil.db');
    mkdirSync(file);
    expect(() => createSqliteStore({ path: file, clock: new ManualClock(T0), logger: memoryLogger().logger })).toThrow(
      expect.objectContaining({ file, problem: expect.stringMatching(/^cannot open the database for writing/), runbook: READONLY_RUNBOOK }),
    );
  });

  it('the fix for a folder vigil cannot write names the real folder (a symlink like /app/data → /data followed), and its uid', () => {
    const real = temp();
    const link = path.join(temp(), 'data');
    symlinkSync(real, link);
    expect(writeFix(path.join(link, 'vigil.db'), 'SQLITE_CANTOPEN')).toEqual({
      text: `give the user vigil runs as write access to ${real}, or set storage.sqlite.path to a folder it can write`,
      folder: real,
    });
    // The entry point names the user it runs as (the store leaves the process alone).
    expect(ownerFix(real, 10001, 10001)).toBe(
      `give uid 10001 write access to ${real}: chown -R 10001:10001 ${real} (a host folder mounted there: chown -R 10001:10001 on that folder, on the host), or set storage.sqlite.path to a folder it can write`,
    );
    expect(writeFix(path.join(real, 'vigil.db'), 'EROFS')).toEqual({
      text: `mount ${real} read-write, or set storage.sqlite.path to a writable folder`,
    });
    const folder = path.join(real, 'is-a-folder.db');
    mkdirSync(folder);
    const err = describeOpenError(folder, Object.assign(new Error('unable to open database file'), { code: 'SQLITE_CANTOPEN' }));
    expect(err.fix).toBe(`${folder} is a folder: set storage.sqlite.path to a file name`);
    expect(err.folder).toBeUndefined();
  });

  it('a folder that is a file (ENOTDIR) also names the file and the read-only section', () => {
    const dir = temp();
    writeFileSync(path.join(dir, 'data'), 'not a folder');
    const file = path.join(dir, 'data', 'vigil.db');
    expect(() => createSqliteStore({ path: file, clock: new ManualClock(T0), logger: memoryLogger().logger })).toThrow(
      expect.objectContaining({ file, runbook: READONLY_RUNBOOK }),
    );
  });

  // Tests run as root, which a chmod or a root-owned file does not stop: the mapping of what a
  // read-only mount and a full disk make SQLite say is checked on the codes themselves.
  it('maps read-only and full-disk codes to the read-only section, anything else to the restore runbook', () => {
    const err = (code: string, message: string) => Object.assign(new Error(message), { code });
    expect(describeOpenError('/d/vigil.db', err('SQLITE_READONLY', 'attempt to write a readonly database'))).toMatchObject({
      runbook: READONLY_RUNBOOK,
      problem: expect.stringMatching(/^cannot open the database for writing.*readonly database$/),
    });
    expect(describeOpenError('/d/vigil.db', err('EROFS', 'read-only file system'))).toMatchObject({ runbook: READONLY_RUNBOOK });
    expect(describeOpenError('/d/vigil.db', err('SQLITE_FULL', 'database or disk is full'))).toMatchObject({
      runbook: READONLY_RUNBOOK,
      problem: 'the disk is full: database or disk is full',
    });
    expect(describeOpenError('/d/vigil.db', err('SQLITE_IOERR', 'disk I/O error'))).toMatchObject({
      runbook: RESTORE_RUNBOOK,
      problem: 'disk I/O error',
    });
  });

  it('reports a file damaged while running in health() once a write fails, and keeps the rows', async () => {
    const file = path.join(temp(), 'vigil.db');
    const { logger, lines } = memoryLogger();
    const store = await garbledUnder(file, logger);
    for (let i = 3_000; i < 3_100; i++) store.append(run(i));
    await expect(store.flush()).rejects.toThrow(/store write failed/);
    const h = store.health();
    expect(h.writable).toBe(false);
    expect(h.queued).toBe(100);
    expect(h.error).toMatch(/^SQLite: the database is damaged \(.+\): follow docs\/runbooks\/restore-vigil-database\.md$/);
    expect(lines.find((l) => l.msg === 'the database is damaged')).toMatchObject({ file, runbook: RESTORE_RUNBOOK });
    await store.close().catch(() => {});
  });

  it('checks the file off the event loop when a write fails for another reason, and reports the damage it finds', async () => {
    const file = path.join(temp(), 'vigil.db');
    const { logger, lines } = memoryLogger();
    const store = await garbledUnder(file, logger);
    // Another process holds the write lock: the write fails busy, which says nothing of the pages.
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    try {
      for (let i = 3_000; i < 3_010; i++) store.append(run(i));
      await expect(store.flush()).rejects.toThrow(/store write failed: database is locked/);
      // The check reads on its worker thread: the answer is not in yet.
      expect(store.health().error).not.toMatch(/damaged/);
      await vi.waitFor(() => expect(store.health().error).toMatch(/^SQLite: the database is damaged \(.+\): follow /), { timeout: 10_000 });
      expect(lines.filter((l) => l.msg === 'the database is damaged')).toHaveLength(1);
    } finally {
      other.exec('ROLLBACK');
      other.close();
      await store.close().catch(() => {});
    }
  });

  it('quickCheckAside answers on a worker thread: nothing for a sound file, the problems of a damaged one, nothing it cannot tell', async () => {
    const dir = temp();
    const file = path.join(dir, 'vigil.db');
    const store = createSqliteStore({ path: file, clock: new ManualClock(T0), logger: memoryLogger().logger });
    for (let i = 0; i < 3_000; i++) store.append(run(i));
    await store.flush();
    await store.close();
    expect(await quickCheckAside(file)).toBeUndefined();
    garble(file);
    expect(await quickCheckAside(file)).toMatch(/\S/);
    expect(await quickCheckAside(path.join(dir, 'missing.db'))).toBeUndefined();
  });
});
