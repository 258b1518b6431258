import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import type { Report } from '../../src/report/index.js';
import type { RunRecord } from '../../src/store/index.js';
import { SKETCH_ALPHA } from '../../src/store/sketch.js';
import { expectCleanLoad, openInBrowser, SKIP_BROWSER, SKIP_NOTE } from '../helpers/browser.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { workspace } from '../helpers/workspace.js';

// A seeded three-day history after a launch, and the report's figures checked against values
// worked out by hand below (not by running the same code twice).

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const LAUNCH = Date.UTC(2026, 10, 2); // 2026-11-02, the configured launch date
const NOW = LAUNCH + 3 * DAY + 30 * MIN;

const CONFIG = `
service: { name: shop }
storage: { sqlite: { path: ./data/vigil.db } }
people:
  alice: { name: Alice Ng, email: alice@example.com }
  bob: { name: Bob Ruiz, email: bob@example.com }
schedules:
  primary: { timezone: UTC, layers: [{ rotation: weekly, handoff: "mon 09:00", start: 2026-11-02, participants: [alice, bob] }] }
escalation:
  page-primary: { steps: [{ notify: ["oncall:primary"] }] }
channels:
  ops: { type: webhook, url: "http://127.0.0.1:9/hook" }
report:
  launchDate: 2026-11-02
  attestations:
    secrets-not-in-logs: { status: pass, by: alice, date: 2026-11-01, evidence: "gitleaks in CI, 0 findings" }
    audit-logging: { status: pass, by: bob, date: 2026-10-30, evidence: "API gateway access logs to S3, checked" }
`;

const PROBES = `
- id: api
  kind: http
  url: https://api.example.com/health
  schedule: "0 * * * *"
  expect: { maxLatency: 5s }
  alert: { failures: 2, errorRate: { over: 10m, above: 5% }, policy: page-primary, channels: [ops], severity: critical, runbook: https://wiki.example.com/rb/api }
- id: api-tls
  kind: tls
  host: api.example.com
  schedule: "0 12 * * *"
- id: db-restore
  kind: restore-drill
  schedule: "0 3 * * *"
  source: { type: sqlite, dir: /backups }
- id: load
  kind: k6
  script: load/api-10x.js
  schedule: "0 4 * * *"
- id: logs
  kind: log-ingestion
  backend: loki
  url: http://vigil:loki-basic-pass@loki.internal:3100
  schedule: "0 * * * *"
  alert: { failures: 1, severity: warning, channels: [ops] }
`;

function run(
  probeId: string,
  kind: string,
  startedAt: number,
  durationMs: number,
  ok: boolean,
  values: Record<string, number> = {},
  code?: string,
): RunRecord {
  return {
    probeId,
    kind,
    startedAt,
    durationMs,
    ok,
    ...(ok ? {} : { code: code ?? 'HTTP_STATUS', message: 'failed' }),
    values,
    attempts: 1,
    trigger: 'schedule',
  };
}

