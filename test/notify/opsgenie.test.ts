import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { aliasFor, type OpsgenieConfig, opsgenie } from '../../src/notify/channels/opsgenie.js';
import type { Channel, IncidentView, Notification } from '../../src/notify/types.js';
import { memoryLogger } from '../helpers/context.js';
import { sendContext as context, failure, testNotification } from '../helpers/notification.js';
import { OPSGENIE_KEY, type OpsgenieApi, startOpsgenieApi } from '../helpers/opsgenie-api.js';
import { closedPort } from '../helpers/servers.js';
import { workspace } from '../helpers/workspace.js';

const OPENED = Date.UTC(2026, 10, 26, 12, 0, 0);
const KEY = 'api-health/failures/7';

function notification(over: Partial<Omit<Notification, 'incident'>> = {}, incident: Partial<IncidentView> = {}): Notification {
  const links = {
    incident: 'https://vigil.example.com/api/v1/incidents/7',
    dashboard: 'https://grafana.example.com/d/vigil',
    runbook: 'https://wiki.example.com/rb/api',
  };
  return testNotification({ openedAt: OPENED, createdAt: OPENED + 1_000, links }, over, { labels: { team: 'core' }, ...incident });
}

/** A config as the loader hands it on: defaults filled by the schema. */
function config(fields: Record<string, unknown>): OpsgenieConfig {
  return Value.Default(opsgenie.schema, structuredClone(fields)) as OpsgenieConfig;
}

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/providers/${name}`, import.meta.url), 'utf8'));

describe('opsgenie channel', () => {
  let og: OpsgenieApi;
  let channel: Channel;
  const logged = memoryLogger();
  const make = (fields: Record<string, unknown> = {}) =>
    opsgenie.create('og', config({ apiKey: OPSGENIE_KEY, apiUrl: og.url, ...fields }), { logger: logged.logger, clock: systemClock });

  beforeAll(async () => {
    og = await startOpsgenieApi();
    channel = make({ responders: [{ type: 'team', name: 'ops' }], tags: ['vigil', 'prod'] });
  });
  afterAll(async () => {
    await channel.close();
    await og.close();
  });
  afterEach(() => og.reset());

  it('creates an alert with the incident key as alias, its priority, responders and details', async () => {
    const result = await channel.send(notification(), context());
    expect(result.ref).toEqual({ alias: KEY });
    expect(og.requests).toHaveLength(1);
    expect(og.requests[0]).toMatchObject({ method: 'POST', path: '/v2/alerts', authorization: `GenieKey ${OPSGENIE_KEY}`, status: 202 });
    const body = og.requests[0]?.body as Record<string, unknown>;
    expect(body).toEqual({
      message: 'api-health: 503 Service Unavailable: cache down',
      alias: KEY,
      description: expect.stringContaining('Last error: HTTP_STATUS: 503 Service Unavailable: cache down (expected 200)'),
      responders: [{ type: 'team', name: 'ops' }],
      tags: ['vigil', 'prod'],
      details: expect.objectContaining({
        Probe: 'api-health (http)',
        Severity: 'critical',
        Incident: 'https://vigil.example.com/api/v1/incidents/7',
        Runbook: 'https://wiki.example.com/rb/api',
        'Incident key': KEY,
      }),
      entity: 'api-health',
      source: 'vigil',
      priority: 'P1',
    });
    // The documented request carries the same fields (the fixture is Opsgenie's own example, reshaped to vigil's values).
    expect(Object.keys(body).sort()).toEqual(
      Object.keys(fixture('opsgenie-create-alert-request.json'))
        .filter((k) => k !== 'actions' && k !== 'user' && k !== 'note' && k !== 'visibleTo')
        .sort(),
    );
    expect(og.alerts.get(KEY)).toMatchObject({ status: 'open', count: 1 });
  });

  it.each([
    ['critical', 'P1'],
    ['error', 'P2'],
    ['warning', 'P3'],
    ['info', 'P4'],
  ] as const)('maps severity %s to %s by default', async (severity, priority) => {
    await channel.send(notification({}, { severity }), context());
    expect(og.requests[0]?.body).toMatchObject({ priority });
  });

  it('takes a priorityMap, the rest keeping their defaults', async () => {
    const mapped = make({ priorityMap: { warning: 'P2' } });
    try {
      await mapped.send(notification({}, { severity: 'warning' }), context());
      await mapped.send(notification({ id: 42 }, { severity: 'critical' }), context());
      expect(og.requests.map((r) => (r.body as { priority: string }).priority)).toEqual(['P2', 'P1']);
    } finally {
      await mapped.close();
    }
  });

  it('uses the region base URL when no apiUrl is set', () => {
    expect(config({ apiKey: 'k' }).region).toBe('us');
    expect(Value.Check(opsgenie.schema, config({ apiKey: 'k', region: 'eu' }))).toBe(true);
    expect(Value.Check(opsgenie.schema, config({ apiKey: 'k', region: 'asia' }))).toBe(false);
  });

  it('cuts the message to 130 characters and keeps the alias within 512, stable and distinct', async () => {
    const long = `${'very-long-probe-name/'.repeat(30)}failures/7`;
    await channel.send(notification({ dedupKey: long }, { summary: `api-health: ${'<body>'.repeat(100)}` }), context());
    expect(og.requests[0]?.status).toBe(202);
    const body = og.requests[0]?.body as { message: string; alias: string };
    expect(body.message.length).toBe(130);
    expect(body.message.endsWith('…')).toBe(true);
    expect(body.alias.length).toBeLessThanOrEqual(512);
    expect(aliasFor(long)).toBe(body.alias);
    expect(aliasFor(long.replace(/7$/, '8'))).not.toBe(body.alias);
    expect(aliasFor(KEY)).toBe(KEY);
  });

  it('reminds by creating again with the same alias: Opsgenie keeps one alert', async () => {
    await channel.send(notification(), context());
    await channel.send(notification({ id: 42, action: 'remind' }), context());
    expect(og.requests.map((r) => [r.path, (r.body as { alias: string }).alias])).toEqual([
      ['/v2/alerts', KEY],
      ['/v2/alerts', KEY],
    ]);
    expect(og.alerts.size).toBe(1);
    expect(og.alerts.get(KEY)?.count).toBe(2);
  });

  it('acknowledges and closes by alias, with who acknowledged and a note', async () => {
    await channel.send(notification(), context());
    await channel.send(
      notification({ id: 43, action: 'acknowledge', ref: { alias: KEY } }, { state: 'acknowledged', ackedBy: 'ana' }),
      context(),
    );
    const closed = await channel.send(notification({ id: 44, action: 'resolve', ref: { alias: KEY } }, { state: 'resolved' }), context());
    const [, ack, close] = og.requests;
    expect(ack).toMatchObject({
      path: `/v2/alerts/${encodeURIComponent(KEY)}/acknowledge`,
      query: { identifierType: 'alias' },
      status: 202,
    });
    expect(ack?.body).toEqual({ user: 'ana', source: 'vigil', note: expect.stringMatching(/^\[ACK\] api-health acknowledged by ana/) });
    expect(close).toMatchObject({ path: `/v2/alerts/${encodeURIComponent(KEY)}/close`, query: { identifierType: 'alias' }, status: 202 });
    expect(close?.body).toEqual({ source: 'vigil', note: expect.stringMatching(/^\[RESOLVED\] api-health recovered after /) });
    expect(og.alerts.get(KEY)).toMatchObject({ status: 'closed', acknowledged: true });
    expect(closed.ref).toEqual({ alias: KEY });
  });

  it('counts an acknowledge or close of an alias Opsgenie does not know as delivered, with a warning', async () => {
    const lines = memoryLogger();
    const result = await channel.send(notification({ id: 45, action: 'resolve' }), context(5_000, lines.logger));
    expect(og.requests[0]?.status).toBe(404);
    expect(result.ref).toEqual({ alias: KEY });
    expect(lines.lines.map((l) => l.msg)).toContain('opsgenie alert not found; nothing to update');
    await channel.send(notification({ id: 46, action: 'acknowledge' }), context());
    expect(og.requests[1]?.status).toBe(404);
  });

  it('pages a person as the only responder, on an alert of their own', async () => {
    const recipient = { id: 'alice', name: 'Alice', opsgenie: 'alice@example.com' };
    await channel.send(notification(), context());
    const result = await channel.send(notification({ id: 47, recipient }), context());
    const body = og.requests[1]?.body as { responders: unknown; alias: string };
    expect(body.responders).toEqual([{ type: 'user', username: 'alice@example.com' }]);
    // Not the channel's own alias: Opsgenie would fold it in there and notify nobody new.
    expect(body.alias).toBe(`${KEY}:alice`);
    expect(result.ref).toEqual({ alias: `${KEY}:alice` });
    expect(og.alerts.size).toBe(2);
  });

  it('sends a test page as P5 with its own alias, waits until Opsgenie processed it, then closes it', async () => {
    og.pendingPolls = 2;
    const result = await channel.send(notification({ id: 50, action: 'test' }), context());
    const [create, ...rest] = og.requests;
    const body = create?.body as { alias: string; priority: string; message: string; tags: string[] };
    expect(body.priority).toBe('P5');
    expect(body.message).toMatch(/^\[TEST\] /);
    expect(body.tags).toContain('vigil-test');
    // Never the real incident's alias: a test must not close a live page.
    expect(body.alias).not.toBe(KEY);
    expect(rest.map((r) => [r.method, r.path.replace(/[0-9a-f-]{36}$/, '<id>'), r.status])).toEqual([
      ['GET', '/v2/alerts/requests/<id>', 404],
      ['GET', '/v2/alerts/requests/<id>', 404],
      ['GET', '/v2/alerts/requests/<id>', 200],
      ['POST', `/v2/alerts/${encodeURIComponent(body.alias)}/close`, 202],
    ]);
    expect(og.alerts.get(body.alias)?.status).toBe('closed');
    expect(result.ref).toEqual({ alias: body.alias });
  });

  it('fails a test page Opsgenie accepted but could not process, as permanent, closing nothing', async () => {
    og.failCreates = 'No responder found with username [nobody@example.com]';
    const err = await failure(channel.send(notification({ id: 51, action: 'test' }), context()));
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(
      'Opsgenie accepted the test alert but could not process it: No responder found with username [nobody@example.com]',
    );
    expect(og.requests.map((r) => r.method)).toEqual(['POST', 'GET']);
    // A page is counted delivered at the 202: only a test waits for the outcome.
    await channel.send(notification(), context());
    expect(og.requests.at(-1)?.status).toBe(202);
  });

  it('reports a 422 as permanent, with what Opsgenie said', async () => {
    og.mode = 'invalid';
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(
      'Opsgenie rejected the create request (422: Request body is not processable. Please check the errors.: message: Message can not be empty.)',
    );
  });

  it('reports a bad key (401) as permanent, never showing the key', async () => {
    const wrong = make({ apiKey: 'b0gus-key-1234567890abcdef' });
    try {
      const err = await failure(wrong.send(notification(), context()));
      expect(err.retryable).toBe(false);
      expect(err.message).toMatch(/^Opsgenie refused the API key \(401: Could not authenticate\): check apiKey/);
      expect(err.message).not.toContain('b0gus');
    } finally {
      await wrong.close();
    }
  });

  it('reports a 429 as retryable, passing on Retry-After only when sent', async () => {
    og.mode = 'throttle';
    const bare = await failure(channel.send(notification(), context()));
    expect(bare.retryable).toBe(true);
    expect(bare.retryAfterMs).toBeUndefined();
    expect(bare.message).toMatch(/429/);
    og.retryAfter = '30';
    const timed = await failure(channel.send(notification(), context()));
    expect(timed.retryable).toBe(true);
    expect(timed.retryAfterMs).toBe(30_000);
  });

  it('reports a 5xx as retryable, on every step', async () => {
    og.mode = 'error';
    for (const action of ['trigger', 'acknowledge', 'resolve'] as const) {
      const err = await failure(channel.send(notification({ action }), context()));
      expect(err.retryable).toBe(true);
      expect(err.message).toContain('503');
    }
  });

  it('gives up on a hanging server when the send signal aborts, as retryable', async () => {
    og.mode = 'hang';
    const started = Date.now();
    const err = await failure(channel.send(notification(), context(300)));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('deadline');
  });

  it('reports an unreachable server as retryable', async () => {
    const port = await closedPort();
    const down = make({ apiUrl: `http://127.0.0.1:${port}` });
    try {
      const err = await failure(down.send(notification(), context()));
      expect(err.retryable).toBe(true);
      expect(err.message).toContain(`127.0.0.1:${port}`);
      expect(err.message).toContain('ECONNREFUSED');
    } finally {
      await down.close();
    }
  });

  it('never shows the API key in an error or a log line', async () => {
    const lines = memoryLogger();
    await channel.send(notification(), context(5_000, lines.logger));
    const messages: string[] = [];
    for (const mode of ['invalid', 'unauthorized', 'throttle', 'error', 'hang'] as const) {
      og.mode = mode;
      messages.push((await failure(channel.send(notification(), context(300, lines.logger)))).message);
    }
    expect(lines.lines.map((l) => l.msg)).toContain('opsgenie alert accepted');
    for (const m of messages) expect(m).not.toContain(OPSGENIE_KEY);
    expect(JSON.stringify(lines.lines)).not.toContain(OPSGENIE_KEY);
  });
});

