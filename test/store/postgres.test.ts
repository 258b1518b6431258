import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresStore } from '../../src/store/index.js';
import { createSyncBridge, type PostgresError } from '../../src/store/postgres/bridge.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

/** What only the PostgreSQL backend has: the synchronous bridge, and several instances on one database. */

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

const caught = (fn: () => unknown): PostgresError => {
  try {
    fn();
  } catch (err) {
    return err as PostgresError;
  }
  throw new Error('expected a throw');
};

describe('postgres sync bridge', () => {
  it('answers synchronously, with PostgreSQL’s message and code on errors', () => {
    const db = createSyncBridge({ url: server.url });
    try {
      expect(db.query('SELECT 1 AS one, $1::text AS s, 9007199254740991::bigint AS big', ['x'])).toEqual([
        { one: 1, s: 'x', big: 9007199254740991 },
      ]);
      expect(db.queryArrays('SELECT 1, NULL::text')).toEqual([[1, null]]);
      const err = caught(() => db.query('SELECT * FROM nowhere'));
      expect(err).toMatchObject({ name: 'PostgresError', code: '42P01', message: 'relation "nowhere" does not exist' });
      // The connection stays usable after an error.
      expect(db.run('SELECT generate_series(1, 3)')).toBe(3);
    } finally {
      db.close();
    }
  });

  it('runs a transaction on one connection: commit, rollback on a throw, savepoints when nested', () => {
    const db = createSyncBridge({ url: server.url });
    try {
      db.run('CREATE TEMP TABLE t (id int PRIMARY KEY)');
      db.transaction(() => {
        db.run('INSERT INTO t VALUES (1)');
        // Nested: its failure rolls back only itself.
        expect(() =>
          db.transaction(() => {
            db.run('INSERT INTO t VALUES (2)');
            db.run('INSERT INTO t VALUES (1)');
          }),
        ).toThrow(/duplicate key/);
        db.run('INSERT INTO t VALUES (3)');
      });
      expect(() =>
        db.transaction(() => {
          db.run('INSERT INTO t VALUES (4)');
          throw new Error('changed my mind');
        }),
      ).toThrow('changed my mind');
      expect(db.query('SELECT id FROM t ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }]);
    } finally {
      db.close();
    }
  });

  it('never finishes a transaction on another connection after losing its own', () => {
    const db = createSyncBridge({ url: server.url });
    try {
      db.run('CREATE TABLE lost (id int)');
      const pid = db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')[0]!.pid;
      const err = caught(() =>
        db.transaction(() => {
          db.run('INSERT INTO lost VALUES (1)');
          // Killed from outside mid-transaction: blocking here, so through psql in a child process.
          psqlSync(`SELECT pg_terminate_backend(${pid})`);
          db.run('INSERT INTO lost VALUES (2)');
        }),
      );
      // 08003 when the worker saw the connection go before the statement, 57P01/08006 when during it.
      expect(['08003', '57P01', '08006']).toContain(err.code);
      // The next call reconnects, and neither row was committed.
      expect(db.query('SELECT count(*) AS n FROM lost')).toEqual([{ n: 0 }]);
    } finally {
      db.close();
    }
  });

  it('gives up at the deadline with a clear error, whether PostgreSQL is slow or silent', async () => {
    const db = createSyncBridge({ url: server.url, timeoutMs: 1_000 });
    // A server that accepts and never says a word.
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const mute = createSyncBridge({ url: `postgresql://x@127.0.0.1:${(silent.address() as net.AddressInfo).port}/x`, timeoutMs: 500 });
    try {
      // Slow: PostgreSQL cancels the statement itself just before the deadline (connected first:
      // the deadline of the first call covers starting the worker and connecting too).
      db.query('SELECT 1');
      let t = performance.now();
      expect(caught(() => db.query('SELECT pg_sleep(3)'))).toMatchObject({ code: '57014' });
      expect(performance.now() - t).toBeLessThan(1_500);
      expect(db.query('SELECT 2 AS two')).toEqual([{ two: 2 }]);
      // Silent: the bridge gives up, resets, and says why.
      t = performance.now();
      const err = caught(() => mute.query('SELECT 1'));
      expect(err.code).toBe('PG_BRIDGE_TIMEOUT');
      expect(err.message).toMatch(/did not answer within 500 ms/);
      expect(performance.now() - t).toBeLessThan(1_500);
    } finally {
      mute.close();
      db.close();
      silent.close();
    }
  });

  it('refuses calls after close, and reports a refused connection with its code', () => {
    const db = createSyncBridge({ url: server.url });
    db.query('SELECT 1');
    db.close();
    expect(caught(() => db.query('SELECT 1')).code).toBe('PG_BRIDGE_CLOSED');
    const nowhere = createSyncBridge({ url: 'postgresql://postgres@127.0.0.1:1/postgres', timeoutMs: 2_000 });
    expect(caught(() => nowhere.query('SELECT 1')).code).toBe('ECONNREFUSED');
    nowhere.close();
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
    expect(await server.query('SELECT version FROM schema_migrations ORDER BY version', name)).toBe('1\n2\n3\n4\n5\n6\n7');
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
      expect(b.rollups.query('api', day, day + 86_400_000, 'day')).toMatchObject([{ runs: 1440 }]);
      expect(a.rollups.lastHour()).toBe(day + 24 * 3_600_000);
      await expect(a.backup('/tmp/nope.db')).rejects.toThrow(/pg_dump/);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

/** Runs SQL through psql and waits, blocking: for where the test itself must not yield. */
function psqlSync(sql: string) {
  execFileSync(path.join(server.bin, 'psql'), ['-X', '-q', '-c', sql], { env: { ...process.env, ...server.env }, stdio: 'ignore' });
}