/** The history, by hand: see each probe's comment for the figures it must produce. */
function history(): RunRecord[] {
  const runs: RunRecord[] = [];
  for (let h = 0; h < 72; h++) {
    const at = LAUNCH + h * HOUR;
    const day = Math.floor(h / 24);
    const hour = h % 24;
    // api: day 1 durations 10, 20 … 240 ms (p95 = the 22nd smallest = 220 ms); day 2 fails at 05, 06,
    // 07 (3/24 = 12.5 % errors, p95 100 ms); day 3 every run 6 s (p95 6,000 ms, over the 5 s target).
    if (day === 0) runs.push(run('api', 'http', at, 10 * (hour + 1), true));
    else if (day === 1) runs.push(hour >= 5 && hour <= 7 ? run('api', 'http', at, 50, false) : run('api', 'http', at, 100, true));
    else runs.push(run('api', 'http', at, 6_000, true));
    // logs: searchable after 2 s, except 3 slow runs of 40 s: p95 (rank 67 of 72) is 2 s.
    runs.push(run('logs', 'log-ingestion', at + 5 * MIN, 2_500, true, { ingestion_latency_ms: h % 24 === 9 ? 40_000 : 2_000 }));
  }
  for (let d = 0; d < 3; d++) {
    runs.push(run('api-tls', 'tls', LAUNCH + d * DAY + 12 * HOUR, 30, true, { days_remaining: 40 - d, chain_valid: 1 }));
  }
  // The restore drill failed the first night and restored in 2 min from a 30-min-old backup the second.
  runs.push(run('db-restore', 'restore-drill', LAUNCH + 3 * HOUR, 5_000, false, {}, 'RESTORE'));
  runs.push(run('db-restore', 'restore-drill', LAUNCH + DAY + 3 * HOUR, 125_000, true, { restore_s: 120, backup_age_s: 1_800 }));
  runs.push(run('load', 'k6', LAUNCH + DAY + 4 * HOUR, 300_000, true, { p95_ms: 800, error_rate: 0.01, rps: 250 }));
  return runs.sort((a, b) => a.startedAt - b.startedAt);
}

