import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/lib/clock.js';
import { type Channel, createOutboxWorker, DeliveryError, type Notification } from '../../src/notify/index.js';
import type { AnyProber, ProbeDefinition } from '../../src/probers/index.js';
import { createScheduler } from '../../src/scheduler/index.js';
import { everyTicks } from '../../src/scheduler/ticks.js';
import { type AlertStore, createSqliteStore, type RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger, memoryState } from '../helpers/context.js';

// The wall clock jumps under a running vigil: NTP steps it, a VM is resumed, someone runs `date -s`.
// Node's timers count elapsed time, Date.now() does not. Forward 2 h: the slots in between are missed
// and counted, never run as a burst. Back 10 min: scheduling goes on at the same cadence rather than
// waiting for the wall clock to come round to the old slots again. The outbox never spins.

const SECOND = 1_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;
/** Probes on `every: 1s`, on `every: 10s`, and on a cron minute (driven like node-cron, by the test clock). */
const FAST = Array.from({ length: 20 }, (_, i) => `fast-${i}`);
const SLOW = Array.from({ length: 5 }, (_, i) => `slow-${i}`);
const CRON = Array.from({ length: 3 }, (_, i) => `cron-${i}`);

type TestClock = Clock & { advance(ms: number): Promise<void> };

function def(id: string, schedule: ProbeDefinition['schedule']): ProbeDefinition {
  return { id, kind: 'http', schedule, timeout: '5s', retry: { count: 0, delay: '1s' }, labels: {} } as ProbeDefinition;
}

function setup(clock: TestClock, elapsed: () => number) {
  const starts: Array<{ id: string; wall: number; mono: number }> = [];
  const runs: RunRecord[] = [];
  const missed = new Map<string, number>();
  const skipped: string[] = [];
  const lags: number[] = [];
  const logs = memoryLogger();
  const prober: AnyProber = {
    schema: {} as never,
    values: () => [],
    report: { target: () => 'stand-in' },
    probe: async (spec, ctx) => {
      starts.push({ id: spec.id, wall: clock.now(), mono: elapsed() });
      await ctx.clock.sleep(100, ctx.signal);
      return { ok: true, values: {} };
    },
  };
  const scheduler = createScheduler({
    clock,
    logger: logs.logger,
    cron: (_expression, handlers) => everyTicks(clock, MINUTE, handlers),
    probesDir: '.',
    maxSpreadMs: MINUTE,
    maxConcurrent: 1000,
    metrics: {
      schedulerLag: (s) => lags.push(s),
      missed: (key) => missed.set(key, (missed.get(key) ?? 0) + 1),
      skipped: (r) => skipped.push(r),
    },
    stateFor: () => memoryState(),
    onResult: (r) => runs.push(r),
    proberFor: () => prober,
  });
  scheduler.setProbes([
    ...FAST.map((id) => def(id, { every: '1s' })),
    ...SLOW.map((id) => def(id, { every: '10s' })),
    ...CRON.map((id) => def(id, '* * * * *')),
  ]);
  /** Runs of `id` started with elapsed time in [from, to). */
  const count = (id: string, from: number, to: number) => starts.filter((s) => s.id === id && s.mono >= from && s.mono < to).length;
  const startsOf = (id: string, from: number) => starts.filter((s) => s.id === id && s.mono >= from);
  // Text levels (`error`), or pino's numbers (50) from a logger configured without the formatter.
  const errors = () =>
    logs.lines.filter((l) => l.level === 'error' || l.level === 'fatal' || (typeof l.level === 'number' && l.level >= 50));
  return { scheduler, starts, runs, missed, skipped, lags, logs, count, startsOf, errors };
}

