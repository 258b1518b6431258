import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { definitionSchema } from '../../src/config/schema.js';
import { http } from '../../src/probers/http.js';
import { createPki, daysFromNow, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { closedPort, type Handler, startHttp, startHttps, startRaw, type TestServer } from '../helpers/servers.js';

type HttpDefinition = Parameters<typeof http.probe>[0];
const DEFINITION = definitionSchema(http.schema);

/** A definition as config would load it: schema defaults applied, validated, and the prober's own check passed. */
function spec(fields: Record<string, unknown>): HttpDefinition {
  const def = Value.Default(DEFINITION, { id: 'http-test', kind: 'http', schedule: '* * * * *', ...structuredClone(fields) });
  const errors = [...Value.Errors(DEFINITION, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) throw new Error(`invalid test definition: ${errors.join('; ')}`);
  const problems = http.check?.(def as HttpDefinition) ?? [];
  if (problems.length > 0) throw new Error(`definition fails check: ${JSON.stringify(problems)}`);
  return def as HttpDefinition;
}

const servers: TestServer[] = [];
async function serve(handler: Handler): Promise<TestServer> {
  const s = await startHttp(handler);
  servers.push(s);
  return s;
}
async function serveRaw(onConnection: (socket: Socket) => void, scheme?: string): Promise<TestServer> {
  const s = await startRaw(onConnection, scheme);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function json(res: ServerResponse, status: number, body: unknown, type = 'application/json') {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Resolves when the server side of a connection has been closed, or with 'open' after `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<'closed' | 'open'> {
  if (socket.destroyed) return Promise.resolve('closed');
  return Promise.race([once(socket, 'close').then(() => 'closed' as const), sleep(ms).then(() => 'open' as const)]);
}

describe('http prober: healthy targets', () => {
  it('reports a healthy 200 with its phase timings, judging bodyContains and JSON equality', async () => {
    const seen: IncomingMessage[] = [];
    const body = JSON.stringify({ status: 'ok', checks: { db: 'ok', cache: 'ok' }, build: { version: '1.4.2' } });
    const server = await serve((req, res) => {
      seen.push(req);
      // A slow first byte and a slow body, so the phases must be told apart to pass.
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.write(body.slice(0, 10));
        setTimeout(() => res.end(body.slice(10)), 60);
      }, 60);
    });
    const s = spec({
      url: `${server.url}/health`,
      expect: { bodyContains: '"cache":"ok"', json: { status: 'ok', 'checks.db': 'ok', 'build.version': '1.4.2' } },
    });
    const result = await http.probe(s, probeContext(5_000));

    expect(result).toMatchObject({ ok: true });
    expect(result.code).toBeUndefined();
    expect(result.message).toBeUndefined();
    const v = result.values;
    expect(Object.keys(v).sort()).toEqual([...http.values(s)].sort());
    expect(v.status).toBe(200);
    expect(v.body_bytes).toBe(Buffer.byteLength(body));
    expect(v.dns_ms).toBe(0); // an IP literal is never looked up
    expect(v.connect_ms).toBeGreaterThanOrEqual(0);
    expect(v.connect_ms).toBeLessThan(1_000);
    expect(v.ttfb_ms).toBeGreaterThanOrEqual(55);
    // The phases add up to no more than the total; the first byte and the body each waited 60 ms.
    expect(v.latency_ms).toBeGreaterThanOrEqual((v.ttfb_ms as number) + (v.connect_ms as number));
    expect(v.latency_ms).toBeGreaterThanOrEqual(115);
    expect(v.latency_ms).toBeLessThan(2_000);
    expect(seen[0]?.method).toBe('GET');
    expect(seen[0]?.url).toBe('/health');
    expect(seen[0]?.headers['user-agent']).toBe('vigil/0.1');
  });

  it('fails bodyContains and JSON equality with what the body held', async () => {
    const server = await serve((_req, res) => json(res, 200, { status: 'degraded', checks: { db: 'ok' } }));
    const url = `${server.url}/health`;

    const noText = await http.probe(spec({ url, expect: { bodyContains: 'all good' } }), probeContext());
    expect(noText).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: 'body does not contain "all good": "{\\"status\\":\\"degraded\\",\\"checks\\":{\\"db\\":\\"ok\\"}}"',
      values: { status: 200 },
    });

    const wrong = await http.probe(spec({ url, expect: { json: { 'checks.db': 'ok', status: 'ok' } } }), probeContext());
    expect(wrong).toMatchObject({ ok: false, code: 'ASSERTION', message: 'JSON status is "degraded", expected "ok"' });

    const missing = await http.probe(spec({ url, expect: { json: { 'checks.cache': 'ok' } } }), probeContext());
    expect(missing).toMatchObject({ ok: false, code: 'ASSERTION', message: 'JSON checks.cache is missing, expected "ok"' });
  });

  it('accepts any status of an expected list and names the list when another comes', async () => {
    let status = 204;
    const server = await serve((_req, res) => {
      res.writeHead(status);
      res.end();
    });
    const s = spec({ url: `${server.url}/ping`, expect: { status: [200, 204] } });

    const ok = await http.probe(s, probeContext());
    expect(ok).toMatchObject({ ok: true, values: { status: 204, body_bytes: 0 } });

    status = 500;
    const bad = await http.probe(s, probeContext());
    expect(bad).toMatchObject({
      ok: false,
      code: 'HTTP_STATUS',
      message: '500 Internal Server Error (expected one of 200, 204)',
      values: { status: 500 },
    });
  });

  it('sends the method, headers and body as written, its own User-Agent overridable', async () => {
    const seen: Array<{ method?: string; url?: string; headers: IncomingMessage['headers']; rawHeaders: string[]; body: string }> = [];
    const server = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method,
          url: req.url,
          headers: req.headers,
          rawHeaders: req.rawHeaders,
          body: Buffer.concat(chunks).toString(),
        });
        json(res, 201, { id: 'evt-1' });
      });
    });
    const body = '{"ping":true,"note":"héllo"}';
    const s = spec({
      url: `${server.url}/v1/events?source=vigil`,
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'vigil-123', 'User-Agent': 'acme-monitor/2.0' },
      body,
      expect: { status: 201, json: { id: 'evt-1' } },
    });
    const result = await http.probe(s, probeContext());

    expect(result).toMatchObject({ ok: true, values: { status: 201 } });
    expect(seen).toHaveLength(1);
    const req = seen[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/events?source=vigil');
    expect(req.body).toBe(body);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(req.headers['x-request-id']).toBe('vigil-123');
    // One User-Agent, the definition's: a second one would be dropped or joined by the server.
    expect(req.rawHeaders.filter((_h, i) => i % 2 === 0 && _h.toLowerCase() === 'user-agent')).toHaveLength(1);
    expect(req.headers['user-agent']).toBe('acme-monitor/2.0');
  });

  it('opens a fresh connection for every run, even against a keep-alive server', async () => {
    const server = await serve((_req, res) => json(res, 200, { status: 'ok' }));
    const s = spec({ url: `${server.url}/health` });

    expect((await http.probe(s, probeContext())).ok).toBe(true);
    expect((await http.probe(s, probeContext())).ok).toBe(true);
    expect(server.connections).toBe(2);
  });

  it('probes that share their rules still each request their own URL, credentials and host', async () => {
    const seen: IncomingMessage[] = [];
    const server = await serve((req, res) => {
      seen.push(req);
      json(res, 200, { status: 'ok' });
    });
    // Plain (shared rules), plain written otherwise (its own URL text), credentials, plain again.
    const urls = [
      `${server.url}/a?x=1`,
      `http://127.0.0.1:${server.port}/x/../b`,
      `http://carol:secret@127.0.0.1:${server.port}/c`,
      `http://localhost:${server.port}/d`,
    ];
    for (let round = 0; round < 2; round++) {
      for (const url of urls) expect((await http.probe(spec({ url }), probeContext())).ok).toBe(true);
    }
    expect(seen.map((r) => r.url)).toEqual(['/a?x=1', '/b', '/c', '/d', '/a?x=1', '/b', '/c', '/d']);
    expect(seen.map((r) => r.headers.authorization)).toEqual([
      ...[undefined, undefined, `Basic ${Buffer.from('carol:secret').toString('base64')}`, undefined],
      ...[undefined, undefined, `Basic ${Buffer.from('carol:secret').toString('base64')}`, undefined],
    ]);
    expect(seen.map((r) => r.headers.host)).toEqual(
      [...Array(2)].flatMap(() => Array(3).fill(`127.0.0.1:${server.port}`).concat(`localhost:${server.port}`)),
    );
  });
});

