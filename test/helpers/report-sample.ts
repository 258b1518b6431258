import { emptyChecklist } from '../../src/probers/index.js';
import type { DailyPoint, IncidentReport, ProbeReport, Report, ReportTargets } from '../../src/report/types.js';

const DAY_MS = 86_400_000;
const FROM = Date.UTC(2026, 9, 27);
const DAYS = 30;

/** The checklist's default targets (config `report.targets`). */
export const SAMPLE_TARGETS: ReportTargets = {
  p95Ms: 5_000,
  errorRate: 0.05,
  uptime: 0.999,
  logIngestionMs: 30_000,
  rtoMs: 4 * 3_600_000,
  rpoMs: 3_600_000,
  drillMaxAgeMs: 7 * DAY_MS,
  tlsMinDays: 14,
  dnsMaxTtlS: 300,
  dnsPropagationS: 300,
  loadP95Ms: 5_000,
  loadErrorRate: 0.05,
  mttaMs: 15 * 60_000,
};

function at(day: number, hour = 0, minute = 0, second = 0): string {
  return new Date(FROM + day * DAY_MS + ((hour * 60 + minute) * 60 + second) * 1000).toISOString();
}

/** Thirty days of one probe; `day` answers runs, failures and p95 for day i, or null when it did not run. */
function daily(day: (i: number) => { runs: number; failures: number; p95Ms: number } | null): DailyPoint[] {
  return Array.from({ length: DAYS }, (_, i) => {
    const date = at(i).slice(0, 10);
    const d = day(i);
    if (d === null || d.runs === 0) return { day: date, runs: 0, failures: 0, errorRate: null, p95Ms: null, ok: null };
    const errorRate = d.failures / d.runs;
    return { day: date, ...d, errorRate, ok: d.p95Ms <= SAMPLE_TARGETS.p95Ms && errorRate <= SAMPLE_TARGETS.errorRate };
  });
}

type ProbeBasics = Omit<ProbeReport, 'runs' | 'failures' | 'uptime' | 'slo' | 'daysOverP95' | 'daysOverErrorRate' | 'daily'> & {
  objective: number;
};

/** Fills in what follows from the daily points, so the sample never contradicts itself. */
function probe(basics: ProbeBasics, days: DailyPoint[]): ProbeReport {
  const { objective, ...rest } = basics;
  const runs = days.reduce((n, d) => n + d.runs, 0);
  const failures = days.reduce((n, d) => n + d.failures, 0);
  const uptime = runs === 0 ? null : (runs - failures) / runs;
  const budgetSpent = uptime === null ? null : (1 - uptime) / (1 - objective);
  return {
    ...rest,
    runs,
    failures,
    uptime,
    slo: { uptime: objective, budgetSpent, met: uptime === null ? null : uptime >= objective },
    daysOverP95: basics.p95TargetMs === null ? 0 : days.filter((d) => d.p95Ms !== null && d.p95Ms > basics.p95TargetMs!).length,
    daysOverErrorRate: days.filter((d) => d.errorRate !== null && d.errorRate > SAMPLE_TARGETS.errorRate).length,
    daily: days,
  };
}

// vigil itself was down for an upgrade on days 11 and 12: the frequent probes have no data then.
const outage = (i: number) => i === 11 || i === 12;

