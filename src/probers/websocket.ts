import tls from 'node:tls';
import { type Static, Type } from '@sinclair/typebox';
import type WebSocket from 'ws';
import { formatDuration } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { lazy } from '../lib/lazy.js';
import { connectReason, DNS_ERRORS, TRUST_ERRORS } from './sockets.js';
import { alertCause, caProblem, daysRemaining, earliestExpiry, notTlsHint, tlsErrorReason, trustedCas } from './tls-common.js';
import { defineProber, type FailureCode, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';
import { credentialsHeader, credentialsProblem, shownUrl, urlAsWritten, withoutCredentials } from './url-credentials.js';

/** A larger message fails the run (ws closes with 1009) rather than growing the heap. */
const MAX_MESSAGE_BYTES = 1_048_576;
/** Only this much of a message is matched against `expect`, bounding a slow pattern's work per message. */
const MATCHED_CHARS = 65_536;
/** How long a clean close may take (our close frame, the server's answer) before the socket is cut. */
const CLOSE_WAIT_MS = 500;
/** How much of the last message a failure quotes. */
const QUOTED_CHARS = 200;
/** RFC 6455 §4.1: a subprotocol is an HTTP token. */
const TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

const schema = Type.Object(
  {
    url: Type.String({ pattern: '^wss?://[^\\s]+$', expected: 'a ws:// or wss:// URL' }),
    /** Sent with the upgrade request (`authorization: Bearer ${TOKEN}`, `origin`). */
    headers: Type.Record(Type.String({ pattern: TOKEN }), Type.String(), { default: {}, expected: 'header name → value' }),
    /** Offered in Sec-WebSocket-Protocol; the server must pick one of them. */
    subprotocols: Type.Optional(Type.Array(Type.String({ pattern: TOKEN }), { minItems: 1, expected: 'a list of subprotocol names' })),
    /** Skip certificate verification for wss:// (the TLS failure is then not a failure). */
    insecure: Type.Boolean({ default: false, expected: 'true or false' }),
    /** Extra trusted CA certificates in PEM, e.g. `${file:/etc/vigil/ca.pem}`; the public roots stay trusted. */
    ca: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of one or more CA certificates' })),
    /** A text message sent once the connection is open. */
    send: Type.Optional(Type.String({ expected: 'the text of a message' })),
    /** A regular expression some message from the server must match before the run's timeout. */
    expect: Type.Optional(Type.String({ minLength: 1, expected: 'a regular expression' })),
  },
  { additionalProperties: false },
);

/** The `websocket` kind's own fields of a probe definition. */
export type WebsocketSpec = Static<typeof schema>;

export const websocket = defineProber({
  schema,
  report: {
    target: (spec) => urlAsWritten(spec.url),
    latency: true,
  },
  values: (spec) => ['connect_ms', 'latency_ms', ...(spec.url.startsWith('wss:') ? ['tls_days_remaining'] : [])],
  check(spec) {
    const problems: SpecProblem[] = [];
    const credentials = credentialsProblem(spec.url);
    if (credentials !== undefined) problems.push({ path: 'url', message: credentials });
    if (spec.url.startsWith('ws:')) {
      if (spec.insecure) problems.push({ path: 'insecure', message: 'expected a wss:// url with insecure (ws:// has no TLS)' });
      if (spec.ca !== undefined) problems.push({ path: 'ca', message: 'expected a wss:// url with ca (ws:// has no TLS)' });
    }
    const ca = caProblem(spec.ca);
    if (ca) problems.push(ca);
    if (spec.expect !== undefined) {
      try {
        new RegExp(spec.expect);
      } catch (error) {
        problems.push({ path: 'expect', message: `expected a regular expression: ${messageOf(error)}` });
      }
    }
    return problems;
  },
  probe: (spec, ctx) => session(spec, ctx),
});

/** Where one session got to. */
interface Progress {
  start: number;
  open?: number;
  matched?: number;
  /** Every message seen, and the last one (as text). */
  messages: number;
  last?: string;
  cert?: tls.PeerCertificate;
}

/** One connection: upgrade, optional send, wait for a match, then a clean close. */
const wsLib = lazy(async () => (await import('ws')).default);

async function session(spec: WebsocketSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const p: Progress = { start: ctx.clock.now(), messages: 0 };
  if (ctx.signal.aborted)
    return { ok: false, code: 'TIMEOUT', message: `timed out before connecting to ${shownUrl(spec.url)}`, values: {} };
  const ownAuth = Object.keys(spec.headers).some((k) => k.toLowerCase() === 'authorization');
  const Client = await wsLib();
  let ws: WebSocket;
  try {
    ws = new Client(withoutCredentials(spec.url).href, spec.subprotocols ?? [], {
      headers: { ...(ownAuth ? {} : credentialsHeader(spec.url)), ...spec.headers },
      ca: trustedCas(spec.ca),
      rejectUnauthorized: !spec.insecure,
      maxPayload: MAX_MESSAGE_BYTES,
      followRedirects: false,
      perMessageDeflate: false,
    });
  } catch (error) {
    // Options ws or Node reject up front (a header value with a newline): a failed run, never a throw.
    return { ok: false, code: 'CONNECT', message: `cannot connect to ${shownUrl(spec.url)}: ${messageOf(error)}`, values: {} };
  }
  const verdict = await watch(ws, spec, ctx, p);
  await closeCleanly(ws, ctx);
  return finish(verdict, p, spec, ctx);
}

type Verdict = { ok: true } | { ok: false; code: FailureCode; message: string };

function watch(ws: WebSocket, spec: WebsocketSpec, ctx: ProbeContext, p: Progress): Promise<Verdict> {
  const where = shownUrl(spec.url);
  const pattern = spec.expect === undefined ? undefined : new RegExp(spec.expect);
  return new Promise((resolve) => {
    let done = false;
    let lostWith: unknown;
    const settle = (v: Verdict) => {
      if (done) return;
      done = true;
      ctx.signal.removeEventListener('abort', onAbort);
      resolve(v);
    };
    const fail = (code: FailureCode, message: string) => settle({ ok: false, code, message });
    const onAbort = () => {
      const waited = formatDuration(Math.max(0, ctx.clock.now() - p.start));
      if (p.open === undefined) fail('TIMEOUT', `timed out after ${waited} connecting to ${where} (no completed WebSocket upgrade)`);
      else if (p.messages === 0)
        fail('TIMEOUT', `timed out after ${waited} waiting for a message matching /${spec.expect}/ from ${where}: the server sent none`);
      else
        fail(
          'ASSERTION',
          `no message from ${where} matched /${spec.expect}/ within ${waited}; last of ${p.messages}: ${quote(p.last, ctx)}`,
        );
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });

    ws.on('upgrade', (res) => {
      if (res.socket instanceof tls.TLSSocket) p.cert = res.socket.getPeerCertificate(true);
    });
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      const text = res.statusMessage ? ` ${res.statusMessage}` : '';
      const location = res.headers.location ? ` to ${res.headers.location}` : '';
      const redirect = status >= 300 && status < 400 ? ` (a redirect${location}: vigil does not follow it)` : '';
      fail('HTTP_STATUS', `${where} refused the WebSocket upgrade: HTTP ${status}${text}${redirect}`);
      // ws leaves the request to whoever listens for this event.
      ws.terminate();
    });
    ws.on('open', () => {
      p.open = ctx.clock.now();
      if (spec.send !== undefined) ws.send(spec.send);
      if (pattern === undefined) settle({ ok: true });
    });
    ws.on('message', (data) => {
      const text = textOf(data);
      p.messages++;
      p.last = text;
      if (pattern?.test(text.slice(0, MATCHED_CHARS))) {
        p.matched = ctx.clock.now();
        settle({ ok: true });
      }
    });
    // `on`, not `once`: an error after the verdict must still find a listener.
    ws.on('error', (error) => {
      if (p.open === undefined) {
        const failure = upgradeFailure(error, spec);
        fail(failure.code, failure.message);
      } else if (codeOf(error) === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        fail('PROTOCOL', `${where} sent a message larger than ${MAX_MESSAGE_BYTES / 1_048_576} MiB`);
      } else lostWith = error;
    });
    ws.on('close', (code, reason) => {
      if (p.open === undefined) {
        fail('CONNECT', `${where} closed the connection during the WebSocket upgrade`);
        return;
      }
      const how =
        code === 1006
          ? 'closed the connection without a close frame'
          : `closed the connection (${code}${reason.length > 0 ? ` ${reason.toString('utf8').slice(0, 120)}` : ''})`;
      const error = lostWith === undefined ? '' : ` after an error: ${messageOf(lostWith)}`;
      const last = p.messages === 0 ? 'it sent no message' : `last of ${p.messages}: ${quote(p.last, ctx)}`;
      fail('ASSERTION', `${where} ${how}${error} before a message matched /${spec.expect}/; ${last}`);
    });
  });
}

