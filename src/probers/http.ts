import net, { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { type Static, Type } from '@sinclair/typebox';
import { Client } from 'undici';
import { formatDuration, ms } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { fieldOf, isJsonObject } from '../lib/fields.js';
import { Duration } from '../lib/schema.js';
import { alertCause, caProblem, daysRemaining, earliestExpiry, expiryPhrase, trustedCas } from './tls-common.js';
import { defineProber, type FailureCode, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';
import { credentialsHeader, credentialsProblem, urlAsWritten, withoutCredentials } from './url-credentials.js';

const ValueName = Type.String({ pattern: '^[a-z_][a-z0-9_]*$', expected: 'a value name in snake_case' });

const schema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// URL' }),
    method: Type.Union(
      (['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const).map((m) => Type.Literal(m)),
      { default: 'GET', expected: 'one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' },
    ),
    headers: Type.Record(Type.String(), Type.String(), { default: {} }),
    body: Type.Optional(Type.String()),
    /** Responses larger than this, as received or once decoded, fail with BODY_TOO_LARGE; the read stops there. */
    maxBodySize: Type.Integer({ minimum: 1, default: 1_048_576, expected: 'a size in bytes' }),
    /** Skip certificate verification (the TLS failure is then not a failure). */
    insecure: Type.Boolean({ default: false }),
    /** Extra trusted CA certificates in PEM, e.g. `${file:/etc/vigil/ca.pem}`. */
    ca: Type.Optional(Type.String()),
    expect: Type.Object(
      {
        status: Type.Union([Type.Integer(), Type.Array(Type.Integer(), { minItems: 1 })], {
          default: 200,
          expected: 'a status code or a list of them',
        }),
        maxLatency: Type.Optional(Duration()),
        bodyContains: Type.Optional(Type.String({ minLength: 1 })),
        /** Dotted JSON path → the value it must equal. */
        json: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]))),
        /** The http:// URL must answer 301/308 to its https:// twin. */
        httpsRedirect: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Value name → dotted JSON path of a number in the body; becomes a named value of the run. */
    extract: Type.Record(ValueName, Type.String({ minLength: 1 }), { additionalProperties: false, default: {} }),
  },
  { additionalProperties: false },
);

export type HttpSpec = Static<typeof schema>;

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Found',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Why a probe's client is destroyed once its one request is over; shared, it costs nothing per run. */
const FINISHED = new Error('probe request finished');
type Decoder = zlib.Zlib & NodeJS.ReadWriteStream;
/** Content codings decoded before a body is judged, as a browser would (RFC 9110 §8.4.1). */
const DECODERS: Record<string, () => Decoder> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};
/** Bounds the decoders stacked for one response: real servers apply one coding. */
const MAX_CODINGS = 3;
/** What vigil says of the client certificate it offered: the http probe has no option to send one. */
const CLIENT_CERT = "vigil's http probe sends none";

/** Phase timestamps of one request, recorded from the socket's own events. */
interface Phases {
  start: number;
  /** Set by send: whether the connection has a TLS handshake, so a timeout can name that phase. */
  tls?: boolean;
  lookup?: number;
  connect?: number;
  secure?: number;
  headers?: number;
  end?: number;
  cert?: tls.PeerCertificate;
  /**
   * The socket's own error, which undici may report only as "other side closed": a TLS alert
   * after the handshake (TLS 1.3 servers refuse a missing client certificate there) names the cause.
   */
  socketError?: NodeJS.ErrnoException;
}

/** The request one run sends: the URL without its credentials, which travel as a header. */
interface Target {
  url: URL;
  /** `authorization` from the URL's `user:password@`, unless the definition sets its own. */
  auth: Record<string, string>;
}