function probes(): ProbeReport[] {
  const api = probe(
    {
      id: 'api-health',
      kind: 'http',
      p95TargetMs: SAMPLE_TARGETS.p95Ms,
      labels: { team: 'core', tier: 'public' },
      target: 'https://api.example.com/healthz',
      p50Ms: 212,
      p95Ms: 438,
      p99Ms: 1_870,
      values: {
        latency_ms: { min: 84, max: 9_120, last: 231, mean: 262.4, count: 40_142 },
        status: { min: 200, max: 503, last: 200, mean: 200.9, count: 40_142 },
      },
      last: { at: at(29, 23, 59), ok: true, code: null, message: null },
      lastSuccess: null,
      objective: 0.999,
    },
    daily((i) => {
      if (outage(i)) return null;
      if (i === 17) return { runs: 1_440, failures: 4, p95Ms: 6_240 };
      if (i === 22) return { runs: 1_440, failures: 131, p95Ms: 2_950 };
      return { runs: 1_440 - (i % 3), failures: i % 4 === 0 ? 1 : 0, p95Ms: 390 + ((i * 37) % 90) };
    }),
  );
  const cert = probe(
    {
      id: 'api-cert',
      kind: 'tls',
      p95TargetMs: SAMPLE_TARGETS.p95Ms,
      labels: { team: 'core' },
      target: 'api.example.com:443',
      p50Ms: 96,
      p95Ms: 141,
      p99Ms: null,
      values: {
        days_remaining: { min: 60, max: 89, last: 60, mean: 74.6, count: 112 },
        handshake_ms: { min: 61, max: 188, last: 92, mean: 99.3, count: 112 },
      },
      last: { at: at(29, 18), ok: true, code: null, message: null },
      lastSuccess: null,
      objective: 0.999,
    },
    daily((i) => (outage(i) ? null : { runs: 4, failures: 0, p95Ms: 120 + (i % 5) * 6 })),
  );
  const drill = probe(
    {
      id: 'db-restore',
      kind: 'restore-drill',
      p95TargetMs: null,
      labels: { team: 'data' },
      target: 's3://backups/app-db',
      p50Ms: 2_610_000,
      p95Ms: 15_190_000,
      p99Ms: 15_190_000,
      values: {
        restore_s: { min: 2_402, max: 15_120, last: 2_580, mean: 5_730, count: 4 },
        backup_age_s: { min: 1_210, max: 3_020, last: 1_900, mean: 2_140, count: 4 },
        rows_checked: { min: 1_204_330, max: 1_311_870, last: 1_311_870, mean: 1_260_113.5, count: 4 },
      },
      last: { at: at(24, 3, 53), ok: true, code: null, message: null },
      lastSuccess: { at: at(24, 3, 53), values: { restore_s: 2_580, backup_age_s: 1_900, rows_checked: 1_311_870 } },
      objective: 0.75,
    },
    daily((i) => {
      if (i === 17) return { runs: 1, failures: 1, p95Ms: 15_190_000 };
      return i % 7 === 3 ? { runs: 1, failures: 0, p95Ms: 2_500_000 + i * 5_000 } : null;
    }),
  );
  const load = probe(
    {
      id: 'checkout-load',
      kind: 'k6',
      p95TargetMs: null,
      labels: { team: 'shop' },
      target: 'load/checkout.js',
      p50Ms: 604_000,
      p95Ms: 611_000,
      p99Ms: 611_000,
      values: {
        p95_ms: { min: 1_420, max: 1_840, last: 1_840, mean: 1_605, count: 4 },
        error_rate: { min: 0.001, max: 0.004, last: 0.004, mean: 0.0022, count: 4 },
        rps: { min: 498.1, max: 512.3, last: 512.3, mean: 505.4, count: 4 },
      },
      last: { at: at(26, 2, 10), ok: true, code: null, message: null },
      lastSuccess: { at: at(26, 2, 10), values: { p95_ms: 1_840, error_rate: 0.004, rps: 512.3 } },
      objective: 0.75,
    },
    daily((i) => (i % 7 === 5 ? { runs: 1, failures: 0, p95Ms: 600_000 + i * 500 } : null)),
  );
  const logs = probe(
    {
      id: 'logs-canary',
      kind: 'log-ingestion',
      p95TargetMs: null,
      labels: { team: 'platform' },
      target: 'loki: {app="vigil-canary"}',
      p50Ms: 6_100,
      p95Ms: 12_400,
      p99Ms: 33_800,
      values: {
        ingestion_latency_ms: { min: 1_900, max: 41_000, last: 7_300, mean: 6_880, count: 7_890, p95: 12_380 },
        polls: { min: 1, max: 9, last: 2, mean: 2.4, count: 8_064 },
      },
      last: {
        at: at(29, 23, 55),
        ok: false,
        code: 'INGESTION_SLOW',
        message: 'canary seen after 41 s, over the 30 s limit\nsearch: {app="vigil-canary"} | line_format "{{.id}}"',
      },
      lastSuccess: null,
      objective: 0.99,
    },
    daily((i) => {
      if (outage(i)) return null;
      if (i === 25) return { runs: 288, failures: 20, p95Ms: 31_200 };
      return { runs: 288, failures: i % 6 === 0 ? 1 : 0, p95Ms: 8_000 + (i % 7) * 600 };
    }),
  );
  return [api, cert, drill, load, logs];
}