describe('http prober: failing dependencies in a health document', () => {
  const shapes = [
    {
      shape: 'a checks map of strings',
      body: { status: 'error', checks: { db: 'ok', cache: 'down' } },
      type: 'application/json',
      message: '503 Service Unavailable: cache down (expected 2xx)',
      failing: [{ name: 'cache', status: 'down' }],
    },
    {
      shape: "Spring Boot's components",
      body: {
        status: 'DOWN',
        components: {
          db: { status: 'UP', details: { database: 'PostgreSQL', validationQuery: 'isValid()' } },
          diskSpace: { status: 'UP', details: { total: 1e11, free: 5e10 } },
          redis: { status: 'DOWN', details: { error: 'io.lettuce.core.RedisConnectionException' } },
        },
      },
      type: 'application/vnd.spring-boot.actuator.v3+json',
      message: '503 Service Unavailable: redis DOWN (expected 2xx)',
      failing: [{ name: 'redis', status: 'DOWN' }],
    },
    {
      shape: 'the IETF health check draft',
      body: {
        status: 'fail',
        version: '1',
        checks: {
          'db:ping': [{ componentType: 'datastore', status: 'fail', output: 'timeout' }],
          'uptime:seconds': [{ componentType: 'system', observedValue: 1209600.245, status: 'pass' }],
          'cpu:utilization': [
            { componentId: 'node-1', status: 'pass' },
            { componentId: 'node-2', status: 'warn' },
          ],
        },
      },
      type: 'application/health+json',
      message: '503 Service Unavailable: db:ping fail, cpu:utilization warn (expected 2xx)',
      failing: [
        { name: 'db:ping', status: 'fail' },
        { name: 'cpu:utilization', status: 'warn' },
      ],
    },
    {
      shape: 'a flat document with other fields beside the dependencies',
      body: { status: 'error', version: '1.4.2', region: 'eu-west-1', db: 'ok', cache: 'down', queue: { status: 'unhealthy' } },
      type: 'application/json',
      message: '503 Service Unavailable: cache down, queue unhealthy (expected 2xx)',
      failing: [
        { name: 'cache', status: 'down' },
        { name: 'queue', status: 'unhealthy' },
      ],
    },
  ];

  for (const c of shapes) {
    it(`names the failing dependencies of ${c.shape}`, async () => {
      const server = await serve((_req, res) => json(res, 503, c.body, c.type));
      const result = await http.probe(spec({ url: `${server.url}/health` }), probeContext());
      expect(result).toMatchObject({
        ok: false,
        code: 'HTTP_STATUS',
        message: c.message,
        values: { status: 503, body_bytes: Buffer.byteLength(JSON.stringify(c.body)) },
        details: { failingDependencies: c.failing },
      });
    });
  }

  it('gives the bare status line when the body names nothing', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/html' });
      res.end('<h1>Service Unavailable</h1>');
    });
    const result = await http.probe(spec({ url: `${server.url}/health` }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'HTTP_STATUS', message: '503 Service Unavailable (expected 2xx)' });
    expect(result.details?.failingDependencies).toBeUndefined();
  });
});

