import net, { isIP } from 'node:net';
import tls from 'node:tls';
import { type Static, Type } from '@sinclair/typebox';
import { formatDuration } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import {
  ConversationEnded,
  converse,
  dialectName,
  negotiateStartTls,
  quote,
  STARTTLS,
  type StartTls,
  UpgradeRefused,
} from './conversation.js';
import { connectReason, DNS_ERRORS, endpoint } from './sockets.js';
import { alertCause, certificateChain, connectionProblems, DAY, daysRemaining, expiryPhrase, issuerOf, trustedCas } from './tls-common.js';
import { defineProber, type FailureCode, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';

const VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
type TlsVersion = (typeof VERSIONS)[number];

const schema = Type.Object(
  {
    host: Type.String({ pattern: '^[^\\s/@]+$', expected: 'a host name or IP address, without scheme or port' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 443, expected: 'a port number 1-65535' }),
    /** The name sent as SNI and checked against the certificate; defaults to `host`. */
    servername: Type.Optional(Type.String({ pattern: '^[^\\s/@:]+$|^[0-9a-fA-F:.]+$', expected: 'a host name' })),
    /** Fewer days than this before any certificate of the chain expires fails with CERT_EXPIRING. */
    minDaysRemaining: Type.Integer({ minimum: 0, default: 14, expected: 'a whole number of days' }),
    /** Extra trusted CA certificates in PEM, e.g. `${file:/etc/vigil/internal-ca.pem}`; the public roots stay trusted. */
    ca: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of one or more CA certificates' })),
    /**
     * The oldest protocol the server may negotiate. Below TLSv1.2 the probe also lowers OpenSSL's
     * security level, because OpenSSL 3 refuses TLS 1.0/1.1 otherwise.
     */
    minVersion: Type.Union([Type.Literal('TLSv1'), Type.Literal('TLSv1.1'), Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], {
      default: 'TLSv1.2',
      expected: 'one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3',
    }),
    /** The newest protocol offered: `TLSv1.2` checks that a server still speaks 1.2 to older clients. */
    maxVersion: Type.Optional(
      Type.Union([Type.Literal('TLSv1'), Type.Literal('TLSv1.1'), Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], {
        expected: 'one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3',
      }),
    ),
    /** A client certificate (PEM, e.g. `${file:/etc/vigil/client.pem}`) for servers that require one; needs `key`. */
    cert: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of a certificate' })),
    /** The client certificate's private key (PEM, unencrypted). */
    key: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of a private key' })),
    /** Speak this protocol's plaintext opening first, then upgrade the connection (mail and database servers). */
    starttls: Type.Optional(
      Type.Union(
        STARTTLS.map((d) => Type.Literal(d)),
        { expected: `one of ${STARTTLS.join(', ')}` },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The `tls` kind's own fields of a probe definition. */
export type TlsSpec = Static<typeof schema>;

export const tlsProber = defineProber({
  schema,
  report: {
    target: (spec) => `${spec.host}:${spec.port}`,
    latency: true,
    evidence(spec, w, targets) {
      const days = w.values.days_remaining;
      const chain = w.values.chain_valid;
      return {
        section: 'tls',
        item: {
          probeId: spec.id,
          host: `${spec.host}:${spec.port}`,
          daysRemaining: days?.last ?? null,
          minDaysRemaining: days?.min ?? null,
          chainValid: chain === undefined ? null : chain.last === 1,
          ok: w.last === null ? null : w.last.ok && days !== undefined && days.last >= targets.tlsMinDays,
        },
      };
    },
  },
  values: () => ['days_remaining', 'not_after', 'chain_valid', 'tls_version', 'connect_ms', 'handshake_ms'],
  check(spec) {
    const problems: SpecProblem[] = [];
    problems.push(...connectionProblems(spec));
    if (spec.maxVersion !== undefined && rank(spec.maxVersion) < rank(spec.minVersion)) {
      problems.push({ path: 'maxVersion', message: `maxVersion ${spec.maxVersion} is below minVersion ${spec.minVersion}` });
    }
    return problems;
  },
  async probe(spec, ctx) {
    const attempt = await handshake(
      {
        host: spec.host,
        port: spec.port,
        name: sniOf(spec),
        ca: spec.ca,
        minVersion: spec.minVersion,
        maxVersion: spec.maxVersion,
        cert: spec.cert,
        key: spec.key,
        starttls: spec.starttls,
      },
      ctx,
    );
    if ('failure' in attempt) return handshakeFailure(attempt, spec, ctx);
    return judge(attempt, spec, ctx.clock.now());
  },
});

/** Where one connection got to, from the socket's own events. */
interface Timing {
  start: number;
  lookup?: number;
  connect?: number;
  /** The STARTTLS exchange ended and the handshake began. */
  upgraded?: number;
  secure?: number;
}

interface Attempt {
  host: string;
  port: number;
  /** The name the certificate must cover; sent as SNI unless it is an IP address. */
  name: string;
  ca?: string | undefined;
  minVersion: TlsVersion;
  maxVersion?: TlsVersion | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  starttls?: StartTls | undefined;
}

/** A completed handshake, before any judgement. */
interface Observed {
  timing: Timing;
  protocol: string;
  cipher: string;
  authorized: boolean;
  authorizationError: string | undefined;
  peer: tls.DetailedPeerCertificate;
}

interface HandshakeFailure {
  timing: Timing;
  failure: { timedOut: true } | { error: unknown } | { closed: true } | { refused: string };
}

/** One handshake with verification deferred to us; the socket is destroyed before this resolves. */
async function handshake(a: Attempt, ctx: ProbeContext): Promise<Observed | HandshakeFailure> {
  const timing: Timing = { start: ctx.clock.now() };
  if (ctx.signal.aborted) return { timing, failure: { timedOut: true } };
  let plain: net.Socket | undefined;
  if (a.starttls !== undefined) {
    const opened = await startTls(a, a.starttls, timing, ctx);
    if ('failure' in opened) return { timing, failure: opened.failure };
    plain = opened.socket;
  }
  return new Promise((resolve) => {
    const legacy = rank(a.minVersion) < rank('TLSv1.2');
    let socket: tls.TLSSocket;
    try {
      socket = connect(a, legacy, plain);
    } catch (error) {
      // Options Node rejects up front (a CA it cannot load): a failed run, never a throw.
      plain?.destroy();
      resolve({ timing, failure: { error } });
      return;
    }
    let done = false;
    const finish = (outcome: Observed | HandshakeFailure) => {
      if (done) return;
      done = true;
      ctx.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      plain?.destroy();
      resolve(outcome);
    };
    const onAbort = () => finish({ timing, failure: { timedOut: true } });
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    socket.once('lookup', () => {
      timing.lookup = ctx.clock.now();
    });
    socket.once('connect', () => {
      timing.connect = ctx.clock.now();
    });
    socket.once('secureConnect', () => {
      timing.secure = ctx.clock.now();
      finish({
        timing,
        protocol: socket.getProtocol() ?? 'unknown',
        cipher: socket.getCipher()?.name ?? 'unknown',
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
        peer: socket.getPeerCertificate(true),
      });
    });
    // `on`, not `once`: an error after we are done must still find a listener.
    socket.on('error', (error) => finish({ timing, failure: { error } }));
    socket.once('close', () => finish({ timing, failure: { closed: true } }));
  });
}

/**
 * Opens the TCP connection and speaks the STARTTLS dialect on it; the socket comes back ready for
 * its TLS handshake, or is destroyed and the failure says why.
 */
function startTls(
  a: Attempt,
  dialect: StartTls,
  timing: Timing,
  ctx: ProbeContext,
): Promise<{ socket: net.Socket } | { failure: HandshakeFailure['failure'] }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: a.host, port: a.port });
    const talk = converse(socket, ctx.signal);
    socket.once('lookup', () => {
      timing.lookup = ctx.clock.now();
    });
    const failed = (failure: HandshakeFailure['failure']) => {
      talk.release();
      socket.destroy();
      resolve({ failure });
    };
    socket.once('connect', () => {
      timing.connect = ctx.clock.now();
      negotiateStartTls(talk, dialect).then(
        () => {
          timing.upgraded = ctx.clock.now();
          talk.release();
          resolve({ socket });
        },
        (err: unknown) => {
          if (err instanceof UpgradeRefused) return failed({ refused: err.message });
          if (err instanceof ConversationEnded && err.end === 'aborted') return failed({ timedOut: true });
          const last = talk.heard.at(-1);
          const said = last === undefined ? 'before saying anything' : `after saying ${quote(last)}`;
          failed({ refused: `the server closed the connection during the ${dialectName(dialect)} STARTTLS exchange, ${said}` });
        },
      );
    });
    // Before the connect: refused, unreachable, a name that does not resolve, or the run ending.
    // `on`, not `once`: a later error on this socket must still find a listener.
    socket.on('error', (error) => {
      if (timing.connect === undefined) failed({ error });
    });
    const onAbort = () => {
      if (timing.connect === undefined) failed({ timedOut: true });
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    socket.once('close', () => ctx.signal.removeEventListener('abort', onAbort));
  });
}

/** Verification is ours to judge, so the handshake goes through whatever the chain looks like. */
function connect(a: Attempt, legacy: boolean, socket?: net.Socket): tls.TLSSocket {
  return tls.connect({
    ...(socket === undefined ? { host: a.host, port: a.port } : { socket }),
    cert: a.cert,
    key: a.key,
    // SNI carries host names only (RFC 6066); Node warns when given an IP.
    servername: isIP(a.name) ? undefined : a.name,
    rejectUnauthorized: false,
    ca: trustedCas(a.ca),
    minVersion: a.minVersion,
    maxVersion: a.maxVersion,
    ciphers: legacy ? 'DEFAULT:@SECLEVEL=0' : undefined,
  });
}

const VERSION_ERRORS = /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE|VERSION_TOO_LOW|LEGACY_SIGALG/;

async function handshakeFailure(a: HandshakeFailure, spec: TlsSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const where = endpoint(spec.host, spec.port);
  const values = timingValues(a.timing);
  const fail = (code: FailureCode, message: string): ProbeResult => ({ ok: false, code, message, values });
  const f = a.failure;
  if ('refused' in f) {
    const dialect = spec.starttls === undefined ? 'STARTTLS' : `${dialectName(spec.starttls)} STARTTLS`;
    return fail('PROTOCOL', `${dialect} with ${where} failed: ${ctx.redactor?.text(f.refused) ?? f.refused}`);
  }
  if ('timedOut' in f) {
    const waited = formatDuration(ctx.clock.now() - a.timing.start);
    if (spec.starttls !== undefined && a.timing.connect !== undefined && a.timing.upgraded === undefined) {
      return fail(
        'TIMEOUT',
        `timed out after ${waited} in the ${dialectName(spec.starttls)} STARTTLS exchange with ${where}: the server stopped answering`,
      );
    }
    if (a.timing.connect !== undefined) {
      return fail(
        'TIMEOUT',
        `timed out after ${waited} in the TLS handshake with ${where}: the port accepts TCP but never completes a handshake`,
      );
    }
    const phase = a.timing.lookup !== undefined || isIP(spec.host) ? 'connecting to' : 'resolving';
    return fail('TIMEOUT', `timed out after ${waited} ${phase} ${where}`);
  }
  if ('closed' in f) {
    return fail('TLS', `TLS handshake with ${where} failed: the server closed the connection (does it serve TLS for ${sniOf(spec)}?)`);
  }
  const code = codeOf(f.error);
  if (DNS_ERRORS.has(code)) return fail('DNS', `DNS lookup of ${spec.host} failed: ${code}`);
  const refused = a.timing.connect === undefined ? connectReason(code) : undefined;
  if (refused !== undefined) {
    return fail('CONNECT', `cannot connect to ${where}: ${refused} (${code})`);
  }
  if (VERSION_ERRORS.test(code)) return versionFailure(spec, ctx, values, openSslReason(f.error));
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return fail('TLS', `TLS handshake with ${where} failed: the server reset the connection (does it serve TLS for ${sniOf(spec)}?)`);
  }
  const cause = alertCause(code, spec.cert === undefined ? undefined : 'vigil sent the certificate in cert:');
  if (cause !== undefined) return fail('TLS', `TLS handshake with ${where} failed: ${cause}`);
  const reason = openSslReason(f.error);
  const hint = /wrong version number|packet length too long|unknown protocol/.test(reason) ? ' (is this port serving TLS?)' : '';
  return fail('TLS', `TLS handshake with ${where} failed: ${reason}${hint}`);
}

