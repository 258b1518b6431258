import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import {
  createRollupEngine,
  type RawRun,
  type RollupBackend,
  type RollupEngine,
  type RollupOptions,
  type RollupRow,
} from '../rollup-core.js';
import type { RollupPeriod } from '../types.js';
import type { PgDb } from './db.js';

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
 * gives for the same runs. Every read and write goes through the pool, so an hour of a hundred
 * probes (or a report) never holds the event loop while PostgreSQL works. `lastHour` is read into
 * memory by load(), which the store's ready() awaits.
 */
export function createPostgresRollups(db: PgDb, clock: Clock, log: Logger, opts: RollupOptions = {}): RollupEngine {
  const backend: RollupBackend = {
    // By name, not by a key cached at start: another instance may have written this probe's first runs.
    probeKey: async (probeId) => (await db.query<{ id: number }>('SELECT id FROM probes WHERE name = $1', [probeId]))[0]?.id,
    probes: async () => (await db.query<{ id: number }>('SELECT id FROM probes ORDER BY id')).map((r) => r.id),
    firstRun: async (probe) =>
      (await db.query<{ t: number | null }>('SELECT min(started_at) AS t FROM runs WHERE probe = $1', [probe]))[0]?.t ?? undefined,
    runs: (probe, from, to) => db.queryArrays<RawRun>(RUNS_SQL, [probe, from, to]),
    rows: (probe, period: RollupPeriod, from, to) => db.query<RollupRow>(ROWS_SQL, [probe, period, from, to]),
    lastHour: async () => (await db.query<{ last_hour: number }>('SELECT last_hour FROM rollup_state WHERE id = 1'))[0]?.last_hour,
    write: (rows, state) =>
      db.withTransaction(async (tx) => {
        if (rows.length > 0)
          await tx.run(
            UPSERT_SQL,
            rows[0]!.map((_, col) => rows.map((r) => r[col])),
          );
        if (state !== undefined) {
          await tx.run(
            'INSERT INTO rollup_state (id, last_hour) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET last_hour = excluded.last_hour',
            [state],
          );
        }
      }),
    prune: (probe, period, before) =>
      db.run('DELETE FROM rollups WHERE probe = $1 AND period = $2 AND start < $3', [probe, period, before]),
    rolledProbes: async () => (await db.query<{ probe: number }>('SELECT DISTINCT probe FROM rollups')).map((r) => r.probe),
    exclusive: <T>(fn: () => Promise<T>) =>
      // A session lock on a connection of its own, held for the whole roll-up: if this instance dies,
      // PostgreSQL drops the lock with the connection and another instance takes over next hour.
      db.withClient(async (session): Promise<T | undefined> => {
        const got = (await session.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1) AS got', [ROLLUP_LOCK]))[0]?.got;
        if (!got) {
          log.debug('another instance is rolling up; skipped');
          return undefined;
        }
        try {
          return await fn();
        } finally {
          await session.query('SELECT pg_advisory_unlock($1)', [ROLLUP_LOCK]);
        }
      }),
  };
  return createRollupEngine(backend, clock, log, opts);
}
