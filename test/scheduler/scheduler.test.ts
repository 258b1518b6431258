import { describe, expect, it } from 'vitest';
import { stableHash } from '../../src/lib/hash.js';
import type { SkipReason } from '../../src/metrics/index.js';
import type { AnyProber, ProbeContext, ProbeDefinition, ProbeResult } from '../../src/probers/index.js';
import { createScheduler, type SchedulerOptions } from '../../src/scheduler/index.js';
import { everyTicks } from '../../src/scheduler/ticks.js';
import type { RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger, memoryState } from '../helpers/context.js';

type Behaviour = (ctx: ProbeContext, attempt: number) => Promise<ProbeResult>;

function def(id: string, over: Partial<ProbeDefinition> = {}): ProbeDefinition {
  return {
    id,
    kind: 'http',
    schedule: '* * * * *',
    timeout: '10s',
    retry: { count: 0, delay: '10s' },
    labels: {},
    ...over,
  } as ProbeDefinition;
}

const ok = (values: Record<string, number> = {}): ProbeResult => ({ ok: true, values });
const fail = (code = 'CONNECT'): ProbeResult => ({ ok: false, code, message: `failed: ${code}`, values: {} });

function setup(behaviour: Behaviour, opts: Partial<SchedulerOptions> = {}) {
  const clock = new ManualClock();
  const runs: RunRecord[] = [];
  const started: Array<{ id: string; at: number }> = [];
  const skipped: SkipReason[] = [];
  const lags: number[] = [];
  let missed = 0;
  const attempts = new Map<string, number>();
  const prober: AnyProber = {
    schema: {} as never,
    values: () => [],
    report: { target: () => 'stand-in' },
    probe: (spec: ProbeDefinition, ctx: ProbeContext) => {
      const n = (attempts.get(spec.id) ?? 0) + 1;
      attempts.set(spec.id, n);
      started.push({ id: spec.id, at: clock.now() });
      return behaviour(ctx, n);
    },
  };
  const scheduler = createScheduler({
    clock,
    logger: memoryLogger().logger,
    // The test's stand-in for node-cron: "* * * * *" fires at every minute boundary of the fake clock.
    cron: (_expr, handlers) => everyTicks(clock, 60_000, handlers),
    probesDir: '.',
    maxSpreadMs: 60_000,
    maxConcurrent: 1000,
    metrics: {
      schedulerLag: (s) => lags.push(s),
      missed: () => {
        missed++;
      },
      skipped: (r) => skipped.push(r),
    },
    stateFor: () => memoryState(),
    onResult: (r) => runs.push(r),
    proberFor: () => prober,
    ...opts,
  });
  return { clock, scheduler, runs, started, skipped, lags, missed: () => missed };
}

