import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { discord } from '../../src/notify/channels/discord.js';
import type { Channel, IncidentView, Notification } from '../../src/notify/types.js';
import { memoryLogger } from '../helpers/context.js';
import { type DiscordApi, startDiscordApi } from '../helpers/discord-api.js';
import { sendContext as context, failure, testNotification } from '../helpers/notification.js';
import { outboxOver } from '../helpers/outbox.js';
import { closedPort, startHttp } from '../helpers/servers.js';

const TOKEN = 'Wh00kT0ken-9f8e7d6c5b4a3210-SECRET_part';
const OPENED = Date.UTC(2026, 10, 26, 12, 0, 0);
const REQUEST = JSON.parse(readFileSync(new URL('../fixtures/providers/discord-execute-request.json', import.meta.url), 'utf8')) as Record<
  string,
  unknown
>;

function notification(over: Partial<Omit<Notification, 'incident'>> = {}, incident: Partial<IncidentView> = {}): Notification {
  const links = {
    incident: 'https://vigil.example.com/api/v1/incidents/7',
    runbook: 'https://wiki.example.com/rb/api',
    ack: 'https://vigil.example.com/act/ack-7',
    resolve: 'https://vigil.example.com/act/resolve-7',
  };
  return testNotification({ openedAt: OPENED, createdAt: OPENED + 1_000, links }, over, incident);
}

type Embed = {
  title: string;
  description: string;
  color: number;
  url?: string;
  timestamp: string;
  fields: Array<{ name: string; value: string }>;
};
const embedOf = (body: Record<string, unknown>) => (body.embeds as Embed[])[0] as Embed;

