/**
 * The `alertmanager` channel against the real Alertmanager (Debian's prometheus-alertmanager),
 * started here on a free port with no cluster gossip, routing every alert to a webhook receiver in
 * this test: an incident's alert arrives grouped with its labels, resolves when vigil resolves it,
 * and stays firing past resolve_timeout and its own endsAt for as long as vigil re-sends it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { alertmanager } from '../../src/notify/channels/alertmanager.js';
import type { Channel, Notification } from '../../src/notify/index.js';
import { memoryLogger } from '../helpers/context.js';
import { sendContext, testNotification } from '../helpers/notification.js';
import { closedPort, startHttp, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { target, workspace } from '../helpers/workspace.js';

const BINARY = findBinary('prometheus-alertmanager');
const AMTOOL = findBinary('amtool');

/** What Alertmanager's webhook receiver posts (payload version 4). */
interface WebhookMessage {
  status: 'firing' | 'resolved';
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  alerts: Array<{
    status: 'firing' | 'resolved';
    labels: Record<string, string>;
    annotations: Record<string, string>;
    startsAt: string;
    endsAt: string;
    generatorURL: string;
  }>;
}

function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {}
  }
  return undefined;
}

describe.skipIf(BINARY === undefined)('alertmanager channel against the real Alertmanager', { timeout: 30_000 }, () => {
  let dir: string;
  let am: ChildProcess;
  let amUrl: string;
  let amLog = '';
  let receiver: TestServer;
  const received: WebhookMessage[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vigil-alertmanager-'));
    receiver = await startHttp((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push(JSON.parse(body) as WebhookMessage);
        res.writeHead(200).end();
      });
    });
    writeFileSync(
      path.join(dir, 'alertmanager.yml'),
      stringify({
        // Short, so the case below shows vigil's resends (not Alertmanager's own clock) keep an alert alive.
        global: { resolve_timeout: '1s' },
        route: {
          receiver: 'vigil-test',
          group_by: ['alertname', 'probe'],
          group_wait: '200ms',
          group_interval: '500ms',
          repeat_interval: '1h',
        },
        receivers: [{ name: 'vigil-test', webhook_configs: [{ url: `${receiver.url}/hook`, send_resolved: true }] }],
      }),
    );
    const port = await closedPort();
    amUrl = `http://127.0.0.1:${port}`;
    am = spawn(
      BINARY as string,
      [
        `--config.file=${path.join(dir, 'alertmanager.yml')}`,
        `--storage.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        // Empty: no gossip, so parallel test runs never find each other.
        '--cluster.listen-address=',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (c: Buffer) => {
      amLog = (amLog + c.toString()).slice(-4000);
    };
    am.stdout?.on('data', keep);
    am.stderr?.on('data', keep);
    await waitFor(
      'Alertmanager ready',
      async () => (await fetch(`${amUrl}/-/ready`)).ok,
      15_000,
      () => amLog,
    );
  });

  afterAll(async () => {
    if (am && am.exitCode === null) {
      const exited = new Promise((r) => am.once('exit', r));
      am.kill('SIGTERM');
      await exited;
    }
    await receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function channel(resendInterval: string): Channel {
    return alertmanager.create(
      'am',
      { urls: [amUrl], resendInterval, labels: { env: 'test' } },
      { logger: memoryLogger().logger, clock: systemClock },
    );
  }

  function page(probeId: string, over: Partial<Notification> = {}, incident: Partial<Notification['incident']> = {}): Notification {
    return testNotification(
      {
        openedAt: Date.now() - 60_000,
        links: { incident: `http://vigil.example.com/api/v1/incidents/7`, runbook: 'https://wiki.example.com/rb' },
      },
      over,
      { probeId, key: `${probeId}/failures/7`, ...incident },
    );
  }

  /** The messages the receiver got for one probe's alert group. */
  const about = (probe: string, status?: 'firing' | 'resolved') =>
    received.filter((m) => m.groupLabels.probe === probe && (status === undefined || m.status === status));

  async function activeAlerts(probe: string): Promise<Array<{ labels: Record<string, string>; status: { state: string } }>> {
    const res = await fetch(
      `${amUrl}/api/v2/alerts?filter=${encodeURIComponent(`probe="${probe}"`)}&active=true&silenced=true&inhibited=true`,
    );
    expect(res.status).toBe(200);
    return (await res.json()) as Array<{ labels: Record<string, string>; status: { state: string } }>;
  }

  it('delivers an incident that arrives grouped with its labels, and resolves when vigil resolves it', async () => {
    const ch = channel('1m');
    try {
      await ch.send(page('api-health'), sendContext());
      const [firing] = await waitFor(
        'the firing notification',
        () => about('api-health', 'firing').length > 0 && about('api-health', 'firing'),
        10_000,
        () => amLog,
      );
      expect(firing?.groupLabels).toEqual({ alertname: 'VigilProbeFailing', probe: 'api-health' });
      expect(firing?.alerts).toHaveLength(1);
      expect(firing?.alerts[0]).toMatchObject({
        status: 'firing',
        labels: {
          alertname: 'VigilProbeFailing',
          probe: 'api-health',
          kind: 'http',
          rule: 'failures',
          severity: 'critical',
          team: 'core',
          env: 'test',
        },
        annotations: {
          summary: 'api-health: 503 Service Unavailable: cache down',
          runbook_url: 'https://wiki.example.com/rb',
          incident_url: 'http://vigil.example.com/api/v1/incidents/7',
        },
        generatorURL: 'http://vigil.example.com/api/v1/incidents/7',
      });

      // Acknowledged: the same alert (same labels), its annotations updated; Alertmanager sends nothing new for it.
      const ackedAt = Date.now();
      await ch.send(page('api-health', { action: 'acknowledge' }, { state: 'acknowledged', ackedAt, ackedBy: 'alice' }), sendContext());
      const [acked] = await activeAlerts('api-health');
      expect(acked?.labels.alertname).toBe('VigilProbeFailing');
      const annotated = (await (await fetch(`${amUrl}/api/v2/alerts?filter=${encodeURIComponent('probe="api-health"')}`)).json()) as Array<{
        annotations: Record<string, string>;
      }>;
      expect(annotated).toHaveLength(1);
      expect(annotated[0]?.annotations.acknowledged_by).toBe('alice');

      await ch.send(page('api-health', { action: 'resolve' }, { state: 'resolved', resolvedAt: Date.now() }), sendContext());
      const [resolved] = await waitFor(
        'the resolved notification',
        () => about('api-health', 'resolved').length > 0 && about('api-health', 'resolved'),
        10_000,
        () => amLog,
      );
      expect(resolved?.alerts[0]).toMatchObject({ status: 'resolved', labels: { probe: 'api-health', alertname: 'VigilProbeFailing' } });
      expect(about('api-health', 'firing')).toHaveLength(1);
    } finally {
      await ch.close();
    }
  });

  it('stays firing past resolve_timeout while vigil re-sends it, and ends by itself once the re-sends stop', async () => {
    // Each post says the alert lasts four intervals: 2 s here, against a resolve_timeout of 1 s.
    const ch = channel('500ms');
    try {
      const started = Date.now();
      await ch.send(page('db-primary'), sendContext());
      await waitFor(
        'the firing notification',
        () => about('db-primary', 'firing').length > 0,
        10_000,
        () => amLog,
      );
      // The engine's sweep would queue these (one per interval); here they are sent on the same beat.
      while (Date.now() - started < 5_000) {
        await new Promise((r) => setTimeout(r, 500));
        await ch.send(page('db-primary', { action: 'remind' }), sendContext());
      }
      // Well past resolve_timeout and past the first post's endsAt: still firing, never resolved.
      expect((await activeAlerts('db-primary')).map((a) => a.status.state)).toEqual(['active']);
      expect(about('db-primary', 'resolved')).toEqual([]);

      // vigil stops (crashed, or cut off): Alertmanager ends the alert when its last endsAt passes.
      const stopped = Date.now();
      await waitFor(
        'the alert to end by itself',
        () => about('db-primary', 'resolved').length > 0,
        10_000,
        () => amLog,
      );
      expect(Date.now() - stopped).toBeGreaterThanOrEqual(1_500);
    } finally {
      await ch.close();
    }
  });

  it('through vigil itself: a failing probe pages Alertmanager, the sweep keeps it firing, the test page routes, recovery resolves it', async () => {
    let down = true;
    const site = await target((_req, res) => {
      res.statusCode = down ? 503 : 200;
      res.end(down ? 'cache down' : 'ok');
    });
    const OPS = 'ops-token-am-e2e-5e1f';
    const ws = workspace({
      'config/default.yaml': `
service: { name: shop, port: 0, host: 127.0.0.1 }
storage: { sqlite: { path: ./data/vigil.db } }
backup: { enabled: false }
alerting: { sweepInterval: 200ms }
auth: { tokens: [{ name: ops, token: "\${OPS}", role: operator }] }
channels:
  am: { type: alertmanager, urls: ["${amUrl}"], resendInterval: 500ms, labels: { env: e2e } }
`,
      'probes/shop.yaml': `
- id: checkout
  kind: http
  url: ${site.url}/health
  schedule: { every: 1s }
  timeout: 1s
  labels: { team: payments }
  alert: { failures: 1, recoveries: 1, channels: [am] }
`,
    });
    let app: App | undefined;
    try {
      app = createApp({ config: loadConfig({ cwd: ws.dir, env: { OPS } }), logger: memoryLogger().logger });
      const base = await app.start();
      const [firing] = await waitFor(
        "the probe's alert",
        () => about('checkout', 'firing').length > 0 && about('checkout', 'firing'),
        15_000,
        () => amLog,
      );
      expect(firing?.alerts[0]?.labels).toMatchObject({ alertname: 'VigilProbeFailing', probe: 'checkout', team: 'payments', env: 'e2e' });

      // Each post lasts 2 s and resolve_timeout is 1 s: only the engine's re-sends keep it firing for 5 s.
      await new Promise((r) => setTimeout(r, 5_000));
      expect((await activeAlerts('checkout')).map((a) => a.status.state)).toEqual(['active']);
      expect(about('checkout', 'resolved')).toEqual([]);
      const [incident] = await app.store.alerts.unresolvedIncidents();
      const sent = (await app.store.alerts.notifications(incident?.id ?? -1)).map((n) => n.action);
      expect(sent[0]).toBe('trigger');
      // Several re-sends (about one per 500 ms; the alert's being active above is what proves they suffice).
      expect(sent.filter((a) => a === 'remind').length).toBeGreaterThanOrEqual(3);

      const res = await fetch(`${base}/api/v1/channels/am/test`, { method: 'POST', headers: { authorization: `Bearer ${OPS}` } });
      expect(res.status).toBe(202);
      const [test] = await waitFor('the test page', () => {
        const got = received.filter((m) => m.groupLabels.alertname === 'VigilTestPage');
        return got.length > 0 && got;
      });
      expect(test?.alerts[0]?.labels).toMatchObject({ severity: 'info', env: 'e2e' });

      down = false;
      const [resolved] = await waitFor(
        'the alert to resolve',
        () => about('checkout', 'resolved').length > 0 && about('checkout', 'resolved'),
        15_000,
        () => amLog,
      );
      expect(resolved?.alerts[0]?.labels).toMatchObject({ probe: 'checkout', alertname: 'VigilProbeFailing' });
    } finally {
      await app?.stop();
      await site.close();
      ws.remove();
    }
  });
});

describe.skipIf(AMTOOL === undefined)('the route in docs/channels/alertmanager.md', () => {
  it('is a config Alertmanager accepts (amtool check-config)', () => {
    const doc = readFileSync(path.join(import.meta.dirname, '..', '..', 'docs', 'channels', 'alertmanager.md'), 'utf8');
    const yaml = /```yaml\n(# alertmanager\.yml\n[\s\S]*?)```/.exec(doc)?.[1];
    expect(yaml, 'the alertmanager.yml example').toBeDefined();
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-amtool-'));
    try {
      const file = path.join(dir, 'alertmanager.yml');
      writeFileSync(file, (yaml ?? '').replace('<secret>', 'example-key'));
      // Exits non-zero, failing the test, on anything Alertmanager would refuse to start with.
      const out = execFileSync(AMTOOL as string, ['check-config', file], { encoding: 'utf8' });
      expect(out).toMatch(/SUCCESS[\s\S]*1 inhibit rules/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
