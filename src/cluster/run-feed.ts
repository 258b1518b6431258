import type { Clock, TimerHandle } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { RunRecord, Store } from '../store/index.js';

/** Rows read per round; a full page means more wait, read at once. */
const PAGE = 1_000;

export interface RunFeedOptions {
  store: Pick<Store, 'runsAfter' | 'maxRunId'>;
  clock: Clock;
  logger: Logger;
  /** Read every round: a reload changes it. */
  intervalMs(): number;
  /** Every run written by any instance, in id order, once. */
  observe(run: RunRecord): void;
}

/**
 * The leader's view of every instance's runs: the runs written since it took over, read from the
 * shared database in id order (ids become visible in ascending order, so continuing after the
 * highest id seen misses nothing). What came before is in the history the alert engine seeded.
 */
export interface RunFeed {
  /**
   * Starts after run `after` (by default the newest written now); resolves once the first round is
   * read. A leader takes the cursor before it seeds its history from the store and passes it here,
   * so a run written between the two is neither missed nor judged twice.
   */
  start(after?: number): Promise<void>;
  stop(): void;
}

export function createRunFeed(opts: RunFeedOptions): RunFeed {
  const { store, clock } = opts;
  let timer: TimerHandle | undefined;
  let running = false;
  let cursor = 0;

  async function round() {
    if (!running) return;
    let more = false;
    try {
      const rows = await store.runsAfter(cursor, PAGE);
      for (const r of rows) opts.observe(r);
      const last = rows.at(-1);
      if (last) cursor = last.id;
      more = rows.length === PAGE;
    } catch (err) {
      opts.logger.warn({ err }, 'reading the run feed failed');
    }
    if (running) timer = clock.setTimeout(() => void round(), more ? 0 : opts.intervalMs());
  }

  return {
    async start(after) {
      cursor = after ?? (await store.maxRunId());
      running = true;
      await round();
    },
    stop() {
      running = false;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