describe('the scheduler when the wall clock jumps', () => {
  it('ManualClock, forward 2 h: the missed slots are counted, not run; one run per probe per slot after; cadence kept', async () => {
    const clock = new ManualClock();
    const t = setup(clock, () => clock.now());
    await clock.advance(30 * SECOND);
    for (const id of FAST) expect(t.count(id, 0, Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(29);
    const before = t.starts.length;

    clock.advanceSync(2 * HOUR);
    const jumpedAt = clock.now();
    await clock.advance(0);
    // Every overdue timer has fired now: at most one run per probe, not 7,200 catch-up runs each.
    const burst = t.starts.slice(before);
    expect(burst.length).toBeLessThanOrEqual(FAST.length + SLOW.length + CRON.length);
    for (const id of [...FAST, ...SLOW, ...CRON]) expect(burst.filter((s) => s.id === id).length).toBeLessThanOrEqual(1);
    // The slots in between are counted as missed, per schedule.
    expect(t.missed.get('every 1000')).toBeGreaterThanOrEqual(7_198);
    expect(t.missed.get('every 1000')).toBeLessThanOrEqual(7_200);
    expect(t.missed.get('every 10000')).toBeGreaterThanOrEqual(718);
    expect(t.missed.get('every 10000')).toBeLessThanOrEqual(720);
    expect(t.missed.get('* * * * *')).toBeGreaterThanOrEqual(118);
    expect(t.missed.get('* * * * *')).toBeLessThanOrEqual(120);

    // Then the normal cadence: once a second, at the probe's own offset, a whole second apart.
    await clock.advance(60 * SECOND);
    for (const id of FAST) {
      const after = t.startsOf(id, jumpedAt);
      expect(after.length, id).toBeGreaterThanOrEqual(60);
      expect(after.length, id).toBeLessThanOrEqual(61);
      const gaps = after.slice(2).map((s, i) => s.wall - (after[i + 1]?.wall ?? 0));
      expect(new Set(gaps), id).toEqual(new Set([SECOND]));
    }
    for (const id of SLOW) expect(t.startsOf(id, jumpedAt).length, id).toBeGreaterThanOrEqual(6);
    for (const id of CRON) expect(t.startsOf(id, jumpedAt).length, id).toBeGreaterThanOrEqual(1);
    // Nobody was reported two hours late (a cron member runs up to its minute's spread into the slot), nothing skipped or thrown.
    expect(Math.max(...t.lags)).toBeLessThan(60);
    expect(Math.max(...t.lags.slice(-FAST.length))).toBeLessThan(1);
    expect(t.skipped).toEqual([]);
    expect(t.errors()).toEqual([]);
    expect(t.scheduler.health().lastBeat).toBeGreaterThan(jumpedAt);
    const stopped = t.scheduler.stop(1_000);
    await clock.advance(2 * SECOND);
    await stopped;
  });

  it('timers counting elapsed time (as Node’s do): forward 2 h, then back 10 min; the cadence holds through both', async () => {
    const clock = new ManualClock();
    const t = setup(clock, () => clock.monotonic());
    await clock.advance(30 * SECOND);
    const missedBefore = t.missed.get('every 1000') ?? 0;

    // Forward: the next timer fires on time (elapsed), and finds two hours of slots behind it.
    clock.jump(2 * HOUR);
    const forwardAt = clock.monotonic();
    await clock.advance(SECOND);
    for (const id of [...FAST, ...SLOW, ...CRON]) expect(t.count(id, forwardAt, forwardAt + SECOND), id).toBeLessThanOrEqual(2);
    expect((t.missed.get('every 1000') ?? 0) - missedBefore).toBeGreaterThanOrEqual(7_198);
    await clock.advance(2 * MINUTE - SECOND);
    for (const id of FAST) {
      expect(t.count(id, forwardAt, forwardAt + 2 * MINUTE), id).toBeGreaterThanOrEqual(119);
      expect(t.count(id, forwardAt, forwardAt + 2 * MINUTE), id).toBeLessThanOrEqual(121);
    }
    // A cron member runs at its offset in the minute: within two minutes of the jump, once or twice.
    for (const id of CRON) expect(t.count(id, forwardAt, forwardAt + 2 * MINUTE), id).toBeGreaterThanOrEqual(1);

    // Back 10 minutes: the slots already run come round again on the wall clock; runs must not wait for them.
    const missedAtBack = t.missed.get('every 1000') ?? 0;
    clock.jump(-10 * MINUTE);
    const backAt = clock.monotonic();
    await clock.advance(10 * SECOND);
    for (const id of FAST) {
      expect(t.count(id, backAt, backAt + 10 * SECOND), `${id} ran in the 10 s after the clock stepped back`).toBeGreaterThanOrEqual(9);
      expect(t.count(id, backAt, backAt + 10 * SECOND), id).toBeLessThanOrEqual(11);
    }
    await clock.advance(2 * MINUTE);
    // Slower schedules re-align at their next tick, then spread their probes over the slot: two intervals at most.
    for (const id of SLOW) expect(t.count(id, backAt, backAt + 20 * SECOND), id).toBeGreaterThanOrEqual(1);
    for (const id of CRON) expect(t.count(id, backAt, backAt + 2 * MINUTE + 10 * SECOND), id).toBeGreaterThanOrEqual(1);
    for (const id of FAST) {
      // A second apart in elapsed time, every time: the step back did not double or stall anything.
      const gaps = t
        .startsOf(id, backAt + 2 * SECOND)
        .map((s) => s.mono)
        .map((m, i, all) => (i === 0 ? SECOND : m - (all[i - 1] as number)));
      expect(new Set(gaps), id).toEqual(new Set([SECOND]));
    }
    // Stepping back misses nothing.
    expect(t.missed.get('every 1000')).toBe(missedAtBack);
    expect(t.skipped).toEqual([]);
    expect(t.errors()).toEqual([]);
    expect(Math.max(...t.lags)).toBeLessThan(60);
    expect(t.scheduler.health().lastBeat).toBeGreaterThan(clock.now() - 10 * SECOND);
    const stopped = t.scheduler.stop(1_000);
    await clock.advance(2 * SECOND);
    await stopped;
  });
});

describe('the outbox worker when the wall clock jumps', () => {
  /** A provider that fails (retryably) until told otherwise, recording when each attempt came. */
  function provider() {
    const attempts: Array<{ id: number; mono: number }> = [];
    let up = false;
    let clock: ManualClock | undefined;
    const channel: Channel = {
      async send(n: Notification) {
        attempts.push({ id: n.id, mono: clock?.monotonic() ?? 0 });
        if (!up) throw new DeliveryError('503 Service Unavailable', { retryable: true });
        return {};
      },
      close: async () => {},
    };
    return {
      channel,
      attempts,
      bind: (c: ManualClock) => {
        clock = c;
      },
      recover: () => {
        up = true;
      },
    };
  }

  it('backs off through a jump forward and a jump back without spinning, then delivers each page once', async () => {
    const clock = new ManualClock();
    const store = createSqliteStore({ path: ':memory:', clock, logger: memoryLogger().logger });
    let dueCalls = 0;
    const alerts = new Proxy(store.alerts, {
      get(target, key, receiver) {
        if (key === 'due')
          return (...args: Parameters<AlertStore['due']>) => {
            dueCalls++;
            return target.due(...args);
          };
        return Reflect.get(target, key, receiver);
      },
    });
    const hook = provider();
    hook.bind(clock);
    const outcomes: string[] = [];
    const worker = createOutboxWorker({
      store: alerts,
      channels: new Map([['hook', hook.channel]]),
      clock,
      logger: memoryLogger().logger,
      observer: { outcome: (_c, o) => outcomes.push(o), latency: () => {} },
      baseUrl: 'https://vigil.example.com',
      maxAgeMs: 24 * HOUR,
      sendTimeoutMs: 10 * SECOND,
      minBackoffMs: SECOND,
      maxBackoffMs: 5 * MINUTE,
      concurrency: 4,
      pollIntervalMs: SECOND,
      random: () => 1,
    });
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const opened = await store.alerts.applyIncidentChange({
        open: {
          probeId: `api-${i}`,
          rule: 'failures',
          kind: 'http',
          severity: 'critical',
          state: 'open',
          summary: `api-${i}: 503`,
          labels: {},
          channels: ['hook'],
          openedAt: clock.now(),
          flapping: false,
          notified: true,
        },
        event: { at: clock.now(), type: 'opened', actor: 'vigil' },
        notify: (inc) => [{ channel: 'hook', action: 'trigger', dedupKey: `api-${i}/failures/${inc.id}`, payload: { id: inc.id } }],
      });
      ids.push(opened.id);
    }
    worker.start();
    await clock.advance(5 * MINUTE);
    // 1 s, 2 s, 4 s … 256 s: nine attempts each in five minutes.
    const firstOf = new Map<number, number | undefined>();
    for (const id of ids) firstOf.set(id, (await store.alerts.notifications(id))[0]?.id);
    const perItem = (from: number, to = Number.POSITIVE_INFINITY) =>
      ids.map((id) => hook.attempts.filter((a) => a.id === firstOf.get(id) && a.mono >= from && a.mono < to).length);
    expect(perItem(0)).toEqual([9, 9, 9]);
    // The quiet rate, timers (the store's batch tick, the poll, retry wake-ups) and outbox scans a minute,
    // measured over ten minutes of retries 300 s apart: what a jump must not multiply.
    let fired = clock.fired;
    dueCalls = 0;
    await clock.advance(10 * MINUTE);
    const timersPerMinute = (clock.fired - fired) / 10;
    const scansPerMinute = dueCalls / 10;
    expect(perItem(5 * MINUTE)).toEqual([2, 2, 2]);

    // Forward two hours: every retry is overdue at once, then backs off from where it was; it does not spin.
    clock.jump(2 * HOUR);
    let from = clock.monotonic();
    fired = clock.fired;
    dueCalls = 0;
    await clock.advance(10 * MINUTE);
    for (const n of perItem(from)) {
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(3);
    }
    // No timer loop running hot: the same rates as before the jump, give or take a wake-up per retry.
    expect(clock.fired - fired).toBeLessThanOrEqual(10 * timersPerMinute + 10);
    expect(dueCalls).toBeLessThanOrEqual(10 * scansPerMinute + 10);
    expect(clock.pending).toBeLessThanOrEqual(4);

    // Back ten minutes: the retries' wall-clock due times are now further off; still no spinning.
    clock.jump(-10 * MINUTE);
    from = clock.monotonic();
    fired = clock.fired;
    dueCalls = 0;
    await clock.advance(10 * MINUTE);
    for (const n of perItem(from)) expect(n).toBeLessThanOrEqual(2);
    expect(clock.fired - fired).toBeLessThanOrEqual(10 * timersPerMinute + 10);
    expect(dueCalls).toBeLessThanOrEqual(10 * scansPerMinute + 10);

    // The provider recovers: each page is delivered exactly once, none dead.
    hook.recover();
    await clock.advance(15 * MINUTE);
    for (const id of ids) expect((await store.alerts.notifications(id))[0]).toMatchObject({ state: 'delivered' });
    expect(outcomes.filter((o) => o === 'delivered')).toHaveLength(3);
    expect(outcomes).not.toContain('dead');
    const stopped = worker.stop(0);
    await clock.advance(0);
    await stopped;
    await store.close();
  });
});
