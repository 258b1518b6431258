/**
 * The `alertmanager` channel against local servers answering like Alertmanager's `POST
 * /api/v2/alerts` (see test/fixtures/providers/alertmanager-*.json): the alert it posts, every
 * Alertmanager of a cluster, the answers (200, 400, 401, 429 with Retry-After from a proxy, 5xx),
 * credentials never in an error, and one delivery through the outbox across an outage. The real
 * Alertmanager is in alertmanager-server.test.ts.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { alertmanager, alertOf, labelName, type PostableAlert } from '../../src/notify/channels/alertmanager.js';
import { type Channel, resendInterval } from '../../src/notify/index.js';
import { memoryLogger } from '../helpers/context.js';
import { failure, sendContext, testNotification } from '../helpers/notification.js';
import { outboxOver } from '../helpers/outbox.js';
import { closedPort, startHttp, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'providers');
const TOKEN = 'am-Bearer-T0ken-Planted-7731';
const PASSWORD = 'am-Basic-Passw0rd-Planted-4410';
const OPENED = Date.UTC(2026, 11, 2, 9, 0, 0);

interface Seen {
  url: string;
  headers: IncomingMessage['headers'];
  body: PostableAlert[];
}

const servers: TestServer[] = [];
const channels: Channel[] = [];
afterEach(async () => {
  for (const c of channels.splice(0)) await c.close();
  for (const s of servers.splice(0)) await s.close();
});

/** An Alertmanager stand-in: records each post and answers as `answer` says (200, empty body, by default). */
async function fakeAm(answer: (res: ServerResponse, seen: Seen) => void = (res) => res.writeHead(200).end()) {
  const seen: Seen[] = [];
  const server = await startHttp((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const s = { url: req.url ?? '', headers: req.headers, body: JSON.parse(body) as PostableAlert[] };
      seen.push(s);
      answer(res, s);
    });
  });
  servers.push(server);
  return { url: server.url, seen };
}

function make(fields: Partial<Parameters<typeof alertmanager.create>[1]> & { urls: string[] }): Channel {
  const ch = alertmanager.create(
    'am',
    { resendInterval: '1m', labels: {}, ...fields },
    { logger: memoryLogger().logger, clock: systemClock },
  );
  channels.push(ch);
  return ch;
}

const links = {
  incident: 'https://vigil.example.com/api/v1/incidents/7',
  runbook: 'https://wiki.example.com/runbooks/api-health',
  dashboard: 'https://grafana.example.com/d/vigil',
};