describe('http prober: misbehaving targets', () => {
  it('fails at the deadline when the server accepts and never answers, and lets go of the connection', async () => {
    const sockets: Socket[] = [];
    // resume(): a paused socket never reads, so it would never see the client's close.
    const server = await serveRaw((socket) => sockets.push(socket.resume()));
    const s = spec({ url: `${server.url}/health` });
    const ctx = probeContext(500);
    const started = Date.now();
    const result = await http.probe(s, ctx);
    const took = Date.now() - started;

    expect(took).toBeGreaterThanOrEqual(480);
    expect(took).toBeLessThan(700);
    expect(result.ok).toBe(false);
    expect(result.code).toBe('TIMEOUT');
    expect(result.message).toMatch(/^timed out after (4[89]\d|5\d\d)ms waiting for response headers$/);
    expect(result.values.latency_ms).toBeGreaterThanOrEqual(480);
    expect(result.values.connect_ms).toBeDefined();
    expect(sockets).toHaveLength(1);
    expect(await closedWithin(sockets[0]!, 500)).toBe('closed');
  });

  it('fails at the deadline in the TLS handshake when an https server never answers it', async () => {
    const sockets: Socket[] = [];
    const server = await serveRaw((socket) => sockets.push(socket.resume()), 'https');
    const s = spec({ url: `${server.url}/health` });
    const ctx = probeContext(500);
    const started = Date.now();
    const result = await http.probe(s, ctx);
    const took = Date.now() - started;

    expect(took).toBeGreaterThanOrEqual(480);
    expect(took).toBeLessThan(700);
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.message).toMatch(/^timed out after (4[89]\d|5\d\d)ms in the TLS handshake$/);
    expect(result.values.tls_ms).toBeUndefined();
    // A handshake that never ends must not leave its socket open after the run.
    expect(sockets).toHaveLength(1);
    expect(await closedWithin(sockets[0]!, 500)).toBe('closed');
  });

  it('fails at the deadline while reading a body that stalls after the headers', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('the first part of the body, and then nothing');
    });
    const s = spec({ url: `${server.url}/export` });
    const ctx = probeContext(500);
    const started = Date.now();
    const result = await http.probe(s, ctx);

    expect(Date.now() - started).toBeLessThan(700);
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.message).toMatch(/^timed out after (4[89]\d|5\d\d)ms reading the body$/);
    expect(result.values.ttfb_ms).toBeDefined();
  });

  it('stops reading a body past maxBodySize and closes the connection early', async () => {
    const total = 32 * 1_048_576; // far more than loopback socket buffers hold, so an early close shows
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    let closed: (finished: boolean) => void = () => {};
    const closedEarly = new Promise<boolean>((resolve) => {
      closed = resolve;
    });
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.on('close', () => closed(sent < total));
      const pump = () => {
        while (sent < total && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        if (sent >= total) res.end();
      };
      pump();
    });
    const result = await http.probe(spec({ url: `${server.url}/dump`, maxBodySize: 1_048_576 }), probeContext(5_000));

    expect(result).toMatchObject({
      ok: false,
      code: 'BODY_TOO_LARGE',
      message: '200 OK, body larger than the 1 MiB limit (raise maxBodySize if this is expected)',
      values: { status: 200 },
    });
    expect(await closedEarly).toBe(true);
    expect(sent).toBeLessThan(total / 2);
  });

  it('reports a refused connection', async () => {
    const port = await closedPort();
    const result = await http.probe(spec({ url: `http://127.0.0.1:${port}/health` }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'CONNECT', message: `cannot connect: ECONNREFUSED 127.0.0.1:${port}` });
    expect(result.values.status).toBeUndefined();
  });

  const garbage: Array<[string, Buffer, RegExp]> = [
    [
      'a status line without a number',
      Buffer.from('HTTP/1.1 ABC garbage\r\n\r\n'),
      /^invalid HTTP response: Invalid status code, got "ABC garbage"$/,
    ],
    [
      'an SSH banner (the wrong port)',
      Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'),
      /^invalid HTTP response: Expected HTTP\/, RTSP\/ or ICE\/, got "SSH-2.0-OpenSSH_9.2p1 Debian-2"$/,
    ],
    [
      'binary noise',
      Buffer.from([0x00, 0xff, 0x13, 0x37, 0x80, 0x7f, 0x0a, 0x0d, 0x0a, 0x0d, 0xde, 0xad, 0xbe, 0xef]),
      /^invalid HTTP response: Expected HTTP\/, RTSP\/ or ICE\/, got "/,
    ],
  ];
  for (const [what, bytes, message] of garbage) {
    it(`reports a protocol error for ${what}`, async () => {
      const server = await serveRaw((socket) => {
        socket.once('data', () => socket.write(bytes));
        socket.on('error', () => {});
      });
      const result = await http.probe(spec({ url: `${server.url}/health` }), probeContext(2_000));
      expect(result.code).toBe('PROTOCOL');
      expect(result.ok).toBe(false);
      expect(result.message).toMatch(message);
    });
  }

  it('reports a name that does not resolve as DNS', async () => {
    // `.invalid` never resolves (RFC 6761); this machine's resolver answers NXDOMAIN at once.
    const result = await http.probe(spec({ url: 'http://nonexistent.invalid/health' }), probeContext(5_000));
    expect(result).toMatchObject({ ok: false, code: 'DNS', message: 'DNS lookup failed: nonexistent.invalid ENOTFOUND' });
    expect(result.values.connect_ms).toBeUndefined();
  });
});

