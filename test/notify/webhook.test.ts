import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { type Clock, systemClock } from '../../src/lib/clock.js';
import { webhook } from '../../src/notify/channels/webhook.js';
import { parseRetryAfter } from '../../src/notify/provider-http.js';
import type { Channel, Notification, SendContext } from '../../src/notify/types.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { failure, testNotification } from '../helpers/notification.js';
import { closedPort, startHttp, type TestServer } from '../helpers/servers.js';

const SECRET = 'whsec-0123456789abcdef-topsecret';
const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const OPENED = NOW - 15 * 60_000;

function notification(overrides: Partial<Notification> = {}): Notification {
  return testNotification(
    { openedAt: OPENED, createdAt: NOW - 1_000, links: { incident: 'http://vigil.test/api/v1/incidents/7' } },
    { id: 1042, ...overrides },
    {
      severity: 'error',
      lastError: { code: 'HTTP_STATUS', message: '503 Service Unavailable: cache down (expected 200)', at: NOW - 60_000 },
    },
  );
}

/** What the receiver saw of one request. */
interface Received {
  headers: IncomingMessage['headers'];
  raw: string;
  clientGone: boolean;
}

const servers: TestServer[] = [];
const channels: Channel[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A receiver that records each request and answers with `answer` (or not at all, when it returns false). */
async function receiver(answer: (res: ServerResponse, got: Received) => boolean | undefined = () => undefined) {
  const received: Received[] = [];
  const server = await startHttp((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const got: Received = { headers: req.headers, raw: Buffer.concat(chunks).toString('utf8'), clientGone: false };
      res.on('close', () => {
        if (!res.writableFinished) got.clientGone = true;
      });
      received.push(got);
      if (answer(res, got) === false) return;
      if (!res.headersSent) {
        res.writeHead(204);
        res.end();
      }
    });
  });
  servers.push(server);
  return { server, received, url: `${server.url}/hooks/vigil` };
}

function channelFor(url: string, fields: Record<string, unknown> = {}) {
  const config = Value.Default(webhook.schema, { url, ...fields });
  expect([...Value.Errors(webhook.schema, config)]).toEqual([]);
  const channel = webhook.create('audit-hook', config as Parameters<typeof webhook.create>[1], {
    logger: memoryLogger().logger,
    clock: systemClock,
  });
  channels.push(channel);
  return channel;
}

function ctx(timeoutMs = 5_000, clock: Clock = new ManualClock(NOW)): SendContext {
  return { signal: AbortSignal.timeout(timeoutMs), clock, logger: memoryLogger().logger };
}

function reply(status: number, body = '', headers: Record<string, string> = {}) {
  return (res: ServerResponse) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(body);
    return true;
  };
}

