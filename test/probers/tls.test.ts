import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { definitionSchema } from '../../src/config/schema.js';
import { type Clock, systemClock } from '../../src/lib/clock.js';
import { http } from '../../src/probers/http.js';
import { tlsProber } from '../../src/probers/tls.js';
import { daysRemaining, expiryPhrase } from '../../src/probers/tls-common.js';
import type { Prober } from '../../src/probers/types.js';
import { createPki, daysFromNow, type TestCert, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { closedPort, startHttps, startRaw, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

const DAY = 86_400_000;
const NAME = 'api.vigil.test';

type TlsDefinition = Parameters<typeof tlsProber.probe>[0];

/** A definition as config would load it: schema defaults applied, validated, the prober's own check passed. */
function definition<D>(prober: Prober, kind: string, fields: Record<string, unknown>): D {
  const schema = definitionSchema(prober.schema as TObject);
  const def = Value.Default(schema, { id: `${kind}-test`, kind, schedule: '* * * * *', ...structuredClone(fields) });
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) throw new Error(`invalid test definition: ${errors.join('; ')}`);
  const problems = prober.check?.(def as never) ?? [];
  if (problems.length > 0) throw new Error(`definition fails check: ${JSON.stringify(problems)}`);
  return def as D;
}

const spec = (fields: Record<string, unknown>) =>
  definition<TlsDefinition>(tlsProber as unknown as Prober, 'tls', { host: '127.0.0.1', servername: NAME, ...fields });

/** The system clock moved by `offsetMs`: the certificates stay, the probe's idea of "now" changes. */
function shiftedClock(offsetMs: number): Clock {
  return { ...systemClock, now: () => Date.now() + offsetMs };
}

/** `notAfter`/`notBefore` of the first certificate in a PEM, as epoch ms (openssl keeps whole seconds). */
function validity(pem: string) {
  const x = new X509Certificate(pem);
  return { notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) };
}
const day = (t: number) => new Date(t).toISOString().slice(0, 10);

