/**
 * The load-balancer kind against a real haproxy (Debian's package) in front of three node backends,
 * each started for its test on free loopback ports and stopped after. `resolve: all` is tested
 * against the test DNS server (a real one, on loopback) answering two A records, 127.0.0.1 and
 * 127.0.0.2, for `app.test`: both are loopback addresses on Linux, so two https backends listen on
 * the same port at each, and record the Host and SNI they were reached with.
 */

import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { loadBalancer } from '../../src/probers/load-balancer.js';
import { createPki, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startHaproxy } from '../helpers/haproxy.js';
import { startHttp, startRaw, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

type Definition = Parameters<typeof loadBalancer.probe>[0];
const schema = definitionSchema(loadBalancer.schema as unknown as TObject);

/** The loader's verdict on a definition: schema errors, else the prober's own check. */
function problemsOf(fields: Record<string, unknown>): string[] {
  const def = Value.Default(schema, { id: 'lb-test', kind: 'load-balancer', schedule: '* * * * *', ...structuredClone(fields) });
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) return errors;
  return (loadBalancer.check?.(def as never) ?? []).map((p) => `${p.path}: ${p.message}`);
}

function spec(fields: Record<string, unknown>): Definition {
  const problems = problemsOf(fields);
  if (problems.length > 0) throw new Error(`invalid test definition: ${problems.join('; ')}`);
  return Value.Default(schema, { id: 'lb-test', kind: 'load-balancer', schedule: '* * * * *', ...structuredClone(fields) }) as Definition;
}

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A backend: `/hc` for haproxy's checks, `/health` for vigil's, `/app` for requests through the balancer (counted). */
async function backend(n: number): Promise<TestServer & { app: () => number }> {
  let app = 0;
  const server = await startHttp((req, res) => {
    if (req.url === '/app') app++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', backend: n }));
  });
  const stop = server.close;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await stop();
  };
  cleanup.push(close);
  return Object.assign(server, { app: () => app, close });
}

async function balanced(inter: string) {
  const backends = [await backend(0), await backend(1), await backend(2)];
  const lb = await startHaproxy({ backends: backends.map((b) => b.port), inter, checkPath: '/hc' });
  cleanup.push(() => lb.stop());
  // Spawn to first answer is 140-480 ms here; a slow start is a broken install, not a slow machine.
  expect(lb.startMs).toBeLessThan(5_000);
  const def = spec({
    url: `${lb.url}/app`,
    instances: backends.map((b) => `${b.url}/health`),
    expect: { json: { status: 'ok' } },
  });
  return { backends, lb, def, served: () => backends.reduce((n, b) => n + b.app(), 0) };
}

describe('load-balancer behind haproxy', () => {
  it('passes when every instance is healthy and no request through the balancer gets a 5xx', async () => {
    const { def, backends, lb, served } = await balanced('100ms');
    await waitFor('haproxy to see every backend up', async () => Object.values(await lb.states()).every((s) => s === 'UP'));
    const before = backends.map((b) => b.app());
    const result = await loadBalancer.probe(def, probeContext(5_000));
    expect(result.message).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(result.values).toMatchObject({ instances_healthy: 3, instances_total: 3, lb_5xx: 0 });
    expect(result.values.latency_ms).toBeGreaterThanOrEqual(0);
    // Every one of the 20 requests went through haproxy to a backend, round robin over all three.
    expect(served() - before.reduce((a, b) => a + b, 0)).toBe(20);
    for (const [i, b] of backends.entries()) expect(b.app() - (before[i] ?? 0)).toBeGreaterThanOrEqual(6);
  });

  it('names a stopped instance and counts the 503s haproxy answers before its checks notice', async () => {
    // A check every 60 s: haproxy still holds the stopped backend UP for the whole run.
    const { def, backends, lb, served } = await balanced('60s');
    const stopped = backends[1] as (typeof backends)[number];
    await stopped.close();
    const result = await loadBalancer.probe(def, probeContext(5_000));
    expect(result.ok).toBe(false);
    expect(result.code).toBe('HTTP_STATUS');
    expect(result.values).toMatchObject({ instances_healthy: 2, instances_total: 3 });
    const fiveXx = result.values.lb_5xx ?? 0;
    expect(fiveXx).toBeGreaterThanOrEqual(5);
    // Each request either reached a live backend or got haproxy's 503 for the dead one.
    expect(served() + fiveXx).toBe(20);
    expect(result.message).toContain(`${stopped.url}/health: cannot connect: ECONNREFUSED`);
    expect(result.message).toContain(`${fiveXx} of 20 requests through the balancer got 503`);
    // Still routed to: `UP`, or `UP 1/2` when one check has failed since (fall 2 takes two).
    expect((await lb.states()).s1).toMatch(/^UP\b/);
  });

  it('still names the stopped instance when haproxy has routed around it: no 5xx', async () => {
    const { def, backends, lb } = await balanced('100ms');
    await waitFor('haproxy to see every backend up', async () => Object.values(await lb.states()).every((s) => s === 'UP'));
    const stopped = backends[2] as (typeof backends)[number];
    await stopped.close();
    await waitFor('haproxy to mark s2 down', async () => (await lb.states()).s2 === 'DOWN');
    const result = await loadBalancer.probe(def, probeContext(5_000));
    expect(result.ok).toBe(false);
    expect(result.code).toBe('UNHEALTHY_INSTANCE');
    expect(result.values).toMatchObject({ instances_healthy: 2, instances_total: 3, lb_5xx: 0 });
    expect(result.message).toBe(`${stopped.url}/health: cannot connect: ECONNREFUSED 127.0.0.1:${stopped.port}`);
  });

  it('fails an instance on its expect block, as an http probe would', async () => {
    const { lb } = await balanced('100ms');
    const wrong = await startHttp((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"degraded"}');
    });
    cleanup.push(() => wrong.close());
    const result = await loadBalancer.probe(
      spec({ url: `${lb.url}/app`, instances: [`${wrong.url}/health`], expect: { json: { status: 'ok' } }, requests: 3 }),
      probeContext(5_000),
    );
    expect(result.ok).toBe(false);
    expect(result.message).toBe(`${wrong.url}/health: JSON status is "degraded", expected "ok"`);
  });
});

