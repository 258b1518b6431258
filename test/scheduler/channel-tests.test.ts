import { describe, expect, it } from 'vitest';
import { createChannelTests } from '../../src/scheduler/channel-tests.js';
import { createSqliteStore } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';

describe('channel test schedules', () => {
  it('replaces its cron sources when a reload brings new schedules, and only while started', async () => {
    const clock = new ManualClock();
    const store = createSqliteStore({ path: ':memory:', clock, logger: memoryLogger().logger });
    const live = new Set<string>();
    const tests = createChannelTests({
      store: store.alerts,
      clock,
      cron: (expr) => {
        live.add(expr);
        return { stop: () => live.delete(expr) };
      },
      schedules: { ops: '0 9 * * 1' },
      waitMs: 60_000,
      wake: () => {},
      onResult: () => {},
    });
    tests.setSchedules({ ops: '0 8 * * 1' });
    expect(live).toEqual(new Set());
    tests.start();
    expect(live).toEqual(new Set(['0 8 * * 1']));
    tests.setSchedules({ ops: '0 10 * * 1', pager: '0 12 * * *' });
    expect(live).toEqual(new Set(['0 10 * * 1', '0 12 * * *']));
    expect(tests.probeIds).toEqual(['channel:ops', 'channel:pager']);
    tests.stop();
    expect(live).toEqual(new Set());
    await store.close();
  });
});