export const http = defineProber({
  schema,
  report: {
    target: (spec) => urlAsWritten(spec.url),
    latency: true,
    endpoint: (spec) => ({
      url: spec.url,
      redirectsToHttps: spec.expect.httpsRedirect,
      latencyBound: spec.expect.maxLatency !== undefined,
    }),
  },
  values: (spec) => [
    'status',
    'latency_ms',
    'dns_ms',
    'connect_ms',
    'ttfb_ms',
    'body_bytes',
    ...(spec.url.startsWith('https:') ? ['tls_ms', 'tls_days_remaining'] : []),
    ...Object.keys(spec.extract),
  ],
  check(spec) {
    const problems: SpecProblem[] = [];
    const statuses = Array.isArray(spec.expect.status) ? spec.expect.status : [spec.expect.status];
    for (const s of statuses) {
      if (s < 100 || s > 599) problems.push({ path: 'expect.status', message: `expected HTTP status codes 100-599, got ${s}` });
    }
    if ((spec.method === 'GET' || spec.method === 'HEAD') && spec.body !== undefined) {
      problems.push({ path: 'body', message: `expected no body with method ${spec.method}` });
    }
    const credentials = credentialsProblem(spec.url);
    if (credentials !== undefined) problems.push({ path: 'url', message: credentials });
    const ca = caProblem(spec.ca);
    if (ca) problems.push(ca);
    return problems;
  },
  async probe(spec, ctx) {
    const ownAuth = Object.keys(spec.headers).some((k) => k.toLowerCase() === 'authorization');
    const target: Target = { url: withoutCredentials(spec.url), auth: ownAuth ? {} : credentialsHeader(spec.url) };
    if (spec.expect.httpsRedirect && target.url.protocol === 'http:') return checkRedirect(target, spec, ctx);

    const main = await checkResponse(target, spec, ctx);
    if (!main.ok || !spec.expect.httpsRedirect) return main;
    const twin = new URL(target.url);
    twin.protocol = 'http:';
    twin.port = '';
    // The password was written for the https:// URL: it does not go over plain HTTP to the twin.
    const redirect = await checkRedirect({ url: twin, auth: {} }, spec, ctx);
    return redirect.ok ? main : { ...redirect, values: { ...main.values, ...redirect.values } };
  },
});

async function checkResponse(target: Target, spec: HttpSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const phases: Phases = { start: ctx.clock.now() };
  const outcome = await send(target, spec, ctx, phases, spec.maxBodySize);
  const values = phaseValues(phases, ctx);
  if ('failure' in outcome) return { ok: false, ...outcome.failure, values: withStatus(values, outcome.status) };

  const { status, body, contentType } = outcome;
  const excerpt = (t: string) =>
    `${shortText(t)}${outcome.undecoded === undefined ? '' : ` (Content-Encoding ${outcome.undecoded}, which vigil does not decode)`}`;
  values.status = status;
  values.body_bytes = outcome.received;
  const details: Record<string, unknown> = {};

  const expected = Array.isArray(spec.expect.status) ? spec.expect.status : [spec.expect.status];
  const text = body.toString('utf8');
  // Parsed only when something reads it: most health probes judge the status alone.
  let parsed: { json: unknown } | undefined;
  const jsonBody = () => {
    parsed ??= { json: parseJson(text, contentType) };
    return parsed.json;
  };

  if (!expected.includes(status)) {
    const json = jsonBody();
    const failing = json === undefined ? [] : failingDependencies(json);
    if (failing.length > 0) details.failingDependencies = failing;
    const reason = failing.length > 0 ? `: ${failing.map((d) => `${d.name} ${d.status}`).join(', ')}` : '';
    const want = expected.length === 1 ? `${expected[0]}` : `one of ${expected.join(', ')}`;
    return {
      ok: false,
      code: 'HTTP_STATUS',
      message: `${statusLine(status)}${reason} (expected ${want})`,
      values,
      details,
    };
  }

  const json = Object.keys(spec.extract).length > 0 || spec.expect.json !== undefined ? jsonBody() : undefined;
  if (json !== undefined) {
    for (const [name, path] of Object.entries(spec.extract)) {
      const v = lookup(json, path);
      const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
      if (typeof n === 'number' && Number.isFinite(n)) values[name] = n;
    }
  }
  const missing = Object.keys(spec.extract).filter((k) => !(k in values));
  if (missing.length > 0) {
    const what = json === undefined ? 'the body is not JSON' : `no number at ${missing.map((k) => spec.extract[k]).join(', ')}`;
    return { ok: false, code: 'ASSERTION', message: `cannot extract ${missing.join(', ')}: ${what}`, values };
  }

  if (spec.expect.maxLatency !== undefined && values.latency_ms !== undefined) {
    const limit = ms(spec.expect.maxLatency);
    if (values.latency_ms > limit) {
      return {
        ok: false,
        code: 'ASSERTION',
        message: `slow: answered in ${formatDuration(values.latency_ms)}, limit ${formatDuration(limit)}`,
        values,
      };
    }
  }
  if (spec.expect.bodyContains !== undefined && !text.includes(spec.expect.bodyContains)) {
    return {
      ok: false,
      code: 'ASSERTION',
      message: `body does not contain ${JSON.stringify(spec.expect.bodyContains)}: ${excerpt(text)}`,
      values,
    };
  }
  for (const [path, want] of Object.entries(spec.expect.json ?? {})) {
    if (json === undefined) return { ok: false, code: 'ASSERTION', message: `body is not JSON: ${excerpt(text)}`, values };
    const got = lookup(json, path);
    if (got !== want) {
      return {
        ok: false,
        code: 'ASSERTION',
        message: `JSON ${path} is ${JSON.stringify(got) ?? 'missing'}, expected ${JSON.stringify(want)}`,
        values,
      };
    }
  }
  return { ok: true, values, ...(phases.cert ? { details: certDetails(phases.cert) } : {}) };
}

