import { describe, expect, it } from 'vitest';
import { createRunFeed } from '../../src/cluster/run-feed.js';
import { createSqliteStore, type FeedCursor, type FeedPage, type RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';

const run = (probeId: string, startedAt: number): RunRecord => ({
  probeId,
  kind: 'http',
  startedAt,
  durationMs: 1,
  ok: true,
  values: {},
  attempts: 1,
  trigger: 'schedule',
});

describe('run feed', () => {
  it('starts at the end, passes on the cursor each page returns, and reads a full page again at once', async () => {
    const clock = new ManualClock();
    const store = createSqliteStore({ path: ':memory:', clock, logger: memoryLogger().logger });
    const t = clock.now();
    store.append(run('before', t));
    await store.flush();
    const asked: FeedCursor[] = [];
    const spy = {
      feedEnd: () => store.feedEnd(),
      runsFeed: (cursor: FeedCursor, limit: number): Promise<FeedPage> => {
        asked.push(cursor);
        return store.runsFeed(cursor, limit);
      },
    };
    const seen: string[] = [];
    const feed = createRunFeed({
      store: spy,
      clock,
      logger: memoryLogger().logger,
      intervalMs: () => 500,
      observe: (r) => seen.push(r.probeId),
    });
    await feed.start();
    expect(seen).toEqual([]);
    // 2,500 runs: more than two pages of 1,000, read one after another without waiting the interval.
    for (let i = 0; i < 2_500; i++) store.append(run(`p${i}`, t + i));
    await store.flush();
    await clock.advance(500);
    await waitFor('the feed reads every page', () => seen.length === 2_500);
    expect(seen[0]).toBe('p0');
    expect(seen.at(-1)).toBe('p2499');
    expect(new Set(seen).size).toBe(2_500);
    // The last page was short: the next read waits the interval, from after the last run read.
    expect(asked.map((c) => [...c.values()])).toEqual([[1], [1], [1001], [2001]]);
    await clock.advance(500);
    await waitFor('the next round', () => asked.length === 5);
    expect([...asked[4]!.values()]).toEqual([2501]);
    expect(seen.length).toBe(2_500);
    feed.stop();
    await store.close();
  });
});
