import dgram from 'node:dgram';
import net, { isIP } from 'node:net';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definitionSchema } from '../../src/config/schema.js';
import { type DnsSpec, dns } from '../../src/probers/dns.js';
import type { ProbeBase, ProbeResult } from '../../src/probers/index.js';
import { probeContext } from '../helpers/context.js';

/**
 * blackbox_exporter's prober/dns_test.go, ported: the same servers (a recursive one that refuses
 * queries without RD, an authoritative one with authority and additional sections, one that answers
 * SERVFAIL to everything), each on UDP only or TCP only like miekg/dns's test servers, and the same
 * verdicts, in vigil's config. Its registry metrics map to the run's values and the per-resolver
 * details: probe_dns_answer_rrs / authority_rrs / additional_rrs → `sections`, probe_dns_serial →
 * `soa_serial`, probe_dns_query_succeeded → an RCODE in the details.
 */

type Spec = ProbeBase & DnsSpec;
type Protocol = 'udp' | 'tcp';

/** One record as the test server writes it; `rdata` already encoded. */
interface RR {
  name: string;
  type: number;
  class?: number;
  ttl: number;
  rdata: Buffer;
}
interface Question {
  name: string;
  type: number;
  class: number;
  rd: boolean;
}
type Handler = (q: Question) => { rcode?: number; answer?: RR[]; authority?: RR[]; additional?: RR[] };

const T = { A: 1, NS: 2, SOA: 6, TXT: 16, AAAA: 28 } as const;
const CH = 3;

