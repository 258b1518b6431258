import type { RunRecord } from './types.js';

/** Counters of the batched run writes, the same for every backend. */
export interface StoreStats {
  written: number;
  writeErrors: number;
  dropped: number;
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
