import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { dedupKeyFor, pagerduty } from '../../src/notify/channels/pagerduty.js';
import type { Channel, IncidentView, Notification } from '../../src/notify/types.js';
import { memoryLogger } from '../helpers/context.js';
import { sendContext as context, failure, testNotification } from '../helpers/notification.js';
import { type PagerDutyApi, startPagerDutyApi } from '../helpers/pagerduty-api.js';
import { closedPort } from '../helpers/servers.js';

// 32 characters, like a real integration key; distinctive so a leak is easy to spot.
const ROUTING_KEY = 'R0UT1NGkeySECRET0123456789abcdef';
const OPENED = Date.UTC(2026, 10, 26, 12, 0, 0);

function notification(over: Partial<Omit<Notification, 'incident'>> = {}, incident: Partial<IncidentView> = {}): Notification {
  const links = {
    incident: 'https://vigil.example.com/api/v1/incidents/7',
    dashboard: 'https://grafana.example.com/d/vigil',
    runbook: 'https://wiki.example.com/rb/api',
  };
  return testNotification({ openedAt: OPENED, createdAt: OPENED + 1_000, links }, over, {
    labels: { team: 'core', env: 'prod' },
    ...incident,
  });
}

describe('pagerduty channel', () => {
  let pd: PagerDutyApi;
  let channel: Channel;
  const logged = memoryLogger();

  beforeAll(async () => {
    pd = await startPagerDutyApi();
    channel = pagerduty.create('pagerduty', { routingKey: ROUTING_KEY, url: pd.url }, { logger: logged.logger, clock: systemClock });
  });
  afterAll(async () => {
    await channel.close();
    await pd.close();
  });
  afterEach(() => {
    pd.mode = 'accept';
    pd.queue = [];
    pd.retryAfter = undefined;
    pd.extraErrors = [];
    pd.events.length = 0;
    pd.requests.length = 0;
  });

  it('triggers with the incident key, a full payload and links', async () => {
    const result = await channel.send(notification(), context());
    expect(result.ref).toEqual({ dedup_key: 'api-health/failures/7' });
    expect(pd.requests).toHaveLength(1);
    expect(pd.requests[0]).toMatchObject({ method: 'POST', path: '/v2/enqueue', contentType: 'application/json', status: 202 });
    expect(pd.events[0]).toEqual({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'api-health/failures/7',
      payload: {
        summary: 'api-health: 503 Service Unavailable: cache down',
        source: 'api-health',
        severity: 'critical',
        timestamp: new Date(OPENED + 1_000).toISOString(),
        component: 'http',
        group: 'core',
        class: 'failures',
        custom_details: expect.objectContaining({
          Probe: 'api-health (http)',
          Severity: 'critical',
          'Last error': 'HTTP_STATUS: 503 Service Unavailable: cache down (expected 200)',
          Labels: 'team=core, env=prod',
        }),
      },
      links: [
        { href: 'https://vigil.example.com/api/v1/incidents/7', text: 'Incident api-health/failures/7 in vigil' },
        { href: 'https://wiki.example.com/rb/api', text: 'Runbook' },
        { href: 'https://grafana.example.com/d/vigil', text: 'Dashboard' },
      ],
      client: 'vigil',
      client_url: 'https://grafana.example.com/d/vigil',
    });
  });

  it.each(['critical', 'error', 'warning', 'info'] as const)('keeps severity %s as it is', async (severity) => {
    await channel.send(notification({}, { severity }), context());
    expect((pd.events[0] as { payload: { severity: string } }).payload.severity).toBe(severity);
  });

  it('leaves out group and relative links when there is nothing valid to send', async () => {
    const n = notification({ links: { incident: '/api/v1/incidents/7' } }, { labels: {} });
    await channel.send(n, context());
    const event = pd.events[0] as Record<string, unknown>;
    expect(event.links).toBeUndefined();
    expect(event.client_url).toBeUndefined();
    expect((event.payload as Record<string, unknown>).group).toBeUndefined();
  });

  it('sends a reminder as a trigger with the same dedup_key', async () => {
    await channel.send(notification(), context());
    await channel.send(notification({ id: 42, action: 'remind' }), context());
    expect(pd.events.map((e) => [e.event_action, e.dedup_key])).toEqual([
      ['trigger', 'api-health/failures/7'],
      ['trigger', 'api-health/failures/7'],
    ]);
  });

  it('acknowledges and resolves with only routing_key, dedup_key and event_action', async () => {
    await channel.send(notification({ id: 43, action: 'acknowledge' }, { state: 'acknowledged', ackedBy: 'ana' }), context());
    const resolved = await channel.send(notification({ id: 44, action: 'resolve' }, { state: 'resolved' }), context());
    expect(pd.events).toEqual([
      { routing_key: ROUTING_KEY, event_action: 'acknowledge', dedup_key: 'api-health/failures/7' },
      { routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: 'api-health/failures/7' },
    ]);
    expect(resolved.ref).toEqual({ dedup_key: 'api-health/failures/7' });
  });

  it('sends a test page as an info trigger with its own key, then resolves it', async () => {
    const n = notification({ id: 50, action: 'test', dedupKey: 'api-health/failures/7' }, { severity: 'critical' });
    const result = await channel.send(n, context());
    expect(pd.events).toHaveLength(2);
    const [trigger, resolve] = pd.events as [Record<string, unknown>, Record<string, unknown>];
    const payload = trigger.payload as Record<string, unknown>;
    expect(trigger.event_action).toBe('trigger');
    expect(payload.severity).toBe('info');
    expect(payload.summary).toMatch(/^\[TEST\] /);
    // Never the real incident's key: a test must not resolve a live page.
    expect(trigger.dedup_key).not.toBe('api-health/failures/7');
    expect(resolve).toEqual({ routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: trigger.dedup_key });
    expect(result.ref).toEqual({ dedup_key: trigger.dedup_key });
  });

  it('fails a test page as retryable when the resolve after it fails, and repeats both on retry', async () => {
    const n = notification({ id: 51, action: 'test' });
    pd.queue = ['accept', 'error'];
    const err = await failure(channel.send(n, context()));
    expect(err.retryable).toBe(true);
    expect(pd.requests.map((r) => [(r.body as { event_action: string }).event_action, r.status])).toEqual([
      ['trigger', 202],
      ['resolve', 500],
    ]);
    await channel.send(n, context());
    const keys = pd.requests.map((r) => (r.body as { dedup_key: string }).dedup_key);
    expect(new Set(keys).size).toBe(1);
    expect(pd.events.map((e) => e.event_action)).toEqual(['trigger', 'trigger', 'resolve']);
  });

  it('keeps the dedup_key within 255 characters, stable and distinct for long keys', async () => {
    const long = `${'very-long-probe-name/'.repeat(20)}failures/7`;
    const other = `${'very-long-probe-name/'.repeat(20)}failures/8`;
    expect(long.length).toBeGreaterThan(255);
    await channel.send(notification({ dedupKey: long }), context());
    await channel.send(notification({ id: 45, action: 'resolve', dedupKey: long }), context());
    await channel.send(notification({ id: 46, dedupKey: other }), context());
    const keys = pd.events.map((e) => e.dedup_key as string);
    expect(pd.requests.every((r) => r.status === 202)).toBe(true);
    for (const k of keys) expect(k.length).toBeLessThanOrEqual(255);
    expect(keys[0]).toBe(keys[1]);
    expect(keys[2]).not.toBe(keys[0]);
    expect(dedupKeyFor('short/key/1')).toBe('short/key/1');
    expect(dedupKeyFor('x'.repeat(255))).toBe('x'.repeat(255));
  });

  it('cuts a summary longer than 1024 characters so PagerDuty takes it', async () => {
    await channel.send(notification({}, { summary: `api-health: ${'<body>'.repeat(400)}` }), context());
    expect(pd.requests[0]?.status).toBe(202);
    const summary = (pd.events[0] as { payload: { summary: string } }).payload.summary;
    expect(summary.length).toBe(1024);
    expect(summary.endsWith('…')).toBe(true);
  });

  it('reports a 400 as permanent, with what PagerDuty said', async () => {
    const bad = pagerduty.create('pd-bad', { routingKey: 'too-short', url: pd.url }, { logger: logged.logger, clock: systemClock });
    try {
      const err = await failure(bad.send(notification(), context()));
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('400');
      expect(err.message).toContain('Event object is invalid');
      expect(err.message).toContain("'routing_key' is invalid");
      expect(pd.events).toHaveLength(0);
    } finally {
      await bad.close();
    }
  });

  it('reports a 429 as retryable, without inventing a Retry-After', async () => {
    pd.mode = 'throttle';
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBeUndefined();
    expect(err.message).toMatch(/429/);
  });

  it('passes on a Retry-After header when one comes with the 429', async () => {
    pd.mode = 'throttle';
    pd.retryAfter = '30';
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(30_000);
  });

  it('reports a 500 as retryable', async () => {
    pd.mode = 'error';
    const err = await failure(channel.send(notification({ action: 'resolve' }), context()));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('500');
  });

  it('gives up on a hanging server when the send signal aborts, as retryable', async () => {
    pd.mode = 'hang';
    const started = Date.now();
    const err = await failure(channel.send(notification(), context(300)));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('deadline');
    expect(pd.requests).toHaveLength(1);
  });

  it('reports an unreachable server as retryable', async () => {
    const port = await closedPort();
    const down = pagerduty.create(
      'pd-down',
      { routingKey: ROUTING_KEY, url: `http://127.0.0.1:${port}` },
      { logger: logged.logger, clock: systemClock },
    );
    try {
      const err = await failure(down.send(notification(), context()));
      expect(err.retryable).toBe(true);
      expect(err.message).toContain(`127.0.0.1:${port}`);
      expect(err.message).toContain('ECONNREFUSED');
    } finally {
      await down.close();
    }
  });

  it('never shows the routing key in an error message or a log line', async () => {
    const messages: string[] = [];
    await channel.send(notification(), context(5_000, logged.logger));
    expect(logged.lines.map((l) => l.msg)).toContain('pagerduty event accepted');
    // A proxy or a future PagerDuty error may quote the key back: it must be scrubbed.
    pd.mode = 'invalid';
    pd.extraErrors = [`unknown routing key ${ROUTING_KEY}`];
    const invalid = await failure(channel.send(notification(), context(5_000, logged.logger)));
    expect(invalid.message).toContain('unknown routing key <secret>');
    messages.push(invalid.message);
    for (const mode of ['throttle', 'error', 'hang'] as const) {
      pd.mode = mode;
      messages.push((await failure(channel.send(notification(), context(300, logged.logger)))).message);
    }
    for (const m of messages) expect(m).not.toContain(ROUTING_KEY);
    expect(JSON.stringify(logged.lines)).not.toContain(ROUTING_KEY);
  });

  it('validates its config: url defaults to the US endpoint, unknown keys are refused', () => {
    const withDefaults = Value.Default(pagerduty.schema, { routingKey: ROUTING_KEY }) as Record<string, unknown>;
    expect(withDefaults).toEqual({ routingKey: ROUTING_KEY, url: 'https://events.pagerduty.com' });
    expect(Value.Check(pagerduty.schema, withDefaults)).toBe(true);
    expect(Value.Check(pagerduty.schema, { ...withDefaults, region: 'eu' })).toBe(false);
    expect(Value.Check(pagerduty.schema, { ...withDefaults, url: 'events.eu.pagerduty.com' })).toBe(false);
    expect(Value.Check(pagerduty.schema, { url: 'https://events.eu.pagerduty.com' })).toBe(false);
  });
});