describe('http prober: assertions on a good answer', () => {
  it('fails maxLatency naming the latency and the limit', async () => {
    const server = await serve((_req, res) => {
      setTimeout(() => json(res, 200, { status: 'ok' }), 150);
    });
    const result = await http.probe(spec({ url: `${server.url}/health`, expect: { maxLatency: '100ms' } }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION', values: { status: 200 } });
    const m = /^slow: answered in (\d+)ms, limit 100ms$/.exec(result.message ?? '');
    expect(m, result.message).not.toBeNull();
    expect(Number(m?.[1])).toBe(Math.round(result.values.latency_ms as number));
    expect(result.values.latency_ms).toBeGreaterThanOrEqual(150);

    const relaxed = await http.probe(spec({ url: `${server.url}/health`, expect: { maxLatency: '2s' } }), probeContext());
    expect(relaxed.ok).toBe(true);
  });

  it('extracts numeric fields, numeric strings included, into named values', async () => {
    const server = await serve((_req, res) =>
      json(res, 200, { queue: { depth: 42, oldest_s: 3.5 }, billing: { spend: '1234.50', currency: 'EUR' } }),
    );
    const s = spec({
      url: `${server.url}/stats`,
      extract: { queue_depth: 'queue.depth', oldest_s: '$.queue.oldest_s', spend_eur: 'billing.spend' },
    });
    const result = await http.probe(s, probeContext());
    expect(result).toMatchObject({ ok: true, values: { status: 200, queue_depth: 42, oldest_s: 3.5, spend_eur: 1234.5 } });
    expect(http.values(s)).toEqual(expect.arrayContaining(['queue_depth', 'oldest_s', 'spend_eur']));
  });

  it('fails when an extracted field is missing, not a number, or the body is not JSON', async () => {
    let body = JSON.stringify({ queue: { depth: 'n/a' } });
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': body.startsWith('{') ? 'application/json' : 'text/plain' });
      res.end(body);
    });
    const s = spec({ url: `${server.url}/stats`, extract: { queue_depth: 'queue.depth', lag_s: 'consumer.lag' } });

    const result = await http.probe(s, probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: 'cannot extract queue_depth, lag_s: no number at queue.depth, consumer.lag',
      values: { status: 200 },
    });

    body = 'queue depth: 42';
    const notJson = await http.probe(s, probeContext());
    expect(notJson).toMatchObject({ ok: false, code: 'ASSERTION', message: 'cannot extract queue_depth, lag_s: the body is not JSON' });
  });
});

