import { describe, expect, it } from 'vitest';
import { createLeadership } from '../../src/cluster/leader.js';
import type { LeaseState } from '../../src/store/index.js';
import { createSqliteStore } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';

const TTL = 3_000;

describe('leadership by lease', () => {
  function two() {
    const clock = new ManualClock(Date.UTC(2026, 10, 26));
    const store = createSqliteStore({ path: ':memory:', clock, logger: memoryLogger().logger });
    const events: string[] = [];
    let failing = false;
    // Both instances share one lease table; `failing` makes a's calls fail as an unreachable database would.
    const flaky = {
      lease: async (name: string, holder: string, ttl: number, now: number): Promise<LeaseState> => {
        if (failing && holder === 'a') throw new Error('connection terminated');
        return store.lease(name, holder, ttl, now);
      },
      release: (name: string, holder: string) => store.release(name, holder),
    };
    const make = (holder: string) =>
      createLeadership({
        store: flaky,
        name: 'vigil-leader',
        holder,
        ttlMs: TTL,
        clock,
        logger: memoryLogger().logger,
        onGain: () => {
          events.push(`${holder} leads`);
        },
        onLose: () => {
          events.push(`${holder} steps down`);
        },
      });
    return { clock, store, events, a: make('a'), b: make('b'), fail: (v: boolean) => (failing = v) };
  }

  it('has one leader, which renews for as long as it lives', async () => {
    const { clock, events, a, b } = two();
    a.start();
    b.start();
    await clock.advance(0);
    expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);
    expect(b.holder()).toBe('a');
    // Renewed every TTL/3: b never gets it while a renews.
    await clock.advance(10 * TTL);
    expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);
    expect(events).toEqual(['a leads']);
    await a.stop();
    await b.stop();
  });

  it('steps down before its lease could expire when it cannot renew, and hands over at once on stop', async () => {
    const { clock, events, a, b, fail } = two();
    a.start();
    await clock.advance(0);
    b.start();
    await clock.advance(0);
    // a can no longer reach the database (or died): it steps down a renewal interval before its
    // lease expires, and b takes the lease when it does, so two never both lead.
    const lost = clock.now();
    fail(true);
    await clock.advance(TTL - TTL / 3);
    expect([a.isLeader(), b.isLeader()]).toEqual([false, false]);
    await clock.advance(TTL / 3);
    expect([a.isLeader(), b.isLeader()]).toEqual([false, true]);
    expect(clock.now() - lost).toBe(TTL);
    expect(events).toEqual(['a leads', 'a steps down', 'b leads']);

    // A clean stop releases the lease: the other takes over at its next renewal, not a TTL later.
    fail(false);
    await b.stop();
    expect(events.at(-1)).toBe('b steps down');
    await clock.advance(TTL / 3);
    expect(a.isLeader()).toBe(true);
    await a.stop();
  });
});
