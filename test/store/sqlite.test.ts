import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/store/index.js';
import { createSqliteStore } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';

const dirs: string[] = [];
function tempDb() {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-store-'));
  dirs.push(dir);
  return path.join(dir, 'sub', 'vigil.db');
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function run(probeId: string, startedAt: number, over: Partial<RunRecord> = {}): RunRecord {
  return {
    probeId,
    kind: 'http',
    startedAt,
    durationMs: 12.5,
    ok: true,
    values: { status: 200 },
    attempts: 1,
    trigger: 'schedule',
    ...over,
  };
}

describe('sqlite store', () => {
  it('opens in WAL mode with its migrations recorded, creating the folder', async () => {
    const file = tempDb();
    const clock = new ManualClock();
    const store = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    const versions = store.db.prepare('SELECT version FROM schema_migrations').all();
    expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((version) => ({ version })));
    await store.close();
    // Reopening applies nothing twice.
    const again = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    expect(again.db.prepare('SELECT count(*) AS n FROM schema_migrations').get()).toEqual({ n: 8 });
    await again.close();
  });

  it('refuses a database from a newer vigil', async () => {
    const file = tempDb();
    const clock = new ManualClock();
    await createSqliteStore({ path: file, clock, logger: memoryLogger().logger }).close();
    const db = new Database(file);
    db.prepare('INSERT INTO schema_migrations VALUES (99, ?, 0)').run('future');
    db.close();
    expect(() => createSqliteStore({ path: file, clock, logger: memoryLogger().logger })).toThrow(/schema version 99 is newer/);
  });

  it('writes queued runs in batches off the append path, and answers window queries newest first', async () => {
    const clock = new ManualClock();
    const store = createSqliteStore({ path: tempDb(), clock, logger: memoryLogger().logger, batchRows: 100, batchIntervalMs: 200 });
    const t0 = clock.now();
    for (let i = 0; i < 50; i++) store.append(run('a', t0 + i * 1000, { ok: i % 10 !== 0, code: i % 10 === 0 ? 'TIMEOUT' : undefined }));
    store.append(run('b', t0));
    // Nothing written yet: append only queues.
    expect(store.db.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 0 });
    expect(store.health().queued).toBe(51);
    await clock.advance(200);
    expect(store.db.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 51 });

    const window = await store.runs({ probeId: 'a', since: t0 + 10_000, until: t0 + 20_000 });
    expect(window.map((r) => r.startedAt - t0)).toEqual([19, 18, 17, 16, 15, 14, 13, 12, 11, 10].map((s) => s * 1000));
    expect(window.at(-1)).toMatchObject({ ok: false, code: 'TIMEOUT', values: { status: 200 }, trigger: 'schedule' });
    expect(await store.runs({ probeId: 'a', limit: 3 })).toHaveLength(3);
    expect(store.latest('a')?.startedAt).toBe(t0 + 49_000);
    await store.close();
  });

  it('flushes at once when a batch fills, without waiting for the interval', async () => {
    const clock = new ManualClock();
    const store = createSqliteStore({ path: tempDb(), clock, logger: memoryLogger().logger, batchRows: 10, batchIntervalMs: 60_000 });
    for (let i = 0; i < 25; i++) store.append(run('a', clock.now() + i));
    await new Promise((r) => setImmediate(r));
    expect(store.db.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 25 });
    await store.close();
  });

  it('keeps runs and state across a restart', async () => {
    const file = tempDb();
    const clock = new ManualClock();
    const first = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    first.append(run('a', clock.now() - 1000));
    first.append(run('a', clock.now(), { ok: false, code: 'HTTP_STATUS', message: '503 Service Unavailable: cache down' }));
    // b: its newest by start, though written first; c: two at the same start, the later written is newest.
    first.append(run('b', clock.now()));
    first.append(run('b', clock.now() - 5000, { ok: false, code: 'TIMEOUT', message: 'late' }));
    first.append(run('c', clock.now(), { ok: false, code: 'TIMEOUT', message: 'first' }));
    first.append(run('c', clock.now(), { ok: false, code: 'TIMEOUT', message: 'second' }));
    first.setProbeState('dns', { answer: ['1.2.3.4'], changedAt: 5 });
    await first.close();
    const second = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    // What a new store holds of each probe is in once it is ready (the Store contract).
    await second.ready();
    expect(second.latest('a')).toMatchObject({ ok: false, code: 'HTTP_STATUS', message: '503 Service Unavailable: cache down' });
    // The order the API's JSON shows a run in, optional keys in their places.
    const before = ['id', 'probeId', 'kind', 'startedAt', 'durationMs', 'ok'];
    const after = ['attempts', 'trigger', 'values'];
    expect(Object.keys(second.latest('a') ?? {})).toEqual([...before, 'code', 'message', ...after]);
    expect(Object.keys(second.latest('b') ?? {})).toEqual([...before, ...after]);
    expect(second.latest('b')).toMatchObject({ probeId: 'b', ok: true, startedAt: clock.now() });
    expect(second.latest('c')).toMatchObject({ probeId: 'c', message: 'second' });
    expect(second.latest('d')).toBeUndefined();
    expect(second.probeState('dns')).toEqual({ answer: ['1.2.3.4'], changedAt: 5 });
    expect(second.probeState('other')).toBeUndefined();
    await second.close();
  });

  it('knows a probe whose runs are all gone after a restart: its runs read empty, and new ones keep its key', async () => {
    const file = tempDb();
    const clock = new ManualClock();
    const first = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    first.append(run('gone', clock.now() - 1000, { ok: false, code: 'TIMEOUT', message: 'old' }));
    first.append(run('kept', clock.now()));
    await first.flush();
    const key = (first.db.prepare("SELECT id FROM probes WHERE name = 'gone'").get() as { id: number }).id;
    first.db.prepare('DELETE FROM runs WHERE probe = ?').run(key);
    await first.close();

    const second = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    expect(second.latest('gone')).toBeUndefined();
    expect(await second.runs({ probeId: 'gone' })).toEqual([]);
    expect(await second.lastSuccess('kept')).toMatchObject({ probeId: 'kept', ok: true });
    second.append(run('gone', clock.now(), { message: 'back' }));
    await second.flush();
    expect(await second.runs({ probeId: 'gone' })).toMatchObject([{ probeId: 'gone', message: 'back' }]);
    expect(second.db.prepare("SELECT id FROM probes WHERE name = 'gone'").all()).toEqual([{ id: key }]);
    await second.close();
  });

  it('keeps a run appended right after it opens over the newest one it read back', async () => {
    const file = tempDb();
    const clock = new ManualClock();
    const first = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    first.append(run('a', clock.now() - 60_000, { message: 'stored' }));
    first.append(run('b', clock.now() - 60_000, { message: 'stored' }));
    await first.close();
    const second = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    second.append(run('a', clock.now(), { message: 'new' }));
    await second.ready();
    expect(second.latest('a')).toMatchObject({ message: 'new', startedAt: clock.now() });
    expect(second.latest('b')).toMatchObject({ message: 'stored', startedAt: clock.now() - 60_000 });
    await second.flush();
    expect((await second.runs({ probeId: 'a' })).map((r) => r.message)).toEqual(['new', 'stored']);
    await second.close();
  });

  it('prunes raw runs older than the retention in chunks', async () => {
    const clock = new ManualClock();
    const store = createSqliteStore({ path: tempDb(), clock, logger: memoryLogger().logger, batchRows: 5000 });
    const day = 86_400_000;
    // Runs arrive in time order, oldest first, as they do from the scheduler.
    for (let i = 0; i < 12_000; i++) store.append(run(`p${i % 7}`, clock.now() - 200 * day + Math.floor(i / 60) * day));
    await store.flush();
    const cutoff = clock.now() - 90 * day;
    const old = (store.db.prepare('SELECT count(*) AS n FROM runs WHERE started_at < ?').get(cutoff) as { n: number }).n;
    expect(old).toBeGreaterThan(5_000);
    expect(await store.prune(cutoff)).toBe(old);
    expect(store.db.prepare('SELECT count(*) AS n FROM runs WHERE started_at < ?').get(cutoff)).toEqual({ n: 0 });
    expect(store.db.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 12_000 - old });
    await store.close();
  });

  it('keeps rows queued and reports unhealthy while the database refuses writes, then writes them', async () => {
    const clock = new ManualClock();
    const store = createSqliteStore({ path: tempDb(), clock, logger: memoryLogger().logger });
    // A trigger stands in for a full disk: every insert fails until it is dropped.
    store.db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`);
    store.append(run('a', clock.now()));
    store.append(run('a', clock.now() + 1));
    await clock.advance(200);
    expect(store.health()).toMatchObject({ writable: false, queued: 2, error: expect.stringMatching(/disk is full/) });
    await expect(store.flush()).rejects.toThrow(/disk is full/);
    expect(store.stats().writeErrors).toBeGreaterThanOrEqual(1);
    store.db.exec('DROP TRIGGER refuse');
    await clock.advance(200);
    expect(store.health()).toMatchObject({ writable: true, queued: 0 });
    expect(store.db.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 2 });
    await store.close();
  });

  it('retries only the batches that did not commit: a write failing half-way writes nothing twice', async () => {
    const clock = new ManualClock();
    const store = createSqliteStore({ path: tempDb(), clock, logger: memoryLogger().logger, batchRows: 2 });
    // The third batch fails (its run has durationMs 666) after two batches have committed.
    store.db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON runs WHEN NEW.duration_ms = 666 BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    for (let i = 0; i < 5; i++) store.append(run('a', clock.now() + i, i === 4 ? { durationMs: 666 } : {}));
    await expect(store.flush()).rejects.toThrow(/disk full/);
    expect(store.health().queued).toBe(1);
    expect(store.stats()).toMatchObject({ written: 4, writeErrors: 1, dropped: 0 });
    store.db.exec('DROP TRIGGER refuse');
    await store.flush();
    expect(store.db.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 5 });
    expect(store.stats().written).toBe(5);
    await store.close();
  });

  it('reports an unwritable database file as unhealthy', async () => {
    const file = tempDb();
    const clock = new ManualClock();
    const store = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    expect(store.health().writable).toBe(true);
    store.db.pragma('query_only = ON');
    // health() reads what the store's own heartbeat write (every 2 s) saw; it never writes itself.
    await clock.advance(2_000);
    expect(store.health()).toMatchObject({ writable: false, error: expect.stringMatching(/^SQLite: .*(readonly|read-only|query_only)/i) });
    store.db.pragma('query_only = OFF');
    await clock.advance(2_000);
    expect(store.health()).toMatchObject({ writable: true });
    await store.close();
  });
});
