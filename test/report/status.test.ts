import { describe, expect, it } from 'vitest';
import { createOnCall } from '../../src/oncall/index.js';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { buildStatusPage, type StatusDeps } from '../../src/report/index.js';
import type { Incident, RollupSummary, RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';

// The status page over a store whose every read takes READ_MS, as a database across a network does:
// its figures worked out by hand, and its reads shown to go out together rather than one by one.

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 10, 26, 12, 30);
const CURRENT = Date.UTC(2026, 10, 26, 12);
const FIRST = CURRENT - 23 * HOUR;
/** The last hour rolled up: 10:00, so 11:00 and 12:00 are read raw. */
const LAST_ROLLED = CURRENT - 2 * HOUR;
const READ_MS = 40;
const PROBES = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function incident(id: number, openedAt: number, over: Partial<Incident> = {}): Incident {
  return {
    id,
    probeId: 'p0',
    rule: 'failures',
    kind: 'http',
    severity: 'critical',
    state: 'open',
    summary: `incident ${id}`,
    labels: {},
    channels: [],
    openedAt,
    flapping: false,
    notified: true,
    ...over,
  };
}

function setup(fail?: Error) {
  let inFlight = 0;
  let maxInFlight = 0;
  const read = async <T>(value: () => T): Promise<T> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await sleep(READ_MS);
    inFlight--;
    if (fail) throw fail;
    return value();
  };
  const summary = (probeId: string, from: number, to: number, runs: number, failures: number): RollupSummary => ({
    probeId,
    from,
    to,
    runs,
    failures,
    codes: {},
    values: {},
  });
  const lastRun: RunRecord = {
    probeId: 'p0',
    kind: 'http',
    startedAt: NOW - 60_000,
    durationMs: 12.34,
    ok: false,
    code: 'HTTP_STATUS',
    message: '503',
    values: {},
    attempts: 1,
    trigger: 'schedule',
  };
  const deps: StatusDeps = {
    service: 'shop',
    clock: new ManualClock(NOW),
    store: {
      latest: (id) => (id === 'p0' ? lastRun : undefined),
      rollups: {
        lastHour: () => LAST_ROLLED,
        query: (probeId, from, to) =>
          read(() => {
            expect([from, to]).toEqual([FIRST, LAST_ROLLED + HOUR]);
            return probeId === 'p0' ? [{ ...summary(probeId, FIRST, FIRST + HOUR, 4, 1), period: 'hour' as const, start: FIRST }] : [];
          }),
        summary: (probeId, from, to) =>
          read(() => summary(probeId, from, to, probeId === 'p0' ? 2 : 0, probeId === 'p0' && from === CURRENT ? 1 : 0)),
      },
      alerts: {
        unresolvedIncidents: () =>
          read(() => [incident(1, NOW - 2 * HOUR), incident(2, NOW - HOUR, { state: 'acknowledged', ackedBy: 'alice' })]),
        incidents: () => read(() => [incident(3, NOW - 50 * HOUR, { state: 'resolved', resolvedAt: NOW - 49 * HOUR })]),
        silences: () => read(() => []),
      },
    },
    // Kept by the alert snapshot: incident 3's page was given up on 50 hours ago, incident 1's 31 days ago.
    undelivered: async () =>
      new Map([
        [3, NOW - 50 * HOUR],
        [1, NOW - 31 * 24 * HOUR],
      ]),
    probes: () =>
      Array.from({ length: PROBES }, (_, i) => ({ id: `p${i}`, kind: 'http', labels: { team: 'shop' } }) as unknown as ProbeDefinition),
    isRunning: (id) => id === 'p1',
    held: () => read(() => [{ channel: 'sms', count: 2, since: NOW - HOUR }]),
    oncall: createOnCall({
      clock: new ManualClock(NOW),
      alerts: { overrides: () => read(() => []) },
      schedules: () => ({
        primary: {
          timezone: 'UTC',
          layers: [{ rotation: 'daily', handoff: '09:00', start: '2026-11-02', participants: ['alice', 'bob'] }],
        },
      }),
    }),
    people: () => ({ alice: { name: 'Alice Ng' } }),
    reportUrl: '/api/v1/report?format=html',
  };
  return { deps, maxInFlight: () => maxInFlight };
}

describe('buildStatusPage', () => {
  it('reads every probe, the incidents, held pages and who is on call at once, and shows them', async () => {
    const { deps, maxInFlight } = setup();
    const started = performance.now();
    const page = await buildStatusPage(deps);
    const ms = performance.now() - started;
    // One by one this is 20 probes × 3 reads + 5 = 65 reads of 40 ms (2.5 s); together, about one read.
    expect(maxInFlight()).toBeGreaterThanOrEqual(PROBES * 3 + 5);
    expect(ms).toBeLessThan(1_000);

    expect(page.probes.map((p) => p.id)).toEqual(Array.from({ length: PROBES }, (_, i) => `p${i}`));
    const p0 = page.probes[0]!;
    expect(p0).toMatchObject({
      state: 'down',
      running: false,
      lastRun: { at: new Date(NOW - 60_000).toISOString(), ok: false, durationMs: 12.3, code: 'HTTP_STATUS', message: '503' },
    });
    expect(p0.history).toHaveLength(24);
    const busy = p0.history.filter((h) => h.runs > 0);
    expect(busy).toEqual([
      { start: new Date(FIRST).toISOString(), runs: 4, failures: 1 },
      { start: new Date(CURRENT - HOUR).toISOString(), runs: 2, failures: 0 },
      { start: new Date(CURRENT).toISOString(), runs: 2, failures: 1 },
    ]);
    expect(page.probes[1]).toMatchObject({ state: 'unknown', running: true, lastRun: null });
    expect(page.probes[1]!.history.every((h) => h.runs === 0)).toBe(true);

    expect(page.incidents.map((i) => [i.id, i.state, i.ackedBy])).toEqual([
      [2, 'acknowledged', 'alice'],
      [1, 'open', null],
    ]);
    expect(page.recent?.map((i) => [i.id, i.undelivered])).toEqual([[3, true]]);
    // Incident 1's given-up page is past the 30 days the page looks back.
    expect(page.incidents.every((i) => i.undelivered === false)).toBe(true);
    expect(page.held).toEqual([{ channel: 'sms', count: 2, since: new Date(NOW - HOUR).toISOString() }]);
    // Day 24 of a daily rotation of two from 2026-11-02: alice, until 09:00 tomorrow.
    expect(page.oncall).toEqual([{ schedule: 'primary', person: 'alice', name: 'Alice Ng', until: '2026-11-27T09:00:00.000Z' }]);
  });

  it('rejects with the store error when reads fail, with none left unhandled', async () => {
    const down = new Error('PostgreSQL did not answer');
    const { deps } = setup(down);
    await expect(buildStatusPage(deps)).rejects.toBe(down);
    // The reads that failed after the first (incidents, held pages, overrides) settle here unobserved.
    await sleep(READ_MS * 2);
  });
});