/**
 * The server refused every protocol from minVersion up. A second, permissive handshake limited to
 * older protocols finds what it does speak, so the message says what to change.
 */
async function versionFailure(spec: TlsSpec, ctx: ProbeContext, values: Record<string, number>, reason: string): Promise<ProbeResult> {
  const where = endpoint(spec.host, spec.port);
  const below = VERSIONS[rank(spec.minVersion) - 1];
  const probe =
    below === undefined
      ? undefined
      : await handshake(
          {
            host: spec.host,
            port: spec.port,
            name: sniOf(spec),
            minVersion: 'TLSv1',
            maxVersion: below,
            starttls: spec.starttls,
            cert: spec.cert,
            key: spec.key,
          },
          ctx,
        );
  if (probe !== undefined && !('failure' in probe)) {
    values.tls_version = versionNumber(probe.protocol);
    return {
      ok: false,
      code: 'TLS_VERSION',
      message: `${where} offers at most ${probe.protocol}, below minVersion ${spec.minVersion}: enable ${spec.minVersion} or later on the server`,
      values,
      details: { protocol: probe.protocol, cipher: probe.cipher },
    };
  }
  const range = spec.maxVersion === undefined ? `${spec.minVersion} and later` : `${spec.minVersion} to ${spec.maxVersion}`;
  return { ok: false, code: 'TLS_VERSION', message: `${where} refused ${range} (${reason})`, values };
}