async function checkRedirect(target: Target, spec: HttpSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const url = target.url;
  const phases: Phases = { start: ctx.clock.now() };
  const outcome = await send(target, { ...spec, method: 'GET', body: undefined }, ctx, phases, 64 * 1024);
  const values = phaseValues(phases, ctx);
  if ('failure' in outcome) {
    return {
      ok: false,
      ...outcome.failure,
      message: `${url.origin}: ${outcome.failure.message}`,
      values: withStatus(values, outcome.status),
    };
  }
  values.status = outcome.status;
  const location = outcome.location;
  const twin = new URL(url);
  twin.protocol = 'https:';
  const parsed = location === undefined ? undefined : safeUrl(location, url);
  // Whatever credentials a Location carries are not ours to show.
  const to = parsed === undefined ? undefined : withoutCredentials(parsed);
  const good =
    (outcome.status === 301 || outcome.status === 308) &&
    to !== undefined &&
    to.protocol === 'https:' &&
    to.hostname === url.hostname &&
    to.pathname === url.pathname;
  if (good) return { ok: true, values, details: { redirect: to.href } };
  const shown = to?.href ?? location;
  const got = shown === undefined ? statusLine(outcome.status) : `${outcome.status} to ${shown}`;
  return {
    ok: false,
    code: 'ASSERTION',
    message: `${url.href} does not redirect to HTTPS: answered ${got} (expected 301 or 308 to ${twin.origin.replace(/:\d+$/, '')}${url.pathname})`,
    values,
  };
}

type SendOutcome =
  | {
      status: number;
      /** Decoded when the server applied a content coding (gzip, deflate, br). */
      body: Buffer;
      /** Bytes as they came over the wire. */
      received: number;
      /** A content coding left as it came, because vigil cannot decode it. */
      undecoded?: string;
      contentType: string | undefined;
      location: string | undefined;
    }
  | { failure: { code: FailureCode; message: string }; status?: number };

