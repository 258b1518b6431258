import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createPostgresStore,
  createSqliteStore,
  type Incident,
  type IncidentChange,
  type NewNotification,
  type RollupSummary,
  type Rollups,
  type RunRecord,
  type Store,
  type StoreStats,
} from '../../src/store/index.js';
import type { RollupOptions } from '../../src/store/rollup-core.js';
import { SKETCH_ALPHA } from '../../src/store/sketch.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { rng } from '../helpers/random.js';

/**
 * The Store contract: every backend answers the same calls the same way, through the public surface
 * only. Each test gets a database of its own (a temp file; a fresh PostgreSQL database).
 */

const HOUR = 3_600_000;
const DAY = 86_400_000;

type TestStore = Store & { stats(): StoreStats; readonly rollups: Rollups };
interface Backend {
  /** A new, empty database; returns where it is. */
  fresh(): Promise<string>;
  /** Opens the store and waits until it is ready (migrated, its memory loaded). */
  open(where: string, clock: ManualClock, opts?: { batchRows?: number; rollups?: RollupOptions }): Promise<TestStore>;
}

let server: TestPostgres | undefined;
let databases = 0;
const dirs: string[] = [];
const open: TestStore[] = [];

beforeAll(async () => {
  server = await startPostgres();
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});
afterAll(async () => {
  await server?.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const track = (s: TestStore) => {
  open.push(s);
  return s;
};
const ready = async (s: TestStore) => {
  await s.ready();
  return s;
};

const sqlite: Backend = {
  async fresh() {
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-contract-'));
    dirs.push(dir);
    return path.join(dir, 'vigil.db');
  },
  open: (file, clock, opts = {}) => ready(track(createSqliteStore({ path: file, clock, logger: memoryLogger().logger, ...opts }))),
};

const postgres: Backend = {
  async fresh() {
    const name = `t_${++databases}`;
    await server!.query(`CREATE DATABASE ${name}`);
    return server!.url.replace(/\/postgres$/, `/${name}`);
  },
  open: (url, clock, opts = {}) => ready(track(createPostgresStore({ url, clock, logger: memoryLogger().logger, ...opts }))),
};

function run(probeId: string, startedAt: number, over: Partial<RunRecord> = {}): RunRecord {
  return {
    probeId,
    kind: 'http',
    startedAt,
    durationMs: 12.5,
    ok: true,
    values: { status: 200 },
    attempts: 1,
    trigger: 'schedule',
    ...over,
  };
}

function opening(probeId: string, rule: string, at: number): NonNullable<IncidentChange['open']> {
  return {
    probeId,
    rule,
    kind: 'http',
    severity: 'critical',
    state: 'open',
    summary: `${probeId} is down`,
    labels: { team: 'web', env: 'prod' },
    channels: ['slack', 'pagerduty'],
    openedAt: at,
    lastError: { code: 'TIMEOUT', message: 'no answer in 5 s', at },
    flapping: false,
    notified: true,
  };
}

const page = (i: Incident, channel: string, over: Partial<NewNotification> = {}): NewNotification => ({
  channel,
  action: 'trigger',
  dedupKey: `vigil-${i.id}`,
  payload: { id: i.id, summary: i.summary, labels: i.labels },
  ...over,
});

/** Seeded: two days and ten minutes of three probes every 2 min, some failures, two locations. */
const D0 = Date.UTC(2026, 10, 20);
const END = D0 + 2 * DAY;
const NOW = END + 10 * 60_000;
const PROBES = ['api', 'web', 'dns'];
const SEEDED: RunRecord[] = (() => {
  const r = rng(7);
  const out: RunRecord[] = [];
  for (let t = D0; t < NOW; t += 120_000) {
    PROBES.forEach((probeId, p) => {
      const durationMs = Math.exp(3 + p + 0.8 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
      const m = (t - D0) / 60_000;
      const fail = (m / 2 + p) % 17 === 0 || (p === 2 && m >= 1400 && m < 1460);
      out.push({
        probeId,
        kind: 'http',
        startedAt: t + p * 7_000,
        durationMs,
        ok: !fail,
        ...(fail ? { code: m % 4 === 0 ? 'TIMEOUT' : 'HTTP_STATUS', message: 'down' } : {}),
        values: { status: fail ? 503 : 200, latency_ms: Math.round(durationMs * 10) / 10 },
        attempts: fail ? 2 : 1,
        trigger: 'schedule',
        location: m % 4 === 0 ? 'eu-west' : 'us-east',
      });
    });
  }
  return out;
})();

/** What a window must hold, computed from the raw runs. */
function fromRaw(probeId: string, from: number, to: number) {
  const rs = SEEDED.filter((r) => r.probeId === probeId && r.startedAt >= from && r.startedAt < to);
  const codes: Record<string, number> = {};
  for (const r of rs) if (!r.ok) codes[r.code!] = (codes[r.code!] ?? 0) + 1;
  const sorted = rs.map((r) => r.durationMs).sort((a, b) => a - b);
  const lat = rs.map((r) => r.values.latency_ms!);
  return {
    runs: rs.length,
    failures: rs.filter((r) => !r.ok).length,
    codes,
    p95: sorted[Math.floor(0.95 * (sorted.length - 1))]!,
    latency: { min: Math.min(...lat), max: Math.max(...lat), last: lat.at(-1)!, count: lat.length, sum: lat.reduce((a, b) => a + b, 0) },
  };
}

function expectRaw(got: Pick<RollupSummary, 'runs' | 'failures' | 'codes' | 'p95' | 'values'>, probeId: string, from: number, to: number) {
  const want = fromRaw(probeId, from, to);
  expect(got.runs).toBe(want.runs);
  expect(got.failures).toBe(want.failures);
  expect(got.codes).toEqual(want.codes);
  expect(Math.abs(got.p95! - want.p95) / want.p95).toBeLessThanOrEqual(SKETCH_ALPHA + 1e-12);
  const { sum, ...exact } = want.latency;
  expect(got.values.latency_ms).toMatchObject(exact);
  expect(got.values.latency_ms!.sum).toBeCloseTo(sum, 6);
}

/** Seeds SEEDED, rolls everything up and asks the rollups every question the report asks. */
async function rollupAnswers(backend: Backend) {
  const clock = new ManualClock(NOW);
  const store = await backend.open(await backend.fresh(), clock, { rollups: { sketchValues: ['latency_ms'] } });
  for (const r of SEEDED) store.append(r);
  await store.flush();
  const hours: number[] = [];
  for (let n = await store.rollups.rollUp(NOW); n > 0; n = await store.rollups.rollUp(NOW)) hours.push(n);
  const ragged = [D0 + 5 * HOUR + 17 * 60_000, NOW] as const;
  const answers = {
    hours,
    lastHour: store.rollups.lastHour(),
    perProbe: await Promise.all(
      PROBES.map(async (p) => ({
        hours: await store.rollups.query(p, D0, END, 'hour'),
        days: await store.rollups.query(p, D0, END, 'day'),
        whole: await store.rollups.summary(p, D0, END),
        ragged: await store.rollups.summary(p, ...ragged),
        window: await store.rollups.window(p, ...ragged),
      })),
    ),
    unknown: await store.rollups.summary('nope', D0, END),
  };
  return { answers, ragged };
}
const rolled = new Map<string, Awaited<ReturnType<typeof rollupAnswers>>['answers']>();

const BACKENDS: Array<[string, Backend]> = [
  ['sqlite', sqlite],
  ['postgres', postgres],
];

describe.each(BACKENDS)('store contract: %s', (name, backend) => {
  it('queues runs, writes them on flush, and answers windows newest first with limits', async () => {
    const clock = new ManualClock();
    const store = await backend.open(await backend.fresh(), clock, { batchRows: 1_000 });
    const t0 = clock.now();
    for (let i = 0; i < 50; i++) store.append(run('a', t0 + i * 1000, i % 10 === 0 ? { ok: false, code: 'TIMEOUT', message: 'slow' } : {}));
    store.append(run('b', t0, { location: 'eu-west', details: { body: 'ok' }, trigger: 'manual' }));
    expect(store.health()).toEqual({ writable: true, queued: 51 });
    // Queued runs already count for latest().
    expect(store.latest('a')).toMatchObject({ startedAt: t0 + 49_000 });
    expect(await store.runs({ probeId: 'a' })).toEqual([]);
    await store.flush();
    expect(store.health()).toEqual({ writable: true, queued: 0 });
    expect(store.stats()).toMatchObject({ written: 51, writeErrors: 0, dropped: 0 });

    const window = await store.runs({ probeId: 'a', since: t0 + 10_000, until: t0 + 20_000 });
    expect(window.map((r) => (r.startedAt - t0) / 1000)).toEqual([19, 18, 17, 16, 15, 14, 13, 12, 11, 10]);
    expect(window.at(-1)).toEqual({
      id: expect.any(Number),
      probeId: 'a',
      kind: 'http',
      startedAt: t0 + 10_000,
      durationMs: 12.5,
      ok: false,
      code: 'TIMEOUT',
      message: 'slow',
      values: { status: 200 },
      attempts: 1,
      trigger: 'schedule',
    });
    expect(await store.runs({ probeId: 'a', limit: 3 })).toHaveLength(3);
    expect((await store.runs({ probeId: 'a', limit: 3 }))[0]!.startedAt).toBe(t0 + 49_000);
    expect(await store.runs({ probeId: 'nope' })).toEqual([]);
    // Location, details and trigger round trip; no location reads back as absent.
    const [b] = await store.runs({ probeId: 'b' });
    expect(b).toMatchObject({ location: 'eu-west', details: { body: 'ok' }, trigger: 'manual' });
    expect(window[0]).not.toHaveProperty('location');
    expect(await store.lastSuccess('a')).toMatchObject({ startedAt: t0 + 49_000, ok: true });
    store.append(run('a', t0 + 60_000, { ok: false, code: 'CONNECT' }));
    await store.flush();
    expect(await store.lastSuccess('a')).toMatchObject({ startedAt: t0 + 49_000 });
    expect(await store.lastSuccess('nope')).toBeUndefined();
  });

  it('keeps runs, latest and probe state across a reopen', async () => {
    const where = await backend.fresh();
    const clock = new ManualClock();
    const first = await backend.open(where, clock);
    first.append(run('a', clock.now() - 1000));
    first.append(run('a', clock.now(), { ok: false, code: 'HTTP_STATUS', message: '503 Service Unavailable', location: 'us-east' }));
    first.setProbeState('dns', { answer: ['1.2.3.4'], changedAt: 5 });
    first.setProbeState('dns', { answer: ['5.6.7.8'], changedAt: 6 });
    expect(first.probeState('dns')).toEqual({ answer: ['5.6.7.8'], changedAt: 6 });
    await first.close();
    const second = await backend.open(where, clock);
    expect(second.latest('a')).toMatchObject({ ok: false, code: 'HTTP_STATUS', message: '503 Service Unavailable', location: 'us-east' });
    expect(second.latest('nope')).toBeUndefined();
    expect(second.probeState('dns')).toEqual({ answer: ['5.6.7.8'], changedAt: 6 });
    expect(second.probeState('other')).toBeUndefined();
    expect(await second.runs({ probeId: 'a' })).toHaveLength(2);
  });

  it('prunes raw runs that started before a time, exactly, across probes', async () => {
    const clock = new ManualClock();
    const store = await backend.open(await backend.fresh(), clock, { batchRows: 5_000 });
    for (let i = 0; i < 12_000; i++) store.append(run(`p${i % 7}`, clock.now() - 200 * DAY + Math.floor(i / 60) * DAY));
    await store.flush();
    const cutoff = clock.now() - 90 * DAY;
    const old = Array.from({ length: 12_000 }, (_, i) => clock.now() - 200 * DAY + Math.floor(i / 60) * DAY).filter(
      (t) => t < cutoff,
    ).length;
    expect(old).toBeGreaterThan(5_000);
    expect(await store.prune(cutoff)).toBe(old);
    expect(await store.prune(cutoff)).toBe(0);
    const left = await store.runs({ probeId: 'p0', limit: 10_000 });
    expect(left.every((r) => r.startedAt >= cutoff)).toBe(true);
    expect(left.length).toBeGreaterThan(0);
  });

  it('prunes failed runs by their own, longer cutoff and keeps each probe newest success whatever its age', async () => {
    const clock = new ManualClock();
    const store = await backend.open(await backend.fresh(), clock, { batchRows: 5_000 });
    const now = clock.now();
    // 'a': a run an hour for 10 days, every 5th failed. 'weekly': one success 9 days ago, failures after.
    // Appended in time order, as the scheduler writes them.
    const seed = [run('weekly', now - 9 * DAY)];
    for (let h = 240; h > 0; h--) seed.push(run('a', now - h * HOUR, h % 5 === 0 ? { ok: false, code: 'TIMEOUT' } : {}));
    for (let d = 8; d > 0; d--) seed.push(run('weekly', now - d * DAY + 1, { ok: false, code: 'HTTP_STATUS' }));
    for (const r of seed.sort((x, y) => x.startedAt - y.startedAt)) store.append(r);
    await store.flush();
    const before = now - 3 * DAY;
    const failedBefore = now - 7 * DAY;
    const all = [...(await store.runs({ probeId: 'a', limit: 10_000 })), ...(await store.runs({ probeId: 'weekly', limit: 10_000 }))];
    const gone = all.filter((r) => (r.ok ? r.startedAt < before : r.startedAt < failedBefore) && !(r.probeId === 'weekly' && r.ok));
    expect(await store.prune(before, { failedBefore })).toBe(gone.length);
    expect(await store.prune(before, { failedBefore })).toBe(0);
    const left = await store.runs({ probeId: 'a', limit: 10_000 });
    expect(left.filter((r) => r.startedAt < before).every((r) => !r.ok && r.startedAt >= failedBefore)).toBe(true);
    expect(left.filter((r) => r.startedAt < before && !r.ok)).toHaveLength(24 - 5);
    expect((await store.lastSuccess('weekly'))?.startedAt).toBe(now - 9 * DAY);
    expect((await store.runs({ probeId: 'weekly', limit: 100 })).map((r) => r.ok)).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
      false,
      true,
    ]);
    // Once a newer success lands, the old one goes with the next prune; an hour later the next
    // hour's runs go too (each round starts where the last ended, and still finds them).
    store.append(run('weekly', now - 2 * DAY));
    await store.flush();
    expect(await store.prune(before, { failedBefore })).toBe(1);
    expect((await store.lastSuccess('weekly'))?.startedAt).toBe(now - 2 * DAY);
    expect(await store.prune(before + HOUR, { failedBefore: failedBefore + HOUR })).toBe(2);
    // Without failedBefore, failed runs go with the rest.
    const older =
      (await store.runs({ probeId: 'a', limit: 10_000, until: before + HOUR })).length +
      (await store.runs({ probeId: 'weekly', limit: 100, until: before + HOUR })).length;
    expect(older).toBeGreaterThan(10);
    expect(await store.prune(before + HOUR)).toBe(older);
    await store.close();
  });

  it('opens, patches and resolves incidents with their pages in one change, one unresolved per (probe, rule)', async () => {
    const clock = new ManualClock();
    const store = await backend.open(await backend.fresh(), clock);
    const t = clock.now();
    let seen: Incident | undefined;
    const opened = await store.alerts.applyIncidentChange({
      open: opening('api', 'down', t),
      event: { at: t, type: 'opened', actor: 'vigil', detail: '3 failures' },
      notify: (i) => {
        seen = i;
        return [page(i, 'slack'), page(i, 'pagerduty', { recipient: 'alice' }), page(i, 'email', { mutedReason: 'silenced' })];
      },
      escalation: { policy: { steps: [{ after: '5m' }] }, state: { pass: 0, step: 0, nextDueAt: t + 300_000, reached: false } },
    });
    // The notify function sees the incident as stored, with its new id.
    expect(seen).toEqual(opened);
    expect(opened).toEqual({ id: expect.any(Number), ...opening('api', 'down', t) });
    expect(await store.alerts.incident(opened.id)).toEqual(opened);
    expect((await store.alerts.notifications(opened.id)).map((n) => [n.channel, n.recipient, n.state, n.payload])).toEqual([
      ['slack', undefined, 'pending', { id: opened.id, summary: 'api is down', labels: { team: 'web', env: 'prod' } }],
      ['pagerduty', 'alice', 'pending', { id: opened.id, summary: 'api is down', labels: { team: 'web', env: 'prod' } }],
      ['email', undefined, 'muted', { id: opened.id, summary: 'api is down', labels: { team: 'web', env: 'prod' } }],
    ]);
    expect((await store.alerts.notifications(opened.id))[2]).toMatchObject({
      mutedReason: 'silenced',
      createdAt: t,
      nextAttemptAt: t,
      attempts: 0,
    });

    // The database refuses a second unresolved incident for the same (probe, rule), and nothing of that change is kept.
    await expect(
      store.alerts.applyIncidentChange({
        open: opening('api', 'down', t + 1),
        event: { at: t + 1, type: 'opened', actor: 'vigil' },
        notify: [],
      }),
    ).rejects.toThrow();
    // A change whose pages cannot be made leaves nothing behind either.
    await expect(
      store.alerts.applyIncidentChange({
        open: opening('web', 'down', t + 1),
        event: { at: t + 1, type: 'opened', actor: 'vigil' },
        notify: () => {
          throw new Error('no template');
        },
      }),
    ).rejects.toThrow('no template');
    expect((await store.alerts.unresolvedIncidents()).map((i) => i.id)).toEqual([opened.id]);

    const acked = await store.alerts.applyIncidentChange({
      id: opened.id,
      patch: { state: 'acknowledged', ackedAt: t + 60_000, ackedBy: 'alice', flapping: true, labels: { team: 'web' } },
      event: { at: t + 60_000, type: 'acknowledged', actor: 'alice' },
      notify: [{ channel: 'slack', action: 'acknowledge', dedupKey: `vigil-${opened.id}`, payload: { by: 'alice' } }],
      escalation: { state: { pass: 0, step: 1, nextDueAt: null, reached: true } },
    });
    expect(acked).toMatchObject({ state: 'acknowledged', ackedAt: t + 60_000, ackedBy: 'alice', flapping: true, labels: { team: 'web' } });
    expect(await store.alerts.escalation(opened.id)).toEqual({
      incidentId: opened.id,
      policy: { steps: [{ after: '5m' }] },
      state: { pass: 0, step: 1, nextDueAt: null, reached: true },
    });
    const resolved = await store.alerts.applyIncidentChange({
      id: opened.id,
      patch: { state: 'resolved', resolvedAt: t + 120_000, resolvedBy: 'vigil', lastError: undefined },
      event: { at: t + 120_000, type: 'resolved', actor: 'vigil' },
      notify: [],
    });
    expect(resolved).toMatchObject({ state: 'resolved', resolvedAt: t + 120_000, resolvedBy: 'vigil' });
    expect(resolved).not.toHaveProperty('lastError');
    expect(await store.alerts.timeline(opened.id)).toEqual([
      { id: expect.any(Number), incidentId: opened.id, at: t, type: 'opened', actor: 'vigil', detail: '3 failures' },
      { id: expect.any(Number), incidentId: opened.id, at: t + 60_000, type: 'acknowledged', actor: 'alice' },
      { id: expect.any(Number), incidentId: opened.id, at: t + 120_000, type: 'resolved', actor: 'vigil' },
    ]);
    // Resolved, the (probe, rule) is free again.
    const again = await store.alerts.applyIncidentChange({
      open: opening('api', 'down', t + 180_000),
      event: { at: t + 180_000, type: 'opened', actor: 'vigil' },
      notify: [],
    });
    expect(again.id).not.toBe(opened.id);
    expect((await store.alerts.unresolvedIncidents()).map((i) => i.id)).toEqual([again.id]);
    expect(await store.alerts.incident(999_999)).toBeUndefined();
  });

  it('filters incidents by state, probe and time, newest first', async () => {
    const clock = new ManualClock();
    const store = await backend.open(await backend.fresh(), clock);
    const t = clock.now();
    const make = async (probe: string, rule: string, at: number, resolvedAt?: number) => {
      const i = await store.alerts.applyIncidentChange({
        open: opening(probe, rule, at),
        event: { at, type: 'opened', actor: 'vigil' },
        notify: [],
      });
      if (resolvedAt === undefined) return i.id;
      await store.alerts.applyIncidentChange({
        id: i.id,
        patch: { state: 'resolved', resolvedAt },
        event: { at: resolvedAt, type: 'resolved', actor: 'vigil' },
        notify: [],
      });
      return i.id;
    };
    const a = await make('api', 'down', t - 5 * HOUR, t - 4 * HOUR);
    const b = await make('api', 'slow', t - 3 * HOUR);
    const c = await make('web', 'down', t - 2 * HOUR, t - HOUR);
    const d = await make('dns', 'down', t - HOUR);
    const ids = async (q: Parameters<Store['alerts']['incidents']>[0]) => (await store.alerts.incidents(q)).map((i) => i.id);
    expect(await ids({})).toEqual([d, c, b, a]);
    expect(await ids({ state: 'resolved' })).toEqual([c, a]);
    expect(await ids({ state: 'open' })).toEqual([d, b]);
    expect(await ids({ probeId: 'api' })).toEqual([b, a]);
    // since: not resolved before it; until: opened before it.
    expect(await ids({ since: t - 3 * HOUR })).toEqual([d, c, b]);
    expect(await ids({ until: t - 2 * HOUR })).toEqual([b, a]);
    expect(await ids({ since: t - 3 * HOUR, until: t - HOUR, probeId: 'web' })).toEqual([c]);
    expect(await ids({ limit: 2 })).toEqual([d, c]);
    expect((await store.alerts.unresolvedIncidents()).map((i) => i.id)).toEqual([b, d]);
  });

  it('delivers the outbox in order: due, retry, delivered with a ref, dead, stats, paged, deliveries', async () => {
    const clock = new ManualClock();
    const store = await backend.open(await backend.fresh(), clock);
    const t = clock.now();
    const inc = await store.alerts.applyIncidentChange({
      open: opening('api', 'down', t),
      event: { at: t, type: 'opened', actor: 'vigil' },
      notify: (i) => [page(i, 'slack'), page(i, 'pagerduty', { recipient: 'alice' }), page(i, 'pagerduty', { recipient: 'bob' })],
    });
    const later = await store.alerts.applyIncidentChange({
      id: inc.id,
      event: { at: t + 1000, type: 'reminded', actor: 'vigil' },
      notify: (i) => [page(i, 'slack', { action: 'remind' }), page(i, 'pagerduty', { recipient: 'alice', action: 'remind' })],
    });
    expect(later.id).toBe(inc.id);
    const [test] = await store.alerts.enqueue(
      [{ incidentId: null, channel: 'email', action: 'test', dedupKey: 'test-1', payload: { test: true } }],
      t + 500,
    );
    expect(test).toMatchObject({
      incidentId: null,
      channel: 'email',
      action: 'test',
      state: 'pending',
      createdAt: t + 500,
      payload: { test: true },
    });
    expect(await store.alerts.outboxItem(test!.id)).toEqual(test);

    // At most one per (incident, channel, recipient), the oldest; oldest due first.
    const due = await store.alerts.due(t + 2000, 10);
    expect(due.map((n) => [n.channel, n.recipient ?? null, n.action])).toEqual([
      ['slack', null, 'trigger'],
      ['pagerduty', 'alice', 'trigger'],
      ['pagerduty', 'bob', 'trigger'],
      ['email', null, 'test'],
    ]);
    expect(await store.alerts.due(t + 2000, 2)).toHaveLength(2);
    expect(await store.alerts.due(t - 1, 10)).toEqual([]);
    expect(await store.alerts.outboxStats(t + 2000)).toEqual({ pending: 6, oldestPendingMs: 2000, dead: 0 });

    const [slack, alice, bob] = due;
    await store.alerts.markRetry(slack!.id, t + 2000, 'rate limited', t + 60_000);
    expect(await store.alerts.outboxItem(slack!.id)).toMatchObject({
      state: 'pending',
      attempts: 1,
      lastError: 'rate limited',
      nextAttemptAt: t + 60_000,
    });
    // The retried one holds back its channel's later page; the others move on.
    await store.alerts.markDelivered(alice!.id, t + 3000, { incident: 'PD-1' });
    await store.alerts.markDead(bob!.id, t + 3000, 'unknown user');
    expect((await store.alerts.due(t + 3000, 10)).map((n) => [n.channel, n.recipient ?? null, n.action])).toEqual([
      ['email', null, 'test'],
      ['pagerduty', 'alice', 'remind'],
    ]);
    expect((await store.alerts.due(t + 60_000, 10)).map((n) => n.id)).toContain(slack!.id);
    expect(await store.alerts.outboxItem(alice!.id)).toMatchObject({
      state: 'delivered',
      deliveredAt: t + 3000,
      attempts: 1,
      ref: { incident: 'PD-1' },
    });
    expect(await store.alerts.outboxItem(bob!.id)).toMatchObject({ state: 'dead', attempts: 1, lastError: 'unknown user' });
    expect(await store.alerts.outboxStats(t + 3000)).toEqual({ pending: 4, oldestPendingMs: 3000, dead: 1 });

    expect(await store.alerts.refFor(inc.id, 'pagerduty', 'alice')).toEqual({ incident: 'PD-1' });
    expect(await store.alerts.refFor(inc.id, 'pagerduty')).toBeUndefined();
    expect(await store.alerts.refFor(inc.id, 'slack')).toBeUndefined();
    await store.alerts.markDelivered(slack!.id, t + 61_000, { channel: 'C1', ts: '1.1' });
    expect(await store.alerts.refFor(inc.id, 'slack')).toEqual({ channel: 'C1', ts: '1.1' });
    expect(await store.alerts.paged(inc.id)).toEqual([
      { channel: 'slack' },
      { channel: 'pagerduty', recipient: 'alice' },
      { channel: 'pagerduty', recipient: 'bob' },
    ]);

    const deliveries = await store.alerts.deliveries(t, t + 1000);
    expect(deliveries.map((d) => [d.channel, d.createdAt])).toEqual([
      ['slack', t],
      ['pagerduty', t],
      ['pagerduty', t],
      ['email', t + 500],
    ]);
    expect(deliveries[0]).not.toHaveProperty('payload');
    expect(deliveries[0]).not.toHaveProperty('ref');
    expect(await store.alerts.notifications(inc.id)).toHaveLength(5);
  });

  it('holds notifications of a channel not configured: not due, counted by channel, released in order, across a reopen', async () => {
    const clock = new ManualClock();
    const where = await backend.fresh();
    let store = await backend.open(where, clock);
    const t = clock.now();
    const inc = await store.alerts.applyIncidentChange({
      open: opening('api', 'down', t),
      event: { at: t, type: 'opened', actor: 'vigil' },
      notify: (i) => [page(i, 'ops'), page(i, 'ops', { action: 'remind' }), page(i, 'slack'), page(i, 'email')],
    });
    const [first, second, slack, email] = (await store.alerts.notifications(inc.id)).map((n) => n.id);
    await store.alerts.markHeld(first!, t + 1_000, 'channel ops is not configured');
    await store.alerts.markHeld(email!, t + 2_000, 'channel email is not configured');
    // Held again later: the hold keeps its start.
    await store.alerts.markHeld(first!, t + 3_000, 'channel ops is not configured');
    expect(await store.alerts.outboxItem(first!)).toMatchObject({
      state: 'pending',
      attempts: 0,
      heldAt: t + 1_000,
      lastError: 'channel ops is not configured',
    });
    // Neither the held ones nor the page behind a held one in its lane are due; the rest flow.
    expect((await store.alerts.due(t + 10_000, 10)).map((n) => n.id)).toEqual([slack]);
    expect(await store.alerts.held()).toEqual([
      { channel: 'email', count: 1, since: t + 2_000 },
      { channel: 'ops', count: 1, since: t + 1_000 },
    ]);
    await store.close();

    store = await backend.open(where, clock);
    expect((await store.alerts.held()).map((h) => h.channel)).toEqual(['email', 'ops']);
    expect(await store.alerts.releaseHeld([], t + 20_000)).toBe(0);
    expect(await store.alerts.releaseHeld(['ops', 'pagerduty'], t + 20_000)).toBe(1);
    expect(await store.alerts.held()).toEqual([{ channel: 'email', count: 1, since: t + 2_000 }]);
    expect(await store.alerts.outboxItem(first!)).toMatchObject({ state: 'pending', releasedAt: t + 20_000, nextAttemptAt: t + 20_000 });
    expect(await store.alerts.outboxItem(first!)).not.toHaveProperty('heldAt');
    expect((await store.alerts.due(t + 20_000, 10)).map((n) => n.id)).toEqual([slack, first]);
    await store.alerts.markDelivered(first!, t + 21_000);
    expect((await store.alerts.due(t + 21_000, 10)).map((n) => n.id)).toEqual([second, slack]);
    await store.close();
  });

  it('finds escalations due only for open incidents', async () => {
    const clock = new ManualClock();
    const store = await backend.open(await backend.fresh(), clock);
    const t = clock.now();
    const esc = async (probe: string, due: number | null) =>
      await store.alerts.applyIncidentChange({
        open: opening(probe, 'down', t),
        event: { at: t, type: 'opened', actor: 'vigil' },
        notify: [],
        escalation: { policy: { name: probe }, state: { pass: 0, step: 0, nextDueAt: due, reached: false } },
      });
    const a = await esc('a', t + 60_000);
    const b = await esc('b', t + 30_000);
    await esc('c', null);
    const d = await esc('d', t + 10_000);
    await store.alerts.applyIncidentChange({
      id: d.id,
      patch: { state: 'acknowledged', ackedAt: t },
      event: { at: t, type: 'acknowledged', actor: 'x' },
      notify: [],
    });
    expect((await store.alerts.dueEscalations(t + 60_000)).map((e) => e.incidentId)).toEqual([b.id, a.id]);
    expect(await store.alerts.dueEscalations(t + 30_000)).toEqual([
      { incidentId: b.id, policy: { name: 'b' }, state: { pass: 0, step: 0, nextDueAt: t + 30_000, reached: false } },
    ]);
    expect(await store.alerts.escalation(999_999)).toBeUndefined();
  });

  it('keeps on-call overrides and silences until they end', async () => {
    const clock = new ManualClock();
    const store = await backend.open(await backend.fresh(), clock);
    const t = clock.now();
    const o1 = await store.alerts.addOverride({
      schedule: 'primary',
      person: 'bob',
      startsAt: t + HOUR,
      endsAt: t + 2 * HOUR,
      author: 'alice',
      createdAt: t,
    });
    const o2 = await store.alerts.addOverride({
      schedule: 'primary',
      person: 'carol',
      startsAt: t,
      endsAt: t + HOUR,
      author: 'alice',
      createdAt: t,
    });
    expect(await store.alerts.overrides(t)).toEqual([o2, o1]);
    expect(await store.alerts.overrides(t + HOUR)).toEqual([o1]);
    expect(await store.alerts.deleteOverride(o1.id)).toBe(true);
    expect(await store.alerts.deleteOverride(o1.id)).toBe(false);
    expect(await store.alerts.overrides(t)).toEqual([o2]);

    const s1 = await store.alerts.addSilence({
      probes: ['api-*'],
      labels: { env: 'staging' },
      startsAt: t,
      endsAt: t + HOUR,
      author: 'alice',
      comment: 'deploy',
      createdAt: t,
    });
    const s2 = await store.alerts.addSilence({
      probes: [],
      labels: {},
      startsAt: t,
      endsAt: t + 2 * HOUR,
      author: 'bob',
      comment: 'all',
      createdAt: t,
    });
    expect(await store.alerts.silences()).toEqual([s1, s2]);
    expect(await store.alerts.silences(t + HOUR)).toEqual([s2]);
    // Ending a silence keeps it, ended now.
    expect(await store.alerts.deleteSilence(s2.id, t + 60_000)).toBe(true);
    expect(await store.alerts.deleteSilence(s2.id, t + 120_000)).toBe(false);
    expect(await store.alerts.silences()).toEqual([s1, { ...s2, endsAt: t + 60_000 }]);
    expect(await store.alerts.silences(t + 60_000)).toEqual([s1]);
  });

  it('sees alerts written by another store on the same database, and the one-unresolved rule holds across them', async () => {
    const where = await backend.fresh();
    const clock = new ManualClock();
    const one = await backend.open(where, clock);
    const two = await backend.open(where, clock);
    const t = clock.now();
    const i = await one.alerts.applyIncidentChange({
      open: opening('api', 'down', t),
      event: { at: t, type: 'opened', actor: 'vigil' },
      notify: (x) => [page(x, 'slack')],
    });
    expect(await two.alerts.incident(i.id)).toEqual(i);
    expect((await two.alerts.due(t, 10)).map((n) => n.incidentId)).toEqual([i.id]);
    await expect(
      two.alerts.applyIncidentChange({ open: opening('api', 'down', t), event: { at: t, type: 'opened', actor: 'vigil' }, notify: [] }),
    ).rejects.toThrow();
  });

  it('records the audit log, lists it newest first with filters, and prunes it', async () => {
    const clock = new ManualClock();
    const store = await backend.open(await backend.fresh(), clock);
    const t = clock.now();
    await store.audit.record({ at: t, actor: 'alice', action: 'POST /api/v1/silences', result: 'success', status: 201 });
    await store.audit.record({
      at: t + 1,
      actor: 'bob',
      action: 'POST /api/v1/incidents/:id/ack',
      target: '{"id":"7"}',
      requestId: 'r-2',
      result: 'failure',
      status: 404,
      detail: 'no such incident',
    });
    await store.audit.record({
      at: t + 2,
      actor: 'alice',
      action: 'POST /api/v1/incidents/:id/ack',
      target: '{"id":"8"}',
      result: 'success',
      status: 200,
    });
    const all = await store.audit.list({});
    expect(all.map((e) => e.at - t)).toEqual([2, 1, 0]);
    expect(all[1]).toEqual({
      id: expect.any(Number),
      at: t + 1,
      actor: 'bob',
      action: 'POST /api/v1/incidents/:id/ack',
      target: '{"id":"7"}',
      requestId: 'r-2',
      result: 'failure',
      status: 404,
      detail: 'no such incident',
    });
    expect(all[2]).toEqual({
      id: expect.any(Number),
      at: t,
      actor: 'alice',
      action: 'POST /api/v1/silences',
      result: 'success',
      status: 201,
    });
    expect((await store.audit.list({ actor: 'alice' })).map((e) => e.at - t)).toEqual([2, 0]);
    expect((await store.audit.list({ action: 'POST /api/v1/incidents/:id/ack', actor: 'alice' })).map((e) => e.at - t)).toEqual([2]);
    expect((await store.audit.list({ since: t + 1 })).map((e) => e.at - t)).toEqual([2, 1]);
    expect((await store.audit.list({ until: t + 1 })).map((e) => e.at - t)).toEqual([0]);
    expect(await store.audit.list({ limit: 1 })).toHaveLength(1);
    expect(await store.audit.prune(t + 2)).toBe(2);
    expect((await store.audit.list({})).map((e) => e.at - t)).toEqual([2]);
  });

  it('rolls runs up into hours and days: exact counts, p95 within 1 %, raw runs for what is not rolled', async () => {
    const { answers, ragged } = await rollupAnswers(backend);
    rolled.set(name, answers);
    expect(answers.hours).toEqual([48]);
    expect(answers.lastHour).toBe(END - HOUR);
    PROBES.forEach((p, k) => {
      const a = answers.perProbe[k]!;
      expect(a.hours.map((b) => b.start)).toEqual(Array.from({ length: 48 }, (_, i) => D0 + i * HOUR));
      for (const b of a.hours) expectRaw(b, p, b.start, b.start + HOUR);
      expect(a.days.map((b) => b.start)).toEqual([D0, D0 + DAY]);
      for (const b of a.days) expectRaw(b, p, b.start, b.start + DAY);
      expectRaw(a.whole, p, D0, END);
      // Ragged: raw edges, hour rows, a day row, and the last ten minutes not rolled yet.
      expectRaw(a.ragged, p, ...ragged);
      expectRaw(a.window.total, p, ...ragged);
      expect(a.window.days.map((d) => d.start)).toEqual([D0, D0 + DAY, D0 + 2 * DAY]);
      expectRaw(a.window.days[2]!, p, END, NOW);
    });
    expect(answers.unknown).toMatchObject({ runs: 0, failures: 0 });
  });
});

describe('store contract: both backends', () => {
  it('answer rollup queries identically for the same runs', async () => {
    for (const [name, backend] of BACKENDS) if (!rolled.has(name)) rolled.set(name, (await rollupAnswers(backend)).answers);
    expect(rolled.get('postgres')).toEqual(rolled.get('sqlite'));
  });
});

/** Waits, a bounded number of turns, until `cond` holds: for a state another process reaches, never for a time. */
async function until(cond: () => boolean | Promise<boolean>, what: string) {
  for (let i = 0; i < 1_000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`never reached: ${what}`);
}

/** Sessions waiting for an advisory lock (bigint keys: `key` is the low 32 bits), or for any. */
async function advisoryWaiters(client: pg.Client, key?: number): Promise<number> {
  const res = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND ($1::int IS NULL OR objid = $1::int)`,
    [key ?? null],
  );
  return res.rows[0]!.n;
}

const dbName = (url: string) => new URL(url).pathname.slice(1);

describe.each(BACKENDS)('store contract, several instances on one database: %s', (_name, backend) => {
  it('leases a name to one holder at a time: taken when free, renewed by its holder, taken over once expired, released', async () => {
    const where = await backend.fresh();
    const clock = new ManualClock();
    const one = await backend.open(where, clock);
    const two = await backend.open(where, clock);
    const t = 1_000_000;
    expect(await one.lease('alerting', 'a', 30_000, t)).toEqual({ held: true, holder: 'a', expiresAt: t + 30_000 });
    expect(await two.lease('alerting', 'b', 30_000, t + 1)).toEqual({ held: false, holder: 'a', expiresAt: t + 30_000 });
    // Renewed from now by its holder, through either store.
    expect(await two.lease('alerting', 'a', 30_000, t + 10_000)).toEqual({ held: true, holder: 'a', expiresAt: t + 40_000 });
    expect(await two.lease('alerting', 'b', 30_000, t + 39_999)).toEqual({ held: false, holder: 'a', expiresAt: t + 40_000 });
    // Names are independent.
    expect(await two.lease('reports', 'b', 5_000, t + 2)).toEqual({ held: true, holder: 'b', expiresAt: t + 5_002 });
    // Free from expiresAt on: the next to ask takes it, and the old holder learns so.
    expect(await two.lease('alerting', 'b', 30_000, t + 40_000)).toEqual({ held: true, holder: 'b', expiresAt: t + 70_000 });
    expect(await one.lease('alerting', 'a', 30_000, t + 40_001)).toEqual({ held: false, holder: 'b', expiresAt: t + 70_000 });
    // Only the holder can release it; released, it is free at once.
    await one.release('alerting', 'a');
    expect(await one.lease('alerting', 'a', 30_000, t + 41_000)).toEqual({ held: false, holder: 'b', expiresAt: t + 70_000 });
    await two.release('alerting', 'b');
    expect(await one.lease('alerting', 'a', 30_000, t + 42_000)).toEqual({ held: true, holder: 'a', expiresAt: t + 72_000 });
    expect(await two.lease('reports', 'a', 5_000, t + 3)).toEqual({ held: false, holder: 'b', expiresAt: t + 5_002 });
    await expect(one.lease('alerting', 'a', 0, t)).rejects.toThrow(RangeError);
  });

  it('feeds runs of every probe and location once, paged from any cursor, nothing queued; a run by its id', async () => {
    const where = await backend.fresh();
    const clock = new ManualClock();
    const eu = await backend.open(where, clock);
    const us = await backend.open(where, clock);
    const t = clock.now();
    const start = await eu.feedEnd();
    expect(await eu.runsFeed(start, 10)).toEqual({ runs: [], cursor: start });
    for (let i = 0; i < 4; i++) eu.append(run(i % 2 ? 'api' : 'web', t + i, { location: 'eu-west' }));
    await eu.flush();
    const euDone = await us.feedEnd();
    for (let i = 4; i < 7; i++) us.append(run('api', t + i, { location: 'us-east', ok: i !== 5, ...(i === 5 ? { code: 'TIMEOUT' } : {}) }));
    await us.flush();
    // Queued, not written: neither in the feed nor in its end.
    us.append(run('api', t + 7));

    /** Reads the feed from `cursor` in pages of `size` to its end: the runs, the pages' sizes, the cursor at the end. */
    const drain = async (cursor: ReadonlyMap<number, number>, size: number) => {
      const runs = [];
      const pages = [];
      for (let page = await eu.runsFeed(cursor, size); page.runs.length > 0; page = await eu.runsFeed(cursor, size)) {
        runs.push(...page.runs);
        pages.push(page.runs.length);
        cursor = page.cursor;
      }
      return { runs, pages, cursor };
    };
    const all = await drain(start, 100);
    expect(all.runs.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(all.runs.map((r) => [r.probeId, r.startedAt - t, r.location, r.ok])).toEqual([
      ['web', 0, 'eu-west', true],
      ['api', 1, 'eu-west', true],
      ['web', 2, 'eu-west', true],
      ['api', 3, 'eu-west', true],
      ['api', 4, 'us-east', true],
      ['api', 5, 'us-east', false],
      ['api', 6, 'us-east', true],
    ]);
    expect(all.runs[5]).toEqual({ ...run('api', t + 5, { location: 'us-east', ok: false, code: 'TIMEOUT' }), id: 6 });
    // The same runs from an empty cursor (every writer from its first run), in any page size.
    const paged = await drain(new Map(), 3);
    expect(paged.runs).toEqual(all.runs);
    expect(paged.pages).toEqual([3, 3, 1]);
    expect((await eu.runsFeed(start, 0)).runs).toEqual([]);
    expect((await eu.runsFeed(start, -1)).runs).toEqual([]);
    // Where the feed ends now: nothing after it, and a run written later comes next.
    const end = await eu.feedEnd();
    expect((await eu.runsFeed(end, 10)).runs).toEqual([]);
    await us.flush();
    expect((await eu.runsFeed(end, 10)).runs.map((r) => [r.id, r.startedAt - t])).toEqual([[8, 7]]);
    expect((await eu.runsFeed(all.cursor, 10)).runs.map((r) => r.id)).toEqual([8]);
    // A seed through a cursor holds exactly what a feed from it leaves out.
    expect((await us.runs({ probeId: 'api', through: euDone })).map((r) => r.startedAt - t)).toEqual([3, 1]);
    expect((await us.runs({ probeId: 'api', through: end })).map((r) => r.startedAt - t)).toEqual([6, 5, 4, 3, 1]);
    expect((await us.runs({ probeId: 'api', through: new Map() })).map((r) => r.startedAt - t)).toEqual([]);
    expect((await us.runs({ probeId: 'api' })).map((r) => r.startedAt - t)).toEqual([7, 6, 5, 4, 3, 1]);
    // A run by its id.
    expect((await eu.runsAfter(0, 3)).map((r) => r.id)).toEqual([1, 2, 3]);
    expect((await eu.runsAfter(5, 1)).map((r) => r.id)).toEqual([6]);
    expect(await eu.runsAfter(8, 3)).toEqual([]);
    expect(await eu.runsAfter(0, -1)).toEqual([]);
  });

  it('hands one instance its due notifications alike with a claim, again on the next call, and applies its marks', async () => {
    const clock = new ManualClock();
    const store = await backend.open(await backend.fresh(), clock);
    const t = clock.now();
    const claim = { by: 'host-a', forMs: 60_000 };
    const inc = await store.alerts.applyIncidentChange({
      open: opening('api', 'down', t),
      event: { at: t, type: 'opened', actor: 'vigil' },
      notify: (i) => [page(i, 'slack'), page(i, 'pagerduty'), page(i, 'slack', { action: 'remind' })],
    });
    const [slack, pd, remind] = (await store.alerts.notifications(inc.id)).map((n) => n.id);
    expect((await store.alerts.due(t, 10, claim)).map((n) => n.id)).toEqual([slack, pd]);
    expect(await store.alerts.due(t + 1_000, 10, claim)).toEqual(await store.alerts.due(t + 1_000, 10));
    await store.alerts.markDelivered(slack!, t + 2_000, { ts: '1.1' }, claim.by);
    await store.alerts.markRetry(pd!, t + 2_000, 'rate limited', t + 5_000, claim.by);
    expect(await store.alerts.outboxItem(slack!)).toMatchObject({ state: 'delivered', attempts: 1, ref: { ts: '1.1' } });
    expect(await store.alerts.outboxItem(pd!)).toMatchObject({ state: 'pending', attempts: 1, nextAttemptAt: t + 5_000 });
    expect((await store.alerts.due(t + 5_000, 10, claim)).map((n) => n.id)).toEqual([remind, pd]);
    await store.alerts.markDead(pd!, t + 6_000, 'gone', claim.by);
    expect(await store.alerts.outboxItem(pd!)).toMatchObject({ state: 'dead', attempts: 2, lastError: 'gone' });
  });
});

describe('store contract: postgres, several instances on one database', () => {
  /**
   * Test only: a run from location `stall` holds its batch, ids drawn, until the gate (advisory lock
   * 77, held by the returned client) opens.
   */
  async function stallGate(where: string) {
    await server!.query(
      `CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN IF NEW.location = 'stall' THEN PERFORM pg_advisory_xact_lock_shared(77); END IF; RETURN NEW; END $$;
       CREATE TRIGGER stall AFTER INSERT ON runs FOR EACH ROW EXECUTE FUNCTION stall();`,
      dbName(where),
    );
    const gate = new pg.Client({ connectionString: where });
    await gate.connect();
    await gate.query('SELECT pg_advisory_lock(77)');
    return gate;
  }

  it('delivers runs two writers commit out of id order each exactly once, and neither writer waits for the other', async () => {
    const where = await postgres.fresh();
    const clock = new ManualClock();
    const slow = await postgres.open(where, clock);
    const fast = await postgres.open(where, clock);
    const reader = await postgres.open(where, clock);
    const gate = await stallGate(where);
    try {
      const t = clock.now();
      let cursor = await reader.feedEnd();
      const seen: number[] = [];
      const poll = async () => {
        const page = await reader.runsFeed(cursor, 100);
        seen.push(...page.runs.map((r) => r.startedAt - t));
        cursor = page.cursor;
      };
      slow.append(run('api', t, { location: 'stall' }));
      const slowDone = slow.flush();
      await until(async () => (await advisoryWaiters(gate, 77)) === 1, 'the slow batch waits at the gate, its id drawn');
      fast.append(run('web', t + 1));
      fast.append(run('web', t + 2));
      // Commits past the slow batch, ids above its: no lock orders writers.
      await fast.flush();
      expect(await advisoryWaiters(gate)).toBe(1);
      await poll();
      expect(seen).toEqual([1, 2]);
      await gate.query('SELECT pg_advisory_unlock(77)');
      await slowDone;
      await poll();
      await poll();
      // The slow run, id 1, committed behind ids 2 and 3 the reader had already read: delivered, once.
      expect(seen).toEqual([1, 2, 0]);
      expect((await reader.runsAfter(0, 10)).map((r) => r.startedAt - t)).toEqual([0, 1, 2]);
    } finally {
      await gate.end();
    }
  });

  it('reads a writer that appears after the cursor was taken from its first run, and goes on past one that is gone', async () => {
    const where = await postgres.fresh();
    const clock = new ManualClock();
    const old = await postgres.open(where, clock);
    const reader = await postgres.open(where, clock);
    const t = clock.now();
    old.append(run('api', t));
    await old.flush();
    let cursor = await reader.feedEnd();
    const seen: number[] = [];
    const poll = async () => {
      const page = await reader.runsFeed(cursor, 2);
      seen.push(...page.runs.map((r) => r.startedAt - t));
      cursor = page.cursor;
      return page.runs.length;
    };
    old.append(run('api', t + 1));
    await old.flush();
    await old.close();
    // A new instance (a writer the cursor does not name) writes after the old one is gone for good.
    const late = await postgres.open(where, clock);
    for (let i = 2; i < 5; i++) late.append(run('web', t + i));
    await late.flush();
    while ((await poll()) > 0);
    expect(seen).toEqual([1, 2, 3, 4]);
    // Restarted, the same instance is a new writer: its runs are read too.
    const again = await postgres.open(where, clock);
    again.append(run('api', t + 5));
    await again.flush();
    while ((await poll()) > 0);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  it('hands over at a leader change without a gap or a duplicate, a batch in flight across the change included', async () => {
    const where = await postgres.fresh();
    const clock = new ManualClock();
    const slow = await postgres.open(where, clock);
    const fast = await postgres.open(where, clock);
    const leader = await postgres.open(where, clock);
    const gate = await stallGate(where);
    try {
      const t = clock.now();
      fast.append(run('api', t));
      await fast.flush();
      // The slow batch draws its id, then a fast one commits above it.
      slow.append(run('api', t + 1, { location: 'stall' }));
      const slowDone = slow.flush();
      await until(async () => (await advisoryWaiters(gate, 77)) === 1, 'the slow batch waits at the gate, its id drawn');
      fast.append(run('api', t + 2));
      await fast.flush();
      // The new leader takes its cursor, then (the slow batch committing meanwhile) seeds its history through it.
      const cursor = await leader.feedEnd();
      await gate.query('SELECT pg_advisory_unlock(77)');
      await slowDone;
      const seeded = (await leader.runs({ probeId: 'api', through: cursor })).map((r) => r.startedAt - t);
      fast.append(run('api', t + 3));
      await fast.flush();
      const fed: number[] = [];
      for (let page = await leader.runsFeed(cursor, 10); page.runs.length > 0; page = await leader.runsFeed(page.cursor, 10))
        fed.push(...page.runs.map((r) => r.startedAt - t));
      expect(seeded).toEqual([2, 0]);
      expect(fed).toEqual([1, 3]);
    } finally {
      await gate.end();
    }
  });

  it('refreshes the newest run of each probe other instances wrote, from what they committed since the last refresh', async () => {
    const where = await postgres.fresh();
    const clock = new ManualClock();
    const eu = await postgres.open(where, clock);
    const us = await postgres.open(where, clock);
    const t = clock.now();
    eu.append(run('api', t + 5, { location: 'eu-west' }));
    eu.append(run('web', t + 1, { location: 'eu-west' }));
    await eu.flush();
    us.append(run('web', t + 3, { location: 'us-east' }));
    expect(us.latest('api')).toBeUndefined();
    await clock.advance(2_000);
    await until(() => us.latest('api') !== undefined, 'us refreshes');
    expect(us.latest('api')).toMatchObject({ startedAt: t + 5, location: 'eu-west' });
    // Its own newer run stays; an older run written elsewhere does not replace a newer one.
    expect(us.latest('web')).toMatchObject({ startedAt: t + 3, location: 'us-east' });
    eu.append(run('api', t + 2, { location: 'eu-west' }));
    eu.append(run('dns', t + 2, { location: 'eu-west' }));
    await eu.flush();
    await clock.advance(2_000);
    await until(() => us.latest('dns') !== undefined, 'us refreshes again');
    expect(us.latest('api')).toMatchObject({ startedAt: t + 5 });
    expect(us.latest('web')).toMatchObject({ startedAt: t + 3 });
  });

  it('gives two instances claiming at the same moment disjoint notifications', async () => {
    const where = await postgres.fresh();
    const clock = new ManualClock();
    const store = await postgres.open(where, clock);
    const t = clock.now();
    // Six lanes, one notification each, all due.
    const ids = (
      await store.alerts.enqueue(
        ['a', 'b', 'c', 'd', 'e', 'f'].map((r) => ({
          incidentId: null,
          channel: 'pagerduty',
          recipient: r,
          action: 'test' as const,
          dedupKey: `test-${r}`,
          payload: {},
        })),
        t,
      )
    ).map((n) => n.id);
    // Test only: a claim waits at the gate with its rows picked (and locked), so both claims overlap.
    await server!.query(
      `CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN PERFORM pg_advisory_xact_lock_shared(78); RETURN NEW; END $$;
       CREATE TRIGGER hold BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION hold();`,
      dbName(where),
    );
    const gate = new pg.Client({ connectionString: where });
    await gate.connect();
    try {
      await gate.query('SELECT pg_advisory_lock(78)');
      const claims = ['host-a', 'host-b'].map((by) => claimInChild(where, by, t));
      // Both hold their picks at the gate: neither waited on the other's rows.
      await until(async () => (await advisoryWaiters(gate, 78)) === 2, 'both claims wait at the gate');
      await gate.query('SELECT pg_advisory_unlock(78)');
      const [a, b] = await Promise.all(claims);
      expect(a).toHaveLength(3);
      expect(b).toHaveLength(3);
      expect([...a!, ...b!].sort((x, y) => x - y)).toEqual(ids);
    } finally {
      await gate.end();
    }
    await server!.query('DROP TRIGGER hold ON outbox', dbName(where));
    // Claimed for a minute: a third instance gets none of them until then.
    expect(await store.alerts.due(t + 59_999, 10, { by: 'host-c', forMs: 60_000 })).toEqual([]);
    expect((await store.alerts.due(t + 60_000, 10, { by: 'host-c', forMs: 60_000 })).map((n) => n.id)).toEqual(ids);
  });

  it('keeps claimed notifications from other instances until the claim expires, and fences a late mark', async () => {
    const where = await postgres.fresh();
    const clock = new ManualClock();
    const a = await postgres.open(where, clock);
    const b = await postgres.open(where, clock);
    const t = clock.now();
    const byA = { by: 'host-a', forMs: 60_000 };
    const byB = { by: 'host-b', forMs: 60_000 };
    const inc = await a.alerts.applyIncidentChange({
      open: opening('api', 'down', t),
      event: { at: t, type: 'opened', actor: 'vigil' },
      notify: (i) => [page(i, 'slack'), page(i, 'pagerduty'), page(i, 'slack', { action: 'remind' })],
    });
    const [slack, pd, remind] = (await a.alerts.notifications(inc.id)).map((n) => n.id);
    const ids = (items: Array<{ id: number }>) => items.map((n) => n.id);

    expect(await ids(await a.alerts.due(t, 10, byA))).toEqual([slack, pd]);
    expect(await b.alerts.due(t, 10, byB)).toEqual([]);
    // A plain read claims nothing and sees past claims.
    expect(await ids(await b.alerts.due(t, 10))).toEqual([slack, pd]);
    // The holder gets its own back, the claim renewed from then: until t + 90 s.
    expect(await ids(await a.alerts.due(t + 30_000, 10, byA))).toEqual([slack, pd]);
    expect(await b.alerts.due(t + 89_999, 10, byB)).toEqual([]);
    // Expired: the next instance to ask takes them over.
    expect(await ids(await b.alerts.due(t + 90_000, 10, byB))).toEqual([slack, pd]);
    expect(await a.alerts.due(t + 90_000, 10, byA)).toEqual([]);

    // The old holder's late marks change nothing.
    await a.alerts.markDelivered(slack!, t + 90_001, { ts: 'a' }, byA.by);
    await a.alerts.markDead(pd!, t + 90_001, 'late', byA.by);
    expect(await b.alerts.outboxItem(slack!)).toMatchObject({ state: 'pending', attempts: 0 });
    expect(await b.alerts.outboxItem(pd!)).toMatchObject({ state: 'pending', attempts: 0 });
    await b.alerts.markDelivered(slack!, t + 90_002, { ts: 'b' }, byB.by);
    await b.alerts.markRetry(pd!, t + 90_002, 'rate limited', t + 100_000, byB.by);
    expect(await a.alerts.outboxItem(slack!)).toMatchObject({ state: 'delivered', deliveredAt: t + 90_002, attempts: 1, ref: { ts: 'b' } });
    expect(await a.alerts.outboxItem(pd!)).toMatchObject({
      state: 'pending',
      attempts: 1,
      lastError: 'rate limited',
      nextAttemptAt: t + 100_000,
    });
    // A mark ends the claim: a second one from the same holder changes nothing either.
    await b.alerts.markDead(slack!, t + 90_003, 'twice', byB.by);
    expect(await a.alerts.outboxItem(slack!)).toMatchObject({ state: 'delivered', attempts: 1 });

    // The retry is nobody's: whoever asks first when it is due takes it, with the lane's next page.
    expect(await ids(await a.alerts.due(t + 100_000, 10, byA))).toEqual([remind, pd]);
    expect(await b.alerts.due(t + 100_000, 10, byB)).toEqual([]);
    // Expired but not taken over, the holder's mark still counts.
    await a.alerts.markDelivered(pd!, t + 200_000, undefined, byA.by);
    expect(await b.alerts.outboxItem(pd!)).toMatchObject({ state: 'delivered', deliveredAt: t + 200_000, attempts: 2 });
    // Without a claimant a mark applies, as for one instance.
    await b.alerts.markDead(remind!, t + 200_001, 'no claimant');
    expect(await a.alerts.outboxItem(remind!)).toMatchObject({ state: 'dead', lastError: 'no claimant' });
  });
});

/** Another vigil process on the database: opens a store, claims up to three due notifications, prints their ids. */
function claimInChild(url: string, by: string, now: number): Promise<number[]> {
  const script = `
    import { createPostgresStore } from ${JSON.stringify(path.resolve('src/store/index.ts'))};
    import { systemClock } from ${JSON.stringify(path.resolve('src/lib/clock.ts'))};
    import { createLogger } from ${JSON.stringify(path.resolve('src/lib/logger.ts'))};
    const [url, by, now] = process.argv.slice(1);
    const store = createPostgresStore({ url, clock: systemClock, logger: createLogger({ level: 'silent' }) });
    const items = await store.alerts.due(Number(now), 3, { by, forMs: 60_000 });
    process.stdout.write(JSON.stringify(items.map((n) => n.id)));
    await store.close();
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, url, by, String(now)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`claiming child exited ${code}`))));
  });
}