function name(text: string): Buffer {
  const labels = text.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const a = (owner: string, ttl: number, ip: string): RR => ({ name: owner, type: T.A, ttl, rdata: Buffer.from(ip.split('.').map(Number)) });
const ns = (owner: string, ttl: number, host: string): RR => ({ name: owner, type: T.NS, ttl, rdata: name(host) });
const loopback6 = (owner: string, ttl: number): RR => ({ name: owner, type: T.AAAA, ttl, rdata: Buffer.from([...Array(15).fill(0), 1]) });

/** recursiveDNSHandler: REFUSED without RD, else two A records. */
const recursive: Handler = (q) =>
  q.rd ? { answer: [a('example.com', 3600, '127.0.0.1'), a('example.com', 3600, '127.0.0.2')] } : { rcode: 5 };

/** authoritativeDNSHandler: an SOA, a CH TXT or an A answer, always with two NS and three glue records. */
const authoritative: Handler = (q) => {
  const soa = Buffer.concat([name('ns.example.com'), name('noc.example.com'), ...[1000, 7200, 3600, 1209600, 3600].map(u32)]);
  const chaos = Buffer.concat([Buffer.from([7]), Buffer.from('goCHAOS')]);
  const answer =
    q.type === T.SOA
      ? [{ name: 'example.com', type: T.SOA, ttl: 3600, rdata: soa }]
      : q.class === CH && q.type === T.TXT
        ? [{ name: 'example.com', type: T.TXT, class: CH, ttl: 3600, rdata: chaos }]
        : [a('example.com', 3600, '127.0.0.1')];
  return {
    answer,
    authority: [ns('example.com', 7200, 'ns1.isp.net'), ns('example.com', 7200, 'ns2.isp.net')],
    additional: [a('ns1.isp.net', 7200, '127.0.0.1'), loopback6('ns1.isp.net', 7200), a('ns2.isp.net', 7200, '127.0.0.2')],
  };
};

/** dns.HandleFailed: SERVFAIL to everything. */
const servfail: Handler = () => ({ rcode: 2 });

function reply(msg: Buffer, handler: Handler): Buffer | undefined {
  if (msg.length < 12) return undefined;
  let at = 12;
  const labels: string[] = [];
  while (at < msg.length && msg[at] !== 0) {
    const len = msg[at] as number;
    labels.push(msg.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  const qEnd = at + 5;
  const flags = msg.readUInt16BE(2);
  const q: Question = {
    name: labels.join('.'),
    type: msg.readUInt16BE(at + 1),
    class: msg.readUInt16BE(at + 3),
    rd: (flags & 0x0100) !== 0,
  };
  const out = handler(q);
  const sections = [out.answer ?? [], out.authority ?? [], out.additional ?? []];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(msg.readUInt16BE(0), 0);
  header.writeUInt16BE(0x8000 | (flags & 0x0100) | (out.rcode ?? 0), 2); // QR, RD copied (miekg's SetReply)
  header.writeUInt16BE(1, 4);
  for (const [i, s] of sections.entries()) header.writeUInt16BE(s.length, 6 + i * 2);
  const records = sections.flat().map((r) => {
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(r.type, 0);
    fixed.writeUInt16BE(r.class ?? 1, 2);
    fixed.writeUInt32BE(r.ttl, 4);
    fixed.writeUInt16BE(r.rdata.length, 8);
    return Buffer.concat([name(r.name), fixed, r.rdata]);
  });
  return Buffer.concat([header, msg.subarray(12, qEnd), ...records]);
}

/** startDNSServer: one handler, on UDP only or TCP only, port 0. */
async function startServer(protocol: Protocol, handler: Handler, host = '127.0.0.1') {
  if (protocol === 'udp') {
    const socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    socket.on('message', (msg, peer) => {
      const out = reply(msg, handler);
      if (out) socket.send(out, peer.port, peer.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, host, resolve));
    return { port: socket.address().port, close: () => new Promise<void>((resolve) => socket.close(() => resolve())) };
  }
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
    let buf = Buffer.alloc(0);
    c.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const out = reply(buf.subarray(2, 2 + buf.readUInt16BE(0)), handler);
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        if (out) c.write(Buffer.concat([Buffer.from([out.length >> 8, out.length & 0xff]), out]));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.destroy();
        server.close(() => resolve());
      }),
  };
}

function spec(fields: Record<string, unknown>): Spec {
  const schema = definitionSchema(dns.schema);
  const def = Value.Default(schema, {
    id: 'bbx-dns',
    kind: 'dns',
    schedule: '* * * * *',
    timeout: '1s',
    resolverTimeout: '900ms',
    ...fields,
  });
  expect([...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
  expect(dns.check?.(def as Spec)).toEqual([]);
  return def as Spec;
}

function only(result: ProbeResult): Record<string, unknown> {
  const all = Object.values((result.details?.resolvers ?? {}) as Record<string, Record<string, unknown>>);
  expect(all).toHaveLength(1);
  return all[0] ?? {};
}

type Row = { fields: Record<string, unknown>; ok: boolean; note: string };

const servers: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe.each(['udp', 'tcp'] as const)('dns over %s', (protocol) => {
  const addr: Record<'recursive' | 'authoritative' | 'servfail', string> = { recursive: '', authoritative: '', servfail: '' };
  beforeAll(async () => {
    for (const [key, handler] of [
      ['recursive', recursive],
      ['authoritative', authoritative],
      ['servfail', servfail],
    ] as const) {
      const s = await startServer(protocol, handler);
      servers.push(s);
      addr[key] = `127.0.0.1:${s.port}`;
    }
  });
  const base = (server: keyof typeof addr) => ({ name: 'example.com', resolvers: [addr[server]], transport: protocol });

  const recursiveRows: Row[] = [
    { fields: {}, ok: true, note: 'recursion on' },
    { fields: { validRcodes: ['SERVFAIL', 'NXDOMAIN'] }, ok: false, note: 'NOERROR is not a valid rcode' },
    { fields: { validate: { answer: { notMatches: ['.*7200.*'], matches: ['.*3600.*'] } } }, ok: true, note: 'answer TTLs are 3600' },
    { fields: { validate: { authority: { notMatches: ['.*7200.*'] } } }, ok: true, note: 'no authority records to match' },
    { fields: { validate: { additional: { matches: ['.*3600.*'] } } }, ok: false, note: 'matches needs records; additional is empty' },
    { fields: { recursion: false }, ok: false, note: 'RD off is REFUSED' },
  ];
  it.each(recursiveRows.map((r, i) => [i, r.note, r] as const))('bbx TestRecursiveDNSResponse: row %i (%s)', async (_i, _n, row) => {
    const result = await dns.probe(spec({ ...base('recursive'), ...row.fields }), probeContext(2_000));
    expect({ ok: result.ok, message: result.message }).toMatchObject({ ok: row.ok });
    const r = only(result);
    // probe_dns_query_succeeded: an answer came, whatever its verdict; answer_rrs is 0 when REFUSED.
    expect(r.rcode).toBe(row.fields.recursion === false ? 'REFUSED' : 'NOERROR');
    expect(r.sections).toEqual({ answer: row.fields.recursion === false ? 0 : 2, authority: 0, additional: 0 });
    expect(r.transport).toBe(protocol);
  });

  const authoritativeRows: Row[] = [
    { fields: {}, ok: true, note: 'A' },
    { fields: { type: 'SOA' }, ok: true, note: 'SOA serial 1000' },
    {
      fields: { class: 'CH', type: 'TXT', validate: { answer: { notMatches: ['.*IN.*'], matches: ['.*CH.*'] } } },
      ok: true,
      note: 'class CH',
    },
    { fields: { validRcodes: ['SERVFAIL', 'NXDOMAIN'] }, ok: false, note: 'NOERROR is not a valid rcode' },
    { fields: { validate: { answer: { notMatches: ['.*3600.*'], matches: ['.*3600.*'] } } }, ok: false, note: 'answer matches 3600' },
    { fields: { validate: { answer: { notMatches: ['.*7200.*'], matches: ['.*7200.*'] } } }, ok: false, note: 'answer lacks 7200' },
    { fields: { validate: { authority: { matches: ['ns.*.isp.net'] } } }, ok: true, note: 'authority names isp.net' },
    { fields: { validate: { additional: { matches: ['^ns.*.isp'] } } }, ok: true, note: 'glue names isp' },
    { fields: { validate: { additional: { notMatches: ['^ns.*.isp'] } } }, ok: false, note: 'glue names isp' },
    // fail_if_all_match_regexp: blackbox's code fails unless every record matches (the AAAA glue does not),
    // which is what `matches` says; vigil has no separate field for it.
    { fields: { validate: { additional: { matches: ['.*127.0.0.*'] } } }, ok: false, note: 'fail_if_all_match: AAAA ::1' },
    { fields: { validate: { additional: { someMatch: ['.*127.0.0.3.*'] } } }, ok: false, note: 'fail_if_none_matches' },
  ];
  it.each(authoritativeRows.map((r, i) => [i, r.note, r] as const))(
    'bbx TestAuthoritativeDNSResponse: row %i (%s)',
    async (_i, _n, row) => {
      const result = await dns.probe(spec({ ...base('authoritative'), ...row.fields }), probeContext(2_000));
      expect({ ok: result.ok, message: result.message }).toMatchObject({ ok: row.ok });
      const r = only(result);
      expect(r.rcode).toBe('NOERROR');
      expect(r.sections).toEqual({ answer: 1, authority: 2, additional: 3 });
      if (row.fields.type === 'SOA') expect(result.values.soa_serial).toBe(1000);
      if (!row.ok && row.fields.validate) expect(result.code).toBe('DNS_VALIDATE');
    },
  );

  it('bbx TestServfailDNSResponse: SERVFAIL fails by default and passes with validRcodes [SERVFAIL, NXDOMAIN]', async () => {
    const failed = await dns.probe(spec(base('servfail')), probeContext(2_000));
    expect(failed).toMatchObject({ ok: false, code: 'DNS', message: `no resolver answered example.com A: ${addr.servfail} SERVFAIL` });
    expect(only(failed)).toMatchObject({ rcode: 'SERVFAIL', sections: { answer: 0, authority: 0, additional: 0 } });
    const valid = await dns.probe(spec({ ...base('servfail'), validRcodes: ['SERVFAIL', 'NXDOMAIN'] }), probeContext(2_000));
    expect(valid).toMatchObject({ ok: true, values: { resolvers_ok: 1, propagated_ratio: 1 } });
  });

  it('bbx TestDNSProtocol: the transport asked must be the one served; the default (udp) fails against a TCP-only server', async () => {
    const other = protocol === 'udp' ? 'tcp' : 'udp';
    const wrong = await dns.probe(spec({ ...base('recursive'), transport: other }), probeContext(2_000));
    expect(wrong.ok).toBe(false);
    const byDefault = await dns.probe(spec({ name: 'example.com', resolvers: [addr.recursive] }), probeContext(2_000));
    expect(byDefault.ok).toBe(protocol === 'udp');
  });

  it('bbx TestDNSProtocol: IPv6 and IPv4 resolvers ([::1]:port, 127.0.0.1:port)', async () => {
    const s6 = await startServer(protocol, recursive, '::1');
    servers.push(s6);
    for (const resolver of [`[::1]:${s6.port}`, addr.recursive]) {
      const result = await dns.probe(spec({ name: 'example.com', resolvers: [resolver], transport: protocol }), probeContext(2_000));
      expect({ resolver, ok: result.ok }).toEqual({ resolver, ok: true });
    }
  });
});

describe('bbx TestServfailDNSResponse: an invalid query type or rcode fails before any query', () => {
  it.each([
    ['type', { type: 'NOT_A_VALID_QUERY_TYPE' }, '/type'],
    ['validRcodes', { validRcodes: ['NOT_A_VALID_RCODE'] }, '/validRcodes/0'],
  ])('bbx TestServfailDNSResponse: %s is a load-time error', (_field, fields, path) => {
    const schema = definitionSchema(dns.schema);
    const def = Value.Default(schema, { id: 'bbx-dns', kind: 'dns', schedule: '* * * * *', name: 'example.com', ...fields });
    expect([...Value.Errors(schema, def)].map((e) => e.path)).toContain(path);
  });
});

it('bbx TestDNSMetrics: every value a dns run reports is named from the start, and a run fills them', async () => {
  const s = await startServer('udp', recursive);
  servers.push(s);
  const def = spec({ name: 'example.com', resolvers: [`127.0.0.1:${s.port}`] });
  const result = await dns.probe(def, probeContext(2_000));
  expect(result.ok).toBe(true);
  const named = dns.values(def);
  for (const key of Object.keys(result.values)) expect(named).toContain(key);
  expect(result.values).toMatchObject({ resolvers_ok: 1, resolvers_asked: 1, propagated_ratio: 1, max_ttl_s: 3600 });
  expect(only(result)).toMatchObject({ latency_ms: expect.any(Number), sections: { answer: 2, authority: 0, additional: 0 } });
  expect(dns.values(spec({ name: 'example.com', type: 'SOA', resolvers: ['127.0.0.1:53'] }))).toContain('soa_serial');
});
