import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { probers } from '../../src/probers/index.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';
import { freePort, target, workspace } from '../helpers/workspace.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DASHBOARD = path.join(ROOT, 'grafana/dashboards/vigil.json');
const RULES = path.join(ROOT, 'grafana/prometheus/vigil-rules.yml');
const RULES_TEST = path.join(ROOT, 'grafana/prometheus/vigil-rules.test.yml');
const OPS = 'ops-token-5e3b1a9c7d2f';
const NEVER = '"0 3 1 1 *"';

interface Target {
  expr: string;
  refId: string;
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  refresh: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; includeAll?: boolean; allValue?: string }> };
}
interface QueryResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, refId: t.refId, expr: t.expr })));

/** What Grafana would send with every variable at "All" and a 5-minute range. */
function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '5m')
    .replace(/\$\{?(probe|kind|location)\}?/g, '.*');
}

describe('Grafana dashboard against real Prometheus scraping a running vigil', () => {
  let app: App;
  let ws: ReturnType<typeof workspace>;
  let upstream: Awaited<ReturnType<typeof target>>;
  let hook: Awaited<ReturnType<typeof target>>;
  let prom: ChildProcess | undefined;
  let promDir: string;
  let promUrl: string;

  const query = async (q: string): Promise<QueryResult> => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    return (await res.json()) as QueryResult;
  };
  const series = (q: string) =>
    query(q).then(
      (r) => r.data?.result ?? [],
      () => [],
    );

  beforeAll(async () => {
    upstream = await target((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end('{"status":"ok"}');
    });
    hook = await target((_req, res) => {
      res.statusCode = 204;
      res.end();
    });
    // One http probe that runs every second; one probe of every other kind, declared but never due,
    // so each checklist panel has its series (NaN until a run); one channel, one on-call schedule.
    ws = workspace({
      'config/default.yaml': `
service: { port: 0, host: 127.0.0.1 }
storage: { sqlite: { path: ":memory:" } }
auth: { tokens: [{ name: ops, token: "\${OPS}", role: operator }] }
people:
  alice: { name: Alice Ng, email: alice@example.com }
schedules:
  primary:
    timezone: UTC
    layers: [{ rotation: weekly, handoff: "mon 09:00", start: 2026-01-05, participants: [alice] }]
channels:
  hook: { type: webhook, url: "${hook.url}/vigil" }
`,
      'probes/browser/login.js': 'export default async function () {}\n',
      'probes/all.yaml': `
- { id: web, kind: http, url: "${upstream.url}/health", schedule: { every: 1s } }
- { id: cert, kind: tls, host: example.com, schedule: ${NEVER} }
- { id: api-dns, kind: dns, name: api.example.com, type: A, expect: [192.0.2.10], resolvers: [8.8.8.8], schedule: ${NEVER} }
- { id: logs-canary, kind: log-ingestion, backend: loki, url: "http://127.0.0.1:9", timeout: 45s, maxLatency: 30s, schedule: ${NEVER} }
- id: db-restore
  kind: restore-drill
  source: { type: postgres, dir: /nonexistent }
  target: { url: "postgresql://drill@127.0.0.1:9/postgres" }
  schedule: ${NEVER}
- { id: load, kind: k6, script: load/api-10x.js, schedule: ${NEVER} }
- { id: gateway, kind: icmp, host: 127.0.0.1, schedule: ${NEVER} }
- { id: nightly-backup, kind: push, token: grafana-test-push-token-0123, period: 1d, schedule: ${NEVER} }
- { id: db-ssh-closed, kind: tcp, host: 127.0.0.1, port: 9, refused: true, schedule: ${NEVER} }
- { id: api-grpc, kind: grpc, target: "127.0.0.1:9", schedule: ${NEVER} }
- { id: live, kind: websocket, url: "ws://127.0.0.1:9/live", schedule: ${NEVER} }
- { id: shop-lb, kind: load-balancer, url: "http://127.0.0.1:9/", resolve: all, schedule: ${NEVER} }
- { id: uploads, kind: object-storage, endpoint: "http://127.0.0.1:9", bucket: canary, accessKeyId: k, secretAccessKey: s, schedule: ${NEVER} }
- { id: cache, kind: redis, url: "redis://127.0.0.1:9", schedule: ${NEVER} }
- { id: tasks, kind: queue, broker: amqp, url: "amqp://127.0.0.1:9", schedule: ${NEVER} }
- { id: orders-db, kind: sql, driver: postgres, url: "postgres://app@127.0.0.1:9/app", query: "select 1", schedule: ${NEVER} }
- { id: pii-in-logs, kind: log-query, backend: loki, url: "http://127.0.0.1:9", query: '{app="shop"} |= "password="', window: 15m, expect: { max: 0 }, schedule: ${NEVER} }
- { id: login-journey, kind: browser, script: browser/login.js, schedule: ${NEVER} }
- { id: shop-journey, kind: multistep, steps: [{ name: login, url: "http://127.0.0.1:9/login" }], schedule: ${NEVER} }
- { id: checkout, kind: browser, script: browser/checkout.js, schedule: ${NEVER} }
- id: db-password-rotation
  kind: secret-rotation
  source: { url: "http://127.0.0.1:9/v1/secret/metadata/db", path: data.current_version }
  services: [{ name: api, url: "http://127.0.0.1:9/version", path: version }]
  schedule: ${NEVER}
`,
      'probes/browser/checkout.js': 'export default async (page) => { await page.goto("http://127.0.0.1:9/"); };\n',
    });
    app = createApp({ config: loadConfig({ cwd: ws.dir, env: { OPS } }), logger: memoryLogger().logger });
    const address = await app.start();
    const vigil = new URL(address).host;

    promDir = mkdtempSync(path.join(tmpdir(), 'vigil-grafana-'));
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    writeFileSync(
      path.join(promDir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }\nrule_files: ["${RULES}"]\n` +
        `scrape_configs:\n  - job_name: vigil\n    static_configs: [{ targets: ["${vigil}"] }]\n`,
    );
    prom = spawn(
      'prometheus',
      [
        `--config.file=${promDir}/prometheus.yml`,
        `--storage.tsdb.path=${promDir}/data`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: 'ignore' },
    );

    // A delivered notification, so the delivery-latency histogram has an observation, sent after a
    // first scrape so that Prometheus sees its count go from 0 to 1.
    await waitFor('a first scrape', async () => (await series('vigil_notification_delivery_seconds_count')).length > 0, 10_000);
    const sent = await app.server.inject({
      method: 'POST',
      url: '/api/v1/channels/hook/test',
      headers: { authorization: `Bearer ${OPS}` },
    });
    expect(sent.statusCode).toBe(202);

    // Until Prometheus has seen the counters move between scrapes, so rate() has something to say.
    const ready = async () =>
      (await series('rate(vigil_probe_runs_total{probe="web",outcome="success"}[1m]) > 0')).length > 0 &&
      (await series('rate(vigil_notification_delivery_seconds_count[1m]) > 0')).length > 0 &&
      (await series('rate(vigil_scheduler_lag_seconds_count[1m]) > 0')).length > 0;
    await waitFor('Prometheus to see the counters move between scrapes', ready, 25_000);
  });

  afterAll(async () => {
    prom?.kill('SIGKILL');
    await app?.stop();
    await upstream?.close();
    await hook?.close();
    ws?.remove();
    if (promDir) rmSync(promDir, { recursive: true, force: true });
  });

  it('is a provisionable dashboard: datasource variable, probe/kind/location variables, 30 s refresh', () => {
    expect(dashboard.refresh).toBe('30s');
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const name of ['probe', 'kind', 'location']) {
      expect(vars[name]).toMatchObject({ type: 'query', includeAll: true, allValue: '.*' });
      expect(JSON.stringify(vars[name]?.query)).toContain(`label_values(vigil_probe_success, ${name})`);
    }
    const withQueries = dashboard.panels.filter((p) => p.type !== 'row');
    expect(withQueries.map((p) => p.title)).toEqual([
      'Probe status',
      'Probe status per location',
      'Success rate',
      'p95 latency per probe',
      'Uptime over the range',
      'Time since the last success',
      'TLS days remaining',
      'DNS propagation',
      'Log-ingestion latency',
      'Restore drill time and backup age',
      'Load runs: p95 and error rate',
      'ICMP round trip and loss',
      'Push check-ins: time since the last success',
      'Ports and protocols (tcp, grpc, websocket)',
      'Open incidents',
      'Notifications by outcome',
      'Notification delivery latency',
      'Who is on call',
      'Scheduler lag',
      'Outbox backlog',
    ]);
    for (const p of withQueries) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });

  it('uses only metrics vigil exports', async () => {
    const exposed = (await app.server.inject({ method: 'GET', url: '/metrics' })).body;
    const names = new Set(queries.flatMap((q) => q.expr.match(/\bvigil_[a-z0-9_]+/g) ?? []));
    expect(names.size).toBeGreaterThan(10);
    for (const name of names) expect(exposed, name).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
  });

  it('answers the template variable queries', async () => {
    const values = async (label: string) => {
      const res = await fetch(`${promUrl}/api/v1/label/${label}/values?match[]=vigil_probe_success`);
      return ((await res.json()) as { data: string[] }).data;
    };
    expect((await values('probe')).sort()).toEqual([
      'api-dns',
      'api-grpc',
      'cache',
      'cert',
      'checkout',
      'db-password-rotation',
      'db-restore',
      'db-ssh-closed',
      'gateway',
      'live',
      'load',
      'login-journey',
      'logs-canary',
      'nightly-backup',
      'orders-db',
      'pii-in-logs',
      'shop-journey',
      'shop-lb',
      'tasks',
      'uploads',
      'web',
    ]);
    // Every registered kind has a probe here, so every kind's series reach Prometheus.
    expect((await values('kind')).sort()).toEqual(Object.keys(probers).sort());
    expect(await values('location')).toEqual([]); // no location label yet: "All" (.*) keeps every query whole
  });

  it('evaluates every panel query: each parses and returns series', async () => {
    expect(queries.length).toBeGreaterThanOrEqual(20);
    const empty: string[] = [];
    for (const q of queries) {
      const res = await query(substitute(q.expr));
      expect(res.status, `${q.panel} ${q.refId}: ${res.error ?? ''}`).toBe('success');
      if ((res.data?.result.length ?? 0) === 0) empty.push(`${q.panel} ${q.refId}: ${q.expr}`);
    }
    expect(empty).toEqual([]);
    // And the series are the ones the panels are about, with real numbers where vigil has data.
    const p95 = await series(substitute(queries.find((q) => q.panel === 'p95 latency per probe')!.expr));
    const web = p95.find((s) => s.metric.probe === 'web');
    expect(Number(web?.value[1])).toBeGreaterThan(0);
    const status = await series(substitute(queries.find((q) => q.panel === 'Probe status')!.expr));
    expect(status.find((s) => s.metric.probe === 'web')?.value[1]).toBe('1');
    const onCall = await series('vigil_oncall == 1');
    expect(onCall.map((s) => [s.metric.schedule, s.metric.person])).toEqual([['primary', 'alice']]);
  });

  it('ships alert rules that promtool accepts and tests, and that Prometheus loads quietly', async () => {
    execFileSync('promtool', ['check', 'rules', RULES], { stdio: 'pipe' });
    execFileSync('promtool', ['test', 'rules', RULES_TEST], { stdio: 'pipe', cwd: path.dirname(RULES_TEST) });

    const alerts = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> }).groups.flatMap((g) =>
      g.rules.map((r) => r.alert),
    );
    expect(alerts).toEqual([
      'VigilDown',
      'VigilSchedulerStalled',
      'VigilOutboxStuck',
      'VigilNotificationsDead',
      'VigilSelfBackupStale',
      'VigilConfigReloadFailed',
    ]);
    const rules = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ rules: Array<{ name: string; health: string; state: string }> }> };
    };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name)).toEqual(alerts);
    for (const r of loaded) expect([r.name, r.health]).not.toEqual([r.name, 'err']);
    // A healthy vigil sets none of them off.
    expect(loaded.filter((r) => r.state !== 'inactive').map((r) => r.name)).toEqual([]);
  });
});
