import { isIP, type Socket } from 'node:net';
import tls from 'node:tls';
import type { ChannelCredentials, Client, ClientUnaryCall, experimental, Metadata, ServiceError } from '@grpc/grpc-js';
import { type Static, Type } from '@sinclair/typebox';
import { formatDuration } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { decodeResponse, encodeRequest, SERVING_STATUS, statusName } from './grpc-wire.js';
import { TRUST_ERRORS } from './sockets.js';
import {
  alertCause,
  caProblem,
  clientCertProblems,
  daysRemaining,
  earliestExpiry,
  expiryPhrase,
  notTlsHint,
  tlsErrorReason,
  trustedCas,
} from './tls-common.js';
import { defineProber, type FailureCode, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';

const CHECK = '/grpc.health.v1.Health/Check';
/** A health answer is two bytes; anything near this is not one. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Metadata keys grpc-js accepts (it lowercases them first). */
const METADATA_KEY = /^[0-9a-z_.-]+$/;
/** Printable ASCII: what a text (non `-bin`) metadata value may hold on the wire. */
const METADATA_TEXT = /^[\x20-\x7e]*$/;

const MetadataValue = Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })], {
  expected: 'a string or a list of strings',
});

const schema = Type.Object(
  {
    /** `host:port` (`[::1]:50051` for an IPv6 address), as grpc clients write it. */
    target: Type.String({
      pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^\\s/@:\\[\\]]+):[0-9]{1,5}$',
      expected: 'host:port, e.g. api.example.com:443 or [::1]:50051',
    }),
    /** The service whose health is asked; "" asks about the whole server. */
    service: Type.String({ default: '', expected: 'a service name, e.g. my.package.Orders ("" for the whole server)' }),
    tls: Type.Boolean({ default: false, expected: 'true or false' }),
    /** Skip certificate verification (a TLS failure of the chain is then not a failure). */
    insecure: Type.Boolean({ default: false, expected: 'true or false' }),
    /** Extra trusted CA certificates in PEM, e.g. `${file:/etc/vigil/ca.pem}`; the public roots stay trusted. */
    ca: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of one or more CA certificates' })),
    /** The name sent as SNI and checked against the certificate; defaults to the target's host. */
    serverName: Type.Optional(Type.String({ pattern: '^[^\\s/@:]+$', expected: 'a host name' })),
    /** A client certificate (PEM) for servers that require one, with its `key`. */
    cert: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of a client certificate' })),
    key: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of the private key of cert' })),
    /** Sent with the call (`authorization: Bearer ${TOKEN}`); a key ending in `-bin` carries bytes, written as text. */
    metadata: Type.Record(Type.String(), MetadataValue, { default: {} }),
    expect: Type.Object(
      {
        status: Type.Union(
          SERVING_STATUS.map((s) => Type.Literal(s)),
          { default: 'SERVING', expected: `one of ${SERVING_STATUS.join(', ')}` },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

/** The `grpc` kind's own fields of a probe definition. */
export type GrpcSpec = Static<typeof schema>;

export const grpc = defineProber({
  schema,
  report: {
    target: (spec) => (spec.service === '' ? spec.target : `${spec.target} ${spec.service}`),
    latency: true,
  },
  values: (spec) => ['latency_ms', 'status', ...(spec.tls ? ['tls_days_remaining'] : [])],
  check(spec) {
    const problems: SpecProblem[] = [];
    const port = Number(spec.target.slice(spec.target.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535) problems.push({ path: 'target', message: `expected a port 1-65535, got ${port}` });
    if (!spec.tls) {
      for (const field of ['insecure', 'ca', 'serverName', 'cert', 'key'] as const) {
        if (spec[field] !== undefined && spec[field] !== false) {
          problems.push({ path: field, message: `expected tls: true with ${field} (it only applies to a TLS connection)` });
        }
      }
    }
    const ca = caProblem(spec.ca);
    if (ca) problems.push(ca);
    problems.push(...clientCertProblems(spec.cert, spec.key));
    for (const [key, value] of Object.entries(spec.metadata)) {
      if (!METADATA_KEY.test(key.toLowerCase()) || key.toLowerCase().startsWith('grpc-')) {
        problems.push({
          path: `metadata.${key}`,
          message: 'expected a metadata key of letters, digits, "-", "_" and "." not starting with "grpc-" (reserved)',
        });
      } else if (!key.toLowerCase().endsWith('-bin') && ![value].flat().every((v) => METADATA_TEXT.test(v))) {
        problems.push({ path: `metadata.${key}`, message: 'expected printable ASCII (name the key …-bin to send other bytes)' });
      }
    }
    return problems;
  },
  probe: (spec, ctx) => check(spec, ctx),
});

/** What the connections of one run did, seen from inside grpc-js's connector. */
interface Seen {
  /** Every socket grpc-js opened for this run, TCP and TLS: destroyed when the run ends, whatever grpc-js still waits for. */
  sockets: Set<Socket>;
  /** The peer's chain from a completed handshake (verified or not). */
  cert?: tls.PeerCertificate;
  /** Why a TLS handshake failed, or why a secured connection failed afterwards (a server's alert). */
  tlsError?: unknown;
}

/**
 * The run's credentials, wrapped so the run sees its own sockets: grpc-js abandons a connection
 * attempt it no longer needs without closing it (a peer that accepts TCP and never answers the
 * HTTP/2 preface keeps it open), and reports a TLS failure only as text inside UNAVAILABLE.
 */
/**
 * grpc-js, loaded at the first grpc run rather than with the probers: its 65 files took 18-37 ms of
 * every start (the probers' import, measured) that a config without grpc probes never needed. The
 * run's credentials class extends grpc-js's.
 */
type GrpcJs = typeof import('@grpc/grpc-js');
let grpcJs: Promise<{ grpc: GrpcJs; RunCredentials: ReturnType<typeof runCredentialsOf> }> | undefined;
const loadGrpc = () => {
  grpcJs ??= import('@grpc/grpc-js').then((grpc) => ({ grpc, RunCredentials: runCredentialsOf(grpc) }));
  return grpcJs;
};

const runCredentialsOf = (grpc: GrpcJs) =>
  class RunCredentials extends grpc.ChannelCredentials {
    constructor(
      private readonly inner: ChannelCredentials,
      private readonly seen: Seen,
    ) {
      super();
    }
    _isSecure(): boolean {
      return this.inner._isSecure();
    }
    _equals(other: ChannelCredentials): boolean {
      return other === this;
    }
    _createSecureConnector(...args: Parameters<ChannelCredentials['_createSecureConnector']>): experimental.SecureConnector {
      const connector = this.inner._createSecureConnector(...args);
      const seen = this.seen;
      return {
        connect(socket) {
          seen.sockets.add(socket);
          return connector.connect(socket).then(
            (result) => {
              seen.sockets.add(result.socket);
              if (result.socket instanceof tls.TLSSocket) {
                seen.cert = result.socket.getPeerCertificate(true);
                // `on`: grpc-js listens too; this only keeps the cause (a TLS 1.3 alert comes after the handshake).
                result.socket.on('error', (error) => {
                  seen.tlsError ??= error;
                });
              }
              return result;
            },
            (error: unknown) => {
              if (seen.tlsError === undefined && error !== undefined) seen.tlsError = error;
              throw error;
            },
          );
        },
        waitForReady: () => connector.waitForReady(),
        getCallCredentials: () => connector.getCallCredentials(),
        destroy: () => connector.destroy(),
      };
    }
  };

/** One Health/Check call on a client of its own, closed before this resolves. */
async function check(spec: GrpcSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const where = spec.target;
  if (ctx.signal.aborted) return { ok: false, code: 'TIMEOUT', message: `timed out before calling ${where}`, values: {} };
  const { grpc, RunCredentials } = await loadGrpc();
  const start = ctx.clock.now();
  const seen: Seen = { sockets: new Set() };
  let client: Client;
  try {
    client = new grpc.Client(spec.target, new RunCredentials(channelCredentials(grpc, spec), seen), {
      // A pool of its own, so closing this client really closes its connection (the global pool keeps
      // subchannels, and a timer, for other clients).
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': MAX_RESPONSE_BYTES,
      // A probe measures one attempt; the scheduler owns retries.
      'grpc.enable_retries': 0,
      ...(spec.serverName === undefined
        ? {}
        : { 'grpc.ssl_target_name_override': spec.serverName, 'grpc.default_authority': spec.serverName }),
    });
  } catch (error) {
    // Options grpc-js or OpenSSL reject up front (a key it cannot load): a failed run, never a throw.
    return { ok: false, code: 'TLS', message: `cannot set up TLS for ${where}: ${messageOf(error)}`, values: {} };
  }
  try {
    const outcome = await call(grpc, client, spec, ctx);
    const values: Record<string, number> = { latency_ms: Math.max(0, ctx.clock.now() - start) };
    const expiry = seen.cert === undefined ? undefined : earliestExpiry(seen.cert);
    if (expiry !== undefined) values.tls_days_remaining = daysRemaining(expiry, ctx.clock.now());
    if ('aborted' in outcome) return { ok: false, code: 'TIMEOUT', message: timeoutMessage(spec, ctx, start, client), values };
    if ('refused' in outcome) {
      return { ok: false, code: 'INTERNAL', message: `cannot call ${where}: ${messageOf(outcome.refused)}`, values };
    }
    if ('error' in outcome) return callFailure(grpc.status, outcome.error, seen, spec, ctx, start, client, values);
    values.status = outcome.status;
    const got = statusName(outcome.status);
    if (got !== spec.expect.status) {
      return {
        ok: false,
        code: 'ASSERTION',
        message: `${subject(spec)} is ${got} (expected ${spec.expect.status})`,
        values,
      };
    }
    const details: Record<string, unknown> = { status: got };
    if (expiry !== undefined) details.certificate = expiryPhrase(expiry, ctx.clock.now());
    return { ok: true, values, details };
  } finally {
    client.close();
    for (const socket of seen.sockets) socket.destroy();
  }
}

type Outcome = { status: number } | { error: ServiceError } | { aborted: true } | { refused: unknown };

/** The call, with its deadline from the run's; an abort cancels it at once. */
function call(grpc: GrpcJs, client: Client, spec: GrpcSpec, ctx: ProbeContext): Promise<Outcome> {
  return new Promise((resolve) => {
    let done = false;
    let pending: ClientUnaryCall | undefined;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      ctx.signal.removeEventListener('abort', onAbort);
      resolve(o);
    };
    const onAbort = () => {
      finish({ aborted: true });
      pending?.cancel();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    // The deadline on the wall clock grpc-js reads, at the distance the run's clock says is left.
    const deadline = Date.now() + Math.max(0, ctx.deadline - ctx.clock.now());
    try {
      pending = client.makeUnaryRequest(
        CHECK,
        encodeRequest,
        decodeResponse,
        spec.service,
        metadataOf(grpc, spec),
        { deadline },
        (error, response) => {
          if (error) finish({ error });
          else finish({ status: response ?? 0 });
        },
      );
    } catch (refused) {
      // grpc-js refusing the call itself (metadata it will not send): a failed run, never a throw.
      finish({ refused });
    }
  });
}

function metadataOf(grpc: GrpcJs, spec: GrpcSpec): Metadata {
  const md = new grpc.Metadata();
  for (const [key, value] of Object.entries(spec.metadata)) {
    const k = key.toLowerCase();
    for (const v of [value].flat()) md.add(k, k.endsWith('-bin') ? Buffer.from(v, 'utf8') : v);
  }
  return md;
}

function channelCredentials(grpc: GrpcJs, spec: GrpcSpec): ChannelCredentials {
  if (!spec.tls) return grpc.credentials.createInsecure();
  const cas = trustedCas(spec.ca);
  return grpc.credentials.createSsl(
    cas === undefined ? null : Buffer.from(cas.join('\n')),
    spec.key === undefined ? null : Buffer.from(spec.key),
    spec.cert === undefined ? null : Buffer.from(spec.cert),
    { rejectUnauthorized: !spec.insecure },
  );
}

function subject(spec: GrpcSpec): string {
  return spec.service === '' ? `the server at ${spec.target} (service "")` : `service "${spec.service}" at ${spec.target}`;
}

function timeoutMessage(spec: GrpcSpec, ctx: ProbeContext, start: number, client: Client): string {
  const waited = formatDuration(Math.max(0, ctx.clock.now() - start));
  // READY (2) means a connection was up: the server took the call and never answered it.
  const connected = client.getChannel().getConnectivityState(false) === 2;
  return connected
    ? `timed out after ${waited} waiting for ${spec.target} to answer Health/Check for ${spec.service === '' ? 'the server' : `"${spec.service}"`}`
    : `timed out after ${waited} connecting to ${spec.target}${spec.tls ? ' (TCP, TLS or the HTTP/2 handshake never completed)' : ' (TCP or the HTTP/2 handshake never completed; does the server expect TLS?)'}`;
}

const DNS_HINT = /ENOTFOUND|EAI_AGAIN|EAI_FAIL|name resolution failed|DNS resolution failed/i;

function callFailure(
  status: GrpcJs['status'],
  error: ServiceError,
  seen: Seen,
  spec: GrpcSpec,
  ctx: ProbeContext,
  start: number,
  client: Client,
  values: Record<string, number>,
): ProbeResult {
  const fail = (code: FailureCode, message: string): ProbeResult => ({
    ok: false,
    code,
    message,
    values,
    details: { grpcStatus: status[error.code] ?? error.code },
  });
  const details = error.details;
  switch (error.code) {
    case status.DEADLINE_EXCEEDED:
    case status.CANCELLED:
      return fail('TIMEOUT', timeoutMessage(spec, ctx, start, client));
    case status.UNIMPLEMENTED:
      return fail('PROTOCOL', `the server has no grpc.health.v1 service: ${spec.target} answered UNIMPLEMENTED to Health/Check`);
    case status.NOT_FOUND:
      return fail('ASSERTION', `service "${spec.service}" is unknown to the health service at ${spec.target} (NOT_FOUND)`);
    case status.UNAVAILABLE:
      return unavailable(details, seen, spec, fail);
    case status.INTERNAL:
      if (/parsing|deserializ|exceeds maximum|Received message larger/i.test(details)) {
        return fail('PROTOCOL', `${spec.target} answered Health/Check with something that is not a HealthCheckResponse: ${details}`);
      }
      return fail('PROTOCOL', `${spec.target} failed Health/Check with INTERNAL: ${details}`);
    default:
      return fail('PROTOCOL', `${spec.target} answered Health/Check with ${status[error.code] ?? error.code}: ${details || 'no details'}`);
  }
}

/** UNAVAILABLE: grpc-js folds DNS, connect and TLS failures into one code; the connector saw which. */
function unavailable(details: string, seen: Seen, spec: GrpcSpec, fail: (code: FailureCode, message: string) => ProbeResult): ProbeResult {
  const host = spec.target.slice(0, spec.target.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  if (DNS_HINT.test(details) && isIP(host) === 0) return fail('DNS', `DNS lookup of ${host} failed: ${details}`);
  if (spec.tls && seen.tlsError !== undefined)
    return fail('TLS', `TLS handshake with ${spec.target} failed: ${tlsReason(seen.tlsError, spec)}`);
  if (spec.tls && seen.sockets.size > 0 && /closed|dropped|ECONNRESET/i.test(details)) {
    return fail('TLS', `TLS handshake with ${spec.target} failed: the server closed the connection (is this port serving TLS?)`);
  }
  if (!spec.tls && seen.sockets.size > 0) {
    return fail(
      'CONNECT',
      `${spec.target} accepted TCP, then the HTTP/2 connection failed: ${lastError(details)} (does the server expect TLS? set tls: true)`,
    );
  }
  return fail('CONNECT', `cannot reach ${spec.target}: ${lastError(details)}`);
}

/** grpc-js's "No connection established. Last error: X (timestamp)": the X. */
function lastError(details: string): string {
  return details
    .replace(/^No connection established\. Last error: /, '')
    .replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
    .replace(/\.? Resolution note:\s*$/, '');
}

/** What a TLS failure means, in the words the tls and http probes use for the same failure. */
function tlsReason(error: unknown, spec: GrpcSpec): string {
  const code = typeof error === 'string' ? error : codeOf(error);
  const cause = alertCause(code, spec.cert === undefined ? 'vigil sends none' : 'vigil sent the one in cert:');
  if (cause !== undefined) return cause;
  if (TRUST_ERRORS.has(code)) {
    return `the certificate is not trusted (${code}): add the issuing CA with ca:, or set insecure: true to skip verification`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the certificate does not cover ${spec.serverName ?? spec.target}: ${messageOf(error)} (set serverName: to the name it covers)`;
  }
  if (code === 'CERT_HAS_EXPIRED') return 'the certificate has expired (CERT_HAS_EXPIRED)';
  const text = tlsErrorReason(error);
  return notTlsHint(text) === '' ? text : `${text} (is this port serving TLS? set tls: false if not)`;
}