describe('opsgenie channel config', () => {
  const load = (yaml: string) => {
    const ws = workspace({ 'config/default.yaml': yaml, 'probes/none.yaml': '[]\n' });
    try {
      return loadConfig({ cwd: ws.dir, env: {} });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    } finally {
      ws.remove();
    }
  };

  it('names every bad field at once: responder, priority, person username', () => {
    expect(
      load(
        [
          'channels:',
          '  og: { type: opsgenie, apiKey: k, responders: [{ type: team, username: bob }], priorityMap: { critical: P9 } }',
          'people:',
          '  bob: { name: Bob, opsgenie: "" }',
          '',
        ].join('\n'),
      ),
    ).toEqual([
      'config/default.yaml: people.bob.opsgenie: expected an Opsgenie username like alice@example.com, got ""',
      expect.stringMatching(
        /^config\/default\.yaml: channels\.og\.responders\[0\]: expected a responder: \{ type: team, name: ops \}, .*, got a mapping$/,
      ),
      'config/default.yaml: channels.og.priorityMap.critical: expected an Opsgenie priority: P1, P2, P3, P4 or P5, got "P9"',
    ]);
  });

  it('fills the region and the priorities a partial map leaves out, and accepts a person reachable only by username', () => {
    const loaded = load(
      [
        'channels:',
        '  og: { type: opsgenie, apiKey: k, priorityMap: { info: P5 } }',
        'people:',
        '  bob: { name: Bob, opsgenie: bob@example.com }',
        '',
      ].join('\n'),
    );
    if (!('service' in loaded)) throw new Error(loaded.join('\n'));
    expect(loaded.service.channels.og).toEqual({
      type: 'opsgenie',
      apiKey: 'k',
      region: 'us',
      priorityMap: { critical: 'P1', error: 'P2', warning: 'P3', info: 'P5' },
    });
  });
});