/** One request over a fresh connection, bounded in time (ctx.signal) and in size (limit). */
async function send(target: Target, spec: HttpSpec, ctx: ProbeContext, phases: Phases, limit: number): Promise<SendOutcome> {
  const url = target.url;
  const https = url.protocol === 'https:';
  phases.tls = https;
  const client = new Client(url.origin, {
    pipelining: 0,
    connect: (opts, callback) => {
      const host = opts.hostname.replace(/^\[|\]$/g, '');
      const port = Number(opts.port) || (https ? 443 : 80);
      // Kept apart so the certificate is read off a TLS socket, which only an https target has.
      const secure = https
        ? tls.connect({
            host,
            port,
            servername: isIP(host) ? undefined : host,
            rejectUnauthorized: !spec.insecure,
            ca: trustedCas(spec.ca),
            ALPNProtocols: ['http/1.1'],
          })
        : undefined;
      const socket = secure ?? net.connect({ host, port });
      socket.setNoDelay(true);
      let done = false;
      // undici only acts on a request's signal once the request is on a socket: until then, a
      // connect or TLS handshake that never completes would outlive the deadline (and leak the socket).
      const onAbort = () => finish(ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('aborted'));
      const finish = (err: Error | null) => {
        if (done) return;
        done = true;
        ctx.signal.removeEventListener('abort', onAbort);
        if (err) {
          socket.destroy();
          callback(err, null);
        } else callback(null, socket);
      };
      socket.once('lookup', () => {
        phases.lookup = ctx.clock.now();
      });
      socket.once('connect', () => {
        phases.connect = ctx.clock.now();
        if (!https) finish(null);
      });
      secure?.once('secureConnect', () => {
        phases.secure = ctx.clock.now();
        phases.cert = secure.getPeerCertificate(true);
        finish(null);
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        phases.socketError ??= err;
        finish(err);
      });
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener('abort', onAbort, { once: true });
    },
  });

  try {
    const res = await client.request({
      path: `${url.pathname}${url.search}`,
      method: spec.method,
      headers: { ...target.auth, ...withUserAgent(spec.headers) },
      body: spec.body,
      signal: ctx.signal,
    });
    phases.headers = ctx.clock.now();
    const header = (name: string) => {
      const v = res.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    // Several Content-Encoding fields are one list, in the order the codings were applied.
    const encoding = [res.headers['content-encoding'] ?? []].flat().join(', ');
    const read = await readBody(res.body, encoding, limit);
    phases.end = ctx.clock.now();
    if ('failure' in read) {
      const { code, message } = read.failure;
      return { status: res.statusCode, failure: { code, message: `${statusLine(res.statusCode)}, ${message}` } };
    }
    return {
      status: res.statusCode,
      body: read.body,
      received: read.received,
      ...(read.undecoded === undefined ? {} : { undecoded: read.undecoded }),
      contentType: header('content-type'),
      location: header('location'),
    };
  } catch (err) {
    return { failure: await classify(err, target, spec, ctx, phases) };
  } finally {
    // Our own reason: undici would otherwise build a ClientDestroyedError, stack trace and all, per run.
    client.destroy(FINISHED).catch(() => {});
  }
}

type BodyOutcome = { body: Buffer; received: number; undecoded?: string } | { failure: { code: FailureCode; message: string } };

/** A body too large, in the words of the failure message. */
class TooLarge extends Error {}

/**
 * Reads a body, decoding its content codings as it streams (zlib works off the event loop), and
 * stops as soon as either the bytes received or the bytes decoded pass `limit`: a small gzip
 * bomb ends as BODY_TOO_LARGE after `limit` bytes of output, not after all of them.
 */
async function readBody(body: Readable, encoding: string | undefined, limit: number): Promise<BodyOutcome> {
  const codings = (encoding ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  const undecoded = codings.find((c) => !Object.hasOwn(DECODERS, c)) ?? (codings.length > MAX_CODINGS ? codings.join(', ') : undefined);
  // Codings are listed in the order applied, so they come off last first.
  const decoders = undecoded === undefined ? [...codings].reverse().flatMap((c) => DECODERS[c]?.() ?? []) : [];
  let decodeError: unknown;
  for (const d of decoders) d.once('error', (err) => (decodeError ??= err));
  const raise = '(raise maxBodySize if this is expected)';
  let received = 0;
  let size = 0;
  const chunks: Buffer[] = [];
  async function* count(source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      received += chunk.length;
      if (received > limit) throw new TooLarge(`body larger than the ${formatBytes(limit)} limit ${raise}`);
      yield chunk;
    }
  }
  async function collect(source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      size += chunk.length;
      if (size > limit)
        throw new TooLarge(`body larger than the ${formatBytes(limit)} limit once decoded from ${codings.join(', ')} ${raise}`);
      chunks.push(chunk);
    }
  }
  try {
    // pipeline destroys every stage, the response body included, as soon as one fails.
    await (pipeline as (...stages: unknown[]) => Promise<void>)(body, count, ...decoders, collect);
  } catch (err) {
    if (err instanceof TooLarge) return { failure: { code: 'BODY_TOO_LARGE', message: err.message } };
    // An empty body (a HEAD, a 204) is no gzip stream, and no error either.
    if (decodeError !== undefined && received === 0) return { body: Buffer.alloc(0), received };
    if (decodeError !== undefined) {
      const why = messageOf(decodeError);
      return { failure: { code: 'PROTOCOL', message: `body is not valid ${codings.join(', ')} as its Content-Encoding says (${why})` } };
    }
    throw err;
  }
  return { body: Buffer.concat(chunks, size), received, ...(undecoded === undefined ? {} : { undecoded }) };
}