interface Problem {
  code: FailureCode;
  message: string;
}

/** Turns a completed handshake into a verdict; `now` comes from the context's clock. */
function judge(o: Observed, spec: TlsSpec, now: number): ProbeResult {
  const name = sniOf(spec);
  const chain = certificateChain(o.peer);
  const values = timingValues(o.timing);
  values.tls_version = versionNumber(o.protocol);
  const leaf = chain[0];
  if (leaf === undefined) {
    values.chain_valid = 0;
    return { ok: false, code: 'TLS', message: `${endpoint(spec.host, spec.port)} presented no certificate`, values };
  }
  const describe = (i: number) => {
    const c = chain[i];
    if (i === 0 || c === undefined) return `certificate for ${name}`;
    return `${selfIssued(c) ? 'root' : 'intermediate'} certificate "${commonName(c)}" in the chain for ${name}`;
  };

  const problems: Problem[] = [];
  if (rank(o.protocol) >= 0 && rank(o.protocol) < rank(spec.minVersion)) {
    problems.push({ code: 'TLS_VERSION', message: `negotiated ${o.protocol}, below minVersion ${spec.minVersion}` });
  }
  const notAfter = chain.map((c) => Date.parse(c.valid_to));
  const notBefore = chain.map((c) => Date.parse(c.valid_from));
  // The earliest expiry is what days_remaining counts from, so an expired chain is reported by it too.
  const earliest = notAfter.reduce((best, t, i) => (t < (notAfter[best] ?? t) ? i : best), 0);
  // The leaf is there (checked above), so the earliest expiry is a number, NaN for an unreadable date.
  const expiry = notAfter[earliest] ?? Number.NaN;
  const expired = expiry <= now;
  if (expired) {
    const fix = earliest === 0 ? 'renew it' : 'serve a current chain';
    problems.push({ code: 'CERT_EXPIRED', message: `${describe(earliest)} ${expiryPhrase(expiry, now)}, on ${day(expiry)}: ${fix}` });
  }
  const early = notBefore.findIndex((t) => t > now);
  const t = notBefore[early];
  if (t !== undefined) {
    problems.push({
      code: 'CERT_NOT_YET_VALID',
      message: `${describe(early)} is not valid until ${day(t)} (in ${span(t - now)}): it was deployed too early, or this host's clock is wrong`,
    });
  }
  const verdict = o.authorized ? undefined : o.authorizationError;
  if (verdict !== undefined && verdict !== 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const trust = trustProblem(verdict, leaf, chain, name, problems.length > 0);
    if (trust) problems.push(trust);
  }
  const mismatch = tls.checkServerIdentity(name, leaf);
  if (mismatch) {
    problems.push({
      code: 'CERT_HOSTNAME_MISMATCH',
      message: `certificate for ${name} does not cover that name: it is for ${namesOf(leaf).join(', ')} (serve a certificate that names ${name}, or set servername:)`,
    });
  }
  values.chain_valid = problems.length === 0 ? 1 : 0;

  if (Number.isFinite(expiry)) values.days_remaining = daysRemaining(expiry, now);
  const leafNotAfter = notAfter[0];
  if (leafNotAfter !== undefined && Number.isFinite(leafNotAfter)) values.not_after = Math.floor(leafNotAfter / 1000);
  // Listed even behind another problem, so fixing that one does not uncover a surprise.
  if (!expired && expiry - now < spec.minDaysRemaining * DAY) {
    problems.push({
      code: 'CERT_EXPIRING',
      message: `${describe(earliest)} ${expiryPhrase(expiry, now)}, on ${day(expiry)} (minDaysRemaining ${spec.minDaysRemaining})`,
    });
  }

  const details: Record<string, unknown> = {
    protocol: o.protocol,
    cipher: o.cipher,
    chain: chain.map((c) => ({
      subject: distinguishedName(c.subject),
      issuer: distinguishedName(c.issuer),
      notBefore: iso(Date.parse(c.valid_from)),
      notAfter: iso(Date.parse(c.valid_to)),
      serialNumber: c.serialNumber,
      fingerprint256: c.fingerprint256,
    })),
    names: namesOf(leaf),
  };
  if (verdict !== undefined) details.authorizationError = verdict;
  const first = problems[0];
  if (first === undefined) return { ok: true, values, details };
  if (problems.length > 1) details.problems = problems;
  return { ok: false, code: first.code, message: first.message, values, details };
}