function incidents(): IncidentReport[] {
  const opened = (day: number, h: number, m: number) => Date.parse(at(day, h, m));
  const resolved = (start: number, ms: number) => new Date(start + ms).toISOString();
  const cache = opened(22, 9, 14);
  const drill = opened(17, 3, 10);
  return [
    {
      id: 1,
      probeId: 'db-restore',
      rule: 'failures',
      severity: 'warning',
      state: 'resolved',
      summary: 'db-restore: rto: restoring app-db-2026-11-13T03.sql.gz took 4 h 12 min, over the 4h RTO',
      openedAt: new Date(drill).toISOString(),
      ackedAt: resolved(drill, 22 * 60_000),
      ackedBy: 'bob',
      resolvedAt: resolved(drill, 6 * 3_600_000),
      ttaMs: 22 * 60_000,
      ttrMs: 6 * 3_600_000,
    },
    {
      id: 2,
      probeId: 'api-health',
      rule: 'failures',
      severity: 'critical',
      state: 'resolved',
      summary: 'api-health: 503 Service Unavailable: cache down',
      openedAt: new Date(cache).toISOString(),
      ackedAt: resolved(cache, 250_000),
      ackedBy: 'alice',
      resolvedAt: resolved(cache, 47 * 60_000),
      ttaMs: 250_000,
      ttrMs: 47 * 60_000,
    },
    {
      id: 3,
      probeId: 'logs-canary',
      rule: 'latency',
      severity: 'warning',
      state: 'open',
      summary: 'logs-canary: canary seen after 41 s, over the 30 s limit',
      openedAt: at(29, 21, 40),
      ackedAt: null,
      ackedBy: null,
      resolvedAt: null,
      ttaMs: null,
      ttrMs: null,
    },
  ];
}

/**
 * A realistic 30-day report: five probes (one of each kind but DNS) with gaps and days over target,
 * three incidents of which one is still open, and a NO-GO scorecard with one failing and one
 * unknown critical item. Each call builds a fresh object, so a test may change it in place.
 */
