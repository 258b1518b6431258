import { readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { grpc } from '../../src/probers/grpc.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../src/probers/grpc-wire.js';
import { createPki, daysFromNow, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { type HealthServer, type HealthServerOptions, startHealthServer } from '../helpers/grpc-health.js';
import { closedPort, startRaw, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

type GrpcDefinition = Parameters<typeof grpc.probe>[0];

/** A definition as config would load it: defaults applied, validated; `check` problems returned, not thrown. */
function load(fields: Record<string, unknown>): { def: GrpcDefinition; problems: string[] } {
  const schema = definitionSchema(grpc.schema as TObject);
  const def = Value.Default(schema, { id: 'grpc-test', kind: 'grpc', schedule: '* * * * *', ...structuredClone(fields) }) as GrpcDefinition;
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) return { def, problems: errors };
  return { def, problems: (grpc.check?.(def) ?? []).map((p) => `${p.path}: ${p.message}`) };
}

function spec(fields: Record<string, unknown>): GrpcDefinition {
  const { def, problems } = load(fields);
  if (problems.length > 0) throw new Error(`invalid test definition: ${problems.join('; ')}`);
  return def;
}

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function serve(opts: HealthServerOptions = {}): Promise<HealthServer> {
  const s = await startHealthServer(opts);
  servers.push(s);
  return s;
}
async function serveRaw(onConnection: Parameters<typeof startRaw>[0]): Promise<TestServer> {
  const s = await startRaw(onConnection);
  servers.push(s);
  return s;
}

const NAME = 'grpc.vigil.test';
let pki: TestPki;
let other: TestPki;
beforeAll(() => {
  pki = createPki('Vigil gRPC Test');
  other = createPki('Someone Else');
});
afterAll(() => {
  pki?.dispose();
  other?.dispose();
});

describe('grpc wire encoding', () => {
  it('round-trips the health messages, and proto3 leaves defaults out', () => {
    expect(encodeRequest('')).toEqual(Buffer.alloc(0));
    expect(encodeRequest('a.B')).toEqual(Buffer.from([0x0a, 3, 0x61, 0x2e, 0x42]));
    expect(decodeRequest(encodeRequest('my.package.Orders'))).toBe('my.package.Orders');
    expect(decodeRequest(encodeRequest('x'.repeat(300)))).toBe('x'.repeat(300));
    expect(encodeResponse(0)).toEqual(Buffer.alloc(0));
    expect(encodeResponse(2)).toEqual(Buffer.from([0x08, 2]));
    for (const n of [0, 1, 2, 3]) expect(decodeResponse(encodeResponse(n))).toBe(n);
    // Unknown fields of every wire type are skipped.
    expect(decodeResponse(Buffer.from([0x10, 0x96, 0x01, 0x1a, 2, 0, 0, 0x25, 0, 0, 0, 0, 0x08, 1]))).toBe(1);
    expect(() => decodeResponse(Buffer.from([0x0a, 5, 1]))).toThrow(/truncated/);
  });
});

describe('grpc prober', () => {
  it('passes a SERVING server and reports latency and the status number', async () => {
    const server = await serve();
    const s = spec({ target: server.target });
    const result = await grpc.probe(s, probeContext());
    expect(result).toMatchObject({ ok: true, values: { status: 1 }, details: { status: 'SERVING' } });
    expect(result.values.latency_ms).toBeGreaterThanOrEqual(0);
    expect(Object.keys(result.values).sort()).toEqual([...grpc.values(s)].sort());
    expect(server.calls.map((c) => c.service)).toEqual(['']);
  });

  it('asks about the named service, and fails NOT_SERVING and SERVICE_UNKNOWN naming it', async () => {
    const server = await serve();
    server.statuses.set('orders', 'NOT_SERVING');
    server.statuses.set('billing', 'SERVICE_UNKNOWN');
    expect(await grpc.probe(spec({ target: server.target, service: 'orders' }), probeContext())).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `service "orders" at ${server.target} is NOT_SERVING (expected SERVING)`,
      values: { status: 2 },
    });
    expect(await grpc.probe(spec({ target: server.target, service: 'billing' }), probeContext())).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `service "billing" at ${server.target} is SERVICE_UNKNOWN (expected SERVING)`,
      values: { status: 3 },
    });
    // expect.status turns the verdict round: a drained node must say NOT_SERVING.
    expect(
      await grpc.probe(spec({ target: server.target, service: 'orders', expect: { status: 'NOT_SERVING' } }), probeContext()),
    ).toMatchObject({
      ok: true,
      values: { status: 2 },
    });
    expect(server.calls.map((c) => c.service)).toEqual(['orders', 'billing', 'orders']);
  });

  it('sends metadata: repeated values, -bin bytes, lower-cased keys', async () => {
    const server = await serve();
    const s = spec({
      target: server.target,
      metadata: { Authorization: 'Bearer t0ken-123', key1: ['value1', 'value2'], 'key2-bin': 'test' },
    });
    expect(await grpc.probe(s, probeContext())).toMatchObject({ ok: true });
    const md = server.calls[0]?.metadata;
    expect(md?.get('authorization')).toEqual(['Bearer t0ken-123']);
    // grpc-js sends repeated text values as one comma-joined header, as HTTP/2 allows (RFC 9110 §5.3).
    expect(String(md?.get('key1')).split(/,\s*/)).toEqual(['value1', 'value2']);
    expect(md?.get('key2-bin')).toEqual([Buffer.from('test')]);
  });

  it('fails a server without the health service with PROTOCOL', async () => {
    const server = await serve({ health: false });
    expect(await grpc.probe(spec({ target: server.target }), probeContext())).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
      message: `the server has no grpc.health.v1 service: ${server.target} answered UNIMPLEMENTED to Health/Check`,
    });
  });

  it('fails CONNECT on a closed port', async () => {
    const port = await closedPort();
    const result = await grpc.probe(spec({ target: `127.0.0.1:${port}` }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'CONNECT' });
    expect(result.message).toMatch(new RegExp(`^cannot reach 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  });

  it('times out at the run deadline against a server that holds the call, closing the connection', async () => {
    const server = await serve();
    server.hang = true;
    const started = Date.now();
    const result = await grpc.probe(spec({ target: server.target }), probeContext(600));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.message).toMatch(
      new RegExp(`^timed out after \\d+ms waiting for ${server.target.replace(/\./g, '\\.')} to answer Health/Check`),
    );
  });

  it('times out against a port that accepts TCP and never speaks HTTP/2, and leaves no socket open', async () => {
    const live = new Set<import('node:net').Socket>();
    const peer = await serveRaw((socket) => {
      live.add(socket);
      socket.resume();
      socket.on('error', () => {});
      socket.on('close', () => live.delete(socket));
    });
    const result = await grpc.probe(spec({ target: `127.0.0.1:${peer.port}` }), probeContext(500));
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.message).toMatch(
      /connecting to 127\.0\.0\.1:\d+ \(TCP or the HTTP\/2 handshake never completed; does the server expect TLS\?\)$/,
    );
    await waitFor('the probe to close its connection', () => live.size === 0, 2_000);
  });

  it('honours an abort before the deadline (shutdown): cancels the call and closes the connection at once', async () => {
    const server = await serve({ tls: pki.leaf({ cn: NAME }) });
    server.hang = true;
    const controller = new AbortController();
    const ctx = { ...probeContext(30_000), signal: controller.signal };
    setTimeout(() => controller.abort(new Error('shutdown')), 300);
    const started = Date.now();
    const result = await grpc.probe(spec({ target: server.target, tls: true, ca: pki.root.cert, serverName: NAME }), ctx);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.message).toMatch(/waiting for .* to answer Health\/Check for the server$/);
    expect(server.calls).toHaveLength(1);
    await waitFor('the server to see the connection closed', () => server.connections() === 0, 2_000);
  });

  it('fails the details a server echoes, as its words (redaction is the scheduler’s, by value)', async () => {
    const server = await serve({
      fail: (_s, md) => ({ code: status.PERMISSION_DENIED, details: `denied for ${String(md.get('authorization')[0])}` }),
    });
    const result = await grpc.probe(spec({ target: server.target, metadata: { authorization: 'Bearer x' } }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
      message: `${server.target} answered Health/Check with PERMISSION_DENIED: denied for Bearer x`,
    });
  });
});

describe('grpc prober: TLS', () => {
  it('passes over TLS trusted through ca and serverName, reporting tls_days_remaining', async () => {
    const server = await serve({ tls: pki.leaf({ cn: NAME, notAfter: daysFromNow(60) }) });
    const s = spec({ target: server.target, tls: true, ca: pki.root.cert, serverName: NAME });
    const result = await grpc.probe(s, probeContext());
    expect(result).toMatchObject({ ok: true, values: { status: 1, tls_days_remaining: 59 } });
    expect(Object.keys(result.values).sort()).toEqual([...grpc.values(s)].sort());
  });

  it('fails TLS for an untrusted certificate, and passes it with insecure', async () => {
    const server = await serve({ tls: other.leaf({ cn: NAME }) });
    const result = await grpc.probe(spec({ target: server.target, tls: true, serverName: NAME }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'TLS' });
    expect(result.message).toMatch(new RegExp(`^TLS handshake with ${server.target.replace(/\./g, '\\.')} failed: .*certificate`));
    expect(await grpc.probe(spec({ target: server.target, tls: true, insecure: true }), probeContext())).toMatchObject({ ok: true });
  });

  it('fails TLS for a certificate that does not cover serverName', async () => {
    const server = await serve({ tls: pki.leaf({ cn: 'other.vigil.test' }) });
    const result = await grpc.probe(spec({ target: server.target, tls: true, ca: pki.root.cert, serverName: NAME }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'TLS' });
    expect(result.message).toMatch(/grpc\.vigil\.test/);
  });

  it('sends the client certificate a server requires, and says so when none is given', async () => {
    const server = await serve({ tls: { ...pki.leaf({ cn: NAME }), clientCa: pki.root.cert } });
    const base = { target: server.target, tls: true, ca: pki.root.cert, serverName: NAME };
    const without = await grpc.probe(spec(base), probeContext());
    expect(without).toMatchObject({ ok: false, code: 'TLS' });
    expect(without.message).toMatch(/client certificate/);
    expect(await grpc.probe(spec({ ...base, ...pki.leaf({ cn: 'vigil-probe', usage: 'client' }) }), probeContext())).toMatchObject({
      ok: true,
      values: { status: 1 },
    });
  });
});

describe('grpc definitions', () => {
  it.each([
    [{ target: 'api.example.com' }, /^\/target: /],
    [{ target: '127.0.0.1:70000' }, /^target: expected a port 1-65535, got 70000$/],
    [{ target: 'h:1', insecure: true }, /^insecure: expected tls: true with insecure/],
    [{ target: 'h:1', tls: true, ca: 'not pem' }, /^ca: expected PEM/],
    [{ target: 'h:1', tls: true, cert: 'x' }, /^key: cert is set without key/],
    [{ target: 'h:1', metadata: { 'grpc-timeout': '1S' } }, /^metadata\.grpc-timeout: expected a metadata key/],
    [{ target: 'h:1', metadata: { 'x y': 'v' } }, /^metadata\.x y: expected a metadata key/],
    [{ target: 'h:1', metadata: { note: 'été' } }, /^metadata\.note: expected printable ASCII/],
    [{ target: 'h:1', expect: { status: 'UP' } }, /^\/expect\/status: /],
  ])('rejects %j at load', (fields, problem) => {
    const { problems } = load(fields);
    expect(
      problems.some((p) => problem.test(p)),
      problems.join(' | '),
    ).toBe(true);
  });

  it('rejects a client key that is not the certificate’s', () => {
    const a = pki.leaf({ cn: 'vigil-probe', usage: 'client' });
    const b = pki.leaf({ cn: 'x' });
    expect(load({ target: 'h:1', tls: true, cert: a.cert, key: b.key }).problems).toEqual([
      'key: this key does not belong to the certificate in cert',
    ]);
  });

  it('ships examples that validate', () => {
    const defs = parse(readFileSync('probes/examples/grpc.yaml', 'utf8')) as Array<Record<string, unknown>>;
    expect(defs.length).toBeGreaterThan(0);
    // `${file:…}` is read at load time; stand a real CA in for it.
    for (const raw of defs) expect(load(typeof raw.ca === 'string' ? { ...raw, ca: pki.root.cert } : raw).problems).toEqual([]);
    expect(defs).toContainEqual(expect.objectContaining({ id: 'search-drain-grpc', expect: { status: 'NOT_SERVING' } }));
  });
});

/*
 * blackbox_exporter's prober/grpc_test.go, scenario by scenario, against a grpc-js health server.
 * Where Go checks a metric (probe_grpc_status_code), vigil checks the run's code and message.
 */
describe('blackbox_exporter grpc_test.go', () => {
  it('bbx TestGRPCConnection: a SERVING server passes without TLS', async () => {
    const server = await serve();
    server.statuses.set('service', 'SERVING');
    const result = await grpc.probe(spec({ target: `localhost:${server.port}` }), probeContext(1_000));
    expect(result).toMatchObject({ ok: true, values: { status: 1 } });
    expect(result.values.tls_days_remaining).toBeUndefined();
  });

  it('bbx TestGRPCConnectionWithMetadata: key1 twice, key2-bin bytes and Authorization reach the server', async () => {
    const server = await serve({
      fail: (_s, md) =>
        String(md.get('key1')).split(/,\s*/).join() === 'value1,value2' &&
        Buffer.from('test').equals(md.get('key2-bin')[0] as Buffer) &&
        md.get('authorization')[0] === 'Bearer token'
          ? undefined
          : { code: status.INVALID_ARGUMENT, details: 'metadata mismatch' },
    });
    const s = spec({ target: server.target, metadata: { key1: ['value1', 'value2'], 'key2-bin': 'test', Authorization: 'Bearer token' } });
    expect(await grpc.probe(s, probeContext(1_000))).toMatchObject({ ok: true, values: { status: 1 } });
    expect(await grpc.probe(spec({ target: server.target }), probeContext(1_000))).toMatchObject({ ok: false, code: 'PROTOCOL' });
  });

  it('bbx TestMultipleGRPCservices: service1 SERVING passes, service2 NOT_SERVING and unknown service3 fail', async () => {
    const server = await serve();
    server.statuses.set('service1', 'SERVING');
    server.statuses.set('service2', 'NOT_SERVING');
    expect(await grpc.probe(spec({ target: server.target, service: 'service1' }), probeContext(1_000))).toMatchObject({ ok: true });
    expect(await grpc.probe(spec({ target: server.target, service: 'service2' }), probeContext(1_000))).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      values: { status: 2 },
    });
    expect(await grpc.probe(spec({ target: server.target, service: 'service3' }), probeContext(1_000))).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `service "service3" is unknown to the health service at ${server.target} (NOT_FOUND)`,
    });
  });

  it('bbx TestGRPCTLSConnection: TLS with verification skipped passes', async () => {
    const server = await serve({ tls: pki.selfSigned({ cn: 'localhost', notAfter: daysFromNow(1) }) });
    const result = await grpc.probe(spec({ target: `localhost:${server.port}`, tls: true, insecure: true }), probeContext(1_000));
    // Go checks probe_grpc_ssl 1 and the TLS version; vigil reports the certificate's days, read from that handshake.
    expect(result).toMatchObject({ ok: true, values: { status: 1, tls_days_remaining: 0 } });
  });

  it('bbx TestNoTLSConnection: tls: true against a plaintext server fails, not SERVING', async () => {
    const server = await serve();
    const result = await grpc.probe(spec({ target: server.target, tls: true, insecure: true }), probeContext(1_000));
    expect(result.ok).toBe(false);
    expect(['TLS', 'CONNECT']).toContain(result.code);
    expect(result.values.status).toBeUndefined();
  });

  it('bbx TestGRPCServiceNotFound: an unknown service fails with NOT_FOUND in the message', async () => {
    const server = await serve();
    server.statuses.set('service', 'SERVING');
    expect(await grpc.probe(spec({ target: server.target, service: 'NonExistingService' }), probeContext(1_000))).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: expect.stringMatching(/"NonExistingService" is unknown .*\(NOT_FOUND\)$/),
      details: { grpcStatus: 'NOT_FOUND' },
    });
  });

  it('bbx TestGRPCHealthCheckUnimplemented: a server without the health service fails PROTOCOL', async () => {
    const server = await serve({ health: false });
    expect(await grpc.probe(spec({ target: server.target, service: 'NonExistingService' }), probeContext(1_000))).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
      details: { grpcStatus: 'UNIMPLEMENTED' },
    });
  });

  it('bbx TestGRPCAbsentFailedTLS: a failed connection reports no TLS value', async () => {
    const port = await closedPort();
    const result = await grpc.probe(spec({ target: `localhost:${port}`, tls: true }), probeContext(1_000));
    expect(result).toMatchObject({ ok: false, code: 'CONNECT' });
    expect(result.values.tls_days_remaining).toBeUndefined();
    expect(result.values.status).toBeUndefined();
  });
});
