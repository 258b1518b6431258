import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { RollupOptions } from './rollup-core.js';
import type { RunRecord, StoreStats } from './types.js';

/** What every store backend takes: results are queued and written in batches off the probe path. */
export interface BatchedStoreOptions {
  clock: Clock;
  logger: Logger;
  /** Rows per write transaction; reaching it triggers a flush at once. */
  batchRows?: number;
  /** How often queued rows are written when fewer than batchRows wait. */
  batchIntervalMs?: number;
  /** Bound on rows held while the database refuses writes; the oldest are dropped past it. */
  maxQueued?: number;
  /** Rollup tuning (hours per call, grace, retention, sketched values); see src/store/rollup-core.ts. */
  rollups?: RollupOptions;
}

/**
 * After a failed write: the rows not yet committed go back to the head of the queue (a database
 * restart or a full disk must not lose results; the next interval retries them), and past
 * `maxQueued` the oldest are dropped and counted. Rows of batches that did commit must not be
 * passed here: they would be written twice.
 */
export function requeue(unwritten: RunRecord[], queue: RunRecord[], maxQueued: number, stats: StoreStats): RunRecord[] {
  const next = unwritten.concat(queue);
  if (next.length > maxQueued) {
    const drop = next.length - maxQueued;
    next.splice(0, drop);
    stats.dropped += drop;
  }
  return next;
}
