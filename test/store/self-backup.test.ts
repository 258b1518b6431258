import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { restoreDrill } from '../../src/probers/restore-drill.js';
import { createSelfBackup } from '../../src/store/self-backup.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger, probeContext } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const T0 = Date.UTC(2026, 10, 26, 9, 0, 0);

describe('self-backup', () => {
  const dirs: string[] = [];
  const temp = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'vigil-selfbackup-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('writes an online backup with its sha256 every interval, keeps the newest N, and the default drill restores it', async () => {
    const work = temp();
    const clock = new ManualClock(T0);
    const store = createSqliteStore({ path: path.join(work, 'vigil.db'), clock, logger: memoryLogger().logger });
    for (let i = 0; i < 500; i++) {
      store.append({
        probeId: `p${i % 5}`,
        kind: 'http',
        startedAt: T0 - i * 1000,
        durationMs: 12,
        ok: true,
        values: {},
        attempts: 1,
        trigger: 'schedule',
      });
    }
    await store.flush();
    const results: Array<{ ok: boolean; bytes?: number }> = [];
    const backupDir = path.join(work, 'backups');
    const backup = createSelfBackup({
      source: store,
      dir: backupDir,
      intervalMs: 3_600_000,
      keep: 2,
      firstAfterMs: 60_000,
      clock,
      logger: memoryLogger().logger,
      onResult: (r) => results.push(r),
    });
    backup.start();
    await clock.advance(59_000);
    expect(results).toEqual([]);
    await clock.advance(1_000);
    await waitFor('backup result 1', () => results.length === 1, 5_000);
    // Writes go on while backups are taken: the next backup holds them.
    store.append({ probeId: 'late', kind: 'http', startedAt: T0, durationMs: 1, ok: true, values: {}, attempts: 1, trigger: 'schedule' });
    await store.flush();
    await clock.advance(3_600_000);
    await waitFor('backup result 2', () => results.length === 2, 5_000);
    await clock.advance(3_600_000);
    await waitFor('backup result 3', () => results.length === 3, 5_000);
    backup.stop();
    expect(results.every((r) => r.ok && r.bytes! > 0)).toBe(true);

    // keep: 2 — the first one and its checksum are gone; no partial file is left.
    const names = readdirSync(backupDir).sort();
    expect(names).toEqual([
      'vigil-20261126T100100Z.db',
      'vigil-20261126T100100Z.db.sha256',
      'vigil-20261126T110100Z.db',
      'vigil-20261126T110100Z.db.sha256',
    ]);
    const newest = path.join(backupDir, 'vigil-20261126T110100Z.db');
    const sum = createHash('sha256').update(readFileSync(newest)).digest('hex');
    expect(readFileSync(`${newest}.sha256`, 'utf8')).toBe(`${sum}  vigil-20261126T110100Z.db\n`);
    const copy = new Database(newest, { readonly: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(copy.prepare('SELECT count(*) FROM runs').pluck().get()).toBe(501);
    copy.close();

    // The restore drill the default probes run on these backups passes on this one.
    const def = loadConfig({ cwd: ROOT, env: {} }).probes.find((p) => p.id === 'vigil-self-restore');
    expect(def?.kind).toBe('restore-drill');
    const spec = { ...def!, source: { ...(def as { source: object }).source, dir: backupDir }, maxAge: '1000d' } as Parameters<
      typeof restoreDrill.probe
    >[0];
    const res = await restoreDrill.probe(spec, probeContext(20_000));
    expect(res.message).toBeUndefined();
    expect(res.ok).toBe(true);
    expect(res.values.rows_checked).toBeGreaterThanOrEqual(5);
    await store.close();
  });

  it('reports a failure, leaves nothing half-written, and tries again next interval', async () => {
    const work = temp();
    const clock = new ManualClock(T0);
    const results: boolean[] = [];
    let fail = true;
    const backup = createSelfBackup({
      source: {
        backup: async (file) => {
          if (fail) throw new Error('SQLITE_FULL: database or disk is full');
          const db = new Database(file);
          db.exec('CREATE TABLE t (x)');
          db.close();
        },
      },
      dir: work,
      intervalMs: 60_000,
      keep: 3,
      firstAfterMs: 0,
      clock,
      logger: memoryLogger().logger,
      onResult: (r) => results.push(r.ok),
    });
    backup.start();
    await clock.advance(0);
    await waitFor('backup result 1', () => results.length === 1, 5_000);
    expect(readdirSync(work)).toEqual([]);
    fail = false;
    await clock.advance(60_000);
    await waitFor('backup result 2', () => results.length === 2, 5_000);
    backup.stop();
    expect(results).toEqual([false, true]);
    expect(readdirSync(work).filter((n) => n.endsWith('.db'))).toHaveLength(1);
  });

  it('removes the -wal, -shm and -journal files that opening a backup left beside it, and nothing that is not its own', async () => {
    const work = temp();
    const clock = new ManualClock(T0);
    const store = createSqliteStore({ path: path.join(work, 'vigil.db'), clock, logger: memoryLogger().logger });
    const backupDir = path.join(work, 'backups');
    const backup = createSelfBackup({
      source: store,
      dir: backupDir,
      intervalMs: 3_600_000,
      keep: 5,
      clock,
      logger: memoryLogger().logger,
    });
    const first = await backup.runNow();
    // What a check of the backup in place leaves: a read-write open in WAL mode keeps -wal and -shm
    // beside it while it is open (and a crash there leaves them for good).
    const checker = new Database(first);
    checker.pragma('journal_mode = WAL');
    expect(checker.pragma('integrity_check', { simple: true })).toBe('ok');
    checker.exec('CREATE TABLE IF NOT EXISTS scratch (x)');
    expect(readdirSync(backupDir)).toEqual(expect.arrayContaining([`${path.basename(first)}-wal`, `${path.basename(first)}-shm`]));
    checker.close();
    writeFileSync(`${first}-wal`, 'left over');
    writeFileSync(`${first}-shm`, 'left over');
    writeFileSync(`${first}-journal`, 'left over');
    // Not ours: another file's sidecars and an operator's notes stay.
    writeFileSync(path.join(backupDir, 'other.db-wal'), 'not ours');
    writeFileSync(path.join(backupDir, 'notes.txt'), 'not ours');
    await clock.advance(3_600_000);
    const second = await backup.runNow();
    expect(readdirSync(backupDir).sort()).toEqual(
      [
        path.basename(first),
        `${path.basename(first)}.sha256`,
        path.basename(second),
        `${path.basename(second)}.sha256`,
        'notes.txt',
        'other.db-wal',
      ].sort(),
    );
    await store.close();
  });
});
