import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { type Clock, systemClock } from '../../src/lib/clock.js';
import { type DnsSpec, dns } from '../../src/probers/dns.js';
import { decodeResponse, presentation, queryTtl } from '../../src/probers/dns-wire.js';
import { isProbeKind, type ProbeBase, type ProbeResult, type ProbeState } from '../../src/probers/index.js';
import { memoryState, probeContext } from '../helpers/context.js';
import { startDnsServer, type TestDnsServer, type ZoneRecord } from '../helpers/dns-server.js';

type Spec = ProbeBase & DnsSpec;

const servers: TestDnsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(zone: Record<string, ZoneRecord[]> = {}, opts: { host?: string; port?: number } = {}): Promise<TestDnsServer> {
  const s = await startDnsServer({ zone, ...opts });
  servers.push(s);
  return s;
}

/** A definition as config would hand it over: defaults applied, valid by the schema and by check(). */
function spec(fields: Record<string, unknown>): Spec {
  const schema = definitionSchema(dns.schema);
  const def = Value.Default(schema, { id: 'api-dns', kind: 'dns', schedule: '* * * * *', ...structuredClone(fields) });
  expect([...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
  expect(dns.check?.(def as Spec)).toEqual([]);
  return def as Spec;
}

/** A clock that stands still until the test moves it; its timers are real, so deadlines still work. */
function steppedClock(start = Date.parse('2026-03-01T12:00:00Z')) {
  let now = start;
  const clock: Clock = { ...systemClock, now: () => now };
  return {
    clock,
    advance(ms: number) {
      now += ms;
    },
  };
}

function resolversOf(
  result: ProbeResult,
): Record<string, { answers: string[]; ttl?: number; latency_ms: number; error?: string; matches: boolean }> {
  return (result.details?.resolvers ?? {}) as never;
}

/** Resolves once the far end has closed `socket` (vigil let go of its connection). */
function waitClosed(socket: net.Socket): Promise<void> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    socket.once('end', () => resolve());
    socket.once('close', () => resolve());
  });
}

const A = (value: string, ttl = 60): ZoneRecord => ({ type: 'A', value, ttl });
const CNAME = (value: string, ttl = 300): ZoneRecord => ({ type: 'CNAME', value, ttl });