/** Our close frame, a short wait for the server's, then the socket is cut whatever happened. */
async function closeCleanly(ws: WebSocket, ctx: ProbeContext): Promise<void> {
  if (ws.readyState === ws.CLOSED) return;
  if (ws.readyState === ws.OPEN && !ctx.signal.aborted) {
    await new Promise<void>((resolve) => {
      const stop = () => {
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', stop);
        resolve();
      };
      const timer = setTimeout(stop, CLOSE_WAIT_MS);
      ctx.signal.addEventListener('abort', stop, { once: true });
      ws.once('close', stop);
      ws.close(1000, 'vigil probe done');
    });
  }
  ws.terminate();
}

function finish(v: Verdict, p: Progress, spec: WebsocketSpec, ctx: ProbeContext): ProbeResult {
  const values: Record<string, number> = {};
  if (p.open !== undefined) values.connect_ms = Math.max(0, p.open - p.start);
  // Without `expect`, the handshake is the whole exchange the run waits for.
  const answered = spec.expect === undefined ? p.open : p.matched;
  if (answered !== undefined) values.latency_ms = Math.max(0, answered - p.start);
  const expiry = p.cert === undefined ? undefined : earliestExpiry(p.cert);
  if (expiry !== undefined) values.tls_days_remaining = daysRemaining(expiry, ctx.clock.now());
  if (v.ok) return { ok: true, values, ...(p.messages > 0 ? { details: { messages: p.messages } } : {}) };
  return { ok: false, code: v.code, message: v.message, values };
}

