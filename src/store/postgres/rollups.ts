import type pg from 'pg';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { createRollupEngine, type RawRun, type RollupBackend, type RollupOptions, type RollupRow } from '../rollup-core.js';
import type { RollupPeriod, Rollups } from '../types.js';
import type { SyncBridge } from './bridge.js';

/** Held (per session) by the instance rolling up, so instances sharing a database take turns. */
const ROLLUP_LOCK = 0x76_69_67_69_6c_02; // "vigil" 2

// Ties by id, as SQLite's (probe, started_at) index returns them by rowid: `last` is the same on both.
const RUNS_SQL =
  'SELECT started_at, duration_ms, ok::int, code, vals FROM runs WHERE probe = $1 AND started_at >= $2 AND started_at < $3 ORDER BY started_at, id';
const ROWS_SQL =
  'SELECT start, runs, failures, duration, vals, codes FROM rollups WHERE probe = $1 AND period = $2 AND start >= $3 AND start < $4 ORDER BY start';
const UPSERT_SQL = `INSERT INTO rollups (probe, period, start, runs, failures, duration, vals, codes)
  SELECT * FROM unnest($1::int[], $2::text[], $3::bigint[], $4::int[], $5::int[], $6::text[], $7::text[], $8::text[])
  ON CONFLICT (probe, period, start) DO UPDATE
    SET runs = excluded.runs, failures = excluded.failures, duration = excluded.duration, vals = excluded.vals, codes = excluded.codes`;

/**
 * Rollups in PostgreSQL: the engine of src/store/rollup-core.ts, so every answer is the one SQLite
 * gives for the same runs. The report path (query/summary/window/lastHour) is synchronous in the
 * interface and reads through the bridge; the roll-up, prune and warm are async and read and write
 * through the pool, so an hour of a hundred probes never holds the event loop while PostgreSQL works.
 */
export function createPostgresRollups(bridge: SyncBridge, pool: pg.Pool, clock: Clock, log: Logger, opts: RollupOptions = {}): Rollups {
  const lastHour = (rows: Array<{ last_hour: number }>) => rows[0]?.last_hour;
  const backend: RollupBackend = {
    probeKey: (probeId) => bridge.query<{ id: number }>('SELECT id FROM probes WHERE name = $1', [probeId])[0]?.id,
    runs: (probe, from, to) => bridge.queryArrays<RawRun>(RUNS_SQL, [probe, from, to]),
    rows: (probe, period, from, to) => bridge.query<RollupRow>(ROWS_SQL, [probe, period, from, to]),
    lastHour: () => lastHour(bridge.query('SELECT last_hour FROM rollup_state WHERE id = 1')),

    probes: async () => (await pool.query<{ id: number }>('SELECT id FROM probes ORDER BY id')).rows.map((r) => r.id),
    firstRun: async (probe) =>
      (await pool.query<{ t: number | null }>('SELECT min(started_at) AS t FROM runs WHERE probe = $1', [probe])).rows[0]?.t ?? undefined,
    readRuns: async (probe, from, to) => (await pool.query<RawRun>({ text: RUNS_SQL, values: [probe, from, to], rowMode: 'array' })).rows,
    readRows: async (probe, period: RollupPeriod, from, to) => (await pool.query<RollupRow>(ROWS_SQL, [probe, period, from, to])).rows,
    readLastHour: async () => lastHour((await pool.query('SELECT last_hour FROM rollup_state WHERE id = 1')).rows),
    async write(rows, state) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        if (rows.length > 0)
          await client.query(
            UPSERT_SQL,
            rows[0]!.map((_, col) => rows.map((r) => r[col])),
          );
        if (state !== undefined) {
          await client.query(
            'INSERT INTO rollup_state (id, last_hour) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET last_hour = excluded.last_hour',
            [state],
          );
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => {
          broken = e;
        });
        throw err;
      } finally {
        client.release(broken);
      }
    },
    prune: async (probe, period, before) =>
      (await pool.query('DELETE FROM rollups WHERE probe = $1 AND period = $2 AND start < $3', [probe, period, before])).rowCount ?? 0,
    rolledProbes: async () => (await pool.query<{ probe: number }>('SELECT DISTINCT probe FROM rollups')).rows.map((r) => r.probe),
    async exclusive(fn) {
      // A session lock on a connection of its own, held for the whole roll-up: if this instance dies,
      // PostgreSQL drops the lock with the connection and another instance takes over next hour.
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        const got = (await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1) AS got', [ROLLUP_LOCK])).rows[0]?.got;
        if (!got) {
          log.debug('another instance is rolling up; skipped');
          return undefined;
        }
        try {
          return await fn();
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [ROLLUP_LOCK]).catch((e: Error) => {
            broken = e;
          });
        }
      } finally {
        client.release(broken);
      }
    },
  };
  return createRollupEngine(backend, clock, log, opts);
}