describe('the 30-day report on a seeded history', () => {
  let ws: ReturnType<typeof workspace>;
  let app: App;
  let clock: ManualClock;

  beforeEach(async () => {
    ws = workspace({
      'config/default.yaml': CONFIG,
      'probes/shop.yaml': PROBES,
      'probes/load/api-10x.js': 'export default function () {}\n',
    });
    clock = new ManualClock(NOW);
    app = createApp({ config: loadConfig({ cwd: ws.dir, env: {} }), logger: memoryLogger().logger, clock });
    for (const r of history()) app.store.append(r);
    await app.store.flush();
    // Two of the three days rolled up; the third is read from raw runs.
    expect(await app.store.rollups!.rollUp(LAUNCH + 2 * DAY + 10 * MIN)).toBe(48);
    await seedIncidents(app);
  });
  afterEach(async () => {
    await app.server.close();
    await app.store.close();
    ws.remove();
  });

  const get = async (url: string) => {
    const res = await app.server.inject({ url });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Report;
  };
  const within = (got: number | null, want: number) => {
    expect(got).not.toBeNull();
    expect(Math.abs(got! - want) / want).toBeLessThanOrEqual(SKETCH_ALPHA + 1e-12);
  };

  it('computes uptime, daily p95 and error rate, SLO budget, MTTA/MTTR and the checklist evidence', async () => {
    const r = await get('/api/v1/report');
    expect(r.window).toMatchObject({ from: iso(LAUNCH), to: iso(NOW), basis: 'launch', launchDate: '2026-11-02' });
    const api = r.probes.find((p) => p.id === 'api')!;
    expect(api).toMatchObject({ runs: 72, failures: 3, target: 'https://api.example.com/health', daysOverP95: 1, daysOverErrorRate: 1 });
    // A store's Basic-auth password in its URL is no part of what the report calls the target.
    expect(r.probes.find((p) => p.id === 'logs')?.target).toBe('loki http://loki.internal:3100/');
    expect(JSON.stringify(r)).not.toContain('loki-basic-pass');
    expect(api.uptime).toBeCloseTo(69 / 72, 12);
    // 3 failures in 72 runs against a 0.1 % budget: 41.7 budgets spent.
    expect(api.slo.budgetSpent).toBeCloseTo(3 / 72 / 0.001, 6);
    expect(api.slo.met).toBe(false);
    expect(api.daily.map((d) => d.day)).toEqual(['2026-11-02', '2026-11-03', '2026-11-04', '2026-11-05']);
    within(api.daily[0]!.p95Ms, 220);
    within(api.daily[1]!.p95Ms, 100);
    expect(api.daily[2]!.p95Ms).toBe(6_000);
    expect(api.daily.map((d) => d.errorRate)).toEqual([0, 3 / 24, 0, null]);
    expect(api.daily.map((d) => d.ok)).toEqual([true, false, false, null]);
    // Window p95: rank 67 of the 72 sorted durations falls in day 3's 6 s runs.
    within(api.p95Ms, 6_000);

    expect(r.summary).toMatchObject({ probes: 5, runs: 72 + 72 + 3 + 2 + 1, failures: 4, incidents: 2 });

    // Incident 1 acked after 4 min, resolved after 3 h; incident 2 after 10 min and 1 h.
    expect(r.incidents.count).toBe(2);
    expect(r.incidents.mttaMs).toBe(7 * MIN);
    expect(r.incidents.mttrMs).toBe(2 * HOUR);
    expect(r.incidents.list.map((i) => [i.probeId, i.ttaMs, i.ttrMs])).toEqual([
      ['api', 4 * MIN, 3 * HOUR],
      ['logs', 10 * MIN, HOUR],
    ]);
    // Deliveries took 2 s, 5 s and 1 s: p95 is rank 1 of 3 = 2 s; the muted page is not a delivery.
    expect(r.incidents.notifications).toMatchObject({ sent: 3, delivered: 3, muted: 1, dead: 0, deliveryP95Ms: 2_000 });
    expect(r.incidents.pagesPerPerson).toEqual({ alice: 2, bob: 1 });

    expect(r.checklist.tls).toEqual([
      { probeId: 'api-tls', host: 'api.example.com:443', daysRemaining: 38, minDaysRemaining: 38, chainValid: true, ok: true },
    ]);
    expect(r.checklist.restoreDrills).toEqual([
      {
        probeId: 'db-restore',
        source: 'sqlite',
        lastSuccessAt: iso(LAUNCH + DAY + 3 * HOUR),
        restoreS: 120,
        backupAgeS: 1_800,
        withinRto: true,
        withinRpo: true,
        runs: 2,
        failures: 1,
      },
    ]);
    expect(r.checklist.loadRuns[0]).toMatchObject({ probeId: 'load', p95Ms: 800, errorRate: 0.01, rps: 250, ok: true });
    const logs = r.checklist.logIngestion[0]!;
    within(logs.p95Ms, 2_000);
    expect(logs).toMatchObject({ maxMs: 40_000, runs: 72, failures: 0, ok: true });
    expect(r.topFailures).toEqual([
      { code: 'HTTP_STATUS', count: 3, probes: [{ id: 'api', count: 3 }], firstDay: '2026-11-03', lastDay: '2026-11-03' },
      { code: 'RESTORE', count: 1, probes: [{ id: 'db-restore', count: 1 }], firstDay: '2026-11-02', lastDay: '2026-11-02' },
    ]);
  });

  it('says GO with every critical item evidenced, and NO-GO listing the gaps once evidence goes stale', async () => {
    const r = await get('/api/v1/report');
    const status = Object.fromEntries(r.scorecard.items.map((i) => [i.id, i.status]));
    expect(status).toEqual({
      'backup-restore': 'pass',
      'tls-everywhere': 'pass',
      'secrets-not-in-logs': 'pass',
      'audit-logging': 'pass',
      alerting: 'pass',
      'load-test-10x': 'pass',
      runbooks: 'pass',
      'oncall-rotation': 'pass',
      'centralized-logging': 'pass',
      // No tcp probe with refused: true in this history: no evidence either way.
      firewall: 'unknown',
      'cache-persistence': 'unknown',
      'queue-delivery': 'unknown',
      'load-balancer': 'unknown',
      'object-storage': 'unknown',
      replication: 'unknown',
      'credentials-separation': 'unknown',
      'log-retention': 'unknown',
      'structured-logging': 'unknown',
      'secret-rotation': 'unknown',
      'multi-region-failover': 'unknown',
      'chaos-testing': 'unknown',
      'security-scanning': 'unknown',
    });
    expect(r.scorecard).toMatchObject({ verdict: 'GO', gaps: [] });
    const backup = r.scorecard.items.find((i) => i.id === 'backup-restore')!;
    expect(backup.evidence[0]).toMatchObject({ source: 'probe', probes: ['db-restore'], at: iso(LAUNCH + DAY + 3 * HOUR) });
    const secrets = r.scorecard.items.find((i) => i.id === 'secrets-not-in-logs')!;
    expect(secrets.evidence).toEqual([
      { source: 'attestation', detail: 'pass by alice: gitleaks in CI, 0 findings', at: '2026-11-01T00:00:00.000Z' },
    ]);

    // 95 days on: the 30-day window ends 2026-12-02, the restore drill is 28 days older than that
    // (over the 7-day limit), and both attestations are past 90 days.
    clock.advanceSync(LAUNCH + 95 * DAY - NOW);
    const later = await get('/api/v1/report');
    expect(later.window).toMatchObject({ from: iso(LAUNCH), to: iso(LAUNCH + 30 * DAY), basis: 'launch' });
    expect(later.scorecard.verdict).toBe('NO-GO');
    expect(later.scorecard.gaps).toEqual(['backup-restore', 'secrets-not-in-logs', 'audit-logging']);
    expect(later.scorecard.advice).toBe('NO-GO: 3 critical gaps; delay the launch.');
    expect(later.scorecard.items.find((i) => i.id === 'secrets-not-in-logs')!.evidence[0]!.detail).toMatch(/not counted/);
  });

  it('answers a shorter window, HTML with a strict CSP, Markdown, and 400s for a bad query', async () => {
    const two = await get(`/api/v1/report?days=2&from=${LAUNCH + DAY}`);
    expect(two.window).toMatchObject({ from: iso(LAUNCH + DAY), to: iso(LAUNCH + 3 * DAY), days: 2, basis: 'query' });
    expect(two.probes.find((p) => p.id === 'api')).toMatchObject({ runs: 48, failures: 3 });

    const html = await app.server.inject({ url: '/api/v1/report', headers: { accept: 'text/html' } });
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-/);
    expect(html.body).toContain('GO');
    expect(html.body).not.toContain('<script');

    const md = await app.server.inject({ url: '/api/v1/report?format=md' });
    expect(md.headers['content-type']).toBe('text/markdown; charset=utf-8');
    expect(md.body).toMatch(/^# shop/);

    for (const [url, message] of [
      ['/api/v1/report?days=0', 'querystring/days must be >= 1'],
      ['/api/v1/report?format=pdf', 'querystring/format must be equal to one of the allowed values'],
      ['/api/v1/report?from=yesterday', 'querystring/from must be an ISO 8601 date-time or epoch milliseconds, got "yesterday"'],
      ['/api/v1/report?from=2099-01-01', 'querystring/from must be in the past'],
      ['/api/v1/report?colour=red', 'querystring must NOT have additional properties'],
    ] as const) {
      const res = await app.server.inject({ url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().message, url).toBe(message);
    }
  });

  it('serves the status page: states, a 24-hour strip, open incidents, who is on call', async () => {
    app.store.append(run('api', 'http', NOW - 2 * MIN, 40, false));
    await app.store.flush();
    const res = await app.server.inject({ url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toMatch(/style-src 'sha256-/);
    expect(res.body).toContain('api-tls');
    expect(res.body).toContain('/api/v1/report?format=html');
    expect(res.body).toContain('Alice Ng');
    // A wall screen asks for the reload; a reader is not reloaded under (WCAG 2.2.1).
    expect(res.body).not.toContain('http-equiv="refresh"');
    expect((await app.server.inject({ url: '/?refresh=30' })).body).toMatch(/http-equiv="refresh" content="30"/);
  });
});

describe('the report and the status page in headless Chromium', () => {
  let ws: ReturnType<typeof workspace>;
  let app: App;

  beforeEach(async () => {
    ws = workspace({
      'config/default.yaml': CONFIG,
      'probes/shop.yaml': PROBES,
      'probes/load/api-10x.js': 'export default function () {}\n',
    });
    app = createApp({ config: loadConfig({ cwd: ws.dir, env: {} }), logger: memoryLogger().logger, clock: new ManualClock(NOW) });
    for (const r of history()) app.store.append(r);
    await app.store.flush();
    await app.store.rollups!.rollUp(NOW);
    await seedIncidents(app);
  });
  afterEach(async () => {
    await app.server.close();
    await app.store.close();
    ws.remove();
  });

  it.skipIf(SKIP_BROWSER)(
    `renders both pages with their charts, no console errors and no CSP violations${SKIP_NOTE}`,
    async () => {
      const base = await app.server.listen({ host: '127.0.0.1', port: 0 });
      const report = await openInBrowser(`${base}/api/v1/report?format=html`, { screenshot: 'test-artifacts/report.png' });
      try {
        expectCleanLoad(report);
        expect(report.title).toContain('shop');
        expect(report.text).toContain('GO');
        expect(report.text).toContain('db-restore');
        // Per probe two daily charts, plus uptime bars and the incident timeline.
        expect(report.svgCount).toBeGreaterThanOrEqual(5 * 2 + 2);
      } finally {
        await report.close();
      }
      const status = await openInBrowser(`${base}/`, { screenshot: 'test-artifacts/status.png' });
      try {
        expectCleanLoad(status);
        expect(status.svgCount).toBeGreaterThanOrEqual(5);
        expect(status.text).toContain('api-tls');
      } finally {
        await status.close();
      }
    },
    90_000,
  );
});

function iso(t: number): string {
  return new Date(t).toISOString();
}

/** Two incidents in the window (and one resolved before it), with their pages. */
async function seedIncidents(app: App) {
  const alerts = app.store.alerts;
  const open = (probeId: string, severity: 'critical' | 'warning', at: number) =>
    alerts.applyIncidentChange({
      open: {
        probeId,
        rule: 'failures',
        kind: 'http',
        severity,
        state: 'open',
        summary: `${probeId} failing`,
        labels: {},
        channels: ['ops'],
        openedAt: at,
        flapping: false,
        notified: true,
      },
      event: { at, type: 'opened', actor: 'vigil' },
      notify: [],
    });
  const close = async (id: number, ackAt: number, by: string, resolveAt: number) => {
    await alerts.applyIncidentChange({
      id,
      patch: { state: 'acknowledged', ackedAt: ackAt, ackedBy: by },
      event: { at: ackAt, type: 'acknowledged', actor: by },
      notify: [],
    });
    await alerts.applyIncidentChange({
      id,
      patch: { state: 'resolved', resolvedAt: resolveAt, resolvedBy: 'vigil' },
      event: { at: resolveAt, type: 'resolved', actor: 'vigil' },
      notify: [],
    });
  };
  const old = await open('api', 'critical', LAUNCH - 2 * DAY);
  await close(old.id, LAUNCH - 2 * DAY + MIN, 'alice', LAUNCH - 2 * DAY + HOUR);

  const first = LAUNCH + DAY + 5 * HOUR + MIN;
  const a = await open('api', 'critical', first);
  await close(a.id, first + 4 * MIN, 'alice', first + 3 * HOUR);
  const second = LAUNCH + 2 * DAY + 10 * HOUR;
  const b = await open('logs', 'warning', second);
  await close(b.id, second + 10 * MIN, 'bob', second + HOUR);

  const page = async (incidentId: number, recipient: string, action: 'trigger' | 'remind', at: number, tookMs: number) => {
    const [item] = await alerts.enqueue([{ incidentId, channel: 'ops', recipient, action, dedupKey: `k${incidentId}`, payload: {} }], at);
    await alerts.markDelivered(item!.id, at + tookMs);
  };
  await page(a.id, 'alice', 'trigger', first, 2_000);
  await page(b.id, 'bob', 'trigger', second, 5_000);
  await page(a.id, 'alice', 'remind', first + 2 * MIN, 1_000);
  await alerts.enqueue(
    [{ incidentId: b.id, channel: 'ops', action: 'trigger', dedupKey: 'muted', payload: {}, mutedReason: 'silenced' }],
    second,
  );
}
