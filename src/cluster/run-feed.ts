import type { Clock, TimerHandle } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { FeedCursor, RunRecord, Store } from '../store/index.js';

/** Rows read per round; a full page means more wait, read at once. */
const PAGE = 1_000;

export interface RunFeedOptions {
  store: Pick<Store, 'runsFeed' | 'feedEnd'>;
  clock: Clock;
  logger: Logger;
  /** Read every round: a reload changes it. */
  intervalMs(): number;
  /** Every run written by any instance, once; each page in id order. */
  observe(run: RunRecord): void;
}

/**
 * The leader's view of every instance's runs: the runs written since it took over, read from the
 * shared database with one cursor per writer (each writer's ids become visible in ascending order,
 * so continuing each after its highest id seen misses nothing; see Store.runsFeed). A writer that
 * appears later is read from its first run; one gone for good just stops moving. What came before
 * is in the history the alert engine seeded.
 */
export interface RunFeed {
  /**
   * Starts after cursor `after` (by default every writer's newest run now); resolves once the first
   * round is read. A leader takes the cursor before it seeds its history from the store (the runs
   * the cursor covers) and passes it here, so a run written between the two is neither missed nor
   * judged twice.
   */
  start(after?: FeedCursor): Promise<void>;
  stop(): void;
}

export function createRunFeed(opts: RunFeedOptions): RunFeed {
  const { store, clock } = opts;
  let timer: TimerHandle | undefined;
  let running = false;
  let cursor: FeedCursor = new Map();

  async function round() {
    if (!running) return;
    let more = false;
    try {
      const page = await store.runsFeed(cursor, PAGE);
      cursor = page.cursor;
      for (const r of page.runs) opts.observe(r);
      more = page.runs.length === PAGE;
    } catch (err) {
      opts.logger.warn({ err }, 'reading the run feed failed');
    }
    if (running) timer = clock.setTimeout(() => void round(), more ? 0 : opts.intervalMs());
  }

  return {
    async start(after) {
      cursor = after ?? (await store.feedEnd());
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
