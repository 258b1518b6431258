import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SKETCH_ALPHA } from '../../src/store/sketch.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { RunRecord } from '../../src/store/types.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { rng } from '../helpers/random.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const D0 = Date.UTC(2026, 10, 20);
const PROBES = ['api', 'web', 'dns'];

const dirs: string[] = [];
function tempDb() {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-rollups-'));
  dirs.push(dir);
  return path.join(dir, 'vigil.db');
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Seeded (mulberry32), so a failing bound reproduces. */

/** Three days of three probes at 1/min, in time order as the scheduler writes them; some failures. */
function seed(): RunRecord[] {
  const r = rng(11);
  const runs: RunRecord[] = [];
  for (let m = 0; m < 3 * 24 * 60; m++) {
    PROBES.forEach((probeId, p) => {
      const durationMs = Math.exp(3 + p + 0.8 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
      const fail = (m + p) % 23 === 0 || (p === 2 && m >= 1500 && m < 1530);
      runs.push({
        probeId,
        kind: 'http',
        startedAt: D0 + m * 60_000 + p * 7_000,
        durationMs,
        ok: !fail,
        ...(fail ? { code: m % 2 === 0 ? 'TIMEOUT' : 'HTTP_STATUS' } : {}),
        values: { status: fail ? 503 : 200, latency_ms: Math.round(durationMs * 10) / 10, ...(p === 0 ? { body_bytes: m % 97 } : {}) },
        attempts: 1,
        trigger: 'schedule',
      });
    });
  }
  return runs;
}
const RUNS = seed();

/** What a bucket must hold, computed from the raw runs. */
function expected(probeId: string, from: number, to: number) {
  const rs = RUNS.filter((r) => r.probeId === probeId && r.startedAt >= from && r.startedAt < to);
  const values: Record<string, { min: number; max: number; last: number; sum: number; count: number }> = {};
  const codes: Record<string, number> = {};
  for (const r of rs) {
    for (const [k, v] of Object.entries(r.values)) {
      const a = values[k];
      if (!a) values[k] = { min: v, max: v, last: v, sum: v, count: 1 };
      else {
        a.min = Math.min(a.min, v);
        a.max = Math.max(a.max, v);
        a.last = v;
        a.sum += v;
        a.count++;
      }
    }
    if (!r.ok) codes[r.code!] = (codes[r.code!] ?? 0) + 1;
  }
  const sorted = rs.map((r) => r.durationMs).sort((a, b) => a - b);
  const p95 = sorted[Math.floor(0.95 * (sorted.length - 1))]!;
  return { runs: rs.length, failures: rs.filter((r) => !r.ok).length, values, codes, p95 };
}

function expectBucket(
  got: { runs: number; failures: number; p95?: number; values: object; codes: object },
  probeId: string,
  from: number,
  to: number,
) {
  const want = expected(probeId, from, to);
  expect(got.runs).toBe(want.runs);
  expect(got.failures).toBe(want.failures);
  expect(got.codes).toEqual(want.codes);
  for (const [k, a] of Object.entries(want.values)) {
    expect((got.values as Record<string, typeof a>)[k]).toMatchObject({ min: a.min, max: a.max, last: a.last, count: a.count });
    expect((got.values as Record<string, typeof a>)[k]!.sum).toBeCloseTo(a.sum, 6);
  }
  expect(Object.keys(got.values).sort()).toEqual(Object.keys(want.values).sort());
  expect(Math.abs(got.p95! - want.p95) / want.p95).toBeLessThanOrEqual(SKETCH_ALPHA + 1e-12);
}

async function seeded(file: string, clock: ManualClock, sketchValues?: string[]) {
  const store = createSqliteStore({
    path: file,
    clock,
    logger: memoryLogger().logger,
    batchRows: 5_000,
    ...(sketchValues ? { rollups: { sketchValues } } : {}),
  });
  for (const r of RUNS) store.append(r);
  await store.flush();
  return store;
}

const END = D0 + 3 * DAY;

describe('sqlite rollups', () => {
  it('rolls up hours and days with exact counts and values, p95 within 1 %, catching up 48 hours a call', async () => {
    const clock = new ManualClock(END + 10 * 60_000);
    const store = await seeded(tempDb(), clock);
    const { rollups } = store;
    expect(rollups.lastHour()).toBeUndefined();
    expect(await rollups.rollUp(clock.now())).toBe(48);
    expect(rollups.lastHour()).toBe(D0 + 47 * HOUR);
    expect(await rollups.rollUp(clock.now())).toBe(24);
    expect(rollups.lastHour()).toBe(END - HOUR);
    expect(await rollups.rollUp(clock.now())).toBe(0);

    for (const probeId of PROBES) {
      const hours = await rollups.query(probeId, D0, END, 'hour');
      expect(hours.map((b) => b.start)).toEqual(Array.from({ length: 72 }, (_, i) => D0 + i * HOUR));
      for (const b of hours) expectBucket(b, probeId, b.start, b.start + HOUR);
      const days = await rollups.query(probeId, D0, END, 'day');
      expect(days.map((b) => b.start)).toEqual([D0, D0 + DAY, D0 + 2 * DAY]);
      for (const b of days) expectBucket(b, probeId, b.start, b.start + DAY);
      // A 3-day window from day rows, a ragged one from days plus edge hours: both as from raw runs.
      const all = await rollups.summary(probeId, D0, END);
      expectBucket(all, probeId, D0, END);
      expect(all.uptime).toBeCloseTo(1 - all.failures / all.runs, 12);
      expectBucket(await rollups.summary(probeId, D0 + 5 * HOUR, END - 3 * HOUR), probeId, D0 + 5 * HOUR, END - 3 * HOUR);
    }
    // The failure burst of `dns` on day 2 shows in its codes and uptime.
    expect((await rollups.query('dns', D0 + DAY, D0 + 2 * DAY, 'day'))[0]!.failures).toBeGreaterThanOrEqual(30);
    expect(await rollups.query('nope', D0, END, 'day')).toEqual([]);
    expect(await rollups.summary('nope', D0, END)).toMatchObject({ runs: 0, failures: 0 });
    await store.close();
  });

  it('waits out the grace after an hour ends, and rolls a day only once its last hour is done', async () => {
    const clock = new ManualClock(D0 + DAY + 2 * 60_000);
    const store = await seeded(tempDb(), clock);
    // 00:02 the next day: hour 23 ended only 2 minutes ago, inside the 5-minute grace.
    expect(await store.rollups.rollUp(clock.now())).toBe(23);
    expect(await store.rollups.query('api', D0, END, 'day')).toEqual([]);
    // The summary counts the day's 23 rolled hours and reads the 24th, not rolled yet, from raw runs.
    expectBucket(await store.rollups.summary('api', D0, D0 + DAY), 'api', D0, D0 + DAY);
    expect(await store.rollups.rollUp(D0 + DAY + 6 * 60_000)).toBe(1);
    expectBucket((await store.rollups.query('api', D0, END, 'day'))[0]!, 'api', D0, D0 + DAY);
    await store.close();
  });

  it('is idempotent and resumes after a restart on the same file', async () => {
    const file = tempDb();
    const clock = new ManualClock(END + HOUR);
    const first = await seeded(file, clock);
    expect(await first.rollups.rollUp(clock.now())).toBe(48);
    await first.close();

    const second = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    expect(second.rollups.lastHour()).toBe(D0 + 47 * HOUR);
    expect(await second.rollups.rollUp(clock.now())).toBe(24);
    const snapshot = () => second.db.prepare('SELECT * FROM rollups ORDER BY probe, period, start').all();
    const before = snapshot();
    expect(before).toHaveLength(3 * (72 + 3));
    expect(await second.rollups.rollUp(clock.now())).toBe(0);
    // Redoing hours already rolled (a crash before the state moved on) overwrites, never doubles.
    second.db.prepare('UPDATE rollup_state SET last_hour = ?').run(D0 + 10 * HOUR);
    expect(await second.rollups.rollUp(clock.now())).toBe(48);
    expect(await second.rollups.rollUp(clock.now())).toBe(13);
    expect(snapshot()).toEqual(before);
    for (const probeId of PROBES) expectBucket(await second.rollups.summary(probeId, D0, END), probeId, D0, END);
    await second.close();
  });

  it('keeps rollups when raw runs are pruned, and prunes rollups by their own retention', async () => {
    const clock = new ManualClock(END + HOUR);
    const store = await seeded(tempDb(), clock);
    while ((await store.rollups.rollUp(clock.now())) > 0) {}
    // All but each probe's newest successful run, which stays for the report's "last success".
    expect(await store.prune(END)).toBe(RUNS.length - PROBES.length);
    expect(await store.rollups.rollUp(clock.now())).toBe(0);
    for (const probeId of PROBES) {
      expectBucket(await store.rollups.summary(probeId, D0, END), probeId, D0, END);
      expect(await store.rollups.query(probeId, D0, END, 'hour')).toHaveLength(72);
    }
    // New runs after the prune roll up from where it stopped.
    store.append({ ...RUNS[0]!, startedAt: END + 60_000, durationMs: 42 });
    await store.flush();
    clock.advanceSync(HOUR);
    expect(await store.rollups.rollUp(clock.now())).toBe(1);
    expect((await store.rollups.query('api', END, END + HOUR, 'hour'))[0]).toMatchObject({ runs: 1, p95: 42 });

    // Default retention is 400 days: nothing this young goes.
    expect(await store.rollups.prune()).toBe(0);
    // 3 probes × (24 hours + 1 day) of the first day.
    expect(await store.rollups.prune(D0 + DAY)).toBe(3 * 25);
    expect((await store.rollups.query('api', D0, END, 'day')).map((b) => b.start)).toEqual([D0 + DAY, D0 + 2 * DAY]);

    // Hour rows have a shorter retention (31 days) than day rows: 36 days on, only the days remain.
    clock.advanceSync(36 * DAY);
    expect(await store.rollups.prune()).toBe(3 * 48 + 1);
    expect(await store.rollups.query('api', D0, END + DAY, 'hour')).toEqual([]);
    expect((await store.rollups.query('api', D0, END, 'day')).map((b) => b.start)).toEqual([D0 + DAY, D0 + 2 * DAY]);
    await store.close();
  });

  it('splits a window into UTC days from day rows, hour rows and raw runs not rolled yet; sketched values keep a p95', async () => {
    const clock = new ManualClock(END + HOUR);
    const store = await seeded(tempDb(), clock, ['latency_ms']);
    // 48 of 72 hours rolled: day 1 has a day row, day 2 hour rows and a day row, day 3 only raw runs.
    expect(await store.rollups.rollUp(clock.now())).toBe(48);
    const from = D0 + 5 * HOUR + 30 * 60_000;
    const to = END - 90 * 60_000;
    for (const probeId of PROBES) {
      const { days, total } = await store.rollups.window(probeId, from, to);
      expect(days.map((d) => d.start)).toEqual([D0, D0 + DAY, D0 + 2 * DAY]);
      expectBucket(days[0]!, probeId, from, D0 + DAY);
      expectBucket(days[1]!, probeId, D0 + DAY, D0 + 2 * DAY);
      expectBucket(days[2]!, probeId, D0 + 2 * DAY, to);
      expectBucket(total, probeId, from, to);
      // latency_ms is sketched: its p95 is within 1 % of the exact p95 of the raw values it has
      // sketches of. Day 1's hour rows lost theirs when its day row was written (the day row keeps
      // them), so the ragged start inside day 1 counts in the value's min/max/mean but not its p95.
      const p95Of = (a: number, b: number) => {
        const lat = RUNS.filter((r) => r.probeId === probeId && r.startedAt >= a && r.startedAt < b)
          .map((r) => r.values.latency_ms!)
          .sort((x, y) => x - y);
        return lat[Math.floor(0.95 * (lat.length - 1))]!;
      };
      const exact = p95Of(D0 + DAY, to);
      expect(Math.abs(total.values.latency_ms!.p95! - exact) / exact).toBeLessThanOrEqual(SKETCH_ALPHA + 1e-12);
      expect(total.values.latency_ms!.count).toBe(
        RUNS.filter((r) => r.probeId === probeId && r.startedAt >= from && r.startedAt < to).length,
      );
      // A whole-day window (what the report reads) has every sketch: day rows, then today's hours.
      const whole = (await store.rollups.window(probeId, D0, to)).total.values.latency_ms!.p95!;
      expect(Math.abs(whole - p95Of(D0, to)) / p95Of(D0, to)).toBeLessThanOrEqual(SKETCH_ALPHA + 1e-12);
      // Values not sketched have no p95.
      expect(total.values.status!.p95).toBeUndefined();
    }
    const none = await store.rollups.window('nope', from, to);
    expect(none.days.map((d) => [d.start, d.runs])).toEqual([
      [D0, 0],
      [D0 + DAY, 0],
      [D0 + 2 * DAY, 0],
    ]);
    expect(none.total).toMatchObject({ runs: 0, failures: 0 });
    expect(none.total.uptime).toBeUndefined();
    await store.close();
  });

  it('serves whole days from memory exactly as from their rows, warms after a restart, and forgets pruned days', async () => {
    const file = tempDb();
    const clock = new ManualClock(END + HOUR);
    const store = await seeded(file, clock);
    while ((await store.rollups.rollUp(clock.now())) > 0) {}
    // Days rolled in this process are served from memory; a second process reads the rows.
    const fromMemory = await store.rollups.window('api', D0, END);
    const other = createSqliteStore({ path: file, clock, logger: memoryLogger().logger });
    expect(await other.rollups.window('api', D0, END)).toEqual(fromMemory);
    expect(await other.rollups.warm(D0, END)).toBe(2 * 3); // the 3 days of the 2 probes not read above
    expect(await other.rollups.warm(D0, END)).toBe(0);
    await other.close();
    for (const b of fromMemory.days) expectBucket(b, 'api', b.start, b.start + DAY);

    await store.prune(END);
    expect(await store.rollups.prune(D0 + DAY)).toBe(3 * 25);
    const after = await store.rollups.window('api', D0, END);
    expect(after.days.map((d) => d.runs)).toEqual([0, 24 * 60, 24 * 60]);
    // The days left stay in memory (housekeeping prunes hourly: the next report must not be cold).
    expect(await store.rollups.warm(D0, END)).toBe(0);
    await store.close();
  });
});
