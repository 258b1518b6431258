import dns from 'node:dns';
import { readFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import net, { isIP } from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { type Static, Type } from '@sinclair/typebox';
import { Client, ProxyAgent } from 'undici';
import { untilAborted } from '../lib/abort.js';
import { formatDuration, ms } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { fieldOf, isJsonObject } from '../lib/fields.js';
import { Duration } from '../lib/schema.js';
import { alertCause, caProblem, clientCertProblems, daysRemaining, earliestExpiry, expiryPhrase, trustedCas } from './tls-common.js';
import { defineProber, type FailureCode, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';
import { credentialsHeader, credentialsProblem, shownUrl, urlAsWritten, withoutCredentials } from './url-credentials.js';

const ValueName = Type.String({ pattern: '^[a-z_][a-z0-9_]*$', expected: 'a value name in snake_case' });
const StatusClass = Type.String({ pattern: '^[1-5]xx$' });
const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]);
/** One text or a list of them: `bodyContains: ok` or `bodyContains: [ok, ready]`. */
const Texts = (expected: string) =>
  Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], { expected });
/** A comparison of the value at a JSON path; several in one object must all hold. */
const JsonComparison = Type.Object(
  {
    eq: Type.Optional(Scalar),
    lt: Type.Optional(Type.Number()),
    lte: Type.Optional(Type.Number()),
    gt: Type.Optional(Type.Number()),
    gte: Type.Optional(Type.Number()),
    in: Type.Optional(Type.Array(Scalar, { minItems: 1 })),
    exists: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);
const HeaderCheck = Type.Object(
  {
    matches: Type.Optional(Type.String({ minLength: 1 })),
    notMatches: Type.Optional(Type.String({ minLength: 1 })),
    /** A missing header passes (default false: a missing header fails the rule). */
    allowMissing: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, expected: 'an object with matches, notMatches and/or allowMissing' },
);
const HTTP_VERSIONS = ['HTTP/1.1', 'HTTP/2'] as const;
type HttpVersion = (typeof HTTP_VERSIONS)[number];

const schema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// URL' }),
    method: Type.Union(
      (['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const).map((m) => Type.Literal(m)),
      { default: 'GET', expected: 'one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' },
    ),
    headers: Type.Record(Type.String(), Type.String(), { default: {} }),
    body: Type.Optional(Type.String()),
    /** A file whose content is the request body, relative to the probes folder; read at each run. */
    bodyFile: Type.Optional(Type.String({ minLength: 1, expected: 'a file path' })),
    /** Responses larger than this, as received or once decoded, fail with BODY_TOO_LARGE; the read stops there. */
    maxBodySize: Type.Integer({ minimum: 1, default: 1_048_576, expected: 'a size in bytes' }),
    /** Skip certificate verification (the TLS failure is then not a failure). */
    insecure: Type.Boolean({ default: false }),
    /** Extra trusted CA certificates in PEM, e.g. `${file:/etc/vigil/ca.pem}`. */
    ca: Type.Optional(Type.String()),
    /** A client certificate (PEM) offered to servers that ask for one, with its `key`. */
    cert: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of a certificate' })),
    key: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of a private key' })),
    /** Offer HTTP/2 in ALPN as well as HTTP/1.1 (https:// only). */
    http2: Type.Boolean({ default: false }),
    /** Redirects followed before the answer is judged; 0 judges the first answer. */
    followRedirects: Type.Integer({ minimum: 0, maximum: 20, default: 0, expected: 'a number of redirects from 0 to 20' }),
    /** Ask for this content coding and fail an answer that does not use it. */
    compression: Type.Optional(
      Type.Union(
        (['gzip', 'br', 'deflate', 'identity'] as const).map((c) => Type.Literal(c)),
        { expected: 'one of gzip, br, deflate, identity' },
      ),
    ),
    /** An http:// proxy the request goes through (CONNECT); `user:password@` in it is a secret. */
    proxy: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// proxy URL' })),
    /** Which address family to connect over; `auto` prefers IPv6 and falls back to IPv4. */
    ipProtocol: Type.Optional(
      Type.Union(
        (['ip4', 'ip6', 'auto'] as const).map((p) => Type.Literal(p)),
        { expected: 'one of ip4, ip6, auto' },
      ),
    ),
    expect: Type.Object(
      {
        status: Type.Union(
          [
            Type.Integer(),
            StatusClass,
            Type.Array(Type.Union([Type.Integer(), StatusClass], { expected: 'a status code or a class like "2xx"' }), { minItems: 1 }),
          ],
          {
            default: '2xx',
            expected: 'a status code, a class like "2xx", or a list of them',
          },
        ),
        /** The HTTP versions an answer may come in. */
        httpVersions: Type.Optional(
          Type.Array(Type.Union(HTTP_VERSIONS.map((v) => Type.Literal(v))), { minItems: 1, expected: 'a list of HTTP/1.1 and HTTP/2' }),
        ),
        maxLatency: Type.Optional(Duration()),
        bodyContains: Type.Optional(Texts('a text or a list of texts the body must all contain')),
        bodyNotContains: Type.Optional(Texts('a text or a list of texts the body must not contain')),
        bodyMatches: Type.Optional(Texts('a regular expression or a list of them')),
        bodyNotMatches: Type.Optional(Texts('a regular expression or a list of them')),
        /** Response header name (any case) → regular expressions its values must match or not. */
        headers: Type.Optional(Type.Record(Type.String({ minLength: 1 }), HeaderCheck)),
        /** Dotted JSON path → the value it must equal, or a comparison (`{ lt: 200 }`, `{ in: [UP, ok] }`, `{ exists: true }`). */
        json: Type.Optional(
          Type.Record(Type.String(), Type.Union([Scalar, JsonComparison]), {
            expected: 'a map of JSON paths to a value or a comparison (eq, lt, lte, gt, gte, in, exists)',
          }),
        ),
        /** The final answer must have come over TLS. */
        tls: Type.Boolean({ default: false }),
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
/** What vigil says of the client certificate it offered, in a TLS alert's message. */
const NO_CLIENT_CERT = 'the definition sets no cert';
const CLIENT_CERT = 'vigil sent the one in cert, which the server did not accept';

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
  /** The protocol the server picked in ALPN (`h2`, `http/1.1`), for a TLS connection. */
  alpn?: string;
  /**
   * The socket's own error, which undici may report only as "other side closed": a TLS alert
   * after the handshake (TLS 1.3 servers refuse a missing client certificate there) names the cause.
   */
  socketError?: NodeJS.ErrnoException;
}

/** One request of a run: the URL without its credentials, which travel as a header. */
interface Target {
  url: URL;
  /** `authorization` from the URL's `user:password@`, unless the definition sets its own. */
  auth: Record<string, string>;
  method: HttpSpec['method'];
  body: string | undefined;
  /** A redirect led to another host: the definition's own credentials and cookies stay behind, as Go's client does. */
  foreign?: boolean;
  /** The `cookie` header the run's jar holds for this host, after a redirect set one. */
  cookie?: string;
  /** The IP address connected to instead of resolving the URL's host (one instance behind a balancer); Host and SNI stay the URL's. */
  address?: string;
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
    ...(spec.followRedirects > 0 ? ['redirects'] : []),
    ...(reportsVersion(spec) ? ['http_version'] : []),
    ...Object.keys(spec.extract),
  ],
  check(spec) {
    const problems: SpecProblem[] = [];
    for (const s of [spec.expect.status].flat()) {
      if (typeof s === 'number' && (s < 100 || s > 599)) {
        problems.push({ path: 'expect.status', message: `expected HTTP status codes 100-599 or a class like "2xx", got ${s}` });
      }
    }
    if ((spec.method === 'GET' || spec.method === 'HEAD') && (spec.body !== undefined || spec.bodyFile !== undefined)) {
      problems.push({ path: spec.body !== undefined ? 'body' : 'bodyFile', message: `expected no body with method ${spec.method}` });
    }
    if (spec.body !== undefined && spec.bodyFile !== undefined) {
      problems.push({ path: 'bodyFile', message: 'expected either body or bodyFile, not both' });
    }
    const credentials = credentialsProblem(spec.url);
    if (credentials !== undefined) problems.push({ path: 'url', message: credentials });
    const ca = caProblem(spec.ca);
    if (ca) problems.push(ca);
    problems.push(...clientCertProblems(spec.cert, spec.key));
    const https = spec.url.startsWith('https:');
    if (spec.http2 && !https)
      problems.push({ path: 'http2', message: 'expected an https:// URL: HTTP/2 is negotiated in the TLS handshake' });
    if (spec.expect.httpVersions?.includes('HTTP/2') && !spec.http2) {
      problems.push({ path: 'expect.httpVersions', message: 'expected http2: true for an HTTP/2 answer (vigil offers HTTP/2 only then)' });
    }
    if (spec.proxy !== undefined) {
      const proxyCredentials = credentialsProblem(spec.proxy);
      if (proxyCredentials !== undefined) problems.push({ path: 'proxy', message: proxyCredentials });
      if (spec.http2) problems.push({ path: 'http2', message: 'expected no http2 with a proxy: vigil speaks HTTP/1.1 through a tunnel' });
      if (spec.ipProtocol !== undefined) {
        problems.push({
          path: 'ipProtocol',
          message: 'expected no ipProtocol with a proxy: the proxy resolves and connects to the target',
        });
      }
    }
    // Parsed only when a family is asked for: a URL parse a definition is ~40 ms of a 60,000-probe start.
    if (spec.ipProtocol === 'ip4' || spec.ipProtocol === 'ip6') {
      const literal = safeUrl(spec.url)?.hostname.replace(/^\[|\]$/g, '');
      const family = literal === undefined ? 0 : isIP(literal);
      if ((spec.ipProtocol === 'ip4' && family === 6) || (spec.ipProtocol === 'ip6' && family === 4)) {
        problems.push({
          path: 'ipProtocol',
          message: `expected an address of the ${spec.ipProtocol} family: the URL's host is ${literal}`,
        });
      }
    }
    for (const field of ['bodyMatches', 'bodyNotMatches'] as const) {
      const patterns = spec.expect[field];
      const listed = Array.isArray(patterns);
      [patterns ?? []].flat().forEach((p, i) => {
        const problem = patternProblem(p);
        if (problem) problems.push({ path: listed ? `expect.${field}.${i}` : `expect.${field}`, message: problem });
      });
    }
    for (const [name, rule] of Object.entries(spec.expect.headers ?? {})) {
      if (rule.matches === undefined && rule.notMatches === undefined) {
        problems.push({ path: `expect.headers.${name}`, message: 'expected matches or notMatches' });
      }
      for (const field of ['matches', 'notMatches'] as const) {
        const problem = rule[field] === undefined ? undefined : patternProblem(rule[field]);
        if (problem) problems.push({ path: `expect.headers.${name}.${field}`, message: problem });
      }
    }
    return problems;
  },
  probe: (spec, ctx) => checkHttp(spec, ctx),
});

/** An answer as a caller of checkHttp sees it before it is judged. */
export interface HttpAnswer {
  status: number;
  /** Lower-case names, as undici keys them. */
  headers: IncomingHttpHeaders;
  /** The body, decoded from its content coding, as UTF-8 text. */
  text: string;
}

/** What a caller running several requests as one journey adds to a run (the multistep kind). */
export interface CheckOptions {
  /** Cookies kept across runs: sent with every request, filled from every answer (not only a redirect's). */
  jar?: CookieJar;
  /** Sees the final answer (after redirects) before it is judged: where a journey extracts its values. */
  onAnswer?(answer: HttpAnswer): void;
}

/**
 * One run of an http definition: the request, its redirects and the whole `expect` block judged.
 * With `address`, every request to the URL's host connects to that IP address instead of resolving
 * the host, still sending its Host header and SNI: how a balancer's instances are checked one by one.
 */
export async function checkHttp(spec: HttpSpec, ctx: ProbeContext, address?: string, options: CheckOptions = {}): Promise<ProbeResult> {
  const rules = rulesOf(spec);
  let body = spec.body;
  if (spec.bodyFile !== undefined) {
    const file = path.resolve(ctx.probesDir, spec.bodyFile);
    try {
      body = await readFile(file, { encoding: 'utf8', signal: ctx.signal });
    } catch (err) {
      const why = codeOf(err) === 'ENOENT' ? 'it does not exist' : messageOf(err);
      return {
        ok: false,
        code: 'CONFIG',
        message: `cannot read bodyFile ${file}: ${why} (bodyFile is relative to ${ctx.probesDir})`,
        values: {},
      };
    }
  }
  const target: Target = {
    url: new URL(rules.href ?? spec.url),
    auth: rules.auth,
    method: spec.method,
    body,
    ...(address === undefined ? {} : { address }),
  };
  if (spec.expect.httpsRedirect && target.url.protocol === 'http:') return checkRedirect(target, spec, ctx);

  const main = await checkResponse(target, spec, ctx, options);
  if (!main.ok || !spec.expect.httpsRedirect) return main;
  const twin = new URL(target.url);
  twin.protocol = 'http:';
  twin.port = '';
  // The password was written for the https:// URL: it does not go over plain HTTP to the twin.
  const redirect = await checkRedirect({ ...target, url: twin, auth: {} }, spec, ctx);
  return redirect.ok ? main : { ...redirect, values: { ...main.values, ...redirect.values } };
}

/** The statuses a client follows (RFC 9110 §15.4); 300 and 304 are answers, not directions. */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function reportsVersion(spec: HttpSpec): boolean {
  return spec.http2 || spec.expect.httpVersions !== undefined;
}

async function checkResponse(target: Target, spec: HttpSpec, ctx: ProbeContext, options: CheckOptions): Promise<ProbeResult> {
  const runStart = ctx.clock.now();
  const rules = rulesOf(spec);
  let jar = options.jar;
  const held = jar?.header(target.url);
  let hop = held === undefined ? target : { ...target, cookie: held };
  let redirects = 0;
  let phases: Phases;
  let outcome: SendOutcome;
  for (;;) {
    phases = { start: ctx.clock.now() };
    outcome = await send(hop, spec, ctx, phases, spec.maxBodySize);
    // Every answer's cookies count: a login sets its session on a 200, and a shared jar keeps it for the next request.
    if (!('failure' in outcome) && outcome.setCookie !== undefined) {
      jar ??= new CookieJar();
      jar.store(hop.url, outcome.setCookie);
    }
    if ('failure' in outcome || spec.followRedirects === 0 || !REDIRECTS.has(outcome.status)) break;
    const next = outcome.location === undefined ? undefined : safeUrl(outcome.location, hop.url);
    if (next === undefined || (next.protocol !== 'http:' && next.protocol !== 'https:')) break;
    if (redirects === spec.followRedirects) {
      const values = phaseValues(phases, ctx, runStart);
      values.status = outcome.status;
      values.redirects = redirects;
      return {
        ok: false,
        code: 'HTTP_STATUS',
        message: `too many redirects: stopped after ${redirects} (followRedirects), ${hop.url.href} answered ${outcome.status} to ${withoutCredentials(next).href}`,
        values,
      };
    }
    hop = nextHop(hop, withoutCredentials(next), outcome.status, target.url, jar);
    redirects++;
  }
  const values = phaseValues(phases, ctx, runStart);
  if (spec.followRedirects > 0) values.redirects = redirects;
  if ('failure' in outcome) {
    const where = redirects > 0 ? `${hop.url.href}: ` : '';
    return { ok: false, ...outcome.failure, message: `${where}${outcome.failure.message}`, values: withStatus(values, outcome.status) };
  }

  const { status, body, contentType } = outcome;
  const excerpt = (t: string) =>
    `${shortText(t)}${outcome.undecoded === undefined ? '' : ` (Content-Encoding ${outcome.undecoded}, which vigil does not decode)`}`;
  values.status = status;
  values.body_bytes = outcome.received;
  if (reportsVersion(spec)) values.http_version = outcome.version === 'HTTP/2' ? 2 : 1.1;
  const details: Record<string, unknown> = {};
  const fail = (message: string): ProbeResult => ({ ok: false, code: 'ASSERTION', message, values });

  const text = body.toString('utf8');
  options.onAnswer?.({ status, headers: outcome.headers, text });
  // Parsed only when something reads it: most health probes judge the status alone.
  let parsed: { json: unknown } | undefined;
  const jsonBody = () => {
    parsed ??= { json: parseJson(text, contentType) };
    return parsed.json;
  };

  if (!statusAccepted(status, spec.expect.status)) {
    const json = jsonBody();
    const failing = json === undefined ? [] : failingDependencies(json);
    if (failing.length > 0) details.failingDependencies = failing;
    const reason = failing.length > 0 ? `: ${failing.map((d) => `${d.name} ${d.status}`).join(', ')}` : '';
    const wanted = [spec.expect.status].flat();
    const want = wanted.length === 1 ? `${wanted[0]}` : `one of ${wanted.join(', ')}`;
    const where = redirects > 0 ? ` from ${hop.url.href} after ${redirects} redirect${redirects === 1 ? '' : 's'}` : '';
    return {
      ok: false,
      code: 'HTTP_STATUS',
      message: `${statusLine(status)}${where}${reason} (expected ${want})`,
      values,
      details,
    };
  }
  if (spec.expect.httpVersions !== undefined && !spec.expect.httpVersions.includes(outcome.version)) {
    return fail(`answered in ${outcome.version} (expected ${spec.expect.httpVersions.join(' or ')})`);
  }
  if (spec.compression !== undefined) {
    const problem = compressionProblem(spec.compression, outcome.encoding);
    if (problem) return fail(problem);
  }
  if (spec.expect.tls && hop.url.protocol !== 'https:') {
    return fail(`the answer came over plain HTTP from ${hop.url.href} (expected TLS)`);
  }
  for (const rule of rules.headers) {
    const problem = headerProblem(rule, outcome.headers[rule.name]);
    if (problem) return fail(problem);
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
    return fail(`cannot extract ${missing.join(', ')}: ${what}`);
  }

  if (spec.expect.maxLatency !== undefined && values.latency_ms !== undefined) {
    const limit = ms(spec.expect.maxLatency);
    if (values.latency_ms > limit) return fail(`slow: answered in ${formatDuration(values.latency_ms)}, limit ${formatDuration(limit)}`);
  }
  for (const want of rules.contains) {
    if (!text.includes(want)) return fail(`body does not contain ${JSON.stringify(want)}: ${excerpt(text)}`);
  }
  for (const unwanted of rules.notContains) {
    if (text.includes(unwanted)) return fail(`body contains ${JSON.stringify(unwanted)}: ${excerpt(around(text, text.indexOf(unwanted)))}`);
  }
  if (rules.matches.length > 0 || rules.notMatches.length > 0) {
    const window = text.length > REGEX_WINDOW ? text.slice(0, REGEX_WINDOW) : text;
    for (const re of rules.matches) {
      if (!re.test(window)) return fail(`body does not match /${re.source}/${re.flags}: ${excerpt(text)}`);
    }
    for (const re of rules.notMatches) {
      const m = re.exec(window);
      if (m) return fail(`body matches /${re.source}/${re.flags}: ${excerpt(around(window, m.index))}`);
    }
  }
  for (const [path, want] of Object.entries(spec.expect.json ?? {})) {
    if (json === undefined) return fail(`body is not JSON: ${excerpt(text)}`);
    const problem = jsonProblem(path, lookup(json, path), want);
    if (problem) return fail(problem);
  }
  return { ok: true, values, ...(phases.cert ? { details: certDetails(phases.cert) } : {}) };
}

/** The next request of a redirect chain, as browsers and Go's client make it. */
function nextHop(from: Target, url: URL, status: number, first: URL, jar: CookieJar | undefined): Target {
  // 303 asks for a GET; 301 and 302 turn a POST into one, as every client has done since HTTP/1.0.
  const toGet = (status === 303 && from.method !== 'HEAD') || ((status === 301 || status === 302) && from.method === 'POST');
  const foreign = url.hostname !== first.hostname;
  const cookie = jar?.header(url);
  return {
    url,
    auth: foreign ? {} : from.auth,
    method: toGet ? 'GET' : from.method,
    body: toGet ? undefined : from.body,
    ...(foreign ? { foreign } : {}),
    ...(cookie === undefined ? {} : { cookie }),
    // The pinned address is the first host's: a redirect to another host resolves it.
    ...(foreign || from.address === undefined ? {} : { address: from.address }),
  };
}

/**
 * The cookies a run's answers set, per host, sent on the next hops to that host: enough for a
 * login redirect chain. Host-only: no Domain sharing, no paths, no expiry; it lives for one run
 * (or one journey of several, when the caller passes its own).
 */
export class CookieJar {
  private readonly hosts = new Map<string, Map<string, string>>();

  store(url: URL, setCookie: string[]): void {
    let cookies = this.hosts.get(url.hostname);
    for (const line of setCookie) {
      const pair = line.split(';', 1)[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      if (cookies === undefined) {
        cookies = new Map();
        this.hosts.set(url.hostname, cookies);
      }
      const name = pair.slice(0, eq).trim();
      // A cookie set to expire now is the server deleting it.
      if (/;\s*max-age=0\s*(;|$)/i.test(line)) cookies.delete(name);
      else cookies.set(name, pair.slice(eq + 1).trim());
    }
  }

  header(url: URL): string | undefined {
    const cookies = this.hosts.get(url.hostname);
    if (cookies === undefined || cookies.size === 0) return undefined;
    return [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

function statusAccepted(status: number, want: HttpSpec['expect']['status']): boolean {
  if (typeof want === 'number') return status === want;
  if (typeof want === 'string') return Math.floor(status / 100) === Number(want[0]);
  return want.some((w) => statusAccepted(status, w));
}

function compressionProblem(asked: NonNullable<HttpSpec['compression']>, encoding: string): string | undefined {
  const codings = encoding
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  const got = codings.length === 0 ? 'uncompressed' : `with Content-Encoding ${codings.join(', ')}`;
  if (asked === 'identity') return codings.length === 0 ? undefined : `asked for identity, the answer came ${got}`;
  const ok = codings.length === 1 && (codings[0] === asked || (asked === 'gzip' && codings[0] === 'x-gzip'));
  return ok ? undefined : `asked for ${asked} (compression), the answer came ${got}`;
}

/** A response header rule, compiled once per definition. */
interface HeaderRule {
  /** Lower case, as undici keys response headers. */
  name: string;
  matches?: RegExp;
  notMatches?: RegExp;
  allowMissing: boolean;
}

/**
 * As blackbox_exporter judges a header that came several times: `notMatches` fails when any value
 * matches; `matches` passes when one does.
 */
function headerProblem(rule: HeaderRule, got: string | string[] | undefined): string | undefined {
  const values = got === undefined ? [] : [got].flat();
  if (values.length === 0) return rule.allowMissing ? undefined : `the answer has no ${rule.name} header`;
  if (rule.notMatches !== undefined) {
    const bad = values.find((v) => rule.notMatches?.test(v));
    if (bad !== undefined) return `header ${rule.name} matches /${rule.notMatches.source}/: ${shortText(bad)}`;
  }
  if (rule.matches !== undefined && !values.some((v) => rule.matches?.test(v))) {
    return `header ${rule.name} does not match /${rule.matches.source}/: ${shortText(values.join(', '))}`;
  }
  return undefined;
}

type JsonExpectation = NonNullable<HttpSpec['expect']['json']>[string];

function jsonProblem(path: string, got: unknown, want: JsonExpectation): string | undefined {
  const shown = JSON.stringify(got) ?? 'missing';
  if (want === null || typeof want !== 'object') {
    return got === want ? undefined : `JSON ${path} is ${shown}, expected ${JSON.stringify(want)}`;
  }
  if (want.exists !== undefined && (got !== undefined) !== want.exists) {
    return want.exists ? `JSON ${path} is missing (expected it to exist)` : `JSON ${path} is ${shown} (expected it not to exist)`;
  }
  if (want.eq !== undefined && got !== want.eq) return `JSON ${path} is ${shown}, expected ${JSON.stringify(want.eq)}`;
  if (want.in !== undefined && !want.in.some((v) => v === got)) {
    return `JSON ${path} is ${shown}, expected one of ${want.in.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  const bounds = [
    ['lt', '<', (n: number, b: number) => n < b],
    ['lte', '<=', (n: number, b: number) => n <= b],
    ['gt', '>', (n: number, b: number) => n > b],
    ['gte', '>=', (n: number, b: number) => n >= b],
  ] as const;
  for (const [key, sign, holds] of bounds) {
    const bound = want[key];
    if (bound === undefined) continue;
    const n = typeof got === 'string' && got.trim() !== '' ? Number(got) : got;
    if (typeof n !== 'number' || !Number.isFinite(n)) return `JSON ${path} is ${shown}, expected a number ${sign} ${bound}`;
    if (!holds(n, bound)) return `JSON ${path} is ${n}, expected ${sign} ${bound}`;
  }
  return undefined;
}

/**
 * How much of a body the regular expressions read: a backtracking pattern that slipped past the
 * load check stays bounded in time on a large body.
 */
const REGEX_WINDOW = 256 * 1024;

/** What one definition's checks compile to, once: a run only looks them up. */
interface Rules {
  contains: readonly string[];
  notContains: readonly string[];
  matches: readonly RegExp[];
  notMatches: readonly RegExp[];
  headers: readonly HeaderRule[];
  /** The request headers every hop sends: the definition's, vigil's User-Agent, Accept-Encoding for `compression`. */
  request: Readonly<Record<string, string>>;
  /** The same, without the definition's credentials, cookies and Host, for a redirect to another host. */
  foreign: Readonly<Record<string, string>>;
  /**
   * The URL requested first, without its credentials, as text: each run parses its own (~1 µs here), so
   * 60,000 probes do not each keep a parsed URL (~250 bytes). Absent where it is the definition's `url`
   * as written, so that such rules are alike across probes.
   */
  href?: string;
  /** `authorization` from the URL's `user:password@`, unless the definition sets its own. */
  auth: Readonly<Record<string, string>>;
  tls: Readonly<tls.ConnectionOptions>;
  /** `http2`: offered in ALPN, and spoken when the server picks it. */
  h2: boolean;
  lookup?: net.LookupFunction;
}

/** Keyed by the (frozen) definition, so a reload's new definition compiles anew and the old one is collected. */
const RULES = new WeakMap<HttpSpec, Rules>();

function rulesOf(spec: HttpSpec): Rules {
  let rules = RULES.get(spec);
  if (rules === undefined) {
    rules = plainRules(compileRules(spec));
    RULES.set(spec, rules);
  }
  return rules;
}

/**
 * Rules that hold nothing of their probe's own (no checks, headers, credentials or TLS material of its
 * own, the URL as written) are one shared frozen object per kind of plain: most probes' are. A copy
 * each, with its URL text, was most of the 11.6 MB the rules held at 60,000 probes in a heap snapshot
 * (the WeakMap's entries, which stay, included).
 */
const PLAIN = new Map<Readonly<tls.ConnectionOptions>, Rules>();

function plainRules(rules: Rules): Rules {
  const plain =
    rules.href === undefined &&
    rules.auth === NO_HEADERS &&
    rules.request === DEFAULT_REQUEST &&
    rules.foreign === DEFAULT_REQUEST &&
    rules.contains === NONE &&
    rules.notContains === NONE &&
    rules.matches === NONE &&
    rules.notMatches === NONE &&
    rules.headers === NONE &&
    rules.lookup === undefined &&
    // One default TLS object per (insecure, http2): with it, `h2` is alike too.
    [...DEFAULT_TLS.values()].includes(rules.tls);
  if (!plain) return rules;
  let shared = PLAIN.get(rules.tls);
  if (shared === undefined) {
    shared = Object.freeze(rules);
    PLAIN.set(rules.tls, shared);
  }
  return shared;
}

/**
 * What most probes' rules hold alike (no body checks, no headers of their own, default TLS) is one
 * shared frozen copy: a copy per probe was ~1 KB each, 60 MB at 60,000 probes.
 */
const NONE: readonly never[] = Object.freeze([]);
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const DEFAULT_REQUEST: Readonly<Record<string, string>> = Object.freeze(withUserAgent({}));
const DEFAULT_TLS = new Map<string, Readonly<tls.ConnectionOptions>>();

function listOf<T>(items: T[]): readonly T[] {
  return items.length === 0 ? NONE : items;
}

function tlsOf(spec: HttpSpec): Readonly<tls.ConnectionOptions> {
  const make = (): tls.ConnectionOptions => ({
    rejectUnauthorized: !spec.insecure,
    ca: trustedCas(spec.ca),
    ALPNProtocols: spec.http2 ? ['h2', 'http/1.1'] : ['http/1.1'],
    ...(spec.cert === undefined ? {} : { cert: spec.cert, key: spec.key }),
  });
  if (spec.ca !== undefined || spec.cert !== undefined) return make();
  const key = `${spec.insecure}|${spec.http2}`;
  let options = DEFAULT_TLS.get(key);
  if (options === undefined) {
    options = Object.freeze(make());
    DEFAULT_TLS.set(key, options);
  }
  return options;
}

function compileRules(spec: HttpSpec): Rules {
  const e = spec.expect;
  const plain = Object.keys(spec.headers).length === 0 && spec.compression === undefined;
  const request = plain ? DEFAULT_REQUEST : withUserAgent(spec.headers);
  if (!plain && spec.compression !== undefined && !Object.keys(request).some((k) => k.toLowerCase() === 'accept-encoding')) {
    request['accept-encoding'] = spec.compression;
  }
  const foreign = plain
    ? DEFAULT_REQUEST
    : Object.fromEntries(Object.entries(request).filter(([k]) => !['authorization', 'cookie', 'host'].includes(k.toLowerCase())));
  const ownAuth = Object.keys(spec.headers).some((k) => k.toLowerCase() === 'authorization');
  const auth = ownAuth ? NO_HEADERS : credentialsHeader(spec.url);
  const href = withoutCredentials(spec.url).href;
  return {
    ...(href === spec.url ? {} : { href }),
    auth: Object.keys(auth).length === 0 ? NO_HEADERS : auth,
    contains: listOf([e.bodyContains ?? []].flat()),
    notContains: listOf([e.bodyNotContains ?? []].flat()),
    matches: listOf([e.bodyMatches ?? []].flat().map(compilePattern)),
    notMatches: listOf([e.bodyNotMatches ?? []].flat().map(compilePattern)),
    headers: listOf(
      Object.entries(e.headers ?? {}).map(([name, r]) => ({
        name: name.toLowerCase(),
        allowMissing: r.allowMissing === true,
        ...(r.matches === undefined ? {} : { matches: compilePattern(r.matches) }),
        ...(r.notMatches === undefined ? {} : { notMatches: compilePattern(r.notMatches) }),
      })),
    ),
    request,
    foreign,
    h2: spec.http2,
    tls: tlsOf(spec),
    ...(spec.ipProtocol === undefined ? {} : { lookup: LOOKUPS[spec.ipProtocol] }),
  };
}

/** `(?i)` at the start, as Go's RE2 writes it, is JavaScript's `i` flag: blackbox patterns carry over. */
function compilePattern(pattern: string): RegExp {
  const insensitive = pattern.startsWith('(?i)');
  return new RegExp(insensitive ? pattern.slice(4) : pattern, insensitive ? 'i' : '');
}

/**
 * Why a pattern cannot be used: it does not compile, or it repeats a group that itself repeats
 * (`(a+)+`, `(\w*)*`, `(x{2,})+`), the shape that backtracks exponentially on a near miss.
 */
export function patternProblem(pattern: string): string | undefined {
  try {
    compilePattern(pattern);
  } catch (err) {
    return `expected a valid regular expression: ${messageOf(err)}`;
  }
  const groups: boolean[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') {
      // A character class: quantifier characters inside it are literals.
      for (i++; i < pattern.length && pattern[i] !== ']'; i++) if (pattern[i] === '\\') i++;
      continue;
    }
    if (c === '(') groups.push(false);
    else if (c === ')') {
      const repeatsInside = groups.pop() ?? false;
      const next = pattern[i + 1];
      const repeated = next === '+' || next === '*' || (next === '{' && /^\{\d*,\d*\}|^\{\d{2,}\}/.test(pattern.slice(i + 1)));
      if (repeatsInside && repeated) {
        return `expected no repeated group that itself repeats (${pattern.slice(0, i + 2)}…): it can backtrack for minutes on a large body`;
      }
      if (repeatsInside && groups.length > 0) groups[groups.length - 1] = true;
    } else if ((c === '+' || c === '*' || c === '{') && groups.length > 0) groups[groups.length - 1] = true;
  }
  return undefined;
}

/** A stretch of text around a match, so the message shows what matched. */
function around(text: string, index: number): string {
  return index <= 40 ? text : `…${text.slice(index - 40)}`;
}

type AnyLookup = (hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => void;
const lookupIn =
  (family: 4 | 6): AnyLookup =>
  (hostname, options, callback) =>
    dns.lookup(hostname, { ...options, family }, callback as never);
/** `auto`: an IPv6 address when the name has one, else an IPv4 one (blackbox_exporter's ip_protocol_fallback). */
const autoLookup: AnyLookup = (hostname, options, callback) =>
  dns.lookup(hostname, { ...options, family: 6 }, ((err: unknown, ...rest: unknown[]) => {
    const none = err !== null || (Array.isArray(rest[0]) && rest[0].length === 0);
    if (none) dns.lookup(hostname, { ...options, family: 4 }, callback as never);
    else callback(null, ...rest);
  }) as never);
const LOOKUPS: Record<NonNullable<HttpSpec['ipProtocol']>, net.LookupFunction> = {
  ip4: lookupIn(4) as unknown as net.LookupFunction,
  ip6: lookupIn(6) as unknown as net.LookupFunction,
  auto: autoLookup as unknown as net.LookupFunction,
};

async function checkRedirect(target: Target, spec: HttpSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const url = target.url;
  const phases: Phases = { start: ctx.clock.now() };
  const outcome = await send({ ...target, method: 'GET', body: undefined }, spec, ctx, phases, 64 * 1024);
  const values = phaseValues(phases, ctx, phases.start);
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
      /** The Content-Encoding fields, joined. */
      encoding: string;
      contentType: string | undefined;
      location: string | undefined;
      setCookie: string[] | undefined;
      headers: IncomingHttpHeaders;
      version: HttpVersion;
    }
  | { failure: { code: FailureCode; message: string }; status?: number };

/** One request over a fresh connection (or a fresh tunnel through `proxy`), bounded in time (ctx.signal) and in size (limit). */
async function send(target: Target, spec: HttpSpec, ctx: ProbeContext, phases: Phases, limit: number): Promise<SendOutcome> {
  const url = target.url;
  const https = url.protocol === 'https:';
  const rules = rulesOf(spec);
  phases.tls = https;
  const dispatcher = spec.proxy === undefined ? directClient(url, rules, ctx, phases, target.address) : proxyAgent(spec.proxy, url, rules);
  const base = target.foreign ? rules.foreign : rules.request;
  const headers = target.cookie === undefined ? { ...target.auth, ...base } : { ...target.auth, ...base, cookie: target.cookie };

  try {
    const send = () =>
      dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: target.method,
        headers,
        body: target.body,
        signal: ctx.signal,
      });
    // undici heeds a request's signal only once the request is on a connection: through a proxy that
    // never answers the CONNECT, that is never. The run's deadline ends the wait here; the caller then
    // destroys the agent, and the tunnel's socket with it.
    const res = spec.proxy === undefined ? await send() : await untilAborted(ctx.signal, send);
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
    const cookies = res.headers['set-cookie'];
    return {
      status: res.statusCode,
      body: read.body,
      received: read.received,
      ...(read.undecoded === undefined ? {} : { undecoded: read.undecoded }),
      encoding,
      contentType: header('content-type'),
      location: header('location'),
      setCookie: cookies === undefined ? undefined : [cookies].flat(),
      headers: res.headers,
      version: phases.alpn === 'h2' ? 'HTTP/2' : 'HTTP/1.1',
    };
  } catch (err) {
    const failure = await classify(err, target, spec, ctx, phases);
    return spec.proxy === undefined
      ? { failure }
      : { failure: { ...failure, message: `via proxy ${shownUrl(spec.proxy)}: ${failure.message}` } };
  } finally {
    // Our own reason: undici would otherwise build a ClientDestroyedError, stack trace and all, per run.
    dispatcher.destroy(FINISHED).catch(() => {});
  }
}

/** A client for one request on a connection of its own, whose phases are read off the socket's events. */
function directClient(url: URL, rules: Rules, ctx: ProbeContext, phases: Phases, address?: string): Client {
  const https = url.protocol === 'https:';
  return new Client(url.origin, {
    pipelining: 0,
    // undici speaks h2 when ALPN picked it, which it can only do when the definition offered it.
    ...(rules.h2 ? { allowH2: true } : {}),
    connect: (opts, callback) => {
      const name = opts.hostname.replace(/^\[|\]$/g, '');
      const host = address ?? name;
      const port = Number(opts.port) || (https ? 443 : 80);
      const lookup = rules.lookup === undefined ? {} : { lookup: rules.lookup };
      // Kept apart so the certificate is read off a TLS socket, which only an https target has.
      const secure = https ? tls.connect({ host, port, servername: isIP(name) ? undefined : name, ...rules.tls, ...lookup }) : undefined;
      const socket = secure ?? net.connect({ host, port, ...lookup });
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
        if (secure.alpnProtocol) phases.alpn = secure.alpnProtocol;
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
}

/**
 * A tunnel (HTTP CONNECT) through the proxy for one request; the proxy's `user:password@` becomes
 * its Proxy-Authorization. Only `latency_ms` and `ttfb_ms` are measured: undici owns the sockets.
 */
function proxyAgent(proxy: string, url: URL, rules: Rules): ProxyAgent {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new ProxyAgent({
    uri: proxy,
    requestTls: { ...rules.tls, ...(isIP(host) ? {} : { servername: host }) },
    proxyTls: { rejectUnauthorized: rules.tls.rejectUnauthorized, ca: rules.tls.ca },
  });
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
  const raise = '(raise maxBodySize if this is expected)';
  if (decoders.length === 0) {
    const read = await readPlain(body, limit, raise);
    return undecoded === undefined || 'failure' in read ? read : { ...read, undecoded };
  }
  let decodeError: unknown;
  for (const d of decoders) d.once('error', (err) => (decodeError ??= err));
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

function ignoreError(): void {}

/**
 * A body with nothing to decode, read straight off its events: stream.pipeline builds an
 * AbortController and aborts it (an AbortError, stack and all) on every call, a cost counted per run
 * at thousands of runs a second. Rejects with the body's error (the deadline's abort) as pipeline did.
 */
function readPlain(body: Readable, limit: number, raise: string): Promise<BodyOutcome> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const settle = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) {
        settle();
        // undici's body answers a destroy with an AbortError event of its own: nobody waits for it now.
        body.on('error', ignoreError);
        body.destroy();
        resolve({ failure: { code: 'BODY_TOO_LARGE', message: `body larger than the ${formatBytes(limit)} limit ${raise}` } });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      settle();
      resolve({ body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received), received });
    };
    const onError = (err: Error) => {
      settle();
      reject(err);
    };
    // Destroyed without an error before its end: cut short, which pipeline reported as a premature close.
    const onClose = () => {
      settle();
      reject(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    if (body.destroyed) {
      reject(body.errored ?? Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
      return;
    }
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
  });
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
  const refused = /^Proxy response \((\d+)\)/.exec(text);
  if (refused && !ctx.signal.aborted)
    return { code: 'CONNECT', message: `the proxy refused the tunnel: answered ${statusLine(Number(refused[1]))}` };
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
  const cause = alertCause(code, spec.cert === undefined ? NO_CLIENT_CERT : CLIENT_CERT);
  if (cause !== undefined) return { code: 'TLS', message: `TLS handshake with ${endpoint(target.url)} failed: ${cause}` };
  if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') return alpnFailure(target, spec, ctx);
  if (code === 'CERT_HAS_EXPIRED') {
    // OpenSSL's refusal drops the certificate; a second look fetches it, to say by how much and to
    // report tls_days_remaining, phrased from the same count so the words and the value agree.
    const cert = (await peek(target, spec, ctx, spec.http2 ? ['h2', 'http/1.1'] : ['http/1.1'])).cert;
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
        message: `${where} speaks only HTTP/2 (ALPN h2) and refuses HTTP/1.1: set http2: true to probe it over HTTP/2`,
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
  return own ? { ...headers } : { 'user-agent': 'vigil/0.1', ...headers };
}

/** The final request's phases; `latency_ms` counts from `runStart`, before any redirect. */
function phaseValues(p: Phases, ctx: ProbeContext, runStart: number): Record<string, number> {
  const end = p.end ?? ctx.clock.now();
  const connectStart = p.lookup ?? p.start;
  const values: Record<string, number> = {
    latency_ms: end - runStart,
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

function safeUrl(text: string, base?: URL): URL | undefined {
  try {
    return new URL(text, base);
  } catch {
    return undefined;
  }
}