describe('load-balancer with resolve: all', () => {
  let pki: TestPki;
  let dns: TestDnsServer;
  beforeAll(async () => {
    pki = createPki('Vigil LB Test');
    dns = await startDnsServer({
      zone: {
        'app.test': [
          { type: 'A', value: '127.0.0.1' },
          { type: 'A', value: '127.0.0.2' },
        ],
      },
    });
  });
  afterAll(async () => {
    await dns.close();
    pki.dispose();
  });

  /** An https server at `address`:`port` presenting a certificate for app.test; records the Host and SNI it saw. */
  async function instance(address: string, port: number) {
    const seen: Array<{ host: string | undefined; sni: string | false | null; path: string | undefined }> = [];
    const server = https.createServer(pki.leaf({ cn: 'app.test' }), (req, res) => {
      seen.push({ host: req.headers.host, sni: (req.socket as TLSSocket).servername, path: req.url });
      res.end('ok');
    });
    const sockets = new Set<Socket>();
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolve());
    });
    let closed = false;
    const close = () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
    cleanup.push(close);
    return { seen, close, port: (server.address() as AddressInfo).port };
  }

  async function pair() {
    const first = await instance('127.0.0.1', 0);
    const second = await instance('127.0.0.2', first.port);
    const def = spec({
      url: `https://app.test:${first.port}/health`,
      resolve: 'all',
      resolver: dns.address,
      ca: pki.root.cert,
      expect: { bodyContains: 'ok' },
      requests: 10,
    });
    return { first, second, def };
  }

  it('checks every address of the host with its Host and SNI, and spreads the requests over them', async () => {
    const { first, second, def } = await pair();
    const result = await loadBalancer.probe(def, probeContext(5_000));
    expect(result.message).toBeUndefined();
    expect(result.values).toMatchObject({ instances_healthy: 2, instances_total: 2, lb_5xx: 0 });
    for (const s of [first, second]) {
      // One instance check and five of the ten requests each, all for app.test.
      expect(s.seen).toHaveLength(6);
      for (const r of s.seen) expect(r).toEqual({ host: `app.test:${first.port}`, sni: 'app.test', path: '/health' });
    }
    const instances = (result.details?.instances ?? []) as Array<{ instance: string }>;
    expect(instances.map((i) => i.instance).sort()).toEqual(['127.0.0.1', '127.0.0.2']);
  });

  it('names the address that is down', async () => {
    const { second, def } = await pair();
    await second.close();
    const result = await loadBalancer.probe(def, probeContext(5_000));
    expect(result.ok).toBe(false);
    expect(result.code).toBe('CONNECT');
    expect(result.values).toMatchObject({ instances_healthy: 1, instances_total: 2, lb_5xx: 0 });
    expect(result.message).toMatch(
      /^127\.0\.0\.2: cannot connect: ECONNREFUSED 127\.0\.0\.2:\d+; 5 of 10 requests through the balancer got no answer/,
    );
  });

  it('asks the system resolver without a resolver: localhost, every address it has here', async () => {
    // Listening on every address (dual stack where there is IPv6), so each address localhost has answers.
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(`${req.socket.localAddress} ${req.headers.host}`);
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, () => resolve()));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    const addresses = [...new Set((await lookup('localhost', { all: true })).map((a) => a.address))];
    const result = await loadBalancer.probe(spec({ url: `http://localhost:${port}/`, resolve: 'all', requests: 2 }), probeContext(5_000));
    expect(result.message).toBeUndefined();
    expect(result.values).toMatchObject({ instances_healthy: addresses.length, instances_total: addresses.length });
    const instances = (result.details?.instances ?? []) as Array<{ instance: string }>;
    expect(instances.map((i) => i.instance).sort()).toEqual([...addresses].sort());
    for (const line of seen) expect(line).toMatch(new RegExp(` localhost:${port}$`));
  });

  it('fails with DNS when the resolver has no address for the host', async () => {
    const result = await loadBalancer.probe(
      spec({ url: 'http://nothing.test/', resolve: 'all', resolver: dns.address, requests: 2 }),
      probeContext(2_000),
    );
    expect(result.ok).toBe(false);
    expect(result.code).toBe('DNS');
    expect(result.message).toContain('nothing.test');
  });
});