const TRUST_REASONS: Record<string, string> = {
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'its issuer is not a trusted CA',
  UNABLE_TO_GET_ISSUER_CERT: 'its issuer is not a trusted CA',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the server sent no intermediate certificates, or they lead to an unknown CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'it ends at a root CA that is not trusted',
  CERT_SIGNATURE_FAILURE: 'a signature in the chain does not verify',
  CERT_REVOKED: 'a certificate in the chain is revoked',
  INVALID_CA: 'an issuer in the chain is not a CA',
  INVALID_PURPOSE: 'the certificate is not for TLS servers',
  CERT_UNTRUSTED: 'the root is not trusted for TLS servers',
};

/** OpenSSL's verdict on the chain, minus the dates, which we judge by our own clock. */
function trustProblem(
  verdict: string,
  leaf: tls.PeerCertificate,
  chain: tls.PeerCertificate[],
  name: string,
  datesFailed: boolean,
): Problem | undefined {
  if (verdict === 'CERT_HAS_EXPIRED' || verdict === 'CERT_NOT_YET_VALID') {
    // OpenSSL reads the real time; our clock already judged the dates, unless it disagrees.
    if (datesFailed) return undefined;
    return {
      code: verdict === 'CERT_HAS_EXPIRED' ? 'CERT_EXPIRED' : 'CERT_NOT_YET_VALID',
      message: `certificate chain for ${name} fails verification: ${verdict}`,
    };
  }
  if (verdict === 'DEPTH_ZERO_SELF_SIGNED_CERT' || (chain.length === 1 && selfIssued(leaf))) {
    return {
      code: 'CERT_SELF_SIGNED',
      message: `certificate for ${name} is self-signed ("${commonName(leaf)}") and not trusted: serve one issued by a trusted CA, or trust it with ca:`,
    };
  }
  const top = chain.at(-1) ?? leaf;
  const reason = TRUST_REASONS[verdict] ?? verdict;
  return {
    code: 'CERT_UNTRUSTED',
    message: `certificate chain for ${name} is not trusted: ${reason} (issuer "${issuerName(top)}"; serve the full chain, or add the issuing CA with ca:)`,
  };
}

