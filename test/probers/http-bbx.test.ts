import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { definitionSchema } from '../../src/config/schema.js';
import { http as prober } from '../../src/probers/http.js';
import { createPki, type TestCert, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { type Handler, startHttp, startHttps, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

// blackbox_exporter's prober/http_test.go, scenario by scenario: the same situation against a real
// loopback server, the same verdict, in vigil's config. Each test is named after its Go test.

type HttpDefinition = Parameters<typeof prober.probe>[0];
const DEFINITION = definitionSchema(prober.schema);

function spec(fields: Record<string, unknown>): HttpDefinition {
  const def = Value.Default(DEFINITION, { id: 'bbx', kind: 'http', schedule: '* * * * *', ...structuredClone(fields) });
  const errors = [...Value.Errors(DEFINITION, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) throw new Error(`invalid test definition: ${errors.join('; ')}`);
  const problems = prober.check?.(def as HttpDefinition) ?? [];
  if (problems.length > 0) throw new Error(`definition fails check: ${JSON.stringify(problems)}`);
  return def as HttpDefinition;
}

const run = (fields: Record<string, unknown>, opts: { probesDir?: string } = {}) => prober.probe(spec(fields), probeContext(5_000, opts));

const servers: Array<{ close(): Promise<void> }> = [];
async function serve(handler: Handler): Promise<TestServer> {
  const s = await startHttp(handler);
  servers.push(s);
  return s;
}
async function serveTls(handler: Handler, cert: TestCert): Promise<TestServer> {
  const s = await startHttps(handler, cert);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

let pki: TestPki;
let localhost: TestCert;
beforeAll(() => {
  pki = createPki('Vigil bbx');
  localhost = pki.leaf({ cn: 'localhost', san: ['DNS:localhost', 'IP:127.0.0.1'] });
});
afterAll(() => pki.dispose());

/** A handler that answers `status` with no body, as a Go handler that only calls WriteHeader. */
const answer =
  (status: number): Handler =>
  (_req, res) => {
    res.writeHead(status);
    res.end();
  };

const HELLO = 'hello world'.repeat(10);

describe('bbx: status codes and versions', () => {
  const rows: Array<[number, number[], boolean]> = [
    [200, [], true],
    [201, [], true],
    [299, [], true],
    [300, [], false],
    [404, [], false],
    [404, [200, 404], true],
    [200, [200, 404], true],
    [201, [200, 404], false],
    [404, [404], true],
    [200, [404], false],
  ];
  it.each(rows)('bbx TestHTTPStatusCodes: %i against %j passes: %s', async (status, valid, ok) => {
    const server = await serve(answer(status));
    // Go's empty list is "any 2xx", vigil's default.
    const result = await run({ url: server.url, ...(valid.length > 0 ? { expect: { status: valid } } : {}) });
    expect(result.ok).toBe(ok);
    expect(result.values.status).toBe(status);
    if (!ok) expect(result.code).toBe('HTTP_STATUS');
  });

  const versions: Array<[string[] | undefined, boolean]> = [
    [undefined, true],
    [['HTTP/1.1'], true],
    [['HTTP/2'], false],
  ];
  it.each(versions)('bbx TestValidHTTPVersion: an HTTP/1.1 server against %j passes: %s', async (valid, ok) => {
    const server = await serveTls(answer(200), localhost);
    const fields = {
      url: server.url,
      ca: pki.root.cert,
      ...(valid ? { http2: valid.includes('HTTP/2'), expect: { httpVersions: valid } } : {}),
    };
    const result = await run(fields);
    expect(result).toMatchObject({ ok, ...(ok ? {} : { code: 'ASSERTION', message: 'answered in HTTP/1.1 (expected HTTP/2)' }) });
  });

  it('bbx TestValidHTTPVersion: HTTP/3.0 is refused at load, as blackbox refuses it in config', () => {
    expect([...Value.Errors(DEFINITION, Value.Default(DEFINITION, base({ expect: { httpVersions: ['HTTP/3.0'] } })))]).not.toEqual([]);
  });

  it('bbx TestValidHTTPVersion: an HTTP/2-only server passes with http2: true and says HTTP/2', async () => {
    const server = http2.createSecureServer({ ...localhost, allowHTTP1: false }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('h2 ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (s) => sessions.add(s));
    servers.push({
      close: () =>
        new Promise<void>((r) => {
          for (const s of sessions) s.destroy();
          server.close(() => r());
        }),
    });
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const result = await run({ url, ca: pki.root.cert, http2: true, expect: { httpVersions: ['HTTP/2'], bodyContains: 'h2 ok' } });
    expect(result).toMatchObject({ ok: true, values: { status: 200, http_version: 2 } });
    const refused = await run({ url, ca: pki.root.cert });
    expect(refused).toMatchObject({ ok: false, code: 'PROTOCOL' });
    expect(refused.message).toContain('set http2: true');
    const h1 = await run({ url, ca: pki.root.cert, http2: true, expect: { httpVersions: ['HTTP/1.1'] } });
    expect(h1).toMatchObject({ ok: false, code: 'ASSERTION', message: 'answered in HTTP/2 (expected HTTP/1.1)' });
  });
});

/** A definition as written, before defaults, for load-time checks. */
function base(fields: Record<string, unknown>) {
  return { id: 'bbx', kind: 'http', schedule: '* * * * *', url: 'http://127.0.0.1/', ...fields };
}

describe('bbx: content length and compression', () => {
  const gzip = zlib.gzipSync(HELLO);
  const br = zlib.brotliCompressSync(HELLO);
  const deflate = zlib.deflateSync(HELLO);
  const rows: Array<[string, Handler, boolean, number]> = [
    ['identity', withEncoding('identity', Buffer.from(HELLO)), true, HELLO.length],
    ['no content-encoding', withEncoding(undefined, Buffer.from(HELLO)), true, HELLO.length],
    ['unknown content-encoding', withEncoding('xxx', Buffer.alloc(HELLO.length, 'x')), true, HELLO.length],
    [
      '401',
      (_req, res) => {
        res.writeHead(404);
        res.end('not found');
      },
      false,
      'not found'.length,
    ],
    ['brotli', withEncoding('br', br), true, br.length],
    ['deflate', withEncoding('deflate', deflate), true, deflate.length],
    ['gzip', withEncoding('gzip', gzip), true, gzip.length],
  ];
  it.each(rows)('bbx TestContentLength: %s', async (_name, handler, ok, bytes) => {
    const server = await serve(handler);
    const result = await run({ url: server.url });
    expect(result.ok).toBe(ok);
    // body_bytes counts what came over the wire, as probe_http_content_length does.
    expect(result.values.body_bytes).toBe(bytes);
  });

  const settings: Array<[string, Handler, string, Record<string, string>, boolean]> = [
    ['gzip', withEncoding('gzip', gzip), 'gzip', {}, true],
    ['brotli', withEncoding('br', br), 'br', {}, true],
    ['deflate', withEncoding('deflate', deflate), 'deflate', {}, true],
    ['identity', withEncoding(undefined, Buffer.from(HELLO)), 'identity', {}, true],
    ['compression encoding mismatch', withEncoding('gzip', gzip), 'deflate', {}, false],
    ['accept gzip', withEncoding('gzip', gzip), 'gzip', { 'Accept-Encoding': 'gzip' }, true],
    ['accept br, gzip', withEncoding('gzip', gzip), 'gzip', { 'Accept-Encoding': 'br, gzip' }, true],
    ['accept anything', withEncoding('gzip', gzip), 'gzip', { 'Accept-Encoding': '*' }, true],
  ];
  it.each(settings)('bbx TestHandlingOfCompressionSetting: %s', async (_name, handler, compression, headers, ok) => {
    const seen: Array<string | undefined> = [];
    const server = await serve((req, res) => {
      seen.push(req.headers['accept-encoding']);
      handler(req, res);
    });
    const result = await run({ url: server.url, compression, headers, expect: { bodyContains: 'hello world' } });
    expect(result.ok).toBe(ok);
    expect(seen).toEqual([headers['Accept-Encoding'] ?? compression]);
    if (!ok)
      expect(result).toMatchObject({
        code: 'ASSERTION',
        message: 'asked for deflate (compression), the answer came with Content-Encoding gzip',
      });
  });

  it('bbx TestHandlingOfCompressionSetting: compressed content without compression setting', async () => {
    const server = await serve(withEncoding('gzip', gzip));
    expect(await run({ url: server.url })).toMatchObject({ ok: true, values: { body_bytes: gzip.length } });
  });

  it('bbx TestHandlingOfCompressionSetting: an uncompressed answer fails a compression setting', async () => {
    const server = await serve(withEncoding(undefined, Buffer.from(HELLO)));
    expect(await run({ url: server.url, compression: 'br' })).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: 'asked for br (compression), the answer came uncompressed',
    });
  });

  const MAX = 128;
  const short = zlib.gzipSync(Buffer.alloc(MAX - 1, 'A'));
  const long = zlib.gzipSync(Buffer.alloc(MAX + 1, 'A'));
  const lengths: Array<[string, Handler, string | undefined, boolean]> = [
    ['short', withEncoding(undefined, Buffer.alloc(MAX - 1, 'A')), undefined, true],
    ['long', withEncoding(undefined, Buffer.alloc(MAX + 1, 'A')), undefined, false],
    ['short compressed', withEncoding('gzip', short), 'gzip', true],
    ['long compressed', withEncoding('gzip', long), 'gzip', false],
  ];
  it.each(lengths)('bbx TestMaxResponseLength: %s', async (_name, handler, compression, ok) => {
    const server = await serve(handler);
    const result = await run({ url: server.url, maxBodySize: MAX, ...(compression ? { compression } : {}) });
    expect(result.ok).toBe(ok);
    if (!ok) expect(result.code).toBe('BODY_TOO_LARGE');
  });
});

function withEncoding(encoding: string | undefined, body: Buffer): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-length': body.length, ...(encoding ? { 'content-encoding': encoding } : {}) });
    res.end(body);
  };
}

describe('bbx: redirects', () => {
  it('bbx TestRedirectFollowed: a 302 to a relative Location is followed; redirects = 1', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/') res.writeHead(302, { location: '/noredirect' }).end();
      else res.writeHead(200).end('arrived');
    });
    const result = await run({ url: `${server.url}/`, followRedirects: 10, expect: { bodyContains: 'arrived' } });
    expect(result).toMatchObject({ ok: true, values: { status: 200, redirects: 1 } });
  });

  it('bbx TestRedirectNotFollowed: with followRedirects 0 (the default) the 302 itself is judged', async () => {
    const server = await serve((_req, res) => res.writeHead(302, { location: '/noredirect' }).end());
    expect(await run({ url: server.url, expect: { status: 302 } })).toMatchObject({ ok: true, values: { status: 302 } });
    expect(await run({ url: server.url })).toMatchObject({ ok: false, code: 'HTTP_STATUS' });
  });

  it('bbx TestRedirectionLimit: stops after the limit without asking the next hop', async () => {
    const limit = 11;
    const paths: string[] = [];
    const server = await serve((req, res) => {
      paths.push(req.url ?? '');
      const n = Number(/^\/redirect-(\d+)$/.exec(req.url ?? '')?.[1] ?? 0);
      if (n === limit + 1) res.writeHead(429).end();
      else res.writeHead(302, { location: `/redirect-${n + 1}` }).end();
    });
    const result = await run({ url: server.url, followRedirects: limit - 1 });
    expect(result).toMatchObject({ ok: false, code: 'HTTP_STATUS', values: { status: 302, redirects: limit - 1 } });
    expect(result.message).toMatch(/^too many redirects: stopped after 10 \(followRedirects\)/);
    expect(paths).toHaveLength(limit);
    expect(paths).not.toContain(`/redirect-${limit + 1}`);
  });

  it('bbx TestRedirectToTLSHostWorks: a redirect to an https host is followed and expect.tls then holds', async () => {
    const secure = await serveTls(answer(200), localhost);
    const plain = await serve((_req, res) => res.writeHead(302, { location: `https://localhost:${secure.port}/` }).end());
    const result = await run({ url: plain.url, followRedirects: 5, ca: pki.root.cert, expect: { tls: true } });
    expect(result).toMatchObject({ ok: true, values: { status: 200, redirects: 1 } });
  });

  it('bbx TestCookieJar: a cookie set by a redirect is sent on the next hop', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/') {
        res.writeHead(302, { location: '/noredirect', 'set-cookie': 'somecookie=cookie; Path=/; Max-Age=31536000' }).end();
      } else res.writeHead(req.headers.cookie === 'somecookie=cookie' ? 200 : 400).end(String(req.headers.cookie));
    });
    expect(await run({ url: server.url, followRedirects: 10 })).toMatchObject({ ok: true, values: { status: 200, redirects: 1 } });
  });

  it('303 turns a POST into a GET without its body; 307 keeps both; a foreign host gets no credentials', async () => {
    const seen: Array<{ method?: string; url?: string; body: string; auth?: string }> = [];
    const other = await serve((req, res) => {
      seen.push({ method: req.method, url: `other${req.url}`, body: '', auth: req.headers.authorization });
      res.writeHead(200).end();
    });
    const server = await serve((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, body, auth: req.headers.authorization });
        if (req.url === '/form') res.writeHead(303, { location: '/done' }).end();
        else if (req.url === '/done') res.writeHead(307, { location: '/kept' }).end();
        else if (req.url === '/kept') res.writeHead(302, { location: `http://localhost:${other.port}/away` }).end();
      });
    });
    const result = await run({
      url: `${server.url}/form`,
      method: 'POST',
      body: 'a=1',
      headers: { authorization: 'Bearer secret-token' },
      followRedirects: 5,
    });
    expect(result).toMatchObject({ ok: true, values: { redirects: 3 } });
    expect(seen).toEqual([
      { method: 'POST', url: '/form', body: 'a=1', auth: 'Bearer secret-token' },
      { method: 'GET', url: '/done', body: '', auth: 'Bearer secret-token' },
      { method: 'GET', url: '/kept', body: '', auth: 'Bearer secret-token' },
      { method: 'GET', url: 'other/away', body: '', auth: undefined },
    ]);
  });
});

