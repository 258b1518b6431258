import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { buildReport, ReportConfigSchema, type ReportDeps } from '../../src/report/index.js';
import type { Incident, RollupBucket, RollupSummary } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';

// buildReport over a store whose every read takes READ_MS: the reads of the probes, the incidents
// and the outbox go out together, and what they hold reaches the report.

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 26, 12);
const READ_MS = 40;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const PROBES = [
  { id: 'db', kind: 'restore-drill', labels: {}, source: { type: 'sqlite', dir: '/backups' } },
  { id: 'api', kind: 'http', labels: {}, url: 'https://api.example.com/health', expect: {} },
] as unknown as ProbeDefinition[];

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
  const day = NOW - 2 * DAY;
  const total = (probeId: string): RollupSummary => ({
    probeId,
    from: NOW - 30 * DAY,
    to: NOW,
    runs: 100,
    failures: 2,
    uptime: 0.98,
    p95: 120,
    codes: { TIMEOUT: 2 },
    values: {},
  });
  const days = (probeId: string): RollupBucket[] => [
    { probeId, period: 'day', start: day, runs: 50, failures: 2, codes: { TIMEOUT: 2 }, values: {}, p95: 130 },
  ];
  const incident: Incident = {
    id: 1,
    probeId: 'api',
    rule: 'failures',
    kind: 'http',
    severity: 'critical',
    state: 'resolved',
    summary: 'api failing',
    labels: {},
    channels: [],
    openedAt: day + 3_600_000,
    ackedAt: day + 3_600_000 + 120_000,
    ackedBy: 'alice',
    resolvedAt: day + 2 * 3_600_000,
    flapping: false,
    notified: true,
  };
  const deps: ReportDeps = {
    service: 'shop',
    clock: new ManualClock(NOW),
    store: {
      latest: () => undefined,
      lastSuccess: (probeId) =>
        read(() => ({
          id: 9,
          probeId,
          kind: 'restore-drill',
          startedAt: day,
          durationMs: 1,
          ok: true,
          values: { restore_s: 600, backup_age_s: 1800 },
          attempts: 1,
          trigger: 'schedule' as const,
        })),
      rollups: {
        lastHour: () => undefined,
        window: (probeId) => read(() => ({ days: days(probeId), total: total(probeId) })),
      },
      alerts: {
        incidents: () => read(() => [incident]),
        deliveries: () => read(() => []),
      },
    },
    probes: () => PROBES,
    config: Value.Default(ReportConfigSchema, {}) as ReportDeps['config'],
    setup: () => ({ channels: {}, schedules: {}, escalation: {} }),
  };
  return { deps, maxInFlight: () => maxInFlight };
}

describe('buildReport', () => {
  it('reads the probes, the incidents and the outbox together, and reports what they hold', async () => {
    const { deps, maxInFlight } = setup();
    const report = await buildReport(deps);
    // Two windows, one last success (the restore drill's), the incidents and the deliveries.
    expect(maxInFlight()).toBe(5);

    expect(report.probes.map((p) => [p.id, p.runs, p.failures, p.uptime, p.daily.length])).toEqual([
      ['api', 100, 2, 0.98, 1],
      ['db', 100, 2, 0.98, 1],
    ]);
    expect(report.summary).toMatchObject({ probes: 2, runs: 200, failures: 4, incidents: 1 });
    expect(report.topFailures).toEqual([
      {
        code: 'TIMEOUT',
        count: 4,
        probes: [
          { id: 'api', count: 2 },
          { id: 'db', count: 2 },
        ],
        firstDay: '2026-11-24',
        lastDay: '2026-11-24',
      },
    ]);
    expect(report.incidents).toMatchObject({ count: 1, mttaMs: 120_000, mttrMs: 3_600_000 });
    expect(report.checklist.restoreDrills).toMatchObject([
      { probeId: 'db', restoreS: 600, backupAgeS: 1800, withinRto: true, withinRpo: true },
    ]);
  });

  it('rejects with the store error when reads fail, with none left unhandled', async () => {
    const down = new Error('PostgreSQL did not answer');
    const { deps } = setup(down);
    await expect(buildReport(deps)).rejects.toBe(down);
    await sleep(READ_MS * 2);
  });
});
