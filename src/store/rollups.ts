import type Database from 'better-sqlite3';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { createRollupEngine, type RawRun, type RollupBackend, type RollupOptions, type RollupRow } from './rollup-core.js';
import type { Rollups } from './types.js';

export type { RollupOptions } from './rollup-core.js';

/**
 * Rollups in SQLite: the engine of src/store/rollup-core.ts over prepared statements.
 */
export function createRollups(db: Database.Database, clock: Clock, log: Logger, opts: RollupOptions = {}): Rollups {
  const allProbes = db.prepare<[], number>('SELECT id FROM probes ORDER BY id').pluck();
  const probeByName = db.prepare<[string], number>('SELECT id FROM probes WHERE name = ?').pluck();
  // The (probe, started_at) index gives one probe's hour in time order, so `last` is the latest run.
  const runsOf = db
    .prepare<[number, number, number], RawRun>(
      'SELECT started_at, duration_ms, ok, code, vals FROM runs WHERE probe = ? AND started_at >= ? AND started_at < ? ORDER BY started_at',
    )
    .raw();
  const firstRunOf = db.prepare<[number], number | null>('SELECT min(started_at) FROM runs WHERE probe = ?').pluck();
  const getState = db.prepare<[], number>('SELECT last_hour FROM rollup_state WHERE id = 1').pluck();
  const setState = db.prepare(
    'INSERT INTO rollup_state (id, last_hour) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET last_hour = excluded.last_hour',
  );
  // REPLACE: redoing an hour after a crash between its rows and the state update overwrites, never doubles.
  const upsert = db.prepare(
    'INSERT OR REPLACE INTO rollups (probe, period, start, runs, failures, duration, vals, codes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const rowsOf = db.prepare<[number, string, number, number], RollupRow>(
    'SELECT start, runs, failures, duration, vals, codes FROM rollups WHERE probe = ? AND period = ? AND start >= ? AND start < ? ORDER BY start',
  );
  const pruneOf = db.prepare('DELETE FROM rollups WHERE probe = ? AND period = ? AND start < ?');
  const rolledProbes = db.prepare<[], number>('SELECT DISTINCT probe FROM rollups').pluck();

  const lastHour = () => getState.get();
  const write = db.transaction((rows: unknown[][], state: number | undefined) => {
    for (const r of rows) upsert.run(...r);
    if (state !== undefined) setState.run(state);
  });

  // better-sqlite3 answers at once: each read is a resolved promise, the same statements for the
  // report's reads and the roll-up's.
  const backend: RollupBackend = {
    probeKey: async (probeId) => probeByName.get(probeId),
    runs: async (probe, from, to) => runsOf.all(probe, from, to),
    rows: async (probe, period, from, to) => rowsOf.all(probe, period, from, to),
    lastHour: async () => lastHour(),
    probes: async () => allProbes.all(),
    firstRun: async (probe) => firstRunOf.get(probe) ?? undefined,
    write: async (r, state) => write(r, state),
    prune: async (probe, period, before) => pruneOf.run(probe, period, before).changes,
    rolledProbes: async () => rolledProbes.all(),
  };
  return createRollupEngine(backend, clock, log, opts, lastHour());
}