export function sampleReport(overrides: Partial<Report> = {}): Report {
  const all = probes();
  const list = incidents();
  const runs = all.reduce((n, p) => n + p.runs, 0);
  const failures = all.reduce((n, p) => n + p.failures, 0);
  const base: Report = {
    service: 'shop',
    generatedAt: at(30, 0, 5),
    window: { from: at(0), to: at(30), days: DAYS, basis: 'launch', launchDate: '2026-10-27' },
    targets: { ...SAMPLE_TARGETS },
    dataThrough: at(30),
    percentiles: 'p50/p95/p99 of run durations from daily sketches, within 1 % relative error',
    summary: {
      probes: all.length,
      runs,
      failures,
      uptime: (runs - failures) / runs,
      probesMeetingSlo: all.filter((p) => p.slo.met === true).length,
      incidents: list.length,
    },
    probes: all,
    incidents: {
      count: list.length,
      bySeverity: { critical: 1, warning: 2 },
      mttaMs: (22 * 60_000 + 250_000) / 2,
      mttrMs: (6 * 3_600_000 + 47 * 60_000) / 2,
      list,
      notifications: { sent: 14, delivered: 12, dead: 1, muted: 1, pending: 0, deliveryP95Ms: 1_840 },
      pagesPerPerson: { alice: 5, bob: 4, carol: 2 },
    },
    checklist: {
      ...emptyChecklist(),
      tls: [{ probeId: 'api-cert', host: 'api.example.com', daysRemaining: 60.4, minDaysRemaining: 60.4, chainValid: true, ok: true }],
      dns: [],
      logIngestion: [{ probeId: 'logs-canary', backend: 'loki', p95Ms: 12_380, maxMs: 41_000, runs: 7_776, failures: 24, ok: true }],
      restoreDrills: [
        {
          probeId: 'db-restore',
          source: 's3://backups/app-db',
          lastSuccessAt: at(24, 3, 53),
          restoreS: 2_580,
          backupAgeS: 1_900,
          withinRto: true,
          withinRpo: true,
          runs: 4,
          failures: 1,
        },
      ],
      loadRuns: [
        {
          probeId: 'checkout-load',
          script: 'load/checkout.js',
          lastSuccessAt: at(26, 2, 10),
          p95Ms: 1_840,
          errorRate: 0.004,
          rps: 512.3,
          ok: true,
          runs: 4,
          failures: 0,
        },
      ],
      firewall: [{ probeId: 'db-ssh-closed', target: 'db.example.com:22', runs: 1_440, failures: 0, ok: true }],
    },
    topFailures: [
      { code: 'HTTP_STATUS', count: 142, probes: [{ id: 'api-health', count: 142 }], firstDay: '2026-10-27', lastDay: '2026-11-24' },
      { code: 'INGESTION_SLOW', count: 24, probes: [{ id: 'logs-canary', count: 24 }], firstDay: '2026-10-27', lastDay: '2026-11-21' },
      { code: 'RTO_EXCEEDED', count: 1, probes: [{ id: 'db-restore', count: 1 }], firstDay: '2026-11-13', lastDay: '2026-11-13' },
    ],
    scorecard: {
      verdict: 'NO-GO',
      gaps: ['audit-logging', 'alerting'],
      advice: '2 critical gaps: do not launch. Close them, then run the report again.',
      items: [
        {
          id: 'backup-restore',
          tier: 'critical',
          title: 'Database backup and recovery tested',
          status: 'pass',
          evidence: [{ source: 'probe', detail: 'restored in 43 min, backup 32 min old', probes: ['db-restore'], at: at(24, 3, 53) }],
        },
        {
          id: 'tls-everywhere',
          tier: 'critical',
          title: 'TLS/HTTPS enabled for all endpoints',
          status: 'pass',
          evidence: [{ source: 'probe', detail: 'valid chain, 60 days left', probes: ['api-cert'], at: at(29, 18) }],
        },
        {
          id: 'secrets-not-in-logs',
          tier: 'critical',
          title: 'Secrets not hardcoded or in logs',
          status: 'pass',
          evidence: [{ source: 'attestation', detail: 'gitleaks scan clean, ticket SEC-142 (by dana)', at: '2026-11-20' }],
        },
        {
          id: 'audit-logging',
          tier: 'critical',
          title: 'Audit logging for all API calls',
          status: 'unknown',
          evidence: [{ source: 'none', detail: 'no probe can see it and nobody attested it' }],
        },
        {
          id: 'alerting',
          tier: 'critical',
          title: 'Alerting configured for error rate and latency',
          status: 'fail',
          evidence: [
            { source: 'config', detail: 'api-health has a failures rule but no latency rule', probes: ['api-health'] },
            { source: 'probe', detail: 'incident #2 paged and was acknowledged in 4 min 10 s', probes: ['api-health'], at: at(22, 9, 18) },
          ],
        },
        {
          id: 'load-test-10x',
          tier: 'important',
          title: 'Load testing at 10x expected traffic',
          status: 'pass',
          evidence: [{ source: 'probe', detail: 'p95 1.8 s, 0.40 % errors at 512 req/s', probes: ['checkout-load'], at: at(26, 2, 10) }],
        },
        {
          id: 'runbooks',
          tier: 'important',
          title: 'Runbooks written for common operations',
          status: 'pass',
          evidence: [{ source: 'config', detail: 'every alert rule links a runbook' }],
        },
        {
          id: 'oncall-rotation',
          tier: 'important',
          title: 'On-call rotation established',
          status: 'pass',
          evidence: [{ source: 'config', detail: 'schedule primary: 3 people, weekly handoff' }],
        },
        {
          id: 'centralized-logging',
          tier: 'important',
          title: 'Centralized logging',
          status: 'pass',
          evidence: [{ source: 'probe', detail: 'ingestion p95 12.4 s', probes: ['logs-canary'], at: at(29, 23, 55) }],
        },
        {
          id: 'multi-region-failover',
          tier: 'nice',
          title: 'Multi-region failover',
          status: 'unknown',
          evidence: [],
        },
        {
          id: 'chaos-testing',
          tier: 'nice',
          title: 'Chaos testing',
          status: 'fail',
          evidence: [{ source: 'attestation', detail: 'no experiment run yet (by erin)', at: '2026-11-18' }],
        },
        {
          id: 'security-scanning',
          tier: 'nice',
          title: 'Advanced security scanning',
          status: 'pass',
          evidence: [{ source: 'attestation', detail: 'weekly DAST in CI (by dana)', at: '2026-11-20' }],
        },
      ],
    },
  };
  return { ...base, ...overrides };
}