describe('scheduler', () => {
  it('spreads probes sharing a schedule over the minute, by a stable offset from their id', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `probe-${i}`);
    const a = setup(async () => ok());
    a.scheduler.setProbes(ids.map((id) => def(id)));
    await a.clock.advance(120_000);
    const firstMinute = Math.ceil(Date.UTC(2026, 10, 26, 12, 0, 0) / 60_000) * 60_000;
    const offsets = new Map(a.started.filter((s) => s.at < firstMinute + 60_000).map((s) => [s.id, s.at - firstMinute]));
    expect(offsets.size).toBe(200);
    // Every probe ran once per minute, within the minute.
    for (const o of offsets.values()) expect(o >= 0 && o < 60_000).toBe(true);
    // Not bunched: no second of the minute holds more than 5% of the probes, and all quarters are used.
    const perSecond = new Map<number, number>();
    for (const o of offsets.values()) perSecond.set(Math.floor(o / 1000), (perSecond.get(Math.floor(o / 1000)) ?? 0) + 1);
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(10);
    const quarters = new Set([...offsets.values()].map((o) => Math.floor(o / 15_000)));
    expect(quarters.size).toBe(4);
    // The same probe fires at the same offset in the next minute, and in another scheduler.
    const second = a.started.filter((s) => s.at >= firstMinute + 60_000 && s.at < firstMinute + 120_000);
    for (const s of second) expect(s.at - firstMinute - 60_000).toBe(offsets.get(s.id));
    const b = setup(async () => ok());
    b.scheduler.setProbes(ids.map((id) => def(id)));
    await b.clock.advance(60_000);
    for (const s of b.started) expect(s.at - firstMinute).toBe(offsets.get(s.id));
    expect(a.lags.every((l) => l === 0)).toBe(true);
    await a.scheduler.stop(0);
    await b.scheduler.stop(0);
  });

  it('never overlaps runs of one probe: a slot that finds it running is skipped and counted', async () => {
    const t = setup((ctx) => ctx.clock.sleep(2_500, ctx.signal).then(() => ok()));
    t.scheduler.setProbes([def('slow', { schedule: { every: '1s' } })]);
    await t.clock.advance(10_000);
    const starts = t.started.map((s) => s.at);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(2_500);
    expect(t.runs.length).toBeGreaterThanOrEqual(3);
    expect(t.skipped.filter((r) => r === 'overlap').length).toBeGreaterThanOrEqual(5);
    const stopped = t.scheduler.stop(5_000);
    await t.clock.advance(5_000);
    await stopped;
    expect(t.scheduler.health().inFlight).toBe(0);
  });

  it('retries a failure to confirm it before recording one run', async () => {
    // Fails on the first attempt, succeeds on the second: one run, ok, 2 attempts.
    const flaky = setup(async (_ctx, n) => (n === 1 ? fail() : ok()));
    flaky.scheduler.setProbes([def('flaky', { retry: { count: 2, delay: '10s' } })]);
    await flaky.clock.advance(60_000 + 60_000);
    const first = flaky.runs[0]!;
    expect(first).toMatchObject({ probeId: 'flaky', ok: true, attempts: 2 });
    expect(flaky.started[1]!.at - flaky.started[0]!.at).toBe(10_000);

    // Always failing: one failed run after 1 + 2 attempts spaced by the delay.
    const down = setup(async () => fail('HTTP_STATUS'));
    down.scheduler.setProbes([def('down', { retry: { count: 2, delay: '5s' }, schedule: { every: '5m' } })]);
    await down.clock.advance(4 * 60_000);
    expect(down.runs).toHaveLength(1);
    expect(down.runs[0]).toMatchObject({ ok: false, code: 'HTTP_STATUS', attempts: 3 });
    expect(down.started.map((s) => s.at - down.started[0]!.at)).toEqual([0, 5_000, 10_000]);
    await flaky.scheduler.stop(0);
    await down.scheduler.stop(0);
  });

  it('ends a run at its deadline with TIMEOUT, even when the prober ignores its signal, and keeps the others on time', async () => {
    const t = setup(async (ctx) => {
      if (ctx.deadline - ctx.clock.now() === 3_000) {
        // Ignores the signal entirely.
        return new Promise<ProbeResult>(() => {});
      }
      if (ctx.deadline - ctx.clock.now() === 2_000) {
        await ctx.clock.sleep(60_000, ctx.signal).catch(() => {});
        return { ok: false, code: 'TIMEOUT', message: 'probe saw its deadline', values: {} };
      }
      return ok();
    });
    t.scheduler.setProbes([
      def('hangs', { timeout: '3s', schedule: { every: '10s' } }),
      def('honours', { timeout: '2s', schedule: { every: '10s' } }),
      def('healthy', { timeout: '1s', schedule: { every: '1s' } }),
    ]);
    await t.clock.advance(30_000);
    const hangs = t.runs.filter((r) => r.probeId === 'hangs');
    expect(hangs.length).toBeGreaterThanOrEqual(2);
    for (const r of hangs) {
      expect(r.code).toBe('TIMEOUT');
      expect(r.message).toMatch(/timed out after 3\.2\ds \(timeout 3s\)/);
      expect(r.durationMs).toBe(3_250);
    }
    const honours = t.runs.filter((r) => r.probeId === 'honours');
    expect(honours[0]).toMatchObject({ ok: false, code: 'TIMEOUT', message: 'probe saw its deadline', durationMs: 2_000 });
    expect(t.runs.filter((r) => r.probeId === 'healthy').length).toBeGreaterThanOrEqual(28);
    expect(Math.max(...t.lags)).toBe(0);
    await t.scheduler.stop(0);
  });

  it('runs a probe now, refuses a second while it runs, and knows no unknown id', async () => {
    const t = setup((ctx) => ctx.clock.sleep(1_000, ctx.signal).then(() => ok({ answer: 42 })));
    t.scheduler.setProbes([def('p', { schedule: '0 3 * * *' })]);
    const run = t.scheduler.runNow('p');
    expect(t.scheduler.isRunning('p')).toBe(true);
    await expect(t.scheduler.runNow('p')).rejects.toMatchObject({ code: 'VIGIL_ERR_CONFLICT' });
    await expect(t.scheduler.runNow('nope')).rejects.toMatchObject({ code: 'VIGIL_ERR_NOT_FOUND' });
    await t.clock.advance(1_000);
    await expect(run).resolves.toMatchObject({ probeId: 'p', ok: true, trigger: 'manual', values: { answer: 42 } });
    expect(t.runs).toHaveLength(1);
    await t.scheduler.stop(0);
  });

  it('holds a kind to its concurrency limit', async () => {
    const t = setup((ctx) => ctx.clock.sleep(5_000, ctx.signal).then(() => ok()), { kindConcurrency: { http: 1 }, maxSpreadMs: 0 });
    t.scheduler.setProbes([def('a', { schedule: { every: '1m' } }), def('b', { schedule: { every: '1m' } })]);
    await t.clock.advance(60_000 + 60_000);
    expect(t.skipped).toContain('kind_limit');
    // Never two at once.
    const spans = t.runs.map((r) => [r.startedAt, r.startedAt + r.durationMs] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    const stopped = t.scheduler.stop(10_000);
    await t.clock.advance(10_000);
    await stopped;
  });

  it('counts slots missed when the clock jumps past them', async () => {
    const t = setup(async () => ok());
    t.scheduler.setProbes([def('p', { schedule: { every: '10s' } })]);
    await t.clock.advance(10_000);
    // A blocked event loop: time passes with no timer firing in between.
    (t.clock as unknown as { t: number }).t += 35_000;
    await t.clock.advance(1);
    // Slots at 20 s and 30 s were missed; the one at 40 s runs, late.
    expect(t.missed()).toBe(2);
    await t.scheduler.stop(0);
  });

  it('runs the last probes of a slot whose timer fires a little past the next slot, and drops one late by a whole interval', async () => {
    // Ids whose offset puts them in the last half-percent of a one-second slot, and near its start.
    const ids = Array.from({ length: 5_000 }, (_, k) => `p${k}`);
    const last = ids.find((id) => stableHash(id) / 0x1_0000_0000 >= 0.995)!;
    const early = ids.find((id) => stableHash(id) / 0x1_0000_0000 >= 0.01 && stableHash(id) / 0x1_0000_0000 < 0.05)!;
    const t = setup(async () => ok());
    t.scheduler.setProbes([def(last, { schedule: { every: '1s' } }), def(early, { schedule: { every: '1s' } })]);
    await t.clock.advance(3_000);
    const clock = t.clock as unknown as { t: number };
    const slotEnd = Math.ceil((t.clock.now() + 1) / 1_000) * 1_000;
    await t.clock.advance(slotEnd - 20 - t.clock.now());
    // The event loop busy for 40 ms across the slot's end: `last`'s timer (at the slot's 995th ms or
    // later) fires 20 ms into the next slot.
    clock.t += 40;
    await t.clock.advance(1);
    const startsOf = (id: string, from: number, to: number) => t.started.filter((s) => s.id === id && s.at >= from && s.at < to).length;
    expect(startsOf(last, slotEnd, slotEnd + 100)).toBe(1);
    await t.clock.advance(1_000);
    // Its own run of the next slot too, a second on: nothing lost, nothing counted missed.
    expect(startsOf(last, slotEnd + 900, slotEnd + 1_100)).toBe(1);
    expect(t.missed()).toBe(0);

    // Busy for 1.5 s from a slot's start instead: `early` (10–50 ms into it) is late by more than a
    // second when its timer fires; its next slot's run stands for it, and the one dropped is counted.
    const start = Math.ceil((t.clock.now() + 1) / 1_000) * 1_000;
    await t.clock.advance(start - t.clock.now());
    const before = t.started.length;
    clock.t += 1_500;
    await t.clock.advance(1);
    const burst = t.started.slice(before).filter((s) => s.id === early);
    expect(burst.length).toBe(1);
    expect(t.missed()).toBeGreaterThanOrEqual(1);
    await t.scheduler.stop(0);
  });

  it('swaps probe sets on reload: removed probes stop, new ones start, unchanged keep their slot', async () => {
    const t = setup(async () => ok());
    t.scheduler.setProbes([def('keep', { schedule: { every: '10s' } }), def('drop', { schedule: { every: '10s' } })]);
    await t.clock.advance(20_000);
    t.scheduler.setProbes([def('keep', { schedule: { every: '10s' } }), def('new', { schedule: { every: '5s' } })]);
    t.runs.length = 0;
    await t.clock.advance(20_000);
    const ids = new Set(t.runs.map((r) => r.probeId));
    expect(ids).toEqual(new Set(['keep', 'new']));
    await t.scheduler.stop(0);
  });

  it('on stop waits for runs in flight within the grace, then aborts the rest', async () => {
    const t = setup((ctx) => ctx.clock.sleep(ctx.deadline - ctx.clock.now() - 1, ctx.signal).then(() => ok()));
    t.scheduler.setProbes([def('short', { timeout: '2s', schedule: '0 3 * * *' }), def('long', { timeout: '1h', schedule: '0 3 * * *' })]);
    const short = t.scheduler.runNow('short');
    const long = t.scheduler.runNow('long');
    const stopped = t.scheduler.stop(5_000);
    await t.clock.advance(6_000);
    await stopped;
    await expect(short).resolves.toMatchObject({ ok: true });
    await expect(long).resolves.toMatchObject({ ok: false, code: 'ABORTED' });
    expect(t.scheduler.health()).toMatchObject({ running: false, inFlight: 0 });
    await expect(t.scheduler.runNow('short')).rejects.toMatchObject({ code: 'VIGIL_ERR_UNAVAILABLE' });
  });
});
