import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { parse, stringify } from 'yaml';
import { createSecretBook, loadConfig } from '../../src/config/index.js';
import { definitionSchema } from '../../src/config/schema.js';
import { createRedactor } from '../../src/lib/redactor.js';
import { websocket } from '../../src/probers/websocket.js';
import { createPki, daysFromNow, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { closedPort, startRaw } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

type WsDefinition = Parameters<typeof websocket.probe>[0];

function load(fields: Record<string, unknown>): { def: WsDefinition; problems: string[] } {
  const schema = definitionSchema(websocket.schema as TObject);
  const def = Value.Default(schema, {
    id: 'ws-test',
    kind: 'websocket',
    schedule: '* * * * *',
    ...structuredClone(fields),
  }) as WsDefinition;
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) return { def, problems: errors };
  return { def, problems: (websocket.check?.(def) ?? []).map((p) => `${p.path}: ${p.message}`) };
}

function spec(fields: Record<string, unknown>): WsDefinition {
  const { def, problems } = load(fields);
  if (problems.length > 0) throw new Error(`invalid test definition: ${problems.join('; ')}`);
  return def;
}

/** A `ws` server on loopback (over TLS when given a certificate), recording what each client sent. */
interface WsPeer {
  url: string;
  port: number;
  /** The upgrade requests received, in order. */
  requests: IncomingMessage[];
  /** Messages received from clients, as text. */
  received: string[];
  /** Close codes the server saw from clients. */
  closes: number[];
  /** Server-side sockets still open. */
  readonly open: number;
  close(): Promise<void>;
}

interface PeerOptions {
  onConnection?: (ws: WebSocket, req: IncomingMessage) => void;
  tls?: { cert: string; key: string };
  /** Refuse the upgrade with this HTTP status. */
  refuse?: number;
  handleProtocols?: (protocols: Set<string>) => string | false;
}

const peers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

async function peer(opts: PeerOptions = {}): Promise<WsPeer> {
  const server: Server = opts.tls ? createHttpsServer(opts.tls) : createHttpServer();
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => {});
  const wss = new WebSocketServer({ noServer: true, ...(opts.handleProtocols ? { handleProtocols: opts.handleProtocols } : {}) });
  const requests: IncomingMessage[] = [];
  const received: string[] = [];
  const closes: number[] = [];
  server.on('upgrade', (req, socket, head) => {
    requests.push(req);
    if (opts.refuse !== undefined) {
      socket.end(`HTTP/1.1 ${opts.refuse} Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (d) => received.push(String(d)));
      ws.on('close', (code) => closes.push(code));
      ws.on('error', () => {});
      opts.onConnection?.(ws, req);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const handle: WsPeer = {
    url: `${opts.tls ? 'wss' : 'ws'}://127.0.0.1:${port}/live`,
    port,
    requests,
    received,
    closes,
    get open() {
      return sockets.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        for (const s of sockets) s.destroy();
        wss.close();
        server.close(() => resolve());
      }),
  };
  peers.push(handle);
  return handle;
}

const echo = (ws: WebSocket) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));

const NAME = 'ws.vigil.test';
let pki: TestPki;
let other: TestPki;
beforeAll(() => {
  pki = createPki('Vigil WS Test');
  other = createPki('Someone Else');
});
afterAll(() => {
  pki?.dispose();
  other?.dispose();
});