describe('bbx: requests sent', () => {
  it('bbx TestPost: the method is POST', async () => {
    const server = await serve((req, res) => res.writeHead(req.method === 'POST' ? 200 : 400).end());
    expect(await run({ url: server.url, method: 'POST' })).toMatchObject({ ok: true });
    expect(await run({ url: server.url })).toMatchObject({ ok: false, values: { status: 400 } });
  });

  it('bbx TestBasicAuth: user:password in the URL is sent as Basic auth', async () => {
    const server = await serve((req, res) =>
      res.writeHead(req.headers.authorization === `Basic ${btoa('username:password')}` ? 200 : 401).end(),
    );
    expect(await run({ url: server.url.replace('http://', 'http://username:password@') })).toMatchObject({ ok: true });
  });

  it('bbx TestBearerToken: an Authorization header is sent as written', async () => {
    const server = await serve((req, res) => res.writeHead(req.headers.authorization === 'Bearer mysecret' ? 200 : 401).end());
    expect(await run({ url: server.url, headers: { Authorization: 'Bearer mysecret' } })).toMatchObject({ ok: true });
  });

  it('bbx TestHTTPHeaders: Host, User-Agent and other headers are sent as configured', async () => {
    const headers = { Host: 'my-secret-vhost.com', 'User-Agent': 'unsuspicious-user', 'Accept-Language': 'en-US' };
    const seen: IncomingMessage['headers'][] = [];
    const server = await serve((req, res) => {
      seen.push(req.headers);
      res.writeHead(200).end();
    });
    expect(await run({ url: server.url, headers })).toMatchObject({ ok: true });
    expect(seen[0]).toMatchObject({ host: 'my-secret-vhost.com', 'user-agent': 'unsuspicious-user', 'accept-language': 'en-US' });
  });

  it.each(['body', 'bodyFile'])('bbx TestBody: the request body from %s reaches the server', async (field) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-body-'));
    try {
      writeFileSync(path.join(dir, 'body.txt'), 'Test Body');
      const bodies: string[] = [];
      const server = await serve((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          bodies.push(body);
          res.writeHead(body === 'Test Body' ? 200 : 400).end();
        });
      });
      // Go sends a body with GET; vigil refuses one at load, so the port posts it.
      const fields = { url: server.url, method: 'POST', ...(field === 'body' ? { body: 'Test Body' } : { bodyFile: 'body.txt' }) };
      expect(await run(fields, { probesDir: dir })).toMatchObject({ ok: true });
      expect(bodies).toEqual(['Test Body']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bodyFile that is missing fails the run with CONFIG, naming the resolved path', async () => {
    const server = await serve(answer(200));
    const result = await run({ url: server.url, method: 'POST', bodyFile: 'nope.json' }, { probesDir: '/tmp' });
    expect(result).toMatchObject({
      ok: false,
      code: 'CONFIG',
      message: 'cannot read bodyFile /tmp/nope.json: it does not exist (bodyFile is relative to /tmp)',
    });
  });
});