/** Why the upgrade did not complete, from ws's or Node's error. */
function upgradeFailure(error: unknown, spec: WebsocketSpec): { code: FailureCode; message: string } {
  const where = shownUrl(spec.url);
  const host = withoutCredentials(spec.url).hostname;
  const code = codeOf(error);
  const text = messageOf(error);
  if (DNS_ERRORS.has(code)) return { code: 'DNS', message: `DNS lookup of ${host} failed: ${code}` };
  const refused = connectReason(code);
  if (refused !== undefined) return { code: 'CONNECT', message: `cannot connect to ${where}: ${refused} (${code})` };
  if (spec.url.startsWith('wss:')) {
    const cause = alertCause(code);
    if (cause !== undefined) return { code: 'TLS', message: `TLS handshake with ${where} failed: ${cause}` };
    if (TRUST_ERRORS.has(code)) {
      return {
        code: 'TLS',
        message: `TLS handshake with ${where} failed: the certificate is not trusted (${code}): add the issuing CA with ca:, or set insecure: true`,
      };
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return { code: 'TLS', message: `TLS handshake with ${where} failed: ${text}` };
    if (code === 'CERT_HAS_EXPIRED') return { code: 'TLS', message: `TLS handshake with ${where} failed: the certificate has expired` };
    // EPROTO: OpenSSL failed on what the peer sent (a plaintext answer to our ClientHello).
    if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO') {
      const why = tlsErrorReason(error);
      return { code: 'TLS', message: `TLS handshake with ${where} failed: ${why}${notTlsHint(why)}` };
    }
  }
  // ws's own words for a server that answered 101 wrongly: a subprotocol, an accept key, an extension.
  if (/^(Server sent|Invalid Sec-WebSocket|Invalid Upgrade|Invalid status code)/.test(text)) {
    return { code: 'PROTOCOL', message: `${where} answered the upgrade wrongly: ${text}` };
  }
  if (/socket hang up/.test(text)) return { code: 'CONNECT', message: `${where} closed the connection before answering the upgrade` };
  return { code: 'CONNECT', message: `cannot connect to ${where}: ${text}` };
}

/** A message as text; a binary one is read as UTF-8 too, since most binary frames of health endpoints are text. */
function textOf(data: WebSocket.RawData): string {
  const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  return buf.toString('utf8');
}

/** A message as a failure quotes it: cut short, and without this probe's secrets. */
function quote(text: string | undefined, ctx: ProbeContext): string {
  if (text === undefined) return '(none)';
  const cut = text.length > QUOTED_CHARS ? `${text.slice(0, QUOTED_CHARS)}…` : text;
  return JSON.stringify(ctx.redactor ? ctx.redactor.text(cut) : cut);
}