describe('discord channel', () => {
  let api: DiscordApi;
  let channel: Channel;
  const logged = memoryLogger();

  beforeAll(async () => {
    api = await startDiscordApi({ token: TOKEN });
    channel = discord.create('discord', { webhookUrl: api.webhookUrl, username: 'vigil' }, { logger: logged.logger, clock: systemClock });
  });
  afterAll(async () => {
    await channel.close();
    await api.close();
  });
  afterEach(() => {
    api.queue = [];
    api.requests.length = 0;
    api.messages.clear();
  });

  it('posts a page with ?wait=true as content plus one embed, mentions off, and keeps the message id', async () => {
    const result = await channel.send(notification(), context());
    expect(api.requests).toHaveLength(1);
    const [req] = api.requests;
    expect(req).toMatchObject({ method: 'POST', path: `/api/webhooks/1179001462237204510/${TOKEN}`, query: '?wait=true', status: 200 });
    const body = req?.body as Record<string, unknown>;
    // The shape of the documented request, key for key.
    expect(Object.keys(body).sort()).toEqual(Object.keys(REQUEST).sort());
    expect(Object.keys(embedOf(body)).sort()).toEqual(Object.keys(embedOf(REQUEST)).sort());
    // Escaped: the title quotes probe text, which must not turn into markdown or a masked link.
    expect(body).toMatchObject({
      content: '\\[CRITICAL\\] api-health: 503 Service Unavailable: cache down',
      username: 'vigil',
      allowed_mentions: { parse: [] },
    });
    const embed = embedOf(body);
    expect(embed).toMatchObject({
      title: '[CRITICAL] api-health: 503 Service Unavailable: cache down',
      color: 0xd0021b,
      url: 'https://vigil.example.com/api/v1/incidents/7',
      timestamp: new Date(OPENED + 1_000).toISOString(),
    });
    expect(embed.description).toContain('[Incident](https://vigil.example.com/api/v1/incidents/7)');
    expect(embed.description).toContain('[Runbook](https://wiki.example.com/rb/api)');
    expect(embed.description).toContain('[Acknowledge](https://vigil.example.com/act/ack-7)');
    expect(embed.fields.find((f) => f.name === 'Last error')?.value).toBe(
      'HTTP\\_STATUS: 503 Service Unavailable: cache down \\(expected 200\\)',
    );
    const id = [...api.messages.keys()][0] as string;
    expect(result).toEqual({ ref: { message_id: id } });
  });

  it.each([
    ['critical', 0xd0021b],
    ['error', 0xe8590c],
    ['warning', 0xf5a623],
    ['info', 0x4a90e2],
  ] as const)('colours a %s page %i', async (severity, color) => {
    await channel.send(notification({}, { severity }), context());
    expect(embedOf(api.requests[0]?.body ?? {}).color).toBe(color);
  });

  it('edits the page in place on acknowledge and resolve, dropping the action links', async () => {
    const { ref } = await channel.send(notification(), context());
    const ack = await channel.send(
      notification({ id: 42, action: 'acknowledge', ref }, { state: 'acknowledged', ackedBy: 'ana' }),
      context(),
    );
    const resolved = await channel.send(
      notification({ id: 43, action: 'resolve', ref: ack.ref }, { state: 'resolved', resolvedAt: OPENED + 300_000 }),
      context(),
    );
    expect(api.requests.map((r) => [r.method, r.status])).toEqual([
      ['POST', 200],
      ['PATCH', 200],
      ['PATCH', 200],
    ]);
    expect(api.requests[1]?.path).toBe(`/api/webhooks/1179001462237204510/${TOKEN}/messages/${ref?.message_id}`);
    expect(api.messages.size).toBe(1);
    const now = [...api.messages.values()][0] as Record<string, unknown>;
    expect(embedOf(now).title).toBe('[RESOLVED] api-health recovered after 5m');
    expect(embedOf(now).color).toBe(0x2e8540);
    expect(embedOf(now).description).not.toContain('Acknowledge');
    expect(resolved.ref).toEqual(ref);
  });

  it('posts a new message when the one to edit is gone (404 Unknown Message)', async () => {
    const ack = await channel.send(
      notification({ id: 42, action: 'acknowledge', ref: { message_id: '999' } }, { state: 'acknowledged' }),
      context(5_000, logged.logger),
    );
    expect(api.requests.map((r) => [r.method, r.status])).toEqual([
      ['PATCH', 404],
      ['POST', 200],
    ]);
    expect(ack.ref?.message_id).not.toBe('999');
    expect(api.messages.has(ack.ref?.message_id as string)).toBe(true);
    expect(logged.lines.map((l) => l.msg)).toContain('discord message to edit is gone; posting a new one');
  });

  it('sends a reminder as a message of its own and keeps the page as the one to edit', async () => {
    const { ref } = await channel.send(notification(), context());
    const reminded = await channel.send(notification({ id: 42, action: 'remind', ref }), context());
    expect(api.messages.size).toBe(2);
    expect(reminded.ref).toEqual(ref);
  });

  it('shows markdown and mentions in probe text as written, and pings no one', async () => {
    await channel.send(notification({}, { summary: 'api: @everyone **bold** [x](https://evil.example)' }), context());
    const body = api.requests[0]?.body as Record<string, unknown>;
    expect(body.allowed_mentions).toEqual({ parse: [] });
    expect(embedOf(body).description).toContain('@everyone \\*\\*bold\\*\\* \\[x\\]\\(https://evil.example\\)');
  });

  it('cuts long texts to the embed limits, so Discord takes the page', async () => {
    await channel.send(
      notification({}, { summary: `api: ${'x'.repeat(5_000)}`, lastError: { code: 'HTTP_BODY', message: 'y'.repeat(3_000), at: OPENED } }),
      context(),
    );
    expect(api.requests[0]?.status).toBe(200);
    expect(embedOf(api.requests[0]?.body ?? {}).title.length).toBe(256);
  });

  it('reports a 400 Invalid Form Body as permanent, with Discord’s code and words', async () => {
    api.queue = ['invalid-form-body'];
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('answered 400: Invalid Form Body (code 50035)');
  });

  it.each([
    ['a wrong token', { token: 'wrong-token-000000000000' }, 401, 'Invalid Webhook Token'],
    ['a deleted webhook', { id: '1' }, 404, 'Unknown Webhook'],
  ])('reports %s as permanent, saying what to fix', async (_what, wrong, status, said) => {
    const url = api.webhookUrl.replace(/\/(\d+)\/([^/]+)$/, `/${'id' in wrong ? wrong.id : '$1'}/${'token' in wrong ? wrong.token : '$2'}`);
    const bad = discord.create('d-bad', { webhookUrl: url }, { logger: logged.logger, clock: systemClock });
    try {
      const err = await failure(bad.send(notification(), context()));
      expect(err.retryable).toBe(false);
      expect(err.message).toContain(`answered ${status}: ${said}`);
      expect(err.message).toContain('`webhookUrl`');
    } finally {
      await bad.close();
    }
  });

  it('honours a 429: retry_after from the body (float seconds) before the rounded Retry-After header', async () => {
    api.queue = ['rate-limited'];
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(2_371);
    expect(err.message).toContain('rate limited for this webhook');
  });

  it('falls back to the Retry-After header when a 429 has no JSON body', async () => {
    // A proxy in front of Discord answering 429 with only the header.
    const proxy = await startHttp((_req, res) => {
      res.writeHead(429, { 'retry-after': '7', 'content-type': 'text/plain' });
      res.end('slow down');
    });
    const behind = discord.create(
      'd-proxy',
      { webhookUrl: `${proxy.url}/api/webhooks/1/${TOKEN}` },
      { logger: logged.logger, clock: systemClock },
    );
    try {
      const err = await failure(behind.send(notification(), context()));
      expect(err.retryable).toBe(true);
      expect(err.retryAfterMs).toBe(7_000);
    } finally {
      await behind.close();
      await proxy.close();
    }
  });

  it('reports a 5xx (an HTML page from the CDN) as retryable, on one line', async () => {
    api.queue = ['server-error'];
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/answered 502: <html>.*502 Bad Gateway/);
    expect(err.message).not.toContain('\n');
  });

  it('reports an unreachable host and a hanging one as retryable', async () => {
    const port = await closedPort();
    const down = discord.create(
      'd-down',
      { webhookUrl: `http://127.0.0.1:${port}/api/webhooks/1/${TOKEN}` },
      { logger: logged.logger, clock: systemClock },
    );
    try {
      const err = await failure(down.send(notification(), context()));
      expect(err.retryable).toBe(true);
      expect(err.message).toContain('ECONNREFUSED');
    } finally {
      await down.close();
    }
    api.queue = ['hang'];
    const started = Date.now();
    const hung = await failure(channel.send(notification(), context(300)));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(hung.retryable).toBe(true);
    expect(hung.message).toContain('timed out');
  });

  it('never shows the webhook token in an error or a log line', async () => {
    const messages: string[] = [];
    for (const q of ['invalid-form-body', 'rate-limited', 'server-error', 'invalid-token', 'hang'] as const) {
      api.queue = [q];
      messages.push(
        (await failure(channel.send(notification({ action: 'resolve', ref: { message_id: '5' } }), context(300, logged.logger)))).message,
      );
    }
    const port = await closedPort();
    const down = discord.create(
      'd-down',
      { webhookUrl: `http://127.0.0.1:${port}/api/webhooks/1/${TOKEN}` },
      { logger: logged.logger, clock: systemClock },
    );
    messages.push((await failure(down.send(notification(), context(5_000, logged.logger)))).message);
    await down.close();
    for (const m of messages) expect(m).not.toContain(TOKEN.slice(0, 10));
    expect(JSON.stringify(logged.lines)).not.toContain(TOKEN.slice(0, 10));
  });

  it('hides the token where a proxy quotes the request path back', async () => {
    const proxy = await startHttp((req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end(`<pre>Cannot POST ${req.url}</pre>`);
    });
    const behind = discord.create(
      'd-proxy',
      { webhookUrl: `${proxy.url}/api/webhooks/1/${TOKEN}` },
      { logger: logged.logger, clock: systemClock },
    );
    try {
      const err = await failure(behind.send(notification(), context()));
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('Cannot POST /api/webhooks/1/<secret>?wait=true');
      expect(err.message).not.toContain(TOKEN.slice(0, 10));
    } finally {
      await behind.close();
      await proxy.close();
    }
  });

  it('validates its config: a webhook URL of the documented shape, a username of 1 to 80 characters, nothing else', () => {
    const ok = { webhookUrl: 'https://discord.com/api/webhooks/1179001462237204510/abc_DEF-123' };
    expect(Value.Check(discord.schema, ok)).toBe(true);
    expect(Value.Check(discord.schema, { ...ok, username: 'vigil' })).toBe(true);
    expect(Value.Check(discord.schema, { ...ok, username: 'x'.repeat(81) })).toBe(false);
    expect(Value.Check(discord.schema, { ...ok, url: ok.webhookUrl })).toBe(false);
    expect(Value.Check(discord.schema, { webhookUrl: 'https://discord.com/api/webhooks/abc/def' })).toBe(false);
    expect(Value.Check(discord.schema, { webhookUrl: `${ok.webhookUrl}?thread_id=1` })).toBe(false);
  });
});