/** Maps a thrown error to a failure code and a message that says which phase failed. */
async function classify(
  err: unknown,
  target: Target,
  spec: HttpSpec,
  ctx: ProbeContext,
  phases: Phases,
): Promise<{ code: FailureCode; message: string }> {
  // undici reports a peer that hung up after a TLS alert as "other side closed"; the alert is the cause.
  const closed = codeOf(err) === 'UND_ERR_SOCKET' && phases.socketError !== undefined;
  const e: unknown = closed ? phases.socketError : err;
  const code = codeOf(e) || codeOf(fieldOf(e, 'cause'));
  const text = messageOf(e);
  const name = fieldOf(e, 'name');
  if (ctx.signal.aborted || name === 'AbortError' || code === 'UND_ERR_ABORTED' || code.endsWith('_TIMEOUT')) {
    const waited = formatDuration(ctx.clock.now() - phases.start);
    const where =
      phases.headers !== undefined
        ? 'reading the body'
        : phases.secure !== undefined || (phases.connect !== undefined && !phases.tls)
          ? 'waiting for response headers'
          : phases.connect !== undefined
            ? 'in the TLS handshake'
            : 'connecting';
    return { code: 'TIMEOUT', message: `timed out after ${waited} ${where}` };
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NODATA') {
    return { code: 'DNS', message: `DNS lookup failed: ${fieldOf(e, 'hostname') ?? ''} ${code}`.replace(/\s+/g, ' ') };
  }
  if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EADDRNOTAVAIL'].includes(code)) {
    const connected = phases.connect !== undefined;
    return {
      code: 'CONNECT',
      message: connected
        ? `connection reset by peer (${code})`
        : `cannot connect: ${code} ${fieldOf(e, 'address') ?? ''}:${fieldOf(e, 'port') ?? ''}`.trim(),
    };
  }
  if (name === 'HTTPParserError' || code.startsWith('HPE_')) {
    // undici's text is "Response does not match the HTTP/1.1 protocol (<why>)"; what the peer sent says more.
    const reason = /\(([^)]+)\)\s*$/.exec(text)?.[1] ?? text;
    const data = fieldOf(e, 'data');
    const got = typeof data === 'string' && data.trim() !== '' ? `, got ${JSON.stringify(data.trim().slice(0, 60))}` : '';
    return { code: 'PROTOCOL', message: `invalid HTTP response: ${reason}${got}` };
  }
  const cause = alertCause(code, CLIENT_CERT);
  if (cause !== undefined) return { code: 'TLS', message: `TLS handshake with ${endpoint(target.url)} failed: ${cause}` };
  if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') return alpnFailure(target, spec, ctx);
  if (code === 'CERT_HAS_EXPIRED') {
    // OpenSSL's refusal drops the certificate; a second look fetches it, to say by how much and to
    // report tls_days_remaining, phrased from the same count so the words and the value agree.
    const cert = (await peek(target, spec, ctx, ['http/1.1'])).cert;
    phases.cert ??= cert;
    const expiry = cert === undefined ? undefined : earliestExpiry(cert);
    const now = ctx.clock.now();
    if (cert !== undefined && expiry !== undefined && expiry <= now) {
      const which = Date.parse(cert.valid_to) === expiry ? 'the certificate' : 'a certificate in the chain';
      return {
        code: 'TLS',
        message: `TLS handshake failed: ${which} for ${target.url.hostname} ${expiryPhrase(expiry, now)}, on ${new Date(expiry).toISOString().slice(0, 10)} (${code})`,
      };
    }
  }
  if (/^(ERR_TLS|ERR_SSL|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_)/.test(code) || /certificate|SSL|TLS/.test(text)) {
    return { code: 'TLS', message: `TLS handshake failed: ${code ? `${code}: ` : ''}${openSslReason(text)}` };
  }
  if (code === 'UND_ERR_SOCKET' || code === 'UND_ERR_INFO' || /parse|Parse/.test(text)) {
    return { code: 'PROTOCOL', message: `invalid HTTP response: ${text}` };
  }
  return { code: 'CONNECT', message: `request failed: ${code ? `${code}: ` : ''}${text}` };
}