describe('websocket prober', () => {
  it('sends, matches the echo, reports connect and message latency, and closes cleanly with 1000', async () => {
    const server = await peer({ onConnection: echo });
    const s = spec({ url: server.url, send: 'ping 42', expect: '^ping \\d+$', headers: { 'x-probe': 'vigil' } });
    const result = await websocket.probe(s, probeContext());
    expect(result).toMatchObject({ ok: true, details: { messages: 1 } });
    expect(Object.keys(result.values).sort()).toEqual([...websocket.values(s)].sort());
    expect(result.values.latency_ms).toBeGreaterThanOrEqual(result.values.connect_ms ?? Number.NaN);
    expect(server.received).toEqual(['ping 42']);
    expect(server.requests[0]?.headers['x-probe']).toBe('vigil');
    await waitFor('the server to see the close frame', () => server.closes.length === 1, 2_000);
    expect(server.closes).toEqual([1000]);
    await waitFor('the connection to be gone', () => server.open === 0, 2_000);
  });

  it('waits past messages that do not match for a greeting that does', async () => {
    const server = await peer({
      onConnection: (ws) => {
        ws.send('tick');
        setTimeout(() => ws.send(JSON.stringify({ status: 'ready', version: '1.2' })), 50);
      },
    });
    const result = await websocket.probe(spec({ url: server.url, expect: '"status":"ready"' }), probeContext());
    expect(result).toMatchObject({ ok: true, details: { messages: 2 } });
    expect(result.values.latency_ms).toBeGreaterThanOrEqual(40);
  });

  it('passes on the handshake alone without expect, latency being the handshake', async () => {
    const server = await peer();
    const result = await websocket.probe(spec({ url: server.url }), probeContext());
    expect(result.ok).toBe(true);
    expect(result.values.latency_ms).toBe(result.values.connect_ms);
  });

  it('offers subprotocols, and fails PROTOCOL when the server picks none', async () => {
    const picky = await peer({ handleProtocols: (p) => (p.has('graphql-transport-ws') ? 'graphql-transport-ws' : false) });
    expect(await websocket.probe(spec({ url: picky.url, subprotocols: ['v9', 'graphql-transport-ws'] }), probeContext())).toMatchObject({
      ok: true,
    });
    expect(picky.requests[0]?.headers['sec-websocket-protocol']).toBe('v9,graphql-transport-ws');
    const result = await websocket.probe(spec({ url: picky.url, subprotocols: ['v9'] }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
      message: `${picky.url} answered the upgrade wrongly: Server sent no subprotocol`,
    });
  });

  it('fails HTTP_STATUS with the status when the upgrade is refused', async () => {
    const server = await peer({ refuse: 403 });
    const result = await websocket.probe(spec({ url: server.url }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'HTTP_STATUS',
      message: `${server.url} refused the WebSocket upgrade: HTTP 403 Forbidden`,
    });
    expect(result.values.connect_ms).toBeUndefined();
    await waitFor('the connection to be gone', () => server.open === 0, 2_000);
  });

  it('fails CONNECT on a closed port', async () => {
    const port = await closedPort();
    expect(await websocket.probe(spec({ url: `ws://127.0.0.1:${port}/` }), probeContext())).toMatchObject({
      ok: false,
      code: 'CONNECT',
      message: `cannot connect to ws://127.0.0.1:${port}: connection refused (ECONNREFUSED)`,
    });
  });

  it('times out against a port that accepts TCP and never answers the upgrade, leaving no socket open', async () => {
    const live = new Set<Socket>();
    const raw = await startRaw((socket) => {
      live.add(socket);
      socket.resume();
      socket.on('error', () => {});
      socket.on('close', () => live.delete(socket));
    });
    peers.push(raw);
    const started = Date.now();
    const result = await websocket.probe(spec({ url: `ws://127.0.0.1:${raw.port}/live` }), probeContext(400));
    expect(Date.now() - started).toBeLessThan(1_200);
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.message).toMatch(
      /^timed out after \d+ms connecting to ws:\/\/127\.0\.0\.1:\d+\/live \(no completed WebSocket upgrade\)$/,
    );
    await waitFor('the probe to close its connection', () => live.size === 0, 2_000);
  });

  it('times out when the server says nothing, and fails ASSERTION quoting the last message (cut short) when nothing matched', async () => {
    const silent = await peer();
    const quiet = await websocket.probe(spec({ url: silent.url, expect: 'pong' }), probeContext(400));
    expect(quiet).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(quiet.message).toMatch(/waiting for a message matching \/pong\/ from .*: the server sent none$/);
    expect(quiet.values.connect_ms).toBeGreaterThanOrEqual(0);

    const chatty = await peer({ onConnection: (ws) => ws.send(`status: degraded ${'x'.repeat(500)}`) });
    const result = await websocket.probe(spec({ url: chatty.url, expect: 'status: ok' }), probeContext(400));
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(result.message).toMatch(/^no message from .* matched \/status: ok\/ within \d+ms; last of 1: "status: degraded x+…"$/);
    expect(result.message?.length).toBeLessThan(350);
    await waitFor('the connection to be gone', () => chatty.open === 0, 2_000);
  });

  it('fails at once when the server closes before a message matched', async () => {
    const server = await peer({
      onConnection: (ws) => {
        ws.send('maintenance');
        ws.close(1013, 'try again later');
      },
    });
    const started = Date.now();
    const result = await websocket.probe(spec({ url: server.url, expect: '^ready' }), probeContext(5_000));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `${server.url} closed the connection (1013 try again later) before a message matched /^ready/; last of 1: "maintenance"`,
    });
  });

  it('hides this probe’s secrets in the message it quotes', async () => {
    const server = await peer({ onConnection: (ws, req) => ws.send(`hello ${req.headers.authorization}`) });
    const ctx = { ...probeContext(400), redactor: createRedactor(['S3cret-T0ken-991']) };
    const result = await websocket.probe(
      spec({ url: server.url, headers: { authorization: 'Bearer S3cret-T0ken-991' }, expect: '^welcome' }),
      ctx,
    );
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(result.message).toContain('"hello Bearer <secret>"');
    expect(result.message).not.toContain('S3cret');
  });

  it('fails PROTOCOL on a message larger than 1 MiB', async () => {
    const server = await peer({ onConnection: (ws) => ws.send(Buffer.alloc(1_048_577, 0x61)) });
    expect(await websocket.probe(spec({ url: server.url, expect: 'b' }), probeContext())).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
      message: `${server.url} sent a message larger than 1 MiB`,
    });
  });
});