function timingValues(t: Timing): Record<string, number> {
  const values: Record<string, number> = {};
  if (t.connect !== undefined) values.connect_ms = t.connect - (t.lookup ?? t.start);
  if (t.secure !== undefined && t.connect !== undefined) values.handshake_ms = t.secure - t.connect;
  return values;
}

function rank(v: string): number {
  // Widened, not cast: any text may be asked about, and an unknown one ranks -1.
  const known: readonly string[] = VERSIONS;
  return known.indexOf(v);
}

/** `TLSv1.3` → 1.3, so alert rules can compare protocols as numbers. */
function versionNumber(protocol: string): number {
  const i = rank(protocol);
  return i < 0 ? 0 : 1 + i / 10;
}

function sniOf(spec: TlsSpec): string {
  return spec.servername ?? spec.host;
}

function selfIssued(c: tls.PeerCertificate): boolean {
  const issuer = issuerOf(c);
  return issuer === c || issuer?.fingerprint256 === c.fingerprint256;
}

function commonName(c: tls.PeerCertificate): string {
  return first(c.subject?.CN) ?? distinguishedName(c.subject);
}

function issuerName(c: tls.PeerCertificate): string {
  return first(c.issuer?.CN) ?? distinguishedName(c.issuer);
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** `{C, O, CN}` as `C=…, O=…, CN=…`: the certificate's own order, as `openssl x509 -subject` prints it. */
function distinguishedName(dn: tls.Certificate | undefined): string {
  if (!dn) return '';
  return Object.entries(dn)
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}=${x}`))
    .join(', ');
}

/** The names a leaf covers: its SANs, or its CN when it has none. */
function namesOf(leaf: tls.PeerCertificate): string[] {
  const sans = (leaf.subjectaltname ?? '')
    .split(/,\s*/)
    .map((s) => s.replace(/^(DNS|IP Address):/, ''))
    .filter((s) => s !== '');
  const cn = first(leaf.subject?.CN);
  return sans.length > 0 ? sans : cn !== undefined ? [cn] : [];
}

/** `9 days`, `1 day`, or a shorter duration when under a day. */
function span(millis: number): string {
  const days = Math.floor(millis / DAY);
  if (days >= 1) return `${days} day${days === 1 ? '' : 's'}`;
  return formatDuration(Math.max(0, millis));
}

function day(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

function iso(t: number): string | undefined {
  return Number.isFinite(t) ? new Date(t).toISOString() : undefined;
}

/** OpenSSL's reason phrase (`tlsv1 alert protocol version`) without its source-file noise. */
function openSslReason(err: unknown): string {
  const message = messageOf(err);
  const m = /SSL routines:[^:]*:([^:]+)/.exec(message);
  return (m?.[1] ?? message).trim();
}