/**
 * The server refused every protocol vigil offered in ALPN (`http/1.1`). One more handshake offering
 * only `h2` tells an HTTP/2-only server apart from one that speaks something else entirely.
 */
async function alpnFailure(target: Target, spec: HttpSpec, ctx: ProbeContext): Promise<{ code: FailureCode; message: string }> {
  const where = endpoint(target.url);
  const { alpn } = await peek(target, spec, ctx, ['h2']);
  return alpn === 'h2'
    ? {
        code: 'PROTOCOL',
        message: `${where} speaks only HTTP/2 (ALPN h2) and refuses HTTP/1.1, which vigil's http probe uses: allow HTTP/1.1 on the server, or probe it with a tls probe`,
      }
    : { code: 'PROTOCOL', message: `${where} refused HTTP/1.1 in the TLS handshake (ALPN: no application protocol in common)` };
}

/**
 * One more handshake, after a failed one, to learn what the failure hid: the protocol the server
 * picks from `alpn`, and its certificate. Trust is not judged here (the first handshake did), no
 * request is sent, and the run's deadline still bounds it.
 */
function peek(target: Target, spec: HttpSpec, ctx: ProbeContext, alpn: string[]): Promise<{ alpn?: string; cert?: tls.PeerCertificate }> {
  return new Promise((resolve) => {
    if (ctx.signal.aborted) return resolve({});
    const host = target.url.hostname.replace(/^\[|\]$/g, '');
    const socket = tls.connect({
      host,
      port: Number(target.url.port) || 443,
      servername: isIP(host) ? undefined : host,
      rejectUnauthorized: false,
      ca: trustedCas(spec.ca),
      ALPNProtocols: alpn,
    });
    const done = (seen: { alpn?: string; cert?: tls.PeerCertificate }) => {
      ctx.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(seen);
    };
    const onAbort = () => done({});
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate(true);
      done({ ...(socket.alpnProtocol ? { alpn: socket.alpnProtocol } : {}), ...(cert?.raw === undefined ? {} : { cert }) });
    });
    socket.on('error', () => done({}));
  });
}

/** `host:port`, the port spelled out even when it is the scheme's default, as the tls probe says it. */
function endpoint(url: URL): string {
  return url.port === '' ? `${url.host}:${url.protocol === 'https:' ? 443 : 80}` : url.host;
}

/** OpenSSL's reason phrase (`certificate has expired`), without the error-stack noise around it. */
function openSslReason(text: string): string {
  const m = /SSL routines:[^:]*:([^:]+)/.exec(text);
  return (m?.[1] ?? text).trim();
}

function withStatus(values: Record<string, number>, status: number | undefined): Record<string, number> {
  return status === undefined ? values : { ...values, status };
}

/** The definition's headers, with vigil's User-Agent unless they set one (in any case): two would reach the server. */
function withUserAgent(headers: Record<string, string>): Record<string, string> {
  const own = Object.keys(headers).some((k) => k.toLowerCase() === 'user-agent');
  return own ? headers : { 'user-agent': 'vigil/0.1', ...headers };
}