describe('websocket prober: wss', () => {
  it('passes a chain trusted through ca, reporting tls_days_remaining', async () => {
    const server = await peer({ tls: pki.leaf({ cn: NAME, san: ['IP:127.0.0.1'], notAfter: daysFromNow(30) }), onConnection: echo });
    const s = spec({ url: server.url, ca: pki.root.cert, send: 'hi', expect: 'hi' });
    const result = await websocket.probe(s, probeContext());
    expect(result).toMatchObject({ ok: true, values: { tls_days_remaining: 29 } });
    expect(Object.keys(result.values).sort()).toEqual([...websocket.values(s)].sort());
  });

  it('fails TLS for an untrusted certificate, and passes it with insecure', async () => {
    const server = await peer({ tls: other.leaf({ cn: NAME, san: ['IP:127.0.0.1'] }) });
    const result = await websocket.probe(spec({ url: server.url }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'TLS',
      message: `TLS handshake with ${server.url} failed: the certificate is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE): add the issuing CA with ca:, or set insecure: true`,
    });
    expect(await websocket.probe(spec({ url: server.url, insecure: true }), probeContext())).toMatchObject({ ok: true });
  });

  it('fails TLS against a plaintext port', async () => {
    const server = await peer();
    const result = await websocket.probe(spec({ url: server.url.replace('ws:', 'wss:') }), probeContext());
    expect(result, result.message).toMatchObject({ ok: false, code: 'TLS' });
    expect(result.message).toMatch(/wrong version number \(is this port serving TLS\?\)$/);
  });
});

describe('websocket definitions', () => {
  it.each([
    [{ url: 'http://example.com/ws' }, /^\/url: /],
    [{ url: 'ws://example.com/ws', expect: '([a' }, /^expect: expected a regular expression: /],
    [{ url: 'ws://example.com/ws', insecure: true }, /^insecure: expected a wss:\/\/ url/],
    [{ url: 'ws://example.com/ws', ca: 'x' }, /^ca: expected a wss:\/\/ url/],
    [{ url: 'wss://example.com/ws', ca: 'not pem' }, /^ca: expected PEM/],
    [{ url: 'ws://example.com/ws', subprotocols: ['a b'] }, /^\/subprotocols\/0: /],
    [{ url: 'ws://u:100%@example.com/ws' }, /^url: expected the user and password in the URL to be percent-encoded/],
    [{ url: 'ws://example.com/ws', ping: true }, /^\/ping: |Unexpected property/],
  ])('rejects %j at load', (fields, problem) => {
    const { problems } = load(fields);
    expect(
      problems.some((p) => problem.test(p)),
      problems.join(' | '),
    ).toBe(true);
  });

  it('shows its target without the URL’s password', () => {
    expect(websocket.report.target(spec({ url: 'wss://probe:hunter22@example.com/live' }))).toBe('wss://example.com/live');
  });

  it('ships examples that validate', () => {
    const defs = parse(readFileSync('probes/examples/websocket.yaml', 'utf8')) as Array<Record<string, unknown>>;
    expect(defs.length).toBeGreaterThan(0);
    for (const raw of defs) expect(load(typeof raw.ca === 'string' ? { ...raw, ca: pki.root.cert } : raw).problems).toEqual([]);
  });
});

