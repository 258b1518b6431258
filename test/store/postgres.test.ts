import { execFileSync, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { createPostgresStore } from '../../src/store/index.js';
import { createPgDb } from '../../src/store/postgres/db.js';
import { PostgresError } from '../../src/store/postgres/errors.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

/** What only the PostgreSQL backend has: its pool, several instances on one database, and a frozen server. */

let server: TestPostgres;
let databases = 0;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

async function freshDb(): Promise<string> {
  const name = `p_${++databases}`;
  await server.query(`CREATE DATABASE ${name}`);
  return server.url.replace(/\/postgres$/, `/${name}`);
}

const caught = async (p: Promise<unknown>): Promise<PostgresError> => {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PostgresError);
    return err as PostgresError;
  }
  throw new Error('expected a rejection');
};
const pgDb = (url: string, timeoutMs?: number) =>
  createPgDb({ url, logger: memoryLogger().logger, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });

describe('postgres pool', () => {
  it('answers with rows, and with PostgreSQL’s message and code on errors', async () => {
    const db = pgDb(server.url);
    try {
      expect(await db.query('SELECT 1 AS one, $1::text AS s, 9007199254740991::bigint AS big', ['x'])).toEqual([
        { one: 1, s: 'x', big: 9007199254740991 },
      ]);
      expect(await db.queryArrays('SELECT 1, NULL::text')).toEqual([[1, null]]);
      const err = await caught(db.query('SELECT * FROM nowhere'));
      expect(err).toMatchObject({ name: 'PostgresError', code: '42P01', message: 'relation "nowhere" does not exist' });
      // The pool stays usable after an error.
      expect(await db.run('SELECT generate_series(1, 3)')).toBe(3);
    } finally {
      await db.close();
    }
  });

  it('runs a transaction on one connection: commit, rollback on a failed statement or a throw', async () => {
    const db = pgDb(server.url);
    try {
      await db.run('CREATE TABLE t (id int PRIMARY KEY)');
      await db.withTransaction(async (tx) => {
        await tx.run('INSERT INTO t VALUES (1)');
        await tx.run('INSERT INTO t VALUES (3)');
      });
      await expect(
        db.withTransaction(async (tx) => {
          await tx.run('INSERT INTO t VALUES (2)');
          await tx.run('INSERT INTO t VALUES (1)');
        }),
      ).rejects.toThrow(/duplicate key/);
      await expect(
        db.withTransaction(async (tx) => {
          await tx.run('INSERT INTO t VALUES (4)');
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      expect(await db.query('SELECT id FROM t ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }]);
      // Every connection went back to the pool, none left inside a transaction.
      expect(await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'`)).toEqual([{ n: 0 }]);
    } finally {
      await db.run('DROP TABLE IF EXISTS t');
      await db.close();
    }
  });

  it('never commits a transaction whose connection was lost', async () => {
    const db = pgDb(server.url);
    try {
      await db.run('CREATE TABLE lost (id int)');
      const err = await caught(
        db.withTransaction(async (tx) => {
          await tx.run('INSERT INTO lost VALUES (1)');
          const pid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid;
          // Killed from outside mid-transaction.
          await server.query(`SELECT pg_terminate_backend(${pid})`);
          await tx.run('INSERT INTO lost VALUES (2)');
        }),
      );
      expect(['57P01', '08006', '08003']).toContain(err.code);
      // The next call gets a fresh connection, and neither row was committed.
      expect(await db.query('SELECT count(*)::int AS n FROM lost')).toEqual([{ n: 0 }]);
    } finally {
      await db.close();
    }
  });

  it('gives up at the deadline with a clear error, whether PostgreSQL is slow or silent', async () => {
    const db = pgDb(server.url, 1_000);
    // A server that accepts and never says a word.
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const mute = pgDb(`postgresql://x@127.0.0.1:${(silent.address() as net.AddressInfo).port}/x`, 500);
    try {
      // Slow: PostgreSQL cancels the statement itself just before the deadline.
      await db.query('SELECT 1');
      let t = performance.now();
      expect(await caught(db.query('SELECT pg_sleep(3)'))).toMatchObject({ code: '57014' });
      expect(performance.now() - t).toBeLessThan(1_500);
      expect(await db.query('SELECT 2 AS two')).toEqual([{ two: 2 }]);
      // Silent: the pool gives up and says why, and the event loop ran all along.
      t = performance.now();
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      const err = await caught(mute.query('SELECT 1'));
      clearInterval(ticker);
      expect(err.code).toBe('PG_TIMEOUT');
      expect(err.message).toMatch(/did not answer within 500 ms/);
      expect(performance.now() - t).toBeLessThan(1_500);
      expect(ticks).toBeGreaterThan(20);
    } finally {
      await mute.close();
      await db.close();
      silent.close();
    }
  });

  it('refuses calls after close, and reports a refused connection with its code', async () => {
    const db = pgDb(server.url);
    await db.query('SELECT 1');
    await db.close();
    expect((await caught(db.query('SELECT 1'))).code).toBe('PG_CLOSED');
    const nowhere = pgDb('postgresql://postgres@127.0.0.1:1/postgres', 2_000);
    expect((await caught(nowhere.query('SELECT 1'))).code).toBe('ECONNREFUSED');
    await nowhere.close();
  });
});

describe('postgres store, several instances', () => {
  it('migrates once when instances start at the same moment', async () => {
    const url = await freshDb();
    const script = `
      import { createPostgresStore } from ${JSON.stringify(path.resolve('src/store/index.ts'))};
      import { systemClock } from ${JSON.stringify(path.resolve('src/lib/clock.ts'))};
      import { createLogger } from ${JSON.stringify(path.resolve('src/lib/logger.ts'))};
      const store = createPostgresStore({ url: process.argv[1], clock: systemClock, logger: createLogger({ level: 'silent' }) });
      await store.ready();
      await store.close();
    `;
    const codes = await Promise.all(
      [1, 2, 3].map(
        () =>
          new Promise<number | null>((resolve) => {
            const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, url], { stdio: 'inherit' });
            child.on('close', resolve);
          }),
      ),
    );
    expect(codes).toEqual([0, 0, 0]);
    const name = new URL(url).pathname.slice(1);
    expect(await server.query('SELECT version FROM schema_migrations ORDER BY version', name)).toBe('1\n2\n3\n4\n5\n6\n7\n8\n9');
    // Migration 9: no per-row foreign key check on runs (a third of PostgreSQL's CPU per inserted run).
    expect(await server.query("SELECT count(*) FROM pg_constraint WHERE conrelid = 'runs'::regclass AND contype = 'f'", name)).toBe('0');
  });

  it('lets one instance roll up at a time, and refuses a file backup', async () => {
    const url = await freshDb();
    const day = Date.UTC(2026, 10, 20);
    const clock = new ManualClock(day + 26 * 3_600_000);
    const a = createPostgresStore({ url, clock, logger: memoryLogger().logger });
    const b = createPostgresStore({ url, clock, logger: memoryLogger().logger });
    try {
      for (let t = day; t < day + 25 * 3_600_000; t += 60_000) {
        a.append({ probeId: 'api', kind: 'http', startedAt: t, durationMs: 10, ok: true, values: {}, attempts: 1, trigger: 'schedule' });
      }
      await a.flush();
      const hours = await Promise.all([a.rollups.rollUp(clock.now()), b.rollups.rollUp(clock.now())]);
      expect(hours.sort((x, y) => x - y)).toEqual([0, 25]);
      // Both read what either rolled up.
      expect(await b.rollups.query('api', day, day + 86_400_000, 'day')).toMatchObject([{ runs: 1440 }]);
      // The one that skipped learns how far the other got at its next roll-up (or refresh).
      expect(await Promise.all([a.rollups.rollUp(clock.now()), b.rollups.rollUp(clock.now())])).toEqual([0, 0]);
      expect(a.rollups.lastHour()).toBe(day + 24 * 3_600_000);
      expect(b.rollups.lastHour()).toBe(day + 24 * 3_600_000);
      await expect(a.backup('/tmp/nope.db')).rejects.toThrow(/pg_dump/);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('postgres store, frozen server', () => {
  /** Stops (or resumes) every process of the private cluster: the postmaster and all its backends. */
  async function signalCluster(sig: 'SIGSTOP' | 'SIGCONT') {
    const pid = Number((await readFile(path.join(server.socketDir, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    process.kill(pid, sig);
    try {
      execFileSync('pkill', [`-${sig.slice(3)}`, '-P', String(pid)]);
    } catch {
      // no backend at this moment
    }
  }

  it('keeps taking runs without blocking while PostgreSQL is frozen, says so, and writes each run once, in order, after', async () => {
    const url = await freshDb();
    const store = createPostgresStore({ url, clock: systemClock, logger: memoryLogger().logger, batchIntervalMs: 100 });
    await store.ready();
    const lag = monitorEventLoopDelay({ resolution: 10 });
    let seq = 0;
    const appender = setInterval(() => {
      store.append({
        probeId: 'p',
        kind: 'http',
        startedAt: Date.now(),
        durationMs: 1,
        ok: true,
        values: { seq: seq++ },
        attempts: 1,
        trigger: 'schedule',
      });
    }, 100);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    let frozen = false;
    try {
      await sleep(1_000);
      lag.enable();
      await signalCluster('SIGSTOP');
      frozen = true;
      const frozenAt = performance.now();
      // health() never waits on the database: it answers at once and names PostgreSQL within ~3 s.
      let seenAfter: number | undefined;
      let slowestHealthMs = 0;
      while (performance.now() - frozenAt < 5_000) {
        const t = performance.now();
        const h = store.health();
        slowestHealthMs = Math.max(slowestHealthMs, performance.now() - t);
        if (seenAfter === undefined && !h.writable) {
          seenAfter = performance.now() - frozenAt;
          expect(h.error).toMatch(/^PostgreSQL has not answered for \d+\.\d s$/);
        }
        await sleep(100);
      }
      expect(seenAfter).toBeDefined();
      expect(seenAfter!).toBeLessThan(3_500);
      expect(slowestHealthMs).toBeLessThan(5);
      expect(store.health().queued).toBeGreaterThan(30);
      await signalCluster('SIGCONT');
      frozen = false;
      // Writable again once the write in flight and the heartbeat answer.
      const thawedAt = performance.now();
      while (!store.health().writable && performance.now() - thawedAt < 10_000) await sleep(50);
      expect(store.health()).toMatchObject({ writable: true });
      await sleep(500);
      lag.disable();
    } finally {
      clearInterval(appender);
      if (frozen) await signalCluster('SIGCONT');
    }
    await store.flush();
    // The event loop never stood still: not one 250 ms gap in ~6 s of appends and health checks (a write
    // waiting on the frozen server would be a gap of seconds; a busy CI machine makes ~100 ms ones).
    expect(lag.max / 1e6).toBeLessThan(250);
    const stored = (await store.runs({ probeId: 'p', limit: 10_000 })).reverse().map((r) => r.values.seq);
    expect(stored).toEqual(Array.from({ length: seq }, (_, i) => i));
    expect(store.stats()).toMatchObject({ written: seq, dropped: 0 });
    await store.close();
  });

  it('past its bound drops the oldest queued runs, and after a write that timed out writes the rest once, in order', async () => {
    const url = await freshDb();
    const logs = memoryLogger();
    const store = createPostgresStore({
      url,
      clock: systemClock,
      logger: logs.logger,
      batchIntervalMs: 100,
      maxQueued: 5,
      timeoutMs: 1_000,
    });
    await store.ready();
    const run = (n: number) =>
      store.append({
        probeId: 'q',
        kind: 'http',
        startedAt: Date.now(),
        durationMs: 1,
        ok: true,
        values: { n },
        attempts: 1,
        trigger: 'schedule',
      });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    let frozen = false;
    try {
      await signalCluster('SIGSTOP');
      frozen = true;
      run(0);
      // The next tick takes run 0 into a write that PostgreSQL does not answer.
      await sleep(300);
      for (let n = 1; n <= 20; n++) run(n);
      expect(store.stats().dropped).toBe(15);
      expect(logs.lines.filter((l) => /run queue full/.test(String(l.msg)))).toHaveLength(1);
      // The write gives up at its deadline: run 0 goes back to the head, and past the bound it is
      // the oldest, so it goes too. The rows stay queued through every further failed attempt.
      await sleep(1_500);
      expect(store.stats().dropped).toBe(16);
      expect(store.stats().writeErrors).toBeGreaterThan(0);
      expect(store.health()).toMatchObject({ writable: false, queued: 5, error: expect.stringMatching(/^PostgreSQL /) });
      await signalCluster('SIGCONT');
      frozen = false;
    } finally {
      if (frozen) await signalCluster('SIGCONT');
    }
    // Connections the deadlines gave up on are replaced; the queue is written once it answers.
    for (let i = 0; i < 50 && store.stats().written < 5; i++) await sleep(100);
    await store.flush();
    const stored = (await store.runs({ probeId: 'q', limit: 100 })).reverse().map((r) => r.values.n);
    expect(stored).toEqual([16, 17, 18, 19, 20]);
    expect(store.stats()).toMatchObject({ written: 5, dropped: 16 });
    expect(store.health()).toMatchObject({ writable: true, queued: 0 });
    await store.close();
  });
});