describe('discord through the outbox across an outage', () => {
  it('delivers the page exactly once after Discord answered 5xx and 429 for minutes, then edits it on resolve', async () => {
    const api = await startDiscordApi({ token: TOKEN });
    const channel = discord.create('discord', { webhookUrl: api.webhookUrl }, { logger: memoryLogger().logger, clock: systemClock });
    const t = outboxOver({ discord: channel });
    try {
      api.queue = ['server-error', 'server-error', 'rate-limited', 'server-error', 'server-error', 'server-error'];
      const id = await t.open('discord', ['trigger', 'resolve']);
      t.worker.start();
      await t.pass(3 * 60_000);
      expect(api.queue).toEqual([]);
      const notes = await t.store.alerts.notifications(id);
      expect(notes.map((n) => `${n.action}:${n.state}`)).toEqual(['trigger:delivered', 'resolve:delivered']);
      expect(notes[0]?.attempts).toBe(7);
      // One message in the channel, posted once and then edited: no duplicate from the retries.
      expect(api.messages.size).toBe(1);
      expect(api.requests.filter((r) => r.status === 200).map((r) => r.method)).toEqual(['POST', 'PATCH']);
      expect(embedOf([...api.messages.values()][0] ?? {}).title).toMatch(/^\[RESOLVED\]/);
      expect(t.outcomes.filter((o) => o === 'discord:delivered')).toHaveLength(2);
    } finally {
      await t.worker.stop(0);
      await channel.close();
      await api.close();
    }
  });
});