/*
 * blackbox_exporter's prober/websocket_test.go against a `ws` server. Go's query_response steps
 * (expect, then send with `${1}` from the match) become vigil's one `send` on open and one `expect`.
 */
describe('blackbox_exporter websocket_test.go', () => {
  it('bbx TestCostructHeadersFromConfig: URL credentials as Basic auth, literal headers and a header read from a file', async () => {
    const server = await peer();
    const ws = workspace({ 'config/default.yaml': 'service:\n  port: 8080\n', 'header.txt': 'header_value_from_file' });
    try {
      const def = {
        id: 'bbx-headers',
        kind: 'websocket',
        schedule: '* * * * *',
        url: `ws://user:password@127.0.0.1:${server.port}/live`,
        headers: { 'X-Custom-Header': 'custom_value', 'X-Header-From-File': `\${file:${path.join(ws.dir, 'header.txt')}}` },
      };
      writeFileSync(path.join(ws.dir, 'probes', 'bbx.yaml'), stringify([def]));
      const loaded = loadConfig({ cwd: ws.dir, env: {} });
      const d = loaded.probes[0] as WsDefinition;
      const result = await websocket.probe(d, { ...probeContext(), redactor: createSecretBook(loaded).forProbe(d) });
      expect(result.ok).toBe(true);
      const h = server.requests[0]?.headers ?? {};
      expect(h.authorization).toBe(`Basic ${Buffer.from('user:password').toString('base64')}`);
      expect(h['x-custom-header']).toBe('custom_value');
      expect(h['x-header-from-file']).toBe('header_value_from_file');
    } finally {
      ws.remove();
    }
  });

  /** Go's server: greets with incoming_test, wants outgoing_test back, answers passed, then drops the connection. */
  const goServer = () =>
    peer({
      onConnection: (ws) => {
        ws.send('incoming_test');
        ws.once('message', (m) => {
          ws.send(String(m) === 'outgoing_test' ? 'passed' : `unexpected ${String(m)}`);
          ws.terminate();
        });
      },
    });

  it('bbx TestProbeWebsocket: send outgoing_test, expect ^passed after the greeting: success', async () => {
    const server = await goServer();
    const result = await websocket.probe(spec({ url: server.url, send: 'outgoing_test', expect: '^passed' }), probeContext(2_000));
    expect(result).toMatchObject({ ok: true, details: { messages: 2 } });
    expect(server.received).toEqual(['outgoing_test']);
  });

  it('bbx TestProbeWebsocket: expect ^someotherstring fails by the regex, quoting the last message', async () => {
    const server = await goServer();
    const result = await websocket.probe(spec({ url: server.url, send: 'outgoing_test', expect: '^someotherstring' }), probeContext(2_000));
    expect(result).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `${server.url} closed the connection without a close frame before a message matched /^someotherstring/; last of 2: "passed"`,
    });
  });

  it('bbx TestProbeWebsocket: wss with verification skipped, a bearer token and a custom header: success', async () => {
    const server = await peer({ tls: pki.selfSigned({ cn: 'example.com' }) });
    const result = await websocket.probe(
      spec({ url: server.url, insecure: true, headers: { Authorization: 'Bearer test_token', 'X-Should-Be-Sent': 'true' } }),
      probeContext(2_000),
    );
    expect(result).toMatchObject({ ok: true });
    expect(result.values.tls_days_remaining).toBeGreaterThan(80);
    expect(server.requests[0]?.headers.authorization).toBe('Bearer test_token');
    expect(server.requests[0]?.headers['x-should-be-sent']).toBe('true');
  });
});