describe('bbx: TLS', () => {
  it('bbx TestFailIfNotSSL: expect.tls fails an answer over plain HTTP', async () => {
    const server = await serve(answer(200));
    expect(await run({ url: server.url, expect: { tls: true } })).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `the answer came over plain HTTP from ${server.url}/ (expected TLS)`,
    });
  });

  it('bbx TestFailIfNotSSLLogMsg: the TLS message only when the answer came, a connection failure says so instead', async () => {
    const good = await serve(answer(200));
    const bad = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
    servers.push({ close: () => new Promise<void>((r) => bad.close(() => r())) });
    const badUrl = `http://127.0.0.1:${(bad.address() as AddressInfo).port}/`;
    const ssl = await run({ url: good.url, expect: { tls: true } });
    expect(ssl.message).toMatch(/came over plain HTTP/);
    expect(await run({ url: good.url })).toMatchObject({ ok: true });
    const failed = await run({ url: badUrl, expect: { tls: true } });
    expect(failed.ok).toBe(false);
    expect(failed.message).not.toMatch(/plain HTTP/);
  });

  it('bbx TestFailIfSelfSignedCA: a self-signed certificate fails verification', async () => {
    const server = await serveTls(answer(200), pki.selfSigned({ cn: 'localhost', san: ['IP:127.0.0.1'] }));
    expect(await run({ url: server.url })).toMatchObject({ ok: false, code: 'TLS' });
  });

  it('bbx TestSucceedIfSelfSignedCA: insecure skips verification', async () => {
    const server = await serveTls(answer(200), pki.selfSigned({ cn: 'localhost', san: ['IP:127.0.0.1'] }));
    expect(await run({ url: server.url, insecure: true })).toMatchObject({ ok: true });
  });

  it('bbx TestTLSConfigIsIgnoredForPlainHTTP: TLS fields do not affect an http:// target', async () => {
    const server = await serve(answer(200));
    expect(await run({ url: server.url, ca: pki.root.cert, insecure: false })).toMatchObject({ ok: true });
  });

  it('bbx TestHTTPUsesTargetAsTLSServerName: the URL host is the server name checked, over ip4', async () => {
    const server = await serveTls(answer(200), pki.leaf({ cn: 'localhost' }));
    const url = `https://localhost:${server.port}/`;
    expect(await run({ url, ca: pki.root.cert, ipProtocol: 'ip4' })).toMatchObject({ ok: true });
    // The same server by address: its certificate names only localhost.
    expect(await run({ url: server.url, ca: pki.root.cert })).toMatchObject({ ok: false, code: 'TLS' });
  });

  it('bbx TestHTTPPhases: an https run reports every phase', async () => {
    const server = await serveTls(answer(200), localhost);
    const result = await run({ url: `https://localhost:${server.port}/`, ca: pki.root.cert });
    expect(result.ok).toBe(true);
    for (const v of ['dns_ms', 'connect_ms', 'tls_ms', 'ttfb_ms', 'latency_ms']) expect(result.values[v]).toBeGreaterThanOrEqual(0);
  });

  it('client certificates: a server that requires one accepts cert/key, and names the refusal without', async () => {
    const client = pki.leaf({ cn: 'vigil-client', usage: 'client' });
    const server = https.createServer({ ...localhost, ca: pki.root.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
      res.writeHead(200).end(`hello ${peer.subject?.CN}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push({
      close: () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    });
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const ok = await run({ url, ca: pki.root.cert, cert: client.cert, key: client.key, expect: { bodyContains: 'hello vigil-client' } });
    expect(ok).toMatchObject({ ok: true });
    const refused = await run({ url, ca: pki.root.cert });
    expect(refused).toMatchObject({ ok: false, code: 'TLS' });
    expect(refused.message).toMatch(/client certificate \(the definition sets no cert\)/);
  });
});

describe('bbx: body and header expectations', () => {
  const bodyRows: Array<[string, string, string[], boolean]> = [
    ['one regex, match', 'Bad news: could not connect to database server', ['could not connect to database'], false],
    ['one regex, no match', 'Download the latest version here', ['could not connect to database'], true],
    ['multiple regexes, match', 'internal error', ['could not connect to database', 'internal error'], false],
    ['multiple regexes, no match', 'hello world', ['could not connect to database', 'internal error'], true],
  ];
  it.each(bodyRows)('bbx TestFailIfBodyMatchesRegexp: %s', async (_name, body, patterns, ok) => {
    const server = await serve((_req, res) => res.writeHead(200).end(body));
    const result = await run({ url: server.url, expect: { bodyNotMatches: patterns } });
    expect(result.ok).toBe(ok);
    expect(result.values.body_bytes).toBe(body.length);
    if (!ok) expect(result).toMatchObject({ code: 'ASSERTION', message: expect.stringMatching(/^body matches \//) });
  });

  const notRows: Array<[string, string, string[], boolean]> = [
    ['no match', 'Bad news: could not connect to database server', ['Download the latest version here'], false],
    ['match', 'Download the latest version here', ['Download the latest version here'], true],
    ['one of several fails', 'Download the latest version here', ['Download the latest version here', 'Copyright 2015'], false],
    [
      'all of several match',
      'Download the latest version here. Copyright 2015 Test Inc.',
      ['Download the latest version here', 'Copyright 2015'],
      true,
    ],
  ];
  it.each(notRows)('bbx TestFailIfBodyNotMatchesRegexp: %s', async (_name, body, patterns, ok) => {
    const server = await serve((_req, res) => res.writeHead(200).end(body));
    expect((await run({ url: server.url, expect: { bodyMatches: patterns } })).ok).toBe(ok);
  });

  type HeaderRow = [string, string, string[], boolean, boolean];
  const COOKIE_ROOT = 'gid=1; Expires=Tue, 19-Mar-2019 20:08:29 GMT; Domain=.example.com; Path=/';
  const COOKIE_WWW = 'zz=4; expires=Mon, 01-Jan-1990 00:00:00 GMT; Domain=www.example.com; Path=/';
  const matchesRows: HeaderRow[] = [
    ['Content-Type', 'text/javascript', ['text/javascript'], false, false],
    ['Content-Type', 'text/javascript', ['application/octet-stream'], false, true],
    ['content-type', 'text/javascript', ['application/octet-stream'], false, true],
    ['Content-Type', '.*', [''], false, false],
    ['Content-Type', '.*', [], false, false],
    ['Content-Type', '.*', [''], true, false],
    ['Content-Type', '.*', [], true, true],
    ['Set-Cookie', '.*Domain=\\.example\\.com.*', [COOKIE_ROOT], false, false],
    ['Set-Cookie', '.*Domain=\\.example\\.com.*', [COOKIE_WWW, COOKIE_ROOT], false, false],
  ];
  it.each(matchesRows)(
    'bbx TestFailIfHeaderMatchesRegexp: %s /%s/ on %j (allowMissing %s) passes: %s',
    async (name, re, values, allowMissing, ok) => {
      const server = await serve(headerServer(name, values));
      const result = await run({ url: server.url, expect: { headers: { [name]: { notMatches: re, allowMissing } } } });
      expect(result.ok).toBe(ok);
      if (!ok) expect(result.code).toBe('ASSERTION');
    },
  );

  const notMatchesRows: HeaderRow[] = [
    ['Content-Type', 'text/javascript', ['text/javascript'], false, true],
    ['content-type', 'text/javascript', ['text/javascript'], false, true],
    ['Content-Type', 'text/javascript', ['application/octet-stream'], false, false],
    ['Content-Type', '.*', [''], false, true],
    ['Content-Type', '.*', [], false, false],
    ['Content-Type', '.*', [], true, true],
    ['Set-Cookie', '.*Domain=\\.example\\.com.*', [COOKIE_WWW], false, false],
    ['Set-Cookie', '.*Domain=\\.example\\.com.*', [COOKIE_WWW, COOKIE_ROOT], false, true],
  ];
  it.each(notMatchesRows)(
    'bbx TestFailIfHeaderNotMatchesRegexp: %s /%s/ on %j (allowMissing %s) passes: %s',
    async (name, re, values, allowMissing, ok) => {
      const server = await serve(headerServer(name, values));
      const result = await run({ url: server.url, expect: { headers: { [name]: { matches: re, allowMissing } } } });
      expect(result.ok).toBe(ok);
    },
  );
});

/** Answers 200 with `name` set to each of `values` (none: the header is absent), as Go's Header().Add. */
function headerServer(name: string, values: string[]): Handler {
  return (_req, res: ServerResponse) => {
    if (values.length > 0) res.setHeader(name, values.length === 1 ? (values[0] as string) : values);
    res.writeHead(200).end();
  };
}

describe('bbx: ip protocol', () => {
  it('ipProtocol: ip4 and auto reach an IPv4-only name; ip6 is strict and fails', async () => {
    const server = await serve(answer(200));
    const url = `http://localhost:${server.port}/`;
    expect(await run({ url, ipProtocol: 'ip4' })).toMatchObject({ ok: true });
    // localhost has no IPv6 address here: auto falls back to IPv4, as ip_protocol_fallback does.
    expect(await run({ url, ipProtocol: 'auto' })).toMatchObject({ ok: true });
    const strict = await run({ url, ipProtocol: 'ip6' });
    expect(strict.ok).toBe(false);
    expect(['DNS', 'CONNECT']).toContain(strict.code);
  });

  it('ipProtocol: ip6 reaches a server on ::1', async () => {
    const server = http.createServer(answer(200));
    await new Promise<void>((r) => server.listen(0, '::1', r));
    servers.push({ close: () => new Promise<void>((r) => server.close(() => r())) });
    const url = `http://[::1]:${(server.address() as AddressInfo).port}/`;
    expect(await run({ url, ipProtocol: 'ip6' })).toMatchObject({ ok: true });
  });
});

describe('proxy', () => {
  /** A CONNECT proxy on loopback that asks for `user:pass` and records what it was sent. */
  async function proxy(credentials: string) {
    const seen: Array<{ target?: string; auth?: string }> = [];
    const server = http.createServer((_req, res) => res.writeHead(405).end());
    const tunnels = new Set<Socket>();
    server.on('connect', (req: IncomingMessage, client: Socket) => {
      tunnels.add(client);
      seen.push({ target: req.url, auth: req.headers['proxy-authorization'] });
      if (req.headers['proxy-authorization'] !== `Basic ${btoa(credentials)}`) {
        client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
        return;
      }
      const [host, port] = (req.url ?? '').split(':');
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(client);
        client.pipe(upstream);
      });
      tunnels.add(upstream);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push({
      close: () =>
        new Promise<void>((r) => {
          for (const t of tunnels) t.destroy();
          server.close(() => r());
        }),
    });
    return { port: (server.address() as AddressInfo).port, seen };
  }

  it('goes through the proxy with its credentials, and never shows the proxy password', async () => {
    const target = await serve((_req, res) => res.writeHead(200).end('via proxy'));
    const p = await proxy('scott:tiger-pass');
    const result = await run({
      url: target.url,
      proxy: `http://scott:tiger-pass@127.0.0.1:${p.port}`,
      expect: { bodyContains: 'via proxy' },
    });
    expect(result).toMatchObject({ ok: true, values: { status: 200 } });
    expect(p.seen).toEqual([{ target: `127.0.0.1:${target.port}`, auth: `Basic ${btoa('scott:tiger-pass')}` }]);

    const refused = await run({ url: target.url, proxy: `http://scott:wrong-pass@127.0.0.1:${p.port}` });
    expect(refused).toMatchObject({
      ok: false,
      code: 'CONNECT',
      message: `via proxy http://127.0.0.1:${p.port}: the proxy refused the tunnel: answered HTTP 407`,
    });
    expect(JSON.stringify(refused)).not.toContain('wrong-pass');
  });

  it('a proxy that never answers the CONNECT ends as TIMEOUT at the deadline, leaving no socket open', async () => {
    const open = new Set<Socket>();
    const silent = net.createServer((s) => {
      // Reads (and answers nothing), so it sees the client hang up.
      s.resume();
      open.add(s);
      s.on('close', () => open.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    servers.push({
      close: () =>
        new Promise<void>((r) => {
          for (const s of open) s.destroy();
          silent.close(() => r());
        }),
    });
    const proxyUrl = `http://u:p@127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const started = Date.now();
    const result = await prober.probe(spec({ url: 'http://127.0.0.1:9/', proxy: proxyUrl }), probeContext(400));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    await waitFor('the proxy connection closed', () => open.size === 0, 2_000);
  });

  it('reaches an https target through the tunnel, verifying its certificate', async () => {
    const target = await serveTls(answer(200), localhost);
    const p = await proxy('u:p');
    expect(await run({ url: target.url, proxy: `http://u:p@127.0.0.1:${p.port}`, ca: pki.root.cert })).toMatchObject({ ok: true });
    expect(await run({ url: target.url, proxy: `http://u:p@127.0.0.1:${p.port}` })).toMatchObject({ ok: false, code: 'TLS' });
  });
});

describe('JSON comparisons and body texts', () => {
  const doc = { status: 'UP', checks: { db: { latency_ms: 120 } }, version: '1.2.3', items: [1, 2] };
  const rows: Array<[Record<string, unknown>, string | undefined]> = [
    [{ 'checks.db.latency_ms': { lt: 200 }, status: { in: ['UP', 'ok'] }, version: { exists: true } }, undefined],
    [{ 'checks.db.latency_ms': { lte: 120, gte: 120, gt: 100 } }, undefined],
    [{ 'checks.db.latency_ms': { lt: 100 } }, 'JSON checks.db.latency_ms is 120, expected < 100'],
    [{ status: { in: ['ok', 'pass'] } }, 'JSON status is "UP", expected one of "ok", "pass"'],
    [{ missing: { exists: false }, status: { eq: 'UP' } }, undefined],
    [{ version: { exists: false } }, 'JSON version is "1.2.3" (expected it not to exist)'],
    [{ nothing: { exists: true } }, 'JSON nothing is missing (expected it to exist)'],
    [{ status: { gt: 1 } }, 'JSON status is "UP", expected a number > 1'],
    [{ 'items.1': 2, status: 'UP' }, undefined],
  ];
  it.each(rows)('expect.json %j', async (json, message) => {
    const server = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc)));
    const result = await run({ url: server.url, expect: { json } });
    expect(result).toMatchObject(message === undefined ? { ok: true } : { ok: false, code: 'ASSERTION', message });
  });

  it('bodyContains takes a list (all), bodyNotContains a text or a list (none)', async () => {
    const server = await serve((_req, res) => res.writeHead(200).end('status: ok; db: ok; maintenance: off'));
    expect(await run({ url: server.url, expect: { bodyContains: ['status: ok', 'db: ok'], bodyNotContains: 'error' } })).toMatchObject({
      ok: true,
    });
    expect(await run({ url: server.url, expect: { bodyContains: ['status: ok', 'cache: ok'] } })).toMatchObject({
      ok: false,
      message: 'body does not contain "cache: ok": "status: ok; db: ok; maintenance: off"',
    });
    expect(await run({ url: server.url, expect: { bodyNotContains: ['error', 'maintenance'] } })).toMatchObject({
      ok: false,
      message: 'body contains "maintenance": "status: ok; db: ok; maintenance: off"',
    });
  });

  it('a (?i) prefix, as Go writes it, matches case-insensitively', async () => {
    const server = await serve((_req, res) => res.writeHead(200).end('All Systems OPERATIONAL'));
    expect(await run({ url: server.url, expect: { bodyMatches: '(?i)operational' } })).toMatchObject({ ok: true });
  });

  it('status classes and lists mixing codes and classes', async () => {
    const server = await serve(answer(404));
    expect(await run({ url: server.url, expect: { status: '4xx' } })).toMatchObject({ ok: true });
    expect(await run({ url: server.url, expect: { status: ['2xx', 404] } })).toMatchObject({ ok: true });
    expect(await run({ url: server.url, expect: { status: ['2xx', 401] } })).toMatchObject({
      ok: false,
      message: '404 Not Found (expected one of 2xx, 401)',
    });
    expect(await run({ url: server.url, expect: { status: 200 } })).toMatchObject({ ok: false, message: '404 Not Found (expected 200)' });
  });
});

describe('load-time errors for the new fields', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['status', { expect: { status: '6xx' } }, /expect\.status: expected a status code, a class like "2xx", or a list of them/],
    ['status code', { expect: { status: [200, 700] } }, /expect\.status: expected HTTP status codes 100-599/],
    ['httpVersions', { expect: { httpVersions: ['HTTP/3'] } }, /expect\.httpVersions\S*: expected/],
    ['http2 on http', { http2: true }, /http2: expected an https:\/\/ URL/],
    ['followRedirects', { followRedirects: -1 }, /followRedirects: expected a number of redirects from 0 to 20/],
    ['compression', { compression: 'zstd' }, /compression: expected one of gzip, br, deflate, identity/],
    ['body and bodyFile', { method: 'POST', body: 'x', bodyFile: 'b.json' }, /bodyFile: expected either body or bodyFile, not both/],
    ['bodyFile with GET', { bodyFile: 'b.json' }, /bodyFile: expected no body with method GET/],
    ['proxy', { proxy: 'socks5://127.0.0.1:1080' }, /proxy: expected an http:\/\/ or https:\/\/ proxy URL/],
    ['ipProtocol', { ipProtocol: 'ipv4' }, /ipProtocol: expected one of ip4, ip6, auto/],
    ['ipProtocol vs literal', { url: 'http://[::1]/', ipProtocol: 'ip4' }, /ipProtocol: expected an address of the ip4 family/],
    ['bad regex', { expect: { bodyMatches: 'a(b' } }, /expect\.bodyMatches: expected a valid regular expression/],
    [
      'nested quantifier',
      { expect: { bodyNotMatches: ['ok', '(a+)+$'] } },
      /expect\.bodyNotMatches\.1: expected no repeated group that itself repeats/,
    ],
    [
      'header rule',
      { expect: { headers: { 'content-type': { allowMissing: true } } } },
      /expect\.headers\.content-type: expected matches or notMatches/,
    ],
    [
      'header regex',
      { expect: { headers: { 'content-type': { matches: '[' } } } },
      /expect\.headers\.content-type\.matches: expected a valid regular expression/,
    ],
    ['json comparison', { expect: { json: { a: { between: [1, 2] } } } }, /expect\.json\S*: expected/],
    ['cert without key', { cert: '-----BEGIN CERTIFICATE-----' }, /key: cert is set without key/],
    ['bad cert', { cert: 'nonsense', key: 'nonsense' }, /cert: expected PEM text of a certificate/],
    // blackbox guesses http:// for a URL without a scheme and accepts HTTP:// in any case; vigil asks for it written out.
    ['bbx TestHTTPParsingScheme: missing scheme', { url: 'example.com' }, /url: expected an http:\/\/ or https:\/\/ URL/],
    ['bbx TestHTTPParsingScheme: invalid scheme', { url: 'ftp://example.com' }, /url: expected an http:\/\/ or https:\/\/ URL/],
    ['bbx TestHTTPParsingScheme: uppercase scheme', { url: 'HTTP://example.com' }, /url: expected an http:\/\/ or https:\/\/ URL/],
  ];
  it.each(cases)('%s', (_name, fields, message) => {
    const ws = workspace({ 'config/default.yaml': '', 'probes/p.yaml': JSON.stringify([base(fields)]) });
    try {
      let problems: readonly string[] = [];
      try {
        loadConfig({ cwd: ws.dir });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        problems = err.problems;
      }
      expect(problems.join('\n')).toMatch(message);
    } finally {
      ws.remove();
    }
  });

  it('a key that does not belong to its certificate is refused', () => {
    const a = pki.leaf({ cn: 'a.test' });
    const b = pki.leaf({ cn: 'b.test' });
    const problems = prober.check?.(Value.Default(DEFINITION, base({ cert: a.cert, key: b.key })) as HttpDefinition) ?? [];
    expect(problems).toEqual([{ path: 'key', message: 'this key does not belong to the certificate in cert' }]);
  });

  it('every example in probes/examples/http.yaml validates and passes the check', () => {
    const client = pki.leaf({ cn: 'client.test' });
    // `${file:…}` is resolved by the loader; here the PEM fields get real test PEM in their place.
    const pem: Record<string, string> = { ca: pki.root.cert, cert: client.cert, key: client.key };
    const defs = parse(readFileSync('probes/examples/http.yaml', 'utf8')) as Array<Record<string, unknown>>;
    expect(defs.length).toBeGreaterThan(4);
    for (const raw of defs) {
      const filled = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Object.hasOwn(pem, k) ? pem[k] : v]));
      const def = Value.Default(DEFINITION, structuredClone(filled));
      expect([...Value.Errors(DEFINITION, def)].map((e) => `${raw.id} ${e.path}: ${e.message}`)).toEqual([]);
      expect(prober.check?.(def as HttpDefinition)).toEqual([]);
    }
  });
});