interface TlsTestServer {
  port: number;
  /** The SNI of each handshake that sent one. */
  servernames: string[];
  /** Server-side sockets not yet closed: a probe must leave none behind. */
  readonly open: number;
  close(): Promise<void>;
}

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A real TLS server on 127.0.0.1, port 0, presenting `cert` (leaf plus intermediates). */
async function serveTls(cert: TestCert, options: tls.TlsOptions = {}): Promise<TlsTestServer> {
  const servernames: string[] = [];
  const server = tls.createServer(
    {
      ...cert,
      ...options,
      // Called during the handshake, so it sees the client's SNI even when the client hangs up at once.
      SNICallback: (name, done) => {
        servernames.push(name);
        done(null);
      },
    },
    // Holds the connection open: only the probe hanging up closes it.
    () => {},
  );
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // The probe hangs up right after the handshake; the server side sees a reset, which is expected.
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const handle: TlsTestServer = {
    port: (server.address() as AddressInfo).port,
    servernames,
    get open() {
      return sockets.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  servers.push(handle);
  return handle;
}

async function serveRaw(onConnection: (socket: Socket) => void): Promise<TestServer> {
  const s = await startRaw(onConnection);
  servers.push(s);
  return s;
}

/** Resolves once the server has seen every connection close (the probe destroyed its socket). */
const allClosed = (server: TlsTestServer) => waitFor('the probe to close every connection', () => server.open === 0, 1_000);

let pki: TestPki;
let other: TestPki;
let intermediate: TestCert;
beforeAll(() => {
  pki = createPki('Vigil TLS Test');
  other = createPki('Someone Else');
  intermediate = pki.intermediate('Vigil TLS Test Issuing CA');
});
afterAll(() => {
  pki?.dispose();
  other?.dispose();
});

describe('tls prober: a good certificate', () => {
  it('passes a chain trusted through ca, reporting expiry, protocol, timings and the chain', async () => {
    const leaf = pki.leaf({ cn: NAME, notAfter: daysFromNow(90) }, intermediate);
    const server = await serveTls(leaf);
    const s = spec({ port: server.port, ca: pki.root.cert });
    const result = await tlsProber.probe(s, probeContext());

    expect(server.servernames).toEqual([NAME]);
    expect(result).toMatchObject({ ok: true, values: { days_remaining: 89, chain_valid: 1, tls_version: 1.3 } });
    expect(result.code).toBeUndefined();
    expect(Object.keys(result.values).sort()).toEqual([...tlsProber.values(s)].sort());
    expect(result.values.not_after).toBe(validity(leaf.cert).notAfter / 1000);
    expect(result.values.handshake_ms).toBeGreaterThanOrEqual(0);
    expect(result.values.handshake_ms).toBeLessThan(1_000);
    expect(result.details).toMatchObject({
      protocol: 'TLSv1.3',
      cipher: expect.stringMatching(/^TLS_/),
      names: [NAME],
      chain: [
        { subject: `O=Vigil TLS Test, CN=${NAME}`, issuer: 'O=Vigil TLS Test, CN=Vigil TLS Test Issuing CA' },
        { subject: 'O=Vigil TLS Test, CN=Vigil TLS Test Issuing CA', issuer: 'O=Vigil TLS Test, CN=Vigil TLS Test Root CA' },
        { subject: 'O=Vigil TLS Test, CN=Vigil TLS Test Root CA', issuer: 'O=Vigil TLS Test, CN=Vigil TLS Test Root CA' },
      ],
    });
    await allClosed(server);
  });

  it('checks an IP address against the certificate when there is no servername (and sends no SNI)', async () => {
    const server = await serveTls(pki.leaf({ cn: 'edge', san: ['IP:127.0.0.1'] }));
    const s = spec({ port: server.port, servername: undefined, ca: pki.root.cert });
    const result = await tlsProber.probe(s, probeContext());
    expect(result).toMatchObject({ ok: true, values: { chain_valid: 1 }, details: { names: ['127.0.0.1'] } });
    expect(server.servernames).toEqual([]);
  });

  it('judges expiry by the context clock, not the system time', async () => {
    const leaf = pki.leaf({ cn: NAME, notAfter: daysFromNow(90) });
    const { notAfter } = validity(leaf.cert);
    const server = await serveTls(leaf);
    const s = spec({ port: server.port, ca: pki.root.cert });

    const later = await tlsProber.probe(s, probeContext(5_000, { clock: shiftedClock(80 * DAY) }));
    const left = Math.floor((notAfter - Date.now() - 80 * DAY) / DAY);
    expect(left).toBeGreaterThanOrEqual(8);
    expect(later).toMatchObject({
      ok: false,
      code: 'CERT_EXPIRING',
      message: `certificate for ${NAME} expires in ${left} days, on ${day(notAfter)} (minDaysRemaining 14)`,
      values: { days_remaining: left, chain_valid: 1 },
    });

    const past = await tlsProber.probe(s, probeContext(5_000, { clock: shiftedClock(95 * DAY) }));
    expect(past).toMatchObject({ ok: false, code: 'CERT_EXPIRED', values: { chain_valid: 0 } });
    expect(past.message).toMatch(new RegExp(`^certificate for ${NAME} expired [45] days ago, on ${day(notAfter)}: renew it$`));
  });
});

describe('tls prober: expiry', () => {
  it('fails a certificate expiring in 5 days with CERT_EXPIRING and the date', async () => {
    const leaf = pki.leaf({ cn: NAME, notAfter: new Date(Date.now() + 5 * DAY + 3_600_000) }, intermediate);
    const server = await serveTls(leaf);
    const result = await tlsProber.probe(spec({ port: server.port, ca: pki.root.cert }), probeContext());
    const { notAfter } = validity(leaf.cert);
    expect(result).toEqual({
      ok: false,
      code: 'CERT_EXPIRING',
      message: `certificate for ${NAME} expires in 5 days, on ${day(notAfter)} (minDaysRemaining 14)`,
      values: expect.objectContaining({ days_remaining: 5, not_after: notAfter / 1000, chain_valid: 1 }),
      details: expect.objectContaining({ protocol: 'TLSv1.3' }),
    });
  });

  it('passes the same certificate when minDaysRemaining is lower', async () => {
    const leaf = pki.leaf({ cn: NAME, notAfter: new Date(Date.now() + 5 * DAY + 3_600_000) });
    const server = await serveTls(leaf);
    const result = await tlsProber.probe(spec({ port: server.port, ca: pki.root.cert, minDaysRemaining: 3 }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { days_remaining: 5 } });
  });

  it('takes the earliest expiry anywhere in the chain, naming the intermediate', async () => {
    const shortLived = pki.intermediate('Short-Lived Issuing CA', { notAfter: new Date(Date.now() + 3 * DAY + 3_600_000) });
    const leaf = pki.leaf({ cn: NAME, notAfter: daysFromNow(90) }, shortLived);
    const server = await serveTls(leaf);
    const result = await tlsProber.probe(spec({ port: server.port, ca: pki.root.cert }), probeContext());
    const { notAfter } = validity(shortLived.cert);
    expect(result).toMatchObject({
      ok: false,
      code: 'CERT_EXPIRING',
      message: `intermediate certificate "Short-Lived Issuing CA" in the chain for ${NAME} expires in 3 days, on ${day(notAfter)} (minDaysRemaining 14)`,
      values: { days_remaining: 3, not_after: validity(leaf.cert).notAfter / 1000 },
    });
  });

  it('fails an expired certificate with CERT_EXPIRED', async () => {
    const leaf = pki.leaf({ cn: NAME, notBefore: daysFromNow(-30), notAfter: new Date(Date.now() - 2 * DAY - 3_600_000) }, intermediate);
    const server = await serveTls(leaf);
    const result = await tlsProber.probe(spec({ port: server.port, ca: pki.root.cert }), probeContext());
    const { notAfter } = validity(leaf.cert);
    expect(result).toMatchObject({
      ok: false,
      code: 'CERT_EXPIRED',
      // The words and the value count the same days (it once said "2 days ago" with -3).
      message: `certificate for ${NAME} expired 2 days ago, on ${day(notAfter)}: renew it`,
      values: { days_remaining: -2, chain_valid: 0 },
      details: { authorizationError: 'CERT_HAS_EXPIRED' },
    });
  });

  it('says "expired … ago" with the same day count as days_remaining, hours within the first day', async () => {
    const leaf = pki.leaf({ cn: NAME, notAfter: daysFromNow(10) });
    const { notAfter } = validity(leaf.cert);
    const server = await serveTls(leaf);
    const s = spec({ port: server.port, ca: pki.root.cert });
    const at = async (afterExpiryMs: number) => {
      const clock = shiftedClock(notAfter + afterExpiryMs - Date.now());
      return tlsProber.probe(s, probeContext(5_000, { clock }));
    };
    const cases = [
      { after: 6 * 3_600_000, words: 'expired 6h ago', days: -1 },
      { after: DAY + 6 * 3_600_000, words: 'expired 1 day ago', days: -1 },
      { after: 2 * DAY + 23 * 3_600_000, words: 'expired 2 days ago', days: -2 },
      { after: 30 * DAY, words: 'expired 30 days ago', days: -30 },
    ];
    for (const c of cases) {
      const result = await at(c.after);
      expect(result.message, `${c.after} ms after expiry`).toMatch(new RegExp(`^certificate for ${NAME} ${c.words}, on `));
      expect(result.values.days_remaining, `${c.after} ms after expiry`).toBe(c.days);
    }
  });

  it('counts days one way, before and after the expiry', () => {
    const t = Date.parse('2026-12-01T00:00:00Z');
    const h = 3_600_000;
    expect([9.5 * DAY, DAY, DAY - 1, h, 1, 0, -1, -h, -DAY + 1, -DAY, -2 * DAY - h].map((left) => daysRemaining(t, t - left))).toEqual([
      9, 1, 0, 0, 0, -1, -1, -1, -1, -1, -2,
    ]);
    expect(expiryPhrase(t, t - 9.5 * DAY)).toBe('expires in 9 days');
    expect(expiryPhrase(t, t - 5 * h)).toBe('expires in 5h');
    expect(expiryPhrase(t, t + 5 * h)).toBe('expired 5h ago');
    expect(expiryPhrase(t, t + 2 * DAY + h)).toBe('expired 2 days ago');
  });

  it('fails a certificate that is not valid yet with CERT_NOT_YET_VALID', async () => {
    const leaf = pki.leaf({ cn: NAME, notBefore: new Date(Date.now() + 3 * DAY + 3_600_000), notAfter: daysFromNow(90) });
    const server = await serveTls(leaf);
    const result = await tlsProber.probe(spec({ port: server.port, ca: pki.root.cert }), probeContext());
    const { notBefore } = validity(leaf.cert);
    expect(result).toMatchObject({
      ok: false,
      code: 'CERT_NOT_YET_VALID',
      message: `certificate for ${NAME} is not valid until ${day(notBefore)} (in 3 days): it was deployed too early, or this host's clock is wrong`,
      values: { chain_valid: 0 },
    });
  });
});

describe('tls prober: trust and names', () => {
  it('fails a self-signed certificate with CERT_SELF_SIGNED, and passes it once trusted through ca', async () => {
    const self = pki.selfSigned({ cn: NAME });
    const server = await serveTls(self);
    const untrusted = await tlsProber.probe(spec({ port: server.port }), probeContext());
    expect(untrusted).toMatchObject({
      ok: false,
      code: 'CERT_SELF_SIGNED',
      message: `certificate for ${NAME} is self-signed ("${NAME}") and not trusted: serve one issued by a trusted CA, or trust it with ca:`,
      values: { chain_valid: 0, days_remaining: 89 },
      details: { authorizationError: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
    });

    const trusted = await tlsProber.probe(spec({ port: server.port, ca: self.cert }), probeContext());
    expect(trusted).toMatchObject({ ok: true, values: { chain_valid: 1 } });
  });

  it('fails a chain from a CA nobody trusts with CERT_UNTRUSTED, and passes it when that CA is given as ca', async () => {
    const theirs = other.intermediate('Someone Else Issuing CA');
    const server = await serveTls(other.leaf({ cn: NAME }, theirs));

    const untrusted = await tlsProber.probe(spec({ port: server.port, ca: pki.root.cert }), probeContext());
    expect(untrusted).toMatchObject({
      ok: false,
      code: 'CERT_UNTRUSTED',
      message: `certificate chain for ${NAME} is not trusted: its issuer is not a trusted CA (issuer "Someone Else Root CA"; serve the full chain, or add the issuing CA with ca:)`,
      values: { chain_valid: 0 },
    });

    const trusted = await tlsProber.probe(spec({ port: server.port, ca: pki.root.cert + other.root.cert }), probeContext());
    expect(trusted).toMatchObject({ ok: true, values: { chain_valid: 1 } });
  });

  it('fails a server that sends an untrusted root along with its chain', async () => {
    const leaf = other.leaf({ cn: NAME });
    const server = await serveTls({ cert: leaf.cert + other.root.cert, key: leaf.key });
    const result = await tlsProber.probe(spec({ port: server.port }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'CERT_UNTRUSTED', details: { authorizationError: 'SELF_SIGNED_CERT_IN_CHAIN' } });
    expect(result.message).toContain('it ends at a root CA that is not trusted');
  });

  it('fails a trusted certificate for another name with CERT_HOSTNAME_MISMATCH', async () => {
    const leaf = pki.leaf({ cn: 'other.vigil.test', san: ['DNS:other.vigil.test', 'DNS:*.other.vigil.test'] });
    const server = await serveTls(leaf);
    const result = await tlsProber.probe(spec({ port: server.port, ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'CERT_HOSTNAME_MISMATCH',
      message: `certificate for ${NAME} does not cover that name: it is for other.vigil.test, *.other.vigil.test (serve a certificate that names ${NAME}, or set servername:)`,
      values: { chain_valid: 0, days_remaining: 89 },
    });
  });

  it('lists every problem when there are several, leading with the most basic', async () => {
    const self = pki.selfSigned({ cn: 'other.vigil.test', notAfter: new Date(Date.now() + 2 * DAY + 3_600_000) });
    const server = await serveTls(self);
    const result = await tlsProber.probe(spec({ port: server.port }), probeContext());
    expect(result.code).toBe('CERT_SELF_SIGNED');
    expect((result.details?.problems as Array<{ code: string }> | undefined)?.map((p) => p.code)).toEqual([
      'CERT_SELF_SIGNED',
      'CERT_HOSTNAME_MISMATCH',
      'CERT_EXPIRING',
    ]);
  });
});

describe('tls prober: protocol versions', () => {
  it('fails a TLS 1.1-only server against the default minVersion TLSv1.2, saying what it offers', async () => {
    // OpenSSL 3 serves TLS 1.1 only at security level 0.
    const server = await serveTls(pki.leaf({ cn: NAME }), { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
    const result = await tlsProber.probe(spec({ port: server.port, ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'TLS_VERSION',
      message: `127.0.0.1:${server.port} offers at most TLSv1.1, below minVersion TLSv1.2: enable TLSv1.2 or later on the server`,
      values: { tls_version: 1.1 },
    });
    await allClosed(server);
  });

  it('accepts the same server when minVersion allows TLSv1.1', async () => {
    const server = await serveTls(pki.leaf({ cn: NAME }), { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
    const result = await tlsProber.probe(spec({ port: server.port, ca: pki.root.cert, minVersion: 'TLSv1.1' }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { tls_version: 1.1, chain_valid: 1 }, details: { protocol: 'TLSv1.1' } });
  });

  it('fails a TLS 1.2-only server against minVersion TLSv1.3', async () => {
    const server = await serveTls(pki.leaf({ cn: NAME }), { maxVersion: 'TLSv1.2' });
    const s = spec({ port: server.port, ca: pki.root.cert, minVersion: 'TLSv1.3' });
    const result = await tlsProber.probe(s, probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'TLS_VERSION',
      message: `127.0.0.1:${server.port} offers at most TLSv1.2, below minVersion TLSv1.3: enable TLSv1.3 or later on the server`,
    });
    const ok = await tlsProber.probe({ ...s, minVersion: 'TLSv1.2' }, probeContext());
    expect(ok).toMatchObject({ ok: true, values: { tls_version: 1.2 }, details: { protocol: 'TLSv1.2' } });
  });
});

describe('tls prober: unreachable and broken servers', () => {
  it('times out at the deadline on a port that accepts TCP but never handshakes, and closes the connection', async () => {
    const accepted: Socket[] = [];
    const server = await serveRaw((socket) => {
      accepted.push(socket);
      socket.resume(); // read the ClientHello and discard it, so the client's FIN is seen
    });
    const started = Date.now();
    const result = await tlsProber.probe(spec({ port: server.port }), probeContext(600));
    const took = Date.now() - started;
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.message).toMatch(
      new RegExp(
        `^timed out after \\d+ms in the TLS handshake with 127\\.0\\.0\\.1:${server.port}: the port accepts TCP but never completes a handshake$`,
      ),
    );
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(1_500);
    expect(accepted).toHaveLength(1);
    const socket = accepted[0] as Socket;
    const hungUp =
      socket.readableEnded || socket.destroyed
        ? true
        : await Promise.race([once(socket, 'end').then(() => true), sleep(1_000).then(() => false)]);
    expect(hungUp).toBe(true);
  }, 5_000);

  it('reports a refused connection as CONNECT', async () => {
    const port = await closedPort();
    const result = await tlsProber.probe(spec({ port }), probeContext());
    expect(result).toEqual({
      ok: false,
      code: 'CONNECT',
      message: `cannot connect to 127.0.0.1:${port}: connection refused (ECONNREFUSED)`,
      values: {},
    });
  });

  it('reports a port that does not speak TLS as a TLS handshake failure', async () => {
    const server = await serveRaw((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n'));
    });
    const result = await tlsProber.probe(spec({ port: server.port }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'TLS' });
    expect(result.message).toBe(`TLS handshake with 127.0.0.1:${server.port} failed: wrong version number (is this port serving TLS?)`);
  });

  it('reports a server that hangs up mid-handshake as TLS', async () => {
    const server = await serveRaw((socket) => socket.once('data', () => socket.destroy()));
    const result = await tlsProber.probe(spec({ port: server.port }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'TLS' });
    expect(result.message).toMatch(
      new RegExp(`^TLS handshake with 127\\.0\\.0\\.1:${server.port} failed: the server (closed|reset) the connection`),
    );
  });

  it('judges the certificate of a TLS 1.3 server that wants a client certificate, and names the demand under TLS 1.2', async () => {
    const leaf = pki.leaf({ cn: NAME });
    const demanding = { ca: pki.root.cert, requestCert: true, rejectUnauthorized: true };
    // TLS 1.3 completes the handshake before the server asks: the certificate is there to judge.
    const modern = await serveTls(leaf, demanding);
    expect(await tlsProber.probe(spec({ port: modern.port, ca: pki.root.cert }), probeContext())).toMatchObject({
      ok: true,
      values: { chain_valid: 1 },
    });
    const legacy = await serveTls(leaf, { ...demanding, maxVersion: 'TLSv1.2' });
    const result = await tlsProber.probe(spec({ port: legacy.port, ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'TLS',
      message: `TLS handshake with 127.0.0.1:${legacy.port} failed: the server refused the handshake: it may require a client certificate (vigil sends none), or share no cipher with vigil`,
    });
  });

  it('reports a name that does not resolve as DNS', async () => {
    const result = await tlsProber.probe(spec({ host: 'no-such-host.invalid', servername: undefined }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'DNS', message: 'DNS lookup of no-such-host.invalid failed: ENOTFOUND' });
  });

  it('does not connect at all when the run is already aborted', async () => {
    const accepted: Socket[] = [];
    const server = await serveRaw((socket) => accepted.push(socket));
    const ctx = { ...probeContext(), signal: AbortSignal.abort() };
    const result = await tlsProber.probe(spec({ port: server.port }), ctx);
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    await sleep(50);
    expect(accepted).toHaveLength(0);
  });
});

describe('tls prober: definitions', () => {
  it('fills the defaults of the issue example', () => {
    const s = definition<TlsDefinition>(tlsProber as unknown as Prober, 'tls', { host: 'api.example.com' });
    expect(s).toMatchObject({ port: 443, minDaysRemaining: 14, minVersion: 'TLSv1.2' });
    expect(s.servername).toBeUndefined();
  });

  it('rejects a port inside host and a ca that is not PEM', () => {
    const base = Value.Default(definitionSchema(tlsProber.schema), {
      id: 'x',
      kind: 'tls',
      schedule: '* * * * *',
      host: 'h',
    }) as TlsDefinition;
    expect(tlsProber.check?.({ ...base, host: 'api.example.com:8443' })).toEqual([
      { path: 'host', message: 'expected a host name without a port, got api.example.com:8443 (put the port in port:)' },
    ]);
    expect(tlsProber.check?.({ ...base, host: '::1' })).toEqual([]);
    expect(tlsProber.check?.({ ...base, ca: '/etc/vigil/ca.pem' })).toEqual([
      { path: 'ca', message: 'expected PEM text of CA certificates (-----BEGIN CERTIFICATE-----…)' },
    ]);
    expect(tlsProber.check?.({ ...base, ca: pki.root.cert })).toEqual([]);
  });

  it('rejects a scheme in host and an unknown minVersion', () => {
    const schema = definitionSchema(tlsProber.schema);
    const def = Value.Default(schema, {
      id: 'x',
      kind: 'tls',
      schedule: '* * * * *',
      host: 'https://api.example.com',
      minVersion: 'TLSv1.4',
    });
    const paths = [...Value.Errors(schema, def)].map((e) => e.path);
    expect(paths).toContain('/host');
    expect(paths).toContain('/minVersion');
  });
});

describe('http prober: certificate expiry from the whole chain', () => {
  it('reports tls_days_remaining from the earliest expiry in the chain, not just the leaf', async () => {
    const shortLived = pki.intermediate('Short-Lived Issuing CA', { notAfter: new Date(Date.now() + 3 * DAY + 3_600_000) });
    const leaf = pki.leaf({ cn: 'localhost', san: ['IP:127.0.0.1'], notAfter: daysFromNow(90) }, shortLived);
    const server = await startHttps((_req, res) => res.end('ok'), leaf);
    servers.push(server);
    const s = definition<Parameters<typeof http.probe>[0]>(http as unknown as Prober, 'http', {
      url: `${server.url}/health`,
      ca: pki.root.cert,
    });
    const result = await http.probe(s, probeContext());
    expect(result).toMatchObject({ ok: true, values: { status: 200, tls_days_remaining: 3 } });
  });
});