/** What a receiver is told to do in docs/channels/webhook.md, written with node:crypto alone. */
function verify(secret: string, headers: IncomingMessage['headers'], raw: string, now: number, toleranceS = 300): boolean {
  const timestamp = String(headers['x-vigil-timestamp'] ?? '');
  const signature = String(headers['x-vigil-signature'] ?? '');
  if (!/^\d+$/.test(timestamp) || Math.abs(now / 1000 - Number(timestamp)) > toleranceS) return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex')}`);
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe('webhook channel: delivery', () => {
  it('POSTs the JSON payload with a signature the receiver verifies with node:crypto', async () => {
    const { received, url } = await receiver();
    const channel = channelFor(url, {
      secret: SECRET,
      headers: { Authorization: 'Bearer receiver-token-123', 'X-Vigil-Signature': 'forged' },
    });
    const n = notification();
    expect(await channel.send(n, ctx())).toEqual({});

    expect(received).toHaveLength(1);
    const { headers, raw } = received[0]!;
    expect(headers['content-type']).toBe('application/json');
    expect(headers['user-agent']).toBe('vigil');
    expect(headers.authorization).toBe('Bearer receiver-token-123');
    expect(headers['x-vigil-timestamp']).toBe(String(NOW / 1000));
    expect(headers['x-vigil-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(raw).not.toContain(SECRET);

    expect(verify(SECRET, headers, raw, NOW)).toBe(true);
    expect(verify('another-secret-of-some-length', headers, raw, NOW)).toBe(false);
    expect(verify(SECRET, headers, raw.replace('"error"', '"info"'), NOW)).toBe(false);
    expect(verify(SECRET, headers, raw, NOW + 10 * 60_000)).toBe(false);

    const body = JSON.parse(raw);
    expect(body).toEqual({
      version: 1,
      deliveryId: 1042,
      action: 'trigger',
      dedupKey: 'api-health/failures/7',
      incident: n.incident,
      links: n.links,
      title: '[ERROR] api-health: 503 Service Unavailable: cache down',
      text: expect.stringContaining('Since: 2026-11-26T11:45:00.000Z'),
    });
    expect(body.text).toContain('Last error: HTTP_STATUS: 503 Service Unavailable: cache down (expected 200)');
  });

  it('sends no signature header without a secret, and the resolve title from render', async () => {
    const { received, url } = await receiver();
    const channel = channelFor(url);
    await channel.send(
      notification({ action: 'resolve', incident: { ...notification().incident, state: 'resolved', resolvedAt: NOW } }),
      ctx(),
    );
    expect(received[0]!.headers['x-vigil-signature']).toBeUndefined();
    expect(JSON.parse(received[0]!.raw).title).toBe('[RESOLVED] api-health recovered after 15m');
  });
});

describe('webhook channel: failures', () => {
  it('makes other 4xx permanent, with the status and a short excerpt of the body', async () => {
    const long = `unknown signature; ${'x'.repeat(5_000)}`;
    const { url } = await receiver(reply(401, long));
    const err = await failure(channelFor(url, { secret: SECRET }).send(notification(), ctx()));
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/^webhook POST to 127\.0\.0\.1:\d+ answered 401: unknown signature; x+$/);
    expect(err.message.length).toBeLessThan(260);
  });

  it('never echoes the secret or a configured header value a receiver sends back', async () => {
    const { url } = await receiver((res, got) => reply(400, `bad request: ${got.raw} ${got.headers.authorization}`)(res));
    const err = await failure(
      channelFor(url, { secret: SECRET, headers: { authorization: 'Bearer receiver-token-123' } }).send(notification(), ctx()),
    );
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('bad request');
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain('receiver-token-123');
  });

  it('tells a redirect apart: permanent, and says redirects are not followed', async () => {
    const { received, url } = await receiver(reply(301, '', { location: 'https://elsewhere.test/' }));
    const err = await failure(channelFor(url).send(notification(), ctx()));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('answered 301 (redirects are not followed');
    expect(received).toHaveLength(1);
  });

  it('retries 408, 425, 429 and 5xx', async () => {
    for (const status of [408, 425, 429, 500, 502, 503, 504]) {
      const { url } = await receiver(reply(status, 'busy'));
      const err = await failure(channelFor(url).send(notification(), ctx()));
      expect(err.retryable, String(status)).toBe(true);
      expect(err.retryAfterMs, String(status)).toBeUndefined();
      expect(err.message).toContain(`answered ${status}: busy`);
    }
    for (const status of [400, 403, 404, 410, 422]) {
      const { url } = await receiver(reply(status));
      expect((await failure(channelFor(url).send(notification(), ctx()))).retryable, String(status)).toBe(false);
    }
  });

  it('honours Retry-After on 429 and 503, in seconds or as an HTTP date', async () => {
    const cases: Array<[number, string, number | undefined]> = [
      [429, '7', 7_000],
      [503, '120', 120_000],
      [429, new Date(NOW + 90_000).toUTCString(), 90_000],
      [503, new Date(NOW - 5_000).toUTCString(), 0],
      [429, 'soon', undefined],
      [500, '30', undefined],
    ];
    for (const [status, header, want] of cases) {
      const { url } = await receiver(reply(status, '', { 'retry-after': header }));
      const err = await failure(channelFor(url).send(notification(), ctx()));
      expect(err.retryable).toBe(true);
      expect(err.retryAfterMs, `${status} ${header}`).toBe(want);
    }
    expect(parseRetryAfter(' 3 ', NOW)).toBe(3_000);
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
  });

  it('reads no more than 64 KiB of a huge answer', async () => {
    let written = 0;
    const { url } = await receiver((res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 'a');
      // Keeps writing until the client goes away: only a client that stops reading ends this.
      const pump = () => {
        while (written < 64 * 1024 * 1024 && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return true;
    });
    const err = await failure(channelFor(url).send(notification(), ctx()));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/answered 500: a{200}$/);
    expect(written).toBeLessThan(16 * 1024 * 1024);
  });

  it('retries when nothing listens', async () => {
    const port = await closedPort();
    const err = await failure(channelFor(`http://127.0.0.1:${port}/hook`).send(notification(), ctx()));
    expect(err.retryable).toBe(true);
    expect(err.message).toBe(`webhook POST to 127.0.0.1:${port} failed: ECONNREFUSED`);
  });

  it('gives up at the send deadline when the receiver hangs, and closes the connection', async () => {
    const { received, url } = await receiver(() => false);
    const started = Date.now();
    const err = await failure(channelFor(url).send(notification(), ctx(300, systemClock)));
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(1_500);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/^webhook POST to 127\.0\.0\.1:\d+ timed out after \d+ms$/);
    await expect.poll(() => received[0]?.clientGone, { timeout: 1_000 }).toBe(true);
  });
});

describe('webhook channel: config', () => {
  it('requires an http(s) URL, a secret long enough to sign with, and nothing unknown', () => {
    const ok = (v: Record<string, unknown>) => Value.Check(webhook.schema, Value.Default(webhook.schema, structuredClone(v)));
    expect(ok({ url: 'https://hooks.example.com/vigil' })).toBe(true);
    expect(ok({ url: 'https://hooks.example.com/vigil', secret: SECRET, headers: { 'X-Team': 'core' } })).toBe(true);
    expect(ok({ url: 'ftp://hooks.example.com/vigil' })).toBe(false);
    expect(ok({ url: 'https://hooks.example.com/vigil', secret: 'short' })).toBe(false);
    expect(ok({ url: 'https://hooks.example.com/vigil', headers: { 'bad header': 'x' } })).toBe(false);
    expect(ok({ url: 'https://hooks.example.com/vigil', method: 'PUT' })).toBe(false);
  });
});
