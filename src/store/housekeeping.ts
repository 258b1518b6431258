import type { Clock, TimerHandle } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Store } from './types.js';

const DAY_MS = 86_400_000;

export interface HousekeepingOptions {
  store: Pick<Store, 'prune' | 'rollups' | 'audit'>;
  clock: Clock;
  logger: Logger;
  everyMs: number;
  /** Read at every round: a reload changes them. */
  retention(): { runsMs: number; failedRunsMs?: number; auditMs: number; reportDays: number };
  /** Removes files runs kept (browser screenshots and traces) of runs started before `before`: they go with the failed runs that keep them. */
  pruneArtifacts?(before: number): Promise<number>;
}

/**
 * The store's upkeep, every `everyMs` while this instance leads: roll completed hours (and days) up
 * first, then prune raw runs past their retention and rollups past theirs, so nothing is pruned
 * before it is summarised; the audit log past its own. The first round after a start also reads
 * the report window's day rows into memory ahead of the first report.
 */
export interface Housekeeping {
  start(): void;
  stop(): void;
}

export function createHousekeeping(opts: HousekeepingOptions): Housekeeping {
  const { store, clock } = opts;
  let timer: TimerHandle | undefined;
  let running = false;
  let warmed = false;

  async function round() {
    const now = clock.now();
    const keep = opts.retention();
    await store.rollups?.rollUp(now);
    if (!warmed) await store.rollups?.warm(now - (keep.reportDays + 1) * DAY_MS, now);
    warmed = true;
    // Failed runs are kept longer than ok ones, never shorter.
    const failedBefore = now - Math.max(keep.failedRunsMs ?? keep.runsMs, keep.runsMs);
    await store.prune(now - keep.runsMs, { failedBefore });
    await opts.pruneArtifacts?.(failedBefore);
    await store.rollups?.prune();
    await store.audit.prune(now - keep.auditMs);
  }

  const loop = () => {
    round()
      .catch((err: unknown) => opts.logger.error({ err }, 'rollup or prune failed'))
      .finally(() => {
        if (running) timer = clock.setTimeout(loop, opts.everyMs);
      });
  };

  return {
    start() {
      if (running) return;
      running = true;
      loop();
    },
    stop() {
      running = false;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
