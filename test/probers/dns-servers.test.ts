import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definitionSchema } from '../../src/config/schema.js';
import { type DnsSpec, dns } from '../../src/probers/dns.js';
import type { ProbeBase, ProbeResult } from '../../src/probers/index.js';
import { memoryState, probeContext } from '../helpers/context.js';
import { missingDnsServer, type NsdServer, type RealDnsServer, startDnsmasq, startNsd, startUnbound } from '../helpers/dns-servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The dns probe against the DNS servers people run: nsd (authoritative), unbound (recursive) and
 * dnsmasq, started from Debian's binaries on loopback. Written independently of vigil's wire code,
 * so what they answer is the ground truth.
 */

type Spec = ProbeBase & DnsSpec;

const missing = missingDnsServer('nsd', 'unbound', 'dnsmasq');

function spec(fields: Record<string, unknown>): Spec {
  const schema = definitionSchema(dns.schema);
  const def = Value.Default(schema, { id: 'real-dns', kind: 'dns', schedule: '* * * * *', ...structuredClone(fields) });
  expect([...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
  expect(dns.check?.(def as Spec)).toEqual([]);
  return def as Spec;
}

function resolversOf(result: ProbeResult): Record<string, Record<string, unknown>> {
  return (result.details?.resolvers ?? {}) as never;
}

const zone = (serial: number) => `$ORIGIN example.test.
$TTL 300
@         IN SOA  ns1.example.test. hostmaster.example.test. ${serial} 3600 600 86400 60
@         IN NS   ns1.example.test.
ns1       IN A    127.0.0.1
www       IN A    192.0.2.10
_sip._tcp IN SRV  10 5 5060 sip.example.test.
sip       IN A    192.0.2.11
@         IN CAA  0 issue "letsencrypt.org"
big       IN TXT  ${Array.from({ length: 8 }, (_, i) => `"token-${i}-${'x'.repeat(192)}"`).join('\n          IN TXT  ')}
`;
const reverse = `$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@  IN SOA ns1.example.test. hostmaster.example.test. 7 3600 600 86400 60
@  IN NS  ns1.example.test.
10 IN PTR www.example.test.
`;

describe.skipIf(missing !== undefined)(`dns probe against nsd, unbound and dnsmasq${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let primary: NsdServer;
  let secondary: NsdServer;
  let unbound: RealDnsServer;
  let udpless: RealDnsServer;
  let dnsmasq: RealDnsServer;

  beforeAll(async () => {
    [primary, secondary] = await Promise.all([
      startNsd({ 'example.test': zone(2026120202), '2.0.192.in-addr.arpa': reverse }),
      startNsd({ 'example.test': zone(2026120201) }),
    ]);
    [unbound, udpless, dnsmasq] = await Promise.all([
      startUnbound({
        localZones: ['"local.test." static'],
        localData: ['web.local.test. 60 IN A 192.0.2.30'],
        stubZones: [{ name: 'example.test', port: primary.port }],
      }),
      // A resolver that speaks DNS over TCP only: the UDP transport finds nobody there.
      startUnbound({ server: ['do-udp: no'], localZones: ['"local.test." static'], localData: ['web.local.test. 60 IN A 192.0.2.30'] }),
      startDnsmasq([
        '--address=/a.example.test/192.0.2.20',
        '--srv-host=_imap._tcp.example.test,mail.example.test,143,5,7',
        '--ptr-record=20.2.0.192.in-addr.arpa,a.example.test',
        '--caa-record=example.test,0,issue,pki.example.net',
      ]),
    ]);
  }, 20_000);

  afterAll(async () => {
    await Promise.all([primary, secondary, unbound, udpless, dnsmasq].filter((s) => s !== undefined).map((s) => s.stop()));
  });

  it('compares the SOA serial across two nsd instances: fails while one lags, passes once it has reloaded', async () => {
    const def = spec({ name: 'example.test', type: 'SOA', resolvers: [primary.address, secondary.address] });
    const state = memoryState();
    const lagging = await dns.probe(def, probeContext(5_000, { state }));
    expect(lagging).toMatchObject({ ok: false, code: 'DNS_MISMATCH', values: { soa_serial: 2026120202, propagated_ratio: 0.5 } });
    expect(lagging.message).toBe(
      `example.test SOA: 1 of 2 resolvers answer serial 2026120202 (quorum 100%); ${secondary.address} answers serial 2026120201`,
    );
    expect(resolversOf(lagging)[secondary.address]).toMatchObject({ serial: 2026120201, rcode: 'NOERROR', matches: false });

    await secondary.reload('example.test', zone(2026120202));
    const caughtUp = await waitFor(
      'the secondary nsd to serve serial 2026120202 and the probe to pass',
      async () => {
        const r = await dns.probe(def, probeContext(5_000, { state }));
        return r.ok ? r : undefined;
      },
      8_000,
      () => secondary.output(),
    );
    expect(caughtUp.values).toMatchObject({ soa_serial: 2026120202, propagated_ratio: 1, resolvers_ok: 2 });

    // With `expect`, the serial is held to that number.
    const pinned = await dns.probe(
      spec({ name: 'example.test', type: 'SOA', expect: ['2026120203'], resolvers: [primary.address] }),
      probeContext(),
    );
    expect(pinned).toMatchObject({ ok: false, code: 'DNS_MISMATCH' });
    expect(pinned.message).toContain(`${primary.address} answers serial 2026120202`);
  });

  it('finds both nameservers of a zone with `authoritative` and compares their SOA serials', async () => {
    // Two nsd on one port, 127.0.0.1 and 127.0.0.2: the zone's ns1 and ns2, found through its own NS records.
    const twoNs = (serial: number) => `$ORIGIN two.test.
$TTL 300
@   IN SOA ns1.two.test. hostmaster.two.test. ${serial} 3600 600 86400 60
@   IN NS  ns1.two.test.
@   IN NS  ns2.two.test.
ns1 IN A   127.0.0.1
ns2 IN A   127.0.0.2
`;
    const ns1 = await startNsd({ 'two.test': twoNs(5) });
    let ns2: NsdServer | undefined;
    try {
      ns2 = await startNsd({ 'two.test': twoNs(4) }, { host: '127.0.0.2', port: ns1.port });
      const def = spec({
        name: 'two.test',
        type: 'SOA',
        resolvers: ['authoritative'],
        bootstrap: ns1.address,
        authoritativePort: ns1.port,
      });
      const state = memoryState();
      const lagging = await dns.probe(def, probeContext(5_000, { state }));
      expect(lagging).toMatchObject({ ok: false, code: 'DNS_MISMATCH', values: { soa_serial: 5, resolvers_asked: 2 } });
      expect(lagging.message).toBe(
        'two.test SOA: 1 of 2 resolvers answer serial 5 (quorum 100%); authoritative ns2.two.test answers serial 4',
      );
      await ns2.reload('two.test', twoNs(5));
      const caughtUp = await waitFor('ns2 to serve serial 5', async () => {
        const r = await dns.probe(def, probeContext(5_000, { state }));
        return r.ok ? r : undefined;
      });
      expect(Object.keys(resolversOf(caughtUp))).toEqual(['authoritative ns1.two.test', 'authoritative ns2.two.test']);
    } finally {
      await Promise.all([ns1.stop(), ns2?.stop()]);
    }
  });

  it('asserts a name does not exist with validRcodes: [NXDOMAIN], and fails when it does', async () => {
    const gone = await dns.probe(
      spec({ name: 'old-api.example.test', validRcodes: ['NXDOMAIN'], resolvers: [primary.address, unbound.address] }),
      probeContext(),
    );
    expect(gone).toMatchObject({ ok: true, values: { resolvers_ok: 2, propagated_ratio: 1 } });
    expect(resolversOf(gone)[primary.address]).toMatchObject({ rcode: 'NXDOMAIN', answers: [] });

    const exists = await dns.probe(
      spec({ name: 'www.example.test', validRcodes: ['NXDOMAIN'], resolvers: [primary.address] }),
      probeContext(),
    );
    expect(exists).toMatchObject({ ok: false, code: 'DNS' });
    expect(exists.message).toBe(`no resolver answered www.example.test A with NXDOMAIN: ${primary.address} NOERROR`);

    // And the default: NXDOMAIN is a failure.
    const missingName = await dns.probe(spec({ name: 'old-api.example.test', resolvers: [primary.address] }), probeContext());
    expect(missingName).toMatchObject({ ok: false, code: 'DNS' });
    expect(missingName.message).toContain('does not exist: NXDOMAIN');
  });

  it('reads SRV, CAA and PTR answers from nsd and from dnsmasq', async () => {
    const cases: Array<[string, string, string, string[]]> = [
      [primary.address, '_sip._tcp.example.test', 'SRV', ['10 5 5060 sip.example.test']],
      [primary.address, 'example.test', 'CAA', ['0 issue "letsencrypt.org"']],
      [primary.address, '10.2.0.192.in-addr.arpa', 'PTR', ['www.example.test']],
      [dnsmasq.address, '_imap._tcp.example.test', 'SRV', ['5 7 143 mail.example.test']],
      [dnsmasq.address, 'example.test', 'CAA', ['0 issue pki.example.net']],
      [dnsmasq.address, '20.2.0.192.in-addr.arpa', 'PTR', ['a.example.test']],
    ];
    for (const [resolver, name, type, values] of cases) {
      const result = await dns.probe(spec({ name, type, expect: values, resolvers: [resolver] }), probeContext());
      expect({ name, type, ok: result.ok, message: result.message }).toEqual({ name, type, ok: true, message: undefined });
    }
    // A wrong SRV port is a mismatch, said in the record's own form.
    const wrong = await dns.probe(
      spec({ name: '_sip._tcp.example.test', type: 'SRV', expect: ['10 5 5061 sip.example.test'], resolvers: [primary.address] }),
      probeContext(),
    );
    expect(wrong).toMatchObject({ ok: false, code: 'DNS_MISMATCH' });
    expect(wrong.message).toContain(`${primary.address} answers 10 5 5060 sip.example.test`);
  });

  it('asks over TCP when told, and only then reaches a resolver without UDP', async () => {
    const viaUdp = await dns.probe(
      spec({ name: 'web.local.test', expect: ['192.0.2.30'], resolvers: [udpless.address], resolverTimeout: '500ms' }),
      probeContext(),
    );
    expect(viaUdp).toMatchObject({ ok: false, code: 'DNS' });
    expect(viaUdp.message).toMatch(new RegExp(`^no resolver answered web.local.test A: ${udpless.address} (CONNREFUSED|TIMEOUT)$`));

    const viaTcp = await dns.probe(
      spec({ name: 'web.local.test', expect: ['192.0.2.30'], resolvers: [udpless.address], transport: 'tcp' }),
      probeContext(),
    );
    expect(viaTcp).toMatchObject({ ok: true });
    expect(resolversOf(viaTcp)[udpless.address]).toMatchObject({ transport: 'tcp', answers: ['192.0.2.30'] });
  });

  it('falls back to TCP when nsd truncates a large TXT set over UDP', async () => {
    const result = await dns.probe(
      spec({
        name: 'big.example.test',
        type: 'TXT',
        resolvers: [primary.address],
        validate: { answer: { matches: ['token-\\d-x{192}'] } },
      }),
      probeContext(),
    );
    expect(result).toMatchObject({ ok: true, values: { max_ttl_s: 300 } });
    expect(resolversOf(result)[primary.address]).toMatchObject({ transport: 'tcp', sections: { answer: 8 } });
  });

  it('with recursion: false, unbound refuses (access-control allow) or answers only from its data and cache (allow_snoop)', async () => {
    const snooping = await startUnbound({
      access: 'allow_snoop',
      localZones: ['"local.test." static'],
      localData: ['web.local.test. 60 IN A 192.0.2.30'],
      stubZones: [{ name: 'example.test', port: primary.port }],
    });
    try {
      const noRd = (resolver: string, name: string) => spec({ name, resolvers: [resolver], recursion: false });
      // A resolver that serves only recursive queries says so.
      const refused = await dns.probe(noRd(unbound.address, 'www.example.test'), probeContext());
      expect(refused).toMatchObject({ ok: false, code: 'DNS' });
      expect(refused.message).toBe(`no resolver answered www.example.test A: ${unbound.address} REFUSED`);
      expect((await dns.probe(spec({ name: 'www.example.test', resolvers: [unbound.address] }), probeContext())).ok).toBe(true);

      // Its own local data needs no recursion.
      expect((await dns.probe(noRd(snooping.address, 'web.local.test'), probeContext())).ok).toBe(true);
      // A name it holds nothing for, outside its zones: without RD it does not go and look (no network needed).
      const elsewhere = await dns.probe(noRd(snooping.address, 'www.example.org'), probeContext());
      expect(elsewhere.ok).toBe(false);
      expect(resolversOf(elsewhere)[snooping.address]).toMatchObject({ rcode: 'SERVFAIL', answers: [] });
      expect(resolversOf(elsewhere)[snooping.address]?.latency_ms).toBeLessThan(1_000);
    } finally {
      await snooping.stop();
    }
  });

  it('asks class CH for version.bind-style TXT answers from each server', async () => {
    const cases: Array<[RealDnsServer, string, string]> = [
      [primary, 'version.bind', '"NSD \\d'],
      [dnsmasq, 'version.bind', '"dnsmasq-\\d'],
      [unbound, 'version.server', '"unbound \\d'],
    ];
    for (const [server, name, version] of cases) {
      const result = await dns.probe(
        spec({
          name,
          type: 'TXT',
          class: 'CH',
          resolvers: [server.address],
          validate: { answer: { matches: [`\\tCH\\tTXT\\t${version}`], notMatches: ['\\tIN\\t'] } },
        }),
        probeContext(),
      );
      expect({ server: server.name, ok: result.ok, message: result.message }).toEqual({
        server: server.name,
        ok: true,
        message: undefined,
      });
    }
    // In class IN the same name does not exist, so the CH answer above came from the class asked.
    const inIn = await dns.probe(spec({ name: 'version.bind', type: 'TXT', resolvers: [primary.address] }), probeContext());
    expect(inIn.ok).toBe(false);
  });
});