describe('dns prober', () => {
  it('is registered as the dns kind', () => {
    expect(isProbeKind('dns')).toBe(true);
  });

  it('reports every resolver’s answers, TTL and latency when they all agree', async () => {
    const zone = { 'api.example.test': [A('192.0.2.10'), A('192.0.2.11')] };
    const [r1, r2, r3] = await Promise.all([server(zone), server(zone), server(zone)]);
    const def = spec({
      name: 'api.example.test',
      type: 'A',
      expect: ['192.0.2.11', '192.0.2.10'],
      resolvers: [r1.address, r2.address, r3.address],
    });

    const result = await dns.probe(def, probeContext());

    expect(result.ok).toBe(true);
    expect(result.values).toEqual({ propagated_ratio: 1, resolvers_ok: 3, resolvers_asked: 3, max_ttl_s: 60 });
    const reports = resolversOf(result);
    expect(Object.keys(reports)).toEqual([r1.address, r2.address, r3.address]);
    for (const r of Object.values(reports)) {
      expect([...r.answers].sort()).toEqual(['192.0.2.10', '192.0.2.11']);
      expect(r.ttl).toBe(60);
      expect(r.matches).toBe(true);
      expect(r.latency_ms).toBeGreaterThanOrEqual(0);
      expect(r.latency_ms).toBeLessThan(1000);
    }
    expect(r1.queries).toEqual([{ name: 'api.example.test', type: 1, transport: 'udp' }]);
  });

  it('fails with DNS_MISMATCH naming the resolvers that disagree and what they answer, unless the quorum is met', async () => {
    const good = { 'api.example.test': [CNAME('lb-123.example.test')] };
    const [r1, r2] = await Promise.all([server(good), server(good)]);
    const r3 = await server({ 'api.example.test': [CNAME('old-lb.example.test')] });
    const fields = {
      name: 'api.example.test',
      type: 'CNAME',
      expect: ['lb-123.example.test'],
      resolvers: [r1.address, r2.address, r3.address],
    };

    const strict = await dns.probe(spec(fields), probeContext());
    expect(strict.ok).toBe(false);
    expect(strict.code).toBe('DNS_MISMATCH');
    expect(strict.message).toBe(
      `api.example.test CNAME: 2 of 3 resolvers answer lb-123.example.test (quorum 100%); ${r3.address} answers old-lb.example.test`,
    );
    expect(strict.values.propagated_ratio).toBeCloseTo(2 / 3);
    expect(resolversOf(strict)[r3.address]).toMatchObject({ answers: ['old-lb.example.test'], matches: false });

    const lenient = await dns.probe(spec({ ...fields, quorum: 0.6 }), probeContext());
    expect(lenient.ok).toBe(true);
    expect(lenient.values.propagated_ratio).toBeCloseTo(2 / 3);
  });

  it('reports a CNAME’s TTL from a query of its own and fails DNS_TTL when it is above maxTtl', async () => {
    const r1 = await server({ 'api.example.test': [CNAME('lb-123.example.test', 300)] });
    const r2 = await server({ 'api.example.test': [CNAME('lb-123.example.test', 120)] });
    const def = spec({
      name: 'api.example.test',
      type: 'CNAME',
      expect: ['lb-123.example.test'],
      resolvers: [r1.address, r2.address],
      maxTtl: 300,
    });

    const ok = await dns.probe(def, probeContext());
    expect(ok.ok).toBe(true);
    expect(ok.values.max_ttl_s).toBe(300);
    expect(resolversOf(ok)[r2.address]?.ttl).toBe(120);

    r1.set('api.example.test', [CNAME('lb-123.example.test', 3600)]);
    const tooLong = await dns.probe(def, probeContext());
    expect(tooLong.ok).toBe(false);
    expect(tooLong.code).toBe('DNS_TTL');
    expect(tooLong.message).toBe(
      `api.example.test CNAME TTL is above maxTtl 300 s: 3600 s at ${r1.address} (lower the record's TTL so a change propagates quickly)`,
    );
    expect(tooLong.values.max_ttl_s).toBe(3600);
    expect(tooLong.values.propagated_ratio).toBe(1);
  });

  it('matches expect case-insensitively and without trailing dots', async () => {
    const r1 = await server({ 'api.example.test': [CNAME('LB-123.EU-West-1.ELB.Example.TEST.')] });
    const result = await dns.probe(
      spec({ name: 'API.Example.test.', type: 'CNAME', expect: ['lb-123.eu-west-1.elb.example.test.'], resolvers: [r1.address] }),
      probeContext(),
    );
    expect(result.ok).toBe(true);
    expect(result.values.propagated_ratio).toBe(1);
  });

  it('reads TXT, MX and NS answers and their TTLs', async () => {
    const r1 = await server({
      'example.test': [
        { type: 'TXT', value: ['v=spf1 include:_spf.example.test ', '~all'], ttl: 3600 },
        { type: 'TXT', value: 'site-verification=AbC123', ttl: 3600 },
        { type: 'MX', value: '10 mx1.example.test', ttl: 900 },
        { type: 'MX', value: '20 MX2.example.test', ttl: 900 },
        { type: 'NS', value: 'ns1.example.test', ttl: 86400 },
      ],
    });
    const ask = (fields: Record<string, unknown>) =>
      dns.probe(spec({ name: 'example.test', resolvers: [r1.address], ...fields }), probeContext());

    const txt = await ask({ type: 'TXT', expect: ['v=spf1 include:_spf.example.test ~all', 'site-verification=AbC123'] });
    expect(txt.ok).toBe(true);
    expect(txt.values.max_ttl_s).toBe(3600);
    // TXT data is the value itself: a token differing in case is a different token.
    const txtCase = await ask({ type: 'TXT', expect: ['v=spf1 include:_spf.example.test ~all', 'site-verification=abc123'] });
    expect(txtCase.code).toBe('DNS_MISMATCH');

    const mx = await ask({ type: 'MX', expect: ['10 mx1.example.test', '20 mx2.example.test.'] });
    expect(mx.ok).toBe(true);
    expect(mx.values.max_ttl_s).toBe(900);
    expect(resolversOf(mx)[r1.address]?.answers).toEqual(expect.arrayContaining(['10 mx1.example.test', '20 MX2.example.test']));
    expect((await ask({ type: 'MX', expect: ['mx1.example.test', 'mx2.example.test'] })).ok).toBe(true);
    expect((await ask({ type: 'MX', expect: ['20 mx1.example.test', '10 mx2.example.test'] })).code).toBe('DNS_MISMATCH');

    const ns = await ask({ type: 'NS', expect: ['NS1.example.test'], maxTtl: 3600 });
    expect(ns.code).toBe('DNS_TTL');
    expect(ns.message).toContain('example.test NS TTL is above maxTtl 3600 s: 86400 s at');
  });

  it('judges maxTtl on a TXT set too big for UDP: the TTL query is asked again over TCP', async () => {
    // Eight 200-byte values: ~1.7 kB, past the 1232-byte EDNS0 size vigil asks with (blackbox_exporter's case).
    const values = Array.from({ length: 8 }, (_, i) => `token-${i}-${'x'.repeat(192)}`);
    const r1 = await server({ 'big.example.test': values.map((value) => ({ type: 'TXT', value, ttl: 3600 })) });
    const def = spec({ name: 'big.example.test', type: 'TXT', expect: values, resolvers: [r1.address], maxTtl: 300 });

    const result = await dns.probe(def, probeContext());
    expect(result).toMatchObject({ ok: false, code: 'DNS_TTL', values: { max_ttl_s: 3600, propagated_ratio: 1 } });
    expect(result.message).toBe(
      `big.example.test TXT TTL is above maxTtl 300 s: 3600 s at ${r1.address} (lower the record's TTL so a change propagates quickly)`,
    );
    // One query: TC over UDP, then the same question again over TCP.
    const txt = r1.queries.filter((q) => q.type === 16);
    expect(txt.map((q) => q.transport)).toEqual(['udp', 'tcp']);
    expect(resolversOf(result)[r1.address]).toMatchObject({ transport: 'tcp' });

    r1.set(
      'big.example.test',
      values.map((value) => ({ type: 'TXT', value, ttl: 120 })),
    );
    expect(await dns.probe(def, probeContext())).toMatchObject({ ok: true, values: { max_ttl_s: 120 } });
  });

  it('ends the TCP retry of a truncated answer at the same deadline when TCP never answers', async () => {
    // UDP answers every query with TC set and nothing else; TCP accepts and then says nothing.
    const udp = dgram.createSocket('udp4');
    udp.on('message', (msg, peer) => {
      const reply = Buffer.from(msg);
      reply.writeUInt16BE(0x8000 | 0x0200 | (msg.readUInt16BE(2) & 0x0100), 2); // QR, TC, RD
      reply.writeUInt16BE(0, 10); // no additional records
      // The header and the question (its name ends at the first zero byte, then type and class).
      udp.send(reply.subarray(0, msg.indexOf(0, 12) + 5), peer.port, peer.address);
    });
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const port = udp.address().port;
    const accepted: net.Socket[] = [];
    const tcp = net.createServer((c) => {
      accepted.push(c);
      c.resume(); // reads, so the client's hang-up is seen
    });
    await new Promise<void>((resolve) => tcp.listen(port, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const outcome = await queryTtl({ host: '127.0.0.1', port }, 'big.example.test', 'TXT', AbortSignal.timeout(300)).catch((e) => e);
      expect(outcome).toMatchObject({ code: 'TIMEOUT' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(accepted).toHaveLength(1);
      await waitClosed(accepted[0] as net.Socket);
    } finally {
      for (const c of accepted) c.destroy();
      udp.close();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    }
  });

  it('says the answer is too large for UDP when the server serves no DNS over TCP', async () => {
    const values = Array.from({ length: 8 }, (_, i) => `token-${i}-${'x'.repeat(192)}`);
    const r1 = await server({ 'big.example.test': values.map((value) => ({ type: 'TXT', value, ttl: 3600 })) });
    r1.tcp = false;
    const result = await dns.probe(
      spec({ name: 'big.example.test', type: 'TXT', expect: values, resolvers: [r1.address], maxTtl: 300 }),
      probeContext(),
    );
    // No answer at all, and a code and words that say why.
    expect(result).toMatchObject({ ok: false, code: 'DNS' });
    expect(result.message).toBe(
      `no resolver answered big.example.test TXT: ${r1.address} TRUNCATED (the answer is too large for UDP and DNS over TCP failed (ECONNRESET))`,
    );
  });

  it('reports NXDOMAIN as such, from one resolver and from all of them', async () => {
    const r1 = await server({ 'api.example.test': [A('192.0.2.10')] });
    const r2 = await server({ 'api.example.test': [A('192.0.2.10')] });
    const def = spec({ name: 'api.example.test', expect: ['192.0.2.10'], resolvers: [r1.address, r2.address] });

    r2.mode = 'nxdomain';
    const one = await dns.probe(def, probeContext());
    expect(one.code).toBe('DNS_MISMATCH');
    expect(one.message).toContain(`${r2.address}: NXDOMAIN`);
    expect(resolversOf(one)[r2.address]).toMatchObject({ answers: [], error: 'NXDOMAIN', matches: false });

    r1.remove('api.example.test');
    const all = await dns.probe(def, probeContext());
    expect(all.ok).toBe(false);
    expect(all.code).toBe('DNS');
    expect(all.message).toBe(`api.example.test does not exist: NXDOMAIN from all 2 resolvers asked (${r1.address}, ${r2.address})`);
    expect(all.values).toEqual({ propagated_ratio: 0, resolvers_ok: 0, resolvers_asked: 2 });
  });

  it('fails with DNS and each resolver’s code when none answers', async () => {
    const r1 = await server({ 'api.example.test': [A('192.0.2.10')] });
    const r2 = await server({ 'api.example.test': [{ type: 'TXT', value: 'not an address' }] });
    r1.mode = 'servfail';
    const result = await dns.probe(
      spec({ name: 'api.example.test', expect: ['192.0.2.10'], resolvers: [r1.address, r2.address] }),
      probeContext(),
    );
    expect(result.code).toBe('DNS');
    expect(result.message).toBe(`no resolver answered api.example.test A: ${r1.address} SERVFAIL, ${r2.address} NODATA`);
  });

  it('ends a resolver that never answers at its own deadline, without stalling the others', async () => {
    const zone = { 'api.example.test': [CNAME('lb-123.example.test')] };
    const [r1, r2, silent] = await Promise.all([server(zone), server(zone), server(zone)]);
    silent.mode = 'silent';
    const def = spec({
      name: 'api.example.test',
      type: 'CNAME',
      expect: ['lb-123.example.test'],
      resolvers: [r1.address, silent.address, r2.address],
      resolverTimeout: '300ms',
      quorum: 0.6,
    });

    const started = Date.now();
    const result = await dns.probe(def, probeContext(5_000));
    const took = Date.now() - started;

    // c-ares alone would give up later (about twice its timeout): the deadline is our own.
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(500);
    expect(result.ok).toBe(true);
    expect(result.values).toMatchObject({ resolvers_ok: 2, resolvers_asked: 3 });
    const reports = resolversOf(result);
    expect(reports[silent.address]).toMatchObject({ error: 'TIMEOUT', matches: false });
    expect(reports[silent.address]?.latency_ms).toBeGreaterThanOrEqual(280);
    expect(reports[r1.address]?.latency_ms).toBeLessThan(280);
    expect(silent.queries.length).toBeGreaterThan(0);
  });

  it('finishes within the run’s deadline even when that is shorter than resolverTimeout', async () => {
    const silent = await server();
    silent.mode = 'silent';
    const def = spec({ name: 'api.example.test', expect: ['192.0.2.10'], resolvers: [silent.address], resolverTimeout: '5s' });
    const started = Date.now();
    const result = await dns.probe(def, probeContext(600));
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(500);
    expect(took).toBeLessThan(650);
    expect(result.code).toBe('DNS');
    expect(result.message).toBe(`no resolver answered api.example.test A: ${silent.address} TIMEOUT`);
  });

  it('asks the zone’s nameservers directly for `authoritative`, found through the bootstrap resolver', async () => {
    const authZone = { 'api.example.test': [CNAME('lb-123.example.test', 300)] };
    const ns1 = await server(authZone);
    const ns2 = await server(authZone, { host: '127.0.0.2', port: ns1.port });
    const bootstrap = await server({
      'example.test': [
        { type: 'NS', value: 'ns2.example.test' },
        { type: 'NS', value: 'NS1.example.test.' },
      ],
      'ns1.example.test': [A('127.0.0.1')],
      'ns2.example.test': [A('127.0.0.2')],
    });
    const def = spec({
      name: 'api.example.test',
      type: 'CNAME',
      expect: ['lb-123.example.test'],
      resolvers: ['authoritative'],
      bootstrap: bootstrap.address,
      authoritativePort: ns1.port,
    });

    const result = await dns.probe(def, probeContext());

    expect(result.ok).toBe(true);
    expect(result.values).toMatchObject({ propagated_ratio: 1, resolvers_ok: 2, resolvers_asked: 2, max_ttl_s: 300 });
    expect(resolversOf(result)).toMatchObject({
      'authoritative ns1.example.test': { answers: ['lb-123.example.test'], ttl: 300, server: `127.0.0.1:${ns1.port}` },
      'authoritative ns2.example.test': { answers: ['lb-123.example.test'], ttl: 300, server: `127.0.0.2:${ns1.port}` },
    });
    // The walk up: no NS at api.example.test (NXDOMAIN at the bootstrap), then example.test.
    expect(bootstrap.queries.filter((q) => q.type === 2).map((q) => q.name)).toEqual(['api.example.test', 'example.test']);
    expect(ns1.queries.length).toBeGreaterThan(0);
    expect(ns2.queries.length).toBeGreaterThan(0);

    bootstrap.mode = 'servfail';
    const lost = await dns.probe(def, probeContext());
    expect(lost.code).toBe('DNS');
    expect(lost.message).toBe(
      `no resolver answered api.example.test CNAME: authoritative SERVFAIL (cannot find the nameservers of api.example.test via ${bootstrap.address}: SERVFAIL)`,
    );

    bootstrap.mode = 'answer';
    bootstrap.remove('example.test');
    const orphan = await dns.probe(def, probeContext());
    expect(orphan.message).toBe(
      `no resolver answered api.example.test CNAME: authoritative NO_NAMESERVERS (no NS records for api.example.test or its parent domains via ${bootstrap.address})`,
    );
  });

  it('times a change from the authoritative servers until the quorum agrees (propagation_s)', async () => {
    const old = { 'api.example.test': [CNAME('old-lb.example.test')] };
    const ns1 = await server(old);
    const ns2 = await server(old, { host: '127.0.0.2', port: ns1.port });
    const bootstrap = await server({
      'example.test': [
        { type: 'NS', value: 'ns1.example.test' },
        { type: 'NS', value: 'ns2.example.test' },
      ],
      'ns1.example.test': [A('127.0.0.1')],
      'ns2.example.test': [A('127.0.0.2')],
    });
    const [r1, r2] = await Promise.all([server(old), server(old)]);
    const fields = {
      name: 'api.example.test',
      type: 'CNAME',
      resolvers: ['authoritative', r1.address, r2.address],
      bootstrap: bootstrap.address,
      authoritativePort: ns1.port,
      propagationDeadline: '5m',
    };
    const time = steppedClock();
    const state = memoryState();
    const run = (expected: string) => dns.probe(spec({ ...fields, expect: [expected] }), probeContext(5_000, { clock: time.clock, state }));

    expect((await run('old-lb.example.test')).ok).toBe(true);

    // The record moves: the primary first; the definition is updated with it.
    const fresh = [CNAME('new-lb.example.test')];
    ns1.set('api.example.test', fresh);
    time.advance(60_000);
    const changing = await run('new-lb.example.test');
    const changedAt = time.clock.now();
    expect(changing.ok).toBe(true);
    expect(changing.details).toMatchObject({ propagating: true, changedAt: new Date(changedAt).toISOString() });
    expect(changing.values.propagated_ratio).toBeCloseTo(1 / 4);
    expect(changing.values.propagation_s).toBeUndefined();

    // A secondary still serving the old answer is not a change back: the clock keeps running.
    r1.set('api.example.test', fresh);
    time.advance(60_000);
    const halfway = await run('new-lb.example.test');
    expect(halfway.ok).toBe(true);
    expect(halfway.details).toMatchObject({ propagating: true, changedAt: new Date(changedAt).toISOString() });
    expect(halfway.values.propagated_ratio).toBeCloseTo(2 / 4);
    expect(resolversOf(halfway)['authoritative ns2.example.test']?.answers).toEqual(['old-lb.example.test']);

    ns2.set('api.example.test', fresh);
    r2.set('api.example.test', fresh);
    time.advance(60_000);
    const done = await run('new-lb.example.test');
    expect(done.ok).toBe(true);
    expect(done.details?.propagating).toBeUndefined();
    expect(done.values.propagated_ratio).toBe(1);
    expect(done.values.propagation_s).toBe(120);

    time.advance(60_000);
    const later = await run('new-lb.example.test');
    expect(later.values.propagation_s).toBe(done.values.propagation_s);
  });

  it('fails with DNS_PROPAGATION naming the resolvers still serving the old answer once propagationDeadline has passed', async () => {
    const old = { 'api.example.test': [CNAME('old-lb.example.test')] };
    const ns1 = await server(old);
    const bootstrap = await server({ 'example.test': [{ type: 'NS', value: 'ns1.example.test' }], 'ns1.example.test': [A('127.0.0.1')] });
    const [r1, stale] = await Promise.all([server(old), server(old)]);
    const def = spec({
      name: 'api.example.test',
      type: 'CNAME',
      expect: ['new-lb.example.test'],
      resolvers: ['authoritative', r1.address, stale.address],
      bootstrap: bootstrap.address,
      authoritativePort: ns1.port,
      propagationDeadline: '5m',
    });
    const time = steppedClock();
    const state = memoryState();
    const run = () => dns.probe(def, probeContext(5_000, { clock: time.clock, state }));

    // Before the change, the definition already expects the new answer: a plain mismatch.
    expect((await run()).code).toBe('DNS_MISMATCH');

    ns1.set('api.example.test', [CNAME('new-lb.example.test')]);
    r1.set('api.example.test', [CNAME('new-lb.example.test')]);
    time.advance(30_000);
    expect((await run()).details).toMatchObject({ propagating: true });

    time.advance(4 * 60_000);
    expect((await run()).ok).toBe(true);

    time.advance(90_000);
    const late = await run();
    expect(late.ok).toBe(false);
    expect(late.code).toBe('DNS_PROPAGATION');
    expect(late.message).toBe(
      `api.example.test CNAME changed 5m30s ago and has not propagated within 5m: ${stale.address} still serving the old answer old-lb.example.test; 2 of 3 resolvers answer new-lb.example.test (quorum 100%)`,
    );
  });

  it('without an authoritative resolver, a changed expect starts the propagation clock', async () => {
    const [r1, r2] = await Promise.all([
      server({ 'api.example.test': [A('192.0.2.1')] }),
      server({ 'api.example.test': [A('192.0.2.1')] }),
    ]);
    const time = steppedClock();
    const state: ProbeState = memoryState();
    const run = (ip: string) =>
      dns.probe(
        spec({ name: 'api.example.test', expect: [ip], resolvers: [r1.address, r2.address], propagationDeadline: '2m' }),
        probeContext(5_000, { clock: time.clock, state }),
      );

    expect((await run('192.0.2.1')).ok).toBe(true);
    time.advance(10_000);
    r1.set('api.example.test', [A('192.0.2.2')]);
    const changing = await run('192.0.2.2');
    expect(changing).toMatchObject({ ok: true, details: { propagating: true } });

    time.advance(150_000);
    const late = await run('192.0.2.2');
    expect(late.code).toBe('DNS_PROPAGATION');
    expect(late.message).toContain(`${r2.address} still serving the old answer 192.0.2.1`);

    r2.set('api.example.test', [A('192.0.2.2')]);
    time.advance(15_000);
    const done = await run('192.0.2.2');
    expect(done.ok).toBe(true);
    expect(done.values.propagation_s).toBe(165);
  });

  it('speaks to IPv6 resolvers written as [::1]:port and compares AAAA in canonical form', async () => {
    const v6 = await server({ 'api.example.test': [{ type: 'AAAA', value: '2001:db8::1', ttl: 30 }] }, { host: '::1' });
    expect(v6.address).toMatch(/^\[::1\]:\d+$/);
    const result = await dns.probe(
      spec({ name: 'api.example.test', type: 'AAAA', expect: ['2001:DB8:0:0::1'], resolvers: [v6.address] }),
      probeContext(),
    );
    expect(result.ok).toBe(true);
    expect(result.values.max_ttl_s).toBe(30);

    v6.set('api.example.test', [CNAME('lb.example.test', 45)]);
    const cname = await dns.probe(
      spec({ name: 'api.example.test', type: 'CNAME', expect: ['lb.example.test'], resolvers: [v6.address] }),
      probeContext(),
    );
    expect(cname.values.max_ttl_s).toBe(45);
  });

  it('checks resolvers, bootstrap, expect and resolverTimeout beyond what the schema can', () => {
    const schema = definitionSchema(dns.schema);
    const def = Value.Default(schema, {
      id: 'x',
      kind: 'dns',
      schedule: '* * * * *',
      name: 'api.example.test',
      type: 'A',
      expect: ['192.0.2.1', 'lb.example.test'],
      resolvers: ['8.8.8.8', '8.8.8.8', 'dns.google', '10.0.0.2:5353', '[::1]:53', '1.2.3.4:99999', 'system', 'authoritative'],
      bootstrap: 'localhost',
      timeout: '2s',
      resolverTimeout: '2s',
    }) as Spec;
    expect(dns.check?.(def)).toEqual([
      { path: 'resolvers[1]', message: 'expected each resolver once; "8.8.8.8" is listed twice' },
      { path: 'resolvers[2]', message: 'expected authoritative, system, an IP, "IP:port" or "[IPv6]:port", got "dns.google"' },
      { path: 'resolvers[5]', message: 'expected authoritative, system, an IP, "IP:port" or "[IPv6]:port", got "1.2.3.4:99999"' },
      { path: 'bootstrap', message: 'expected an IP, "IP:port" or "[IPv6]:port", got "localhost"' },
      { path: 'expect[1]', message: 'expected an IPv4 address (the record type is A), got "lb.example.test"' },
      {
        path: 'resolverTimeout',
        message: "expected less than the probe's timeout (2s) so one silent resolver cannot time the whole run out, got 2s",
      },
    ]);
  });

  it('decodes SOA, SRV, CAA, PTR, TXT and AAAA records with compressed names, and refuses a name pointer loop', () => {
    // Hand-built: header, question example.test/ANY, then one record of each type whose names point back at offset 12.
    const label = (t: string) => Buffer.concat([Buffer.from([t.length]), Buffer.from(t)]);
    const owner = Buffer.from([0xc0, 12]);
    const rr = (type: number, rdata: Buffer, cls = 1) => {
      const fixed = Buffer.alloc(10);
      fixed.writeUInt16BE(type, 0);
      fixed.writeUInt16BE(cls, 2);
      fixed.writeUInt32BE(300, 4);
      fixed.writeUInt16BE(rdata.length, 8);
      return Buffer.concat([owner, fixed, rdata]);
    };
    const u16 = (...n: number[]) => Buffer.concat(n.map((v) => Buffer.from([v >> 8, v & 0xff])));
    const u32 = (...n: number[]) => Buffer.concat(n.map((v) => Buffer.from([v >>> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff])));
    const header = Buffer.alloc(12);
    header.writeUInt16BE(0x8400, 2); // QR, AA
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(6, 6);
    const question = Buffer.concat([label('example'), label('test'), Buffer.from([0]), u16(255, 1)]);
    const records = [
      rr(6, Buffer.concat([label('ns1'), owner, label('hostmaster'), owner, u32(2026120201, 3600, 600, 86400, 60)])),
      rr(33, Buffer.concat([u16(10, 5, 5060), label('sip'), owner])),
      rr(257, Buffer.concat([Buffer.from([0, 5]), Buffer.from('issue'), Buffer.from('ca.example.net')])),
      rr(12, Buffer.concat([label('www'), owner])),
      rr(16, Buffer.concat([label('say "hi"'), label('\\x')]), 3),
      rr(28, Buffer.from([0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 0x10])),
    ];
    const res = decodeResponse(Buffer.concat([header, question, ...records]));
    expect(res).toMatchObject({ authoritative: true, rcode: 0, authority: [], additional: [] });
    expect(res.answers.map(presentation)).toEqual([
      'example.test.\t300\tIN\tSOA\tns1.example.test. hostmaster.example.test. 2026120201 3600 600 86400 60',
      'example.test.\t300\tIN\tSRV\t10 5 5060 sip.example.test.',
      'example.test.\t300\tIN\tCAA\t0 issue "ca.example.net"',
      'example.test.\t300\tIN\tPTR\twww.example.test.',
      'example.test.\t300\tCH\tTXT\t"say \\"hi\\"" "\\\\x"',
      'example.test.\t300\tIN\tAAAA\t2001:db8::10',
    ]);
    expect(res.answers.map((r) => r.value)).toEqual([
      'ns1.example.test hostmaster.example.test 2026120201 3600 600 86400 60',
      '10 5 5060 sip.example.test',
      '0 issue "ca.example.net"',
      'www.example.test',
      'say "hi"\\x',
      '2001:db8::10',
    ]);
    expect(res.answers[0]?.serial).toBe(2026120201);

    // A name that points at itself would loop forever; it is a malformed message instead.
    const loop = Buffer.concat([header, question, Buffer.from([0xc0, question.length + 12])]);
    loop.writeUInt16BE(1, 6);
    expect(() => decodeResponse(loop)).toThrow(RangeError);
  });

  it('rejects bad values of the new fields at load time, each with its path', () => {
    const schema = definitionSchema(dns.schema);
    const load = (fields: Record<string, unknown>) =>
      Value.Default(schema, { id: 'x', kind: 'dns', schedule: '* * * * *', name: 'example.test', ...fields }) as Spec;
    const schemaPaths = (fields: Record<string, unknown>) => [...Value.Errors(schema, load(fields))].map((e) => e.path);
    expect(schemaPaths({ type: 'SPF' })).toContain('/type');
    expect(schemaPaths({ class: 'HS' })).toContain('/class');
    expect(schemaPaths({ validRcodes: ['NOERROR', 'OK'] })).toContain('/validRcodes/1');
    expect(schemaPaths({ validRcodes: [] })).toContain('/validRcodes');
    expect(schemaPaths({ recursion: 'no' })).toContain('/recursion');
    expect(schemaPaths({ transport: 'doh' })).toContain('/transport');
    expect(schemaPaths({ validate: { answers: { matches: ['x'] } } })).toContain('/validate/answers');
    expect(schemaPaths({ validate: { answer: { failIfMatches: ['x'] } } })).toContain('/validate/answer/failIfMatches');
    expect(schemaPaths({ validate: { answer: {} } })).toContain('/validate/answer');

    expect(
      dns.check?.(
        load({
          type: 'SOA',
          class: 'CH',
          expect: ['2026-12-02'],
          validRcodes: ['NXDOMAIN', 'NXDOMAIN'],
          resolvers: ['authoritative'],
          validate: { authority: { matches: ['ns[.isp'] }, additional: { someMatch: ['ok', '(unclosed'] } },
        }),
      ),
    ).toEqual([
      { path: 'expect[0]', message: 'expected an SOA serial number like 2026120201, got "2026-12-02"' },
      {
        path: 'expect',
        message: 'expected no expect when validRcodes (NXDOMAIN, NXDOMAIN) leaves out NOERROR: only a NOERROR answer carries records',
      },
      { path: 'validRcodes[1]', message: 'expected each RCODE once; NXDOMAIN is listed twice' },
      {
        path: 'validate.authority.matches[0]',
        message: 'expected a regular expression: Invalid regular expression: /ns[.isp/: Unterminated character class',
      },
      {
        path: 'validate.additional.someMatch[1]',
        message: 'expected a regular expression: Invalid regular expression: /(unclosed/: Unterminated group',
      },
      {
        path: 'resolvers',
        message: 'expected server addresses for class CH: authoritative finds a zone’s nameservers, and CH names have none',
      },
    ]);
    expect(dns.check?.(load({ type: 'SRV', expect: ['10 5 sip.example.test'] }))).toEqual([
      {
        path: 'expect[0]',
        message: 'expected priority, weight, port and target ("10 5 5060 sip.example.com"), got "10 5 sip.example.test"',
      },
    ]);
    expect(dns.check?.(load({ type: 'CAA', expect: ['issue letsencrypt.org'] }))).toEqual([
      { path: 'expect[0]', message: 'expected flags, tag and value ("0 issue letsencrypt.org"), got "issue letsencrypt.org"' },
    ]);
  });

  it('ships example definitions that validate', () => {
    const schema = definitionSchema(dns.schema);
    const defs = parse(readFileSync('probes/examples/dns.yaml', 'utf8')) as unknown[];
    expect(defs.length).toBeGreaterThan(0);
    for (const raw of defs) {
      const def = Value.Default(schema, structuredClone(raw));
      expect([...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
      expect(dns.check?.(def as Spec)).toEqual([]);
    }
    expect(defs).toContainEqual(expect.objectContaining({ id: 'api-dns', kind: 'dns', type: 'CNAME', maxTtl: 300, quorum: 1.0 }));
  });
});