function phaseValues(p: Phases, ctx: ProbeContext): Record<string, number> {
  const end = p.end ?? ctx.clock.now();
  const connectStart = p.lookup ?? p.start;
  const values: Record<string, number> = {
    latency_ms: end - p.start,
    dns_ms: (p.lookup ?? p.start) - p.start,
  };
  if (p.connect !== undefined) values.connect_ms = p.connect - connectStart;
  if (p.secure !== undefined && p.connect !== undefined) values.tls_ms = p.secure - p.connect;
  if (p.headers !== undefined) values.ttfb_ms = p.headers - (p.secure ?? p.connect ?? p.start);
  const expiry = p.cert === undefined ? undefined : earliestExpiry(p.cert);
  if (expiry !== undefined) values.tls_days_remaining = daysRemaining(expiry, ctx.clock.now());
  return values;
}

function certDetails(cert: tls.PeerCertificate): Record<string, unknown> {
  return { certificate: { subject: cert.subject?.CN, issuer: cert.issuer?.CN, notAfter: cert.valid_to } };
}

const OK_STATES = new Set(['ok', 'up', 'pass', 'passed', 'healthy', 'green', 'true', 'available', 'operational']);
/** Words that, in a flat document, mark a field as a dependency's state rather than a version, a region or a message. */
const FAILING_STATES = new Set([
  'down',
  'fail',
  'failed',
  'failing',
  'failure',
  'error',
  'critical',
  'unhealthy',
  'degraded',
  'warn',
  'warning',
  'red',
  'yellow',
  'unavailable',
  'unreachable',
  'out_of_service',
  'false',
]);

/**
 * Names the failing dependencies in a JSON health document. Understands the common shapes:
 * `{checks: {db: "ok", cache: "down"}}`, Spring's `{components: {db: {status: "UP"}}}`,
 * the IETF draft's `{checks: {"db:ping": [{status: "fail"}]}}`, and a flat `{db: "ok"}`.
 */
export function failingDependencies(doc: unknown): Array<{ name: string; status: string }> {
  if (!isJsonObject(doc)) return [];
  const container = ['checks', 'components', 'details', 'dependencies', 'services'].map((k) => doc[k]).find(isJsonObject);
  const entries = Object.entries(container ?? doc).filter(([k]) => container !== undefined || k !== 'status');
  const failing: Array<{ name: string; status: string }> = [];
  for (const [name, v] of entries) {
    const status = stateOf(v);
    if (status === undefined || OK_STATES.has(status.toLowerCase())) continue;
    if (container === undefined && typeof v === 'string' && !FAILING_STATES.has(status.toLowerCase())) continue;
    failing.push({ name, status });
  }
  return failing;
}

function stateOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) {
    const states = v.map(stateOf).filter((s): s is string => s !== undefined);
    return states.find((s) => !OK_STATES.has(s.toLowerCase())) ?? states[0];
  }
  if (isJsonObject(v)) {
    const s = v.status ?? v.state ?? v.healthy;
    return s === undefined ? undefined : stateOf(s);
  }
  return undefined;
}

function parseJson(text: string, contentType: string | undefined): unknown {
  const t = text.trimStart();
  if (!(contentType?.includes('json') || t.startsWith('{') || t.startsWith('['))) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Reads a dotted path (`checks.db.status`, `items.0.id`) from parsed JSON. */
export function lookup(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const part of path.replace(/^\$\.?/, '').split('.')) {
    if (part === '') continue;
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = fieldOf(cur, part);
  }
  return cur;
}

function statusLine(status: number): string {
  const text = STATUS_TEXT[status];
  return text ? `${status} ${text}` : `HTTP ${status}`;
}

function shortText(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 120 ? `${JSON.stringify(oneLine.slice(0, 120))}…` : JSON.stringify(oneLine);
}

function formatBytes(n: number): string {
  if (n >= 1_048_576 && n % 1_048_576 === 0) return `${n / 1_048_576} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

function safeUrl(text: string, base: URL): URL | undefined {
  try {
    return new URL(text, base);
  } catch {
    return undefined;
  }
}