describe('http prober: HTTPS redirect', () => {
  function redirector(status: number, location?: (host: string) => string): Handler {
    return (req, res) => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      res.writeHead(status, location ? { location: location(host) } : { 'content-type': 'text/plain' });
      res.end(location ? '' : 'plain http, no redirect');
    };
  }

  it.each([301, 308])('passes a %i to the https:// twin', async (status) => {
    const server = await serve(redirector(status, (host) => `https://${host}/health?x=1`));
    const result = await http.probe(spec({ url: `${server.url}/health`, expect: { httpsRedirect: true } }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { status }, details: { redirect: 'https://127.0.0.1/health?x=1' } });
  });

  it('fails when the http:// URL answers 200 itself', async () => {
    const server = await serve(redirector(200));
    const result = await http.probe(spec({ url: `${server.url}/health`, expect: { httpsRedirect: true } }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `${server.url}/health does not redirect to HTTPS: answered 200 OK (expected 301 or 308 to https://127.0.0.1/health)`,
      values: { status: 200 },
    });
  });

  it('fails a redirect to another host', async () => {
    const server = await serve(redirector(301, () => 'https://login.example.com/health'));
    const result = await http.probe(spec({ url: `${server.url}/health`, expect: { httpsRedirect: true } }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `${server.url}/health does not redirect to HTTPS: answered 301 to https://login.example.com/health (expected 301 or 308 to https://127.0.0.1/health)`,
    });
  });

  it('fails a temporary redirect, which browsers do not remember', async () => {
    const server = await serve(redirector(302, (host) => `https://${host}/health`));
    const result = await http.probe(spec({ url: `${server.url}/health`, expect: { httpsRedirect: true } }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION', values: { status: 302 } });
    expect(result.message).toContain('answered 302 to https://127.0.0.1/health');
  });
});

describe('http prober: HTTPS', () => {
  let pki: TestPki;
  let selfSigned: { cert: string; key: string };
  beforeAll(() => {
    pki = createPki('Vigil HTTP Test');
    selfSigned = pki.selfSigned({ cn: '127.0.0.1', san: ['IP:127.0.0.1'], notAfter: daysFromNow(30) });
  });
  afterAll(() => pki?.dispose());

  async function serveTls(cert: { cert: string; key: string }) {
    const s = await startHttps((_req, res) => json(res, 200, { status: 'ok' }), cert);
    servers.push(s);
    return s;
  }

  it('fails a self-signed certificate that nothing trusts', async () => {
    const server = await serveTls(selfSigned);
    const result = await http.probe(spec({ url: `${server.url}/health` }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'TLS' });
    expect(result.message).toMatch(/^TLS handshake failed: DEPTH_ZERO_SELF_SIGNED_CERT: /);
    expect(result.values.status).toBeUndefined();
  });

  it('trusts it through ca, reporting the handshake time and the days left', async () => {
    const server = await serveTls(selfSigned);
    const s = spec({ url: `${server.url}/health`, ca: selfSigned.cert });
    const result = await http.probe(s, probeContext());
    expect(result).toMatchObject({ ok: true, values: { status: 200, tls_days_remaining: 29 } });
    expect(Object.keys(result.values).sort()).toEqual([...http.values(s)].sort());
    expect(result.values.tls_ms).toBeGreaterThanOrEqual(0);
    expect(result.values.tls_ms).toBeLessThan(1_000);
    expect(result.values.latency_ms).toBeGreaterThanOrEqual(
      (result.values.connect_ms as number) + (result.values.tls_ms as number) + (result.values.ttfb_ms as number),
    );
    expect(result.details).toMatchObject({ certificate: { subject: '127.0.0.1' } });
  });

  it('accepts it with insecure: true, still reporting the days left', async () => {
    const server = await serveTls(selfSigned);
    const result = await http.probe(spec({ url: `${server.url}/health`, insecure: true }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { status: 200, tls_days_remaining: 29 } });
  });

  it('rejects a ca that is not PEM when the definition is loaded, not at the first run', () => {
    const def = Value.Default(DEFINITION, { id: 'x', kind: 'http', schedule: '* * * * *', url: 'https://127.0.0.1/' }) as HttpDefinition;
    const problem = { path: 'ca', message: 'expected PEM text of CA certificates (-----BEGIN CERTIFICATE-----…)' };
    expect(http.check?.({ ...def, ca: '/etc/vigil/ca.pem' })).toEqual([problem]);
    expect(http.check?.({ ...def, ca: '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n' })).toEqual([problem]);
    expect(http.check?.({ ...def, ca: pki.root.cert })).toEqual([]);
  });

  it('says how long ago an expired certificate expired, in the days tls_days_remaining reports', async () => {
    const expired = pki.leaf({ cn: '127.0.0.1', san: ['IP:127.0.0.1'], notBefore: daysFromNow(-30), notAfter: daysFromNow(-2.05) });
    const server = await serveTls(expired);
    const result = await http.probe(spec({ url: `${server.url}/health`, ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'TLS', values: { tls_days_remaining: -2 } });
    expect(result.message).toMatch(
      /^TLS handshake failed: the certificate for 127\.0\.0\.1 expired 2 days ago, on \d{4}-\d\d-\d\d \(CERT_HAS_EXPIRED\)$/,
    );
  });

  it.each(['TLSv1.3', 'TLSv1.2'] as const)(
    'names a %s server that demands a client certificate, not a closed connection',
    async (version) => {
      const server = https.createServer(
        {
          ...pki.leaf({ cn: '127.0.0.1', san: ['IP:127.0.0.1'] }),
          ca: pki.root.cert,
          requestCert: true,
          rejectUnauthorized: true,
          maxVersion: version,
        },
        (_req, res) => res.end('ok'),
      );
      server.on('tlsClientError', () => {});
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      servers.push({ url: '', port: 0, connections: 0, close: () => new Promise<void>((r) => server.close(() => r())) });
      const { port } = server.address() as AddressInfo;
      const result = await http.probe(spec({ url: `https://127.0.0.1:${port}/health`, ca: pki.root.cert }), probeContext());
      expect(result).toMatchObject({ ok: false, code: 'TLS' });
      const cause =
        version === 'TLSv1.3'
          ? 'the server requires a client certificate (the definition sets no cert)'
          : 'the server refused the handshake: it may require a client certificate (the definition sets no cert), or share no cipher with vigil';
      expect(result.message).toBe(`TLS handshake with 127.0.0.1:${port} failed: ${cause}`);
    },
  );

  it('says an HTTP/2-only server speaks only h2, instead of an OpenSSL error stack', async () => {
    const server = http2.createSecureServer({ ...pki.leaf({ cn: '127.0.0.1', san: ['IP:127.0.0.1'] }), allowHTTP1: false }, (_req, res) =>
      res.end('ok'),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push({ url: '', port: 0, connections: 0, close: () => new Promise<void>((r) => server.close(() => r())) });
    const { port } = server.address() as AddressInfo;
    const result = await http.probe(spec({ url: `https://127.0.0.1:${port}/`, ca: pki.root.cert }), probeContext());
    expect(result).toEqual({
      ok: false,
      code: 'PROTOCOL',
      message: `127.0.0.1:${port} speaks only HTTP/2 (ALPN h2) and refuses HTTP/1.1: set http2: true to probe it over HTTP/2`,
      values: expect.objectContaining({ connect_ms: expect.any(Number) }),
    });
  });

  it('fails a trusted certificate issued for another name', async () => {
    const server = await serveTls(pki.leaf({ cn: 'api.vigil.test' }));
    const result = await http.probe(spec({ url: `${server.url}/health`, ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'TLS' });
    expect(result.message).toMatch(/^TLS handshake failed: ERR_TLS_CERT_ALTNAME_INVALID: .*127\.0\.0\.1/);
  });
});

describe('http prober: credentials in the URL', () => {
  const PASSWORD = 'pa:ss w@rd/ü';
  const encoded = encodeURIComponent(PASSWORD);

  /** Answers 401 unless Basic auth for alice:PASSWORD came, echoing what it got. */
  async function protectedServer() {
    const seen: Array<{ url: string | undefined; authorization: string | undefined }> = [];
    const server = await serve((req, res) => {
      seen.push({ url: req.url, authorization: req.headers.authorization });
      const want = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`;
      if (req.headers.authorization === want) json(res, 200, { status: 'ok' });
      else json(res, 401, { error: `unauthorized: got ${req.headers.authorization ?? 'nothing'}` });
    });
    return { server, seen };
  }

  it('sends user:password@ as Basic auth, percent-decoded, and never requests or reports it', async () => {
    const { server, seen } = await protectedServer();
    const url = `http://alice:${encoded}@127.0.0.1:${server.port}/health?x=1`;
    const result = await http.probe(spec({ url, expect: { bodyContains: 'ok' } }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { status: 200 } });
    expect(seen).toEqual([{ url: '/health?x=1', authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}` }]);
    expect(JSON.stringify(result)).not.toContain(encoded);
  });

  it('lets an authorization header of the definition win over the URL', async () => {
    const { server, seen } = await protectedServer();
    const url = `http://alice:${encoded}@127.0.0.1:${server.port}/health`;
    const result = await http.probe(spec({ url, headers: { Authorization: 'Bearer own-token' } }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'HTTP_STATUS', message: '401 Unauthorized (expected 2xx)' });
    expect(seen.map((s) => s.authorization)).toEqual(['Bearer own-token']);
  });

  it('sends a user without a password as "user:", as curl and Go do', async () => {
    const { server, seen } = await protectedServer();
    await http.probe(spec({ url: `http://bob@127.0.0.1:${server.port}/`, expect: { status: 401 } }), probeContext());
    expect(seen.map((s) => s.authorization)).toEqual([`Basic ${Buffer.from('bob:').toString('base64')}`]);
  });

  it('keeps the password out of redirect failures and details, and off the plain-HTTP twin of an https URL', async () => {
    const plain = await serve((req, res) => {
      res.writeHead(301, { location: `https://127.0.0.1${req.url}` });
      res.end();
    });
    const url = `http://alice:${encoded}@127.0.0.1:${plain.port}/health`;
    const passed = await http.probe(spec({ url, expect: { httpsRedirect: true } }), probeContext());
    expect(passed).toMatchObject({ ok: true, details: { redirect: 'https://127.0.0.1/health' } });

    const { server } = await protectedServer();
    const failed = await http.probe(
      spec({ url: `http://alice:${encoded}@127.0.0.1:${server.port}/health`, expect: { httpsRedirect: true } }),
      probeContext(),
    );
    expect(failed).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(failed.message).toBe(
      `http://127.0.0.1:${server.port}/health does not redirect to HTTPS: answered 200 OK (expected 301 or 308 to https://127.0.0.1/health)`,
    );
    for (const r of [passed, failed]) {
      expect(JSON.stringify(r)).not.toContain(encoded);
      expect(JSON.stringify(r)).not.toContain('alice');
    }
  });

  it('rejects a % in the credentials that starts no escape when the definition is loaded', () => {
    const def = Value.Default(DEFINITION, { id: 'x', kind: 'http', schedule: '* * * * *', url: 'http://a:100%@h/' }) as HttpDefinition;
    expect(http.check?.(def)).toEqual([
      { path: 'url', message: 'expected the user and password in the URL to be percent-encoded (write % as %25)' },
    ]);
  });
});

describe('http prober: compressed bodies', () => {
  const PAGE = JSON.stringify({ status: 'ok', message: 'all systems operational', padding: 'x'.repeat(2_000) });
  const ENCODERS: Record<string, (b: Buffer) => Buffer> = {
    gzip: (b) => zlib.gzipSync(b),
    deflate: (b) => zlib.deflateSync(b),
    br: (b) => zlib.brotliCompressSync(b),
  };

  it.each(Object.keys(ENCODERS))('decodes a %s body before judging it, and shows text in excerpts', async (coding) => {
    const wire = (ENCODERS[coding] as (b: Buffer) => Buffer)(Buffer.from(PAGE));
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': coding });
      res.end(wire);
    });
    const ok = await http.probe(spec({ url: server.url, expect: { bodyContains: 'operational', json: { status: 'ok' } } }), probeContext());
    expect(ok).toMatchObject({ ok: true, values: { body_bytes: wire.length } });
    const missing = await http.probe(spec({ url: server.url, expect: { bodyContains: 'maintenance' } }), probeContext());
    expect(missing.message).toMatch(
      /^body does not contain "maintenance": "\{\\"status\\":\\"ok\\",\\"message\\":\\"all systems operational/,
    );
  });

  it('ends a gzip bomb at maxBodySize of decoded output, and closes the connection', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 1_048_576));
    expect(bomb.length).toBeLessThan(100_000);
    let socket: Socket | undefined;
    const server = await serve((req, res) => {
      socket = req.socket;
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': bomb.length });
      res.end(bomb);
    });
    const started = Date.now();
    const result = await http.probe(spec({ url: server.url }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'BODY_TOO_LARGE',
      message: '200 OK, body larger than the 1 MiB limit once decoded from gzip (raise maxBodySize if this is expected)',
      values: { status: 200 },
    });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await closedWithin(socket as Socket, 1_000)).toBe('closed');
  });

  it('fails a body that is not the coding it claims, and takes an empty one as empty', async () => {
    let body: Buffer = Buffer.from('plain text, not gzip');
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end(body);
    });
    const broken = await http.probe(spec({ url: server.url }), probeContext());
    expect(broken).toMatchObject({ ok: false, code: 'PROTOCOL', values: { status: 200 } });
    expect(broken.message).toMatch(/^200 OK, body is not valid gzip as its Content-Encoding says \(.+\)$/);
    body = Buffer.alloc(0);
    expect(await http.probe(spec({ url: server.url }), probeContext())).toMatchObject({ ok: true, values: { body_bytes: 0 } });
  });

  it('says so when a body is in a coding vigil does not decode', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'zstd' });
      res.end(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58]));
    });
    const result = await http.probe(spec({ url: server.url, expect: { bodyContains: 'ok' } }), probeContext());
    expect(result.message).toMatch(/\(Content-Encoding zstd, which vigil does not decode\)$/);
  });
});