describe('alertmanager channel', () => {
  it('posts the documented postableAlert: labels, annotations, startsAt, endsAt four intervals on, generatorURL', () => {
    const now = OPENED + 5 * 60_000;
    const n = testNotification({ openedAt: OPENED, links }, {}, { labels: { team: 'core', 'app.kubernetes.io/name': 'api', empty: '' } });
    const alert = alertOf(n, now, 4 * 60_000, { env: 'prod', team: 'overridden by the probe' });
    const fixture = JSON.parse(readFileSync(path.join(FIXTURES, 'alertmanager-post-alerts.json'), 'utf8')) as PostableAlert[];
    expect([alert]).toEqual(fixture);
    expect(labelName('1st')).toBe('_1st');
  });

  it('names each rule, acknowledges as annotations, ends the alert on resolve, and keeps a test page apart', () => {
    const now = OPENED + 60_000;
    const at = (rule: string) => alertOf(testNotification({ openedAt: OPENED, links }, {}, { rule }), now, 1, {}).labels.alertname;
    expect(['failures', 'errorRate', 'latency', 'values[0]'].map(at)).toEqual([
      'VigilProbeFailing',
      'VigilErrorRateHigh',
      'VigilLatencyHigh',
      'VigilThresholdCrossed',
    ]);
    const acked = alertOf(
      testNotification({ openedAt: OPENED, links }, { action: 'acknowledge' }, { state: 'acknowledged', ackedAt: now, ackedBy: 'alice' }),
      now,
      240_000,
      {},
    );
    expect(acked.annotations).toMatchObject({ acknowledged_by: 'alice', acknowledged_at: new Date(now).toISOString() });
    expect(acked.endsAt).toBe(new Date(now + 240_000).toISOString());
    const resolvedAt = now - 5_000;
    const resolved = alertOf(
      testNotification({ openedAt: OPENED, links }, { action: 'resolve' }, { state: 'resolved', resolvedAt }),
      now,
      240_000,
      {},
    );
    // Ended when vigil resolved it, even if the resolve was delivered late.
    expect(resolved.endsAt).toBe(new Date(resolvedAt).toISOString());
    expect(resolved.labels).toEqual(acked.labels);
    const test = alertOf(testNotification({ openedAt: OPENED, links }, { action: 'test', id: 99 }), now, 240_000, {});
    expect(test.labels).toMatchObject({ alertname: 'VigilTestPage', severity: 'info', vigil_test: '99' });
    expect(test.labels.rule).toBeUndefined();
  });

  it('posts to /api/v2/alerts under each base URL with its credentials, and is delivered when one Alertmanager took it', async () => {
    const up = await fakeAm();
    const down = await closedPort();
    const ch = make({ urls: [`${up.url}/prefix/`, `http://127.0.0.1:${down}`], bearerToken: TOKEN, labels: { env: 'prod' } });
    await ch.send(testNotification({ openedAt: OPENED, links }), sendContext());
    expect(up.seen).toHaveLength(1);
    expect(up.seen[0]?.url).toBe('/prefix/api/v2/alerts');
    expect(up.seen[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(up.seen[0]?.headers['content-type']).toBe('application/json');
    expect(up.seen[0]?.body).toHaveLength(1);
    expect(up.seen[0]?.body[0]?.labels).toMatchObject({ alertname: 'VigilProbeFailing', probe: 'api-health', env: 'prod' });

    const basic = await fakeAm();
    await make({ urls: [basic.url], basicAuth: { username: 'vigil', password: PASSWORD } }).send(
      testNotification({ openedAt: OPENED, links }),
      sendContext(),
    );
    expect(basic.seen[0]?.headers.authorization).toBe(`Basic ${Buffer.from(`vigil:${PASSWORD}`).toString('base64')}`);
  });

  it('fails retryably only when every Alertmanager failed, and permanently when every one refused the alert', async () => {
    const broken = await fakeAm((res) => res.writeHead(500, { 'content-type': 'application/json' }).end('"internal error"'));
    const down = await closedPort();
    const both = await failure(
      make({ urls: [broken.url, `http://127.0.0.1:${down}`] }).send(testNotification({ openedAt: OPENED, links }), sendContext()),
    );
    expect(both.retryable).toBe(true);
    expect(both.message).toMatch(
      /^every Alertmanager failed: Alertmanager at 127\.0\.0\.1:\d+ answered 500: "internal error"; cannot reach Alertmanager/,
    );

    // Alertmanager's own 400 for an alert it cannot take: a JSON string saying why.
    const bad = await fakeAm((res) =>
      res.writeHead(400, { 'content-type': 'application/json' }).end('"start time must be before end time"'),
    );
    const refused = await failure(make({ urls: [bad.url] }).send(testNotification({ openedAt: OPENED, links }), sendContext()));
    expect(refused).toMatchObject({ retryable: false });
    expect(refused.message).toMatch(/answered 400: "start time must be before end time"$/);

    const mixed = await failure(make({ urls: [bad.url, broken.url] }).send(testNotification({ openedAt: OPENED, links }), sendContext()));
    expect(mixed.retryable).toBe(true);
  });

  it('honours Retry-After from a rate-limiting proxy, retries a 503, and names a wrong route prefix', async () => {
    const limited = await fakeAm((res) => res.writeHead(429, { 'retry-after': '17' }).end('rate limited'));
    const slow = await failure(make({ urls: [limited.url] }).send(testNotification({ openedAt: OPENED, links }), sendContext()));
    expect(slow).toMatchObject({ retryable: true, retryAfterMs: 17_000 });

    const busy = await fakeAm((res) => res.writeHead(503).end('upstream unavailable'));
    expect(await failure(make({ urls: [busy.url] }).send(testNotification({ openedAt: OPENED, links }), sendContext()))).toMatchObject({
      retryable: true,
    });

    const missing = await fakeAm((res) => res.writeHead(404).end('404 page not found'));
    const wrong = await failure(make({ urls: [missing.url] }).send(testNotification({ openedAt: OPENED, links }), sendContext()));
    expect(wrong.retryable).toBe(false);
    expect(wrong.message).toMatch(/answered 404: 404 page not found \(check the url and its route prefix\)$/);
  });

  it('never lets credentials a proxy echoes back reach the error', async () => {
    const echo = await fakeAm((res, s) => res.writeHead(401).end(`unauthorized: ${s.headers.authorization}`));
    const bearer = await failure(
      make({ urls: [echo.url], bearerToken: TOKEN }).send(testNotification({ openedAt: OPENED, links }), sendContext()),
    );
    expect(bearer.message).toContain('unauthorized: Bearer <secret>');
    expect(bearer.message).not.toContain(TOKEN);
    const basic = await failure(
      make({ urls: [echo.url], basicAuth: { username: 'vigil', password: PASSWORD } }).send(
        testNotification({ openedAt: OPENED, links }),
        sendContext(),
      ),
    );
    expect(basic.message).not.toContain(Buffer.from(`vigil:${PASSWORD}`).toString('base64'));
    expect(basic.message).toMatch(/\(check the credentials\)$/);
  });

  it('tells the engine how often to re-send, from its resendInterval', () => {
    expect(resendInterval({ type: 'alertmanager', urls: ['http://am:9093'], resendInterval: '30s', labels: {} } as never)).toBe(30_000);
    expect(resendInterval({ type: 'webhook', url: 'http://hook' } as never)).toBeUndefined();
  });

  it('delivers exactly once through the outbox after Alertmanager refused it for minutes', async () => {
    let healthy = false;
    const am = await fakeAm((res) => (healthy ? res.writeHead(200).end() : res.writeHead(503).end('not ready')));
    const { clock, store, worker, open } = outboxOver({ am: make({ urls: [am.url] }) });
    const id = await open('am', ['trigger'], { probeId: 'api-health' });
    const state = async () => (await store.alerts.notifications(id))[0];
    worker.start();
    try {
      // Five simulated minutes of 503s: each attempt reaches the server and is put back.
      for (let s = 0; s < 300; s += 15) {
        await clock.advance(15_000);
        const attempts = am.seen.length;
        await waitFor('the attempt to be recorded', async () => (await state())?.attempts === attempts && (await state()));
      }
      const whileDown = am.seen.length;
      expect(whileDown).toBeGreaterThanOrEqual(5);
      expect(await state()).toMatchObject({ state: 'pending', lastError: expect.stringMatching(/answered 503: not ready$/) });
      healthy = true;
      for (let s = 0; s < 120 && (await state())?.state !== 'delivered'; s++) {
        await clock.advance(1_000);
        await waitFor('the attempt to finish', async () => (await state())?.attempts === am.seen.length && (await state()));
      }
      expect(await state()).toMatchObject({ state: 'delivered' });
      await clock.advance(10 * 60_000);
      expect(am.seen).toHaveLength(whileDown + 1);
    } finally {
      await worker.stop(0);
    }
  });
});