describe('load-balancer deadline and definitions', () => {
  it('ends a run against a balancer that never answers at the deadline, with nothing left open', async () => {
    const live = new Set<Socket>();
    const silent = await startRaw((socket) => {
      live.add(socket);
      socket.resume();
      socket.on('error', () => {});
      socket.on('close', () => live.delete(socket));
    });
    cleanup.push(() => silent.close());
    const healthy = await backend(0);
    const started = Date.now();
    const result = await loadBalancer.probe(
      spec({ url: `${silent.url}/app`, instances: [`${healthy.url}/health`], requests: 6, concurrency: 3 }),
      probeContext(1_000),
    );
    const took = Date.now() - started;
    expect(result.ok).toBe(false);
    expect(result.code).toBe('TIMEOUT');
    expect(result.values).toMatchObject({ instances_healthy: 1, instances_total: 1 });
    expect(result.message).toMatch(/^timed out after 1\.\d+s: 6 of 6 requests through the balancer got no answer \(timed out after/);
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2_500);
    // Three connections at a time were open; every one is closed once the run is over.
    await waitFor('the probe to close its connections', () => live.size === 0, 2_000);
  });

  it('rejects definitions that name no instances, or both ways', () => {
    expect(problemsOf({ url: 'http://lb.test/' })).toEqual([
      'instances: expected either instances (a list of URLs) or resolve: all, not both or neither',
    ]);
    expect(problemsOf({ url: 'http://lb.test/', resolve: 'all', instances: ['http://10.0.0.1/'] })).toHaveLength(1);
    expect(problemsOf({ url: 'http://lb.test/', instances: ['ftp://10.0.0.1/'] })).toEqual([expect.stringMatching(/^\/instances\/0: /)]);
    expect(problemsOf({ url: 'http://lb.test/', instances: ['http://10.0.0.1/'], resolver: '127.0.0.1:53' })).toEqual([
      'resolver: expected resolve: all with a resolver',
    ]);
    expect(problemsOf({ url: 'http://lb.test/', resolve: 'all', resolver: 'not an address' })).toEqual([
      'resolver: expected a resolver address: an IP, "IP:port" or "[IPv6]:port", got "not an address"',
    ]);
    expect(problemsOf({ url: 'http://lb.test/', resolve: 'all', requests: 5, max5xx: 6 })).toEqual([
      'max5xx: expected at most requests (5) 5xx answers, got 6',
    ]);
    // The http kind's own rules apply to the expect block.
    expect(problemsOf({ url: 'http://lb.test/', resolve: 'all', expect: { status: 700 } })).toEqual([
      'expect.status: expected HTTP status codes 100-599 or a class like "2xx", got 700',
    ]);
  });

  it('ships example definitions that validate offline', () => {
    const defs = parse(readFileSync('probes/examples/load-balancer.yaml', 'utf8')) as Array<Record<string, unknown>>;
    for (const raw of defs) expect(problemsOf(raw), String(raw.id)).toEqual([]);
    expect(defs.map((d) => d.id)).toEqual(['shop-lb', 'api-edge']);
  });

  it('shows the balancer without its password as its target and evidence', () => {
    const def = spec({ url: 'https://ops:hunter2@lb.test/app', resolve: 'all' });
    expect(loadBalancer.report.target(def)).toBe('https://lb.test/app');
    const w = { runs: 10, failures: 0, values: {}, last: { ok: true }, lastSuccess: null };
    expect(loadBalancer.report.evidence?.(def, w, {} as never)).toEqual({
      section: 'loadBalancer',
      item: { probeId: 'lb-test', target: 'https://lb.test/app', runs: 10, failures: 0, ok: true },
    });
  });
});
