import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { type Static, Type } from '@sinclair/typebox';
import type { ErrorReply } from 'redis';
import { formatDuration, ms } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { lazy } from '../lib/lazy.js';
import { Duration } from '../lib/schema.js';
import { connectReason, DNS_ERRORS, TRUST_ERRORS } from './sockets.js';
import { alertCause, caProblem, notTlsHint, tlsErrorReason, trustedCas } from './tls-common.js';
import {
  type ChecklistEntry,
  checkEntry,
  defineProber,
  type FailureCode,
  type ProbeContext,
  type ProbeResult,
  type SpecProblem,
} from './types.js';
import { credentialsProblem, shownUrl, urlAsWritten } from './url-credentials.js';

/**
 * How long a canary key lives if the run dies between its SET and its DEL: long enough for any run,
 * short enough that a crashed vigil leaves no litter behind for long.
 */
const CANARY_TTL_MS = 60_000;

const schema = Type.Object(
  {
    /** `redis://[user:password@]host[:port][/db]` or `rediss://…` for TLS; the password as `${…}`. */
    url: Type.String({ pattern: '^rediss?://[^\\s]+$', expected: 'a redis:// or rediss:// URL' }),
    /** Write, read back and delete a short-lived key; `false` for a read-only replica. */
    canary: Type.Boolean({ default: true, expected: 'true or false' }),
    /** The persistence the server must have, judged from `INFO persistence`. */
    persistence: Type.Optional(
      Type.Union([Type.Literal('rdb'), Type.Literal('aof'), Type.Literal('any')], { expected: 'one of rdb, aof, any' }),
    ),
    /** The oldest a successful RDB save may be while writes wait to be saved. */
    maxSaveAge: Type.Optional(Duration()),
    /** The replication role the server must have (Redis calls a replica `slave` in INFO). */
    role: Type.Optional(Type.Union([Type.Literal('master'), Type.Literal('replica')], { expected: 'one of master, replica' })),
    /** On a replica: the longest its primary may have been silent (`master_last_io_seconds_ago`). */
    maxReplicationLag: Type.Optional(Duration()),
    /** Accept any certificate (TLS still happens); for self-signed servers. rediss:// only. */
    insecure: Type.Boolean({ default: false, expected: 'true or false' }),
    /** Extra trusted CA certificates in PEM, e.g. `${file:/etc/vigil/redis-ca.pem}`; the public roots stay trusted. */
    ca: Type.Optional(Type.String({ minLength: 1, expected: 'PEM text of one or more CA certificates' })),
    /** The name sent as SNI and checked against the certificate; defaults to the URL's host. */
    serverName: Type.Optional(Type.String({ pattern: '^[^\\s/@:]+$', expected: 'a host name' })),
  },
  { additionalProperties: false },
);

/** The `redis` kind's own fields of a probe definition. */
export type RedisSpec = Static<typeof schema> & { id: string };

export const redis = defineProber({
  schema,
  report: {
    target: (spec) => urlAsWritten(spec.url),
    latency: true,
    // One entry per definition: persistence is what the cache item asks, so it wins when both are set.
    evidence(spec, w) {
      const target = urlAsWritten(spec.url);
      const entries: ChecklistEntry[] = [];
      if (spec.persistence !== undefined) entries.push(checkEntry('cachePersistence', spec.id, target, w));
      if (spec.role === 'replica' && spec.maxReplicationLag !== undefined) entries.push(checkEntry('replication', spec.id, target, w));
      return entries;
    },
  },
  values: (spec) => [
    'latency_ms',
    'used_memory_bytes',
    ...(spec.persistence === undefined ? [] : ['save_age_s']),
    ...(spec.role === 'replica' ? ['replication_lag_s'] : []),
  ],
  check(spec) {
    const problems: SpecProblem[] = [];
    const credentials = credentialsProblem(spec.url);
    if (credentials !== undefined) problems.push({ path: 'url', message: credentials });
    if (spec.url.startsWith('redis:')) {
      if (spec.insecure) problems.push({ path: 'insecure', message: 'expected a rediss:// url with insecure (redis:// has no TLS)' });
      if (spec.ca !== undefined) problems.push({ path: 'ca', message: 'expected a rediss:// url with ca (redis:// has no TLS)' });
      if (spec.serverName !== undefined) {
        problems.push({ path: 'serverName', message: 'expected a rediss:// url with serverName (redis:// has no TLS)' });
      }
    }
    const ca = caProblem(spec.ca);
    if (ca) problems.push(ca);
    if (spec.maxSaveAge !== undefined && spec.persistence !== 'rdb' && spec.persistence !== 'any') {
      problems.push({ path: 'maxSaveAge', message: 'expected persistence: rdb or any with maxSaveAge (it judges RDB snapshots)' });
    }
    if (spec.maxReplicationLag !== undefined && spec.role !== 'replica') {
      problems.push({ path: 'maxReplicationLag', message: 'expected role: replica with maxReplicationLag (only a replica lags)' });
    }
    if (spec.role === 'replica' && spec.canary) {
      problems.push({ path: 'canary', message: 'a replica refuses writes: set canary: false with role: replica' });
    }
    return problems;
  },
  probe: (spec, ctx) => check(spec, ctx),
});

const redisLib = lazy(() => import('redis'));

/** Raised when the run's signal ends a wait: the failure becomes TIMEOUT with the phase it was in. */
class RunEnded extends Error {}

/** A judged failure of a server that answered: the run fails with it. */
interface Failure {
  code: FailureCode;
  message: string;
}

async function check(spec: RedisSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const start = ctx.clock.now();
  const where = shownUrl(spec.url);
  const secure = spec.url.startsWith('rediss:');
  const lib = await redisLib();
  let client: ReturnType<typeof newClient>;
  try {
    client = newClient(lib.createClient, spec, ctx, start);
  } catch (err) {
    // node-redis refusing the options (a URL it reads otherwise than the loader did): a failed run, never a throw.
    return { ok: false, code: 'CONFIG', message: `cannot use ${where}: ${messageOf(err)}`, values: {} };
  }
  // Every failure reaches the awaited call that met it; unheard, an 'error' event would crash vigil.
  client.on('error', () => {});
  // Until the socket is up (TCP, and TLS for rediss://); a plain Redis port never answers a TLS hello.
  let phase = secure
    ? `connecting to ${where} (TCP or the TLS handshake never completed; is this port serving TLS?)`
    : `connecting to ${where}`;
  let command = 'the login (HELLO)';
  client.once('connect', () => {
    phase = `waiting for ${where} to answer the login (HELLO)`;
  });
  const step = <T>(what: string, work: () => Promise<T>): Promise<T> => {
    phase = `waiting for ${where} to answer ${what}`;
    command = what;
    return untilEnded(work(), ctx.signal);
  };
  // destroy() also rejects whatever the client still waits for, so no socket outlives the run.
  const onAbort = () => client.destroy();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await untilEnded(client.connect(), ctx.signal);
    const details: Record<string, unknown> = {};
    if (spec.canary) {
      const failed = await canary(spec, client, step);
      if (failed) return { ok: false, ...failed, values: {} };
    }
    const info = parseInfo(await step('INFO', () => client.info()));
    const values: Record<string, number> = {};
    const memory = numberOf(info, 'used_memory');
    if (memory !== undefined) values.used_memory_bytes = memory;
    const failures: string[] = [];
    if (spec.persistence !== undefined) {
      const savePoints = await step('CONFIG GET save', () => client.configGet('save')).then(
        (r) => r.save,
        (err: unknown) => {
          // Managed services often forbid CONFIG; the saves the server made then say whether RDB is on.
          if (err instanceof lib.ErrorReply) return undefined;
          throw err;
        },
      );
      failures.push(...judgePersistence(spec, info, savePoints, values, details));
    }
    if (spec.role !== undefined) failures.push(...judgeRole(spec, info, values));
    values.latency_ms = ctx.clock.now() - start;
    const detailsIfAny = Object.keys(details).length === 0 ? {} : { details };
    if (failures.length > 0) return { ok: false, code: 'ASSERTION', message: `${where}: ${failures.join('; ')}`, values, ...detailsIfAny };
    return { ok: true, values, ...detailsIfAny };
  } catch (err) {
    return failureOf(err, { spec, ctx, start, where, phase, command, reply: lib.ErrorReply });
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    client.destroy();
  }
}

/** The run's one client: no reconnects, its socket tied to the run's signal, TLS as the definition says. */
function newClient(createClient: typeof import('redis').createClient, spec: RedisSpec, ctx: ProbeContext, start: number) {
  const host = new URL(spec.url).hostname.replace(/^\[(.*)\]$/, '$1');
  const name = spec.serverName ?? host;
  const secure = spec.url.startsWith('rediss:');
  return createClient({
    url: spec.url,
    socket: {
      // A run is one attempt: a dropped connection is the finding, not something to retry.
      reconnectStrategy: false,
      // The signal ends a slow connect at the deadline; node-redis's own 5 s default would cut it short
      // of one, so its timer is only a backstop a second past the deadline.
      connectTimeout: Math.max(1, ctx.deadline - start) + 1_000,
      // client.destroy() cannot reach a socket still connecting (node-redis holds it only once up): the signal can.
      signal: ctx.signal,
      ...(secure
        ? // Node checks the certificate against `servername` when set, else against the host.
          { tls: true as const, rejectUnauthorized: !spec.insecure, ca: trustedCas(spec.ca), servername: isIP(name) ? undefined : name }
        : {}),
    },
  });
}

type Step = <T>(what: string, work: () => Promise<T>) => Promise<T>;
/** The three commands the canary sends (node-redis's client type is too generic to pass around whole). */
interface CanaryClient {
  set(key: string, value: string, options: { expiration: { type: 'PX'; value: number } }): Promise<unknown>;
  get(key: string): Promise<string | null>;
  del(key: string): Promise<number>;
}

/** SET a fresh key with a short TTL, GET it back, DEL it: the cache takes writes and returns them. */
async function canary(spec: RedisSpec, client: CanaryClient, step: Step): Promise<Failure | undefined> {
  const key = `vigil:canary:${spec.id}:${randomBytes(6).toString('hex')}`;
  const value = randomBytes(12).toString('hex');
  await step('SET of the canary key', () => client.set(key, value, { expiration: { type: 'PX', value: CANARY_TTL_MS } }));
  const read = await step('GET of the canary key', () => client.get(key));
  const removed = await step('DEL of the canary key', () => client.del(key));
  if (read === null) {
    return {
      code: 'ASSERTION',
      message: `the canary key ${key} was gone right after it was written (evicted at once? check maxmemory and maxmemory-policy)`,
    };
  }
  if (read !== value) return { code: 'ASSERTION', message: `the canary key ${key} read back different from what was written` };
  if (removed !== 1) return { code: 'ASSERTION', message: `the canary key ${key} could not be deleted (DEL removed ${removed} keys)` };
  return undefined;
}

/** `INFO`'s `name:value` lines, by name; section headers and blank lines dropped. */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

function numberOf(info: Map<string, string>, field: string): number | undefined {
  const text = info.get(field);
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * The persistence the definition asks for, from `INFO persistence` and the save points. RDB counts
 * as on when save points are set; when CONFIG is refused (`savePoints` undefined), when the server
 * has saved since it started. `save_age_s` is the age of the last successful save by the server's
 * own clock; `maxSaveAge` fails it only while writes wait to be saved (a quiet cache is not stale).
 */
function judgePersistence(
  spec: RedisSpec,
  info: Map<string, string>,
  savePoints: string | undefined,
  values: Record<string, number>,
  details: Record<string, unknown>,
): string[] {
  const failures: string[] = [];
  const aof = info.get('aof_enabled') === '1';
  const rdb = savePoints === undefined ? (numberOf(info, 'rdb_saves') ?? 0) > 0 : savePoints.trim() !== '';
  details.persistence = {
    rdb,
    aof,
    ...(savePoints === undefined ? { savePoints: 'unknown: CONFIG GET save was refused' } : { savePoints }),
  };
  const rdbWhy =
    savePoints === undefined ? 'no RDB save since the server started (CONFIG GET save was refused)' : 'no RDB save points (save "")';
  if (spec.persistence === 'any' && !rdb && !aof) {
    return ['persistence off: neither RDB save points nor AOF are enabled'];
  }
  if (spec.persistence === 'rdb' && !rdb) failures.push(`RDB snapshots off: ${rdbWhy}`);
  if (spec.persistence === 'aof' && !aof) failures.push('AOF off (aof_enabled:0): set appendonly yes');
  if (rdb && spec.persistence !== 'aof') {
    const status = info.get('rdb_last_bgsave_status');
    if (status !== undefined && status !== 'ok')
      failures.push(`last bgsave failed (rdb_last_bgsave_status:${status}); the server log says why`);
    const lastSave = numberOf(info, 'rdb_last_save_time');
    // The server's clock, so a skew between vigil and the server does not age the save.
    const nowUs = numberOf(info, 'server_time_usec');
    if (lastSave !== undefined) {
      const now = nowUs === undefined ? Date.now() / 1000 : nowUs / 1e6;
      const age = Math.max(0, Math.round(now - lastSave));
      values.save_age_s = age;
      const pending = numberOf(info, 'rdb_changes_since_last_save') ?? 0;
      if (spec.maxSaveAge !== undefined && pending > 0 && age * 1000 > ms(spec.maxSaveAge)) {
        failures.push(
          `last successful save ${formatDuration(age * 1000)} ago, over maxSaveAge ${spec.maxSaveAge}, with ${pending} changes unsaved`,
        );
      }
    }
  }
  if (aof && spec.persistence !== 'rdb') {
    const status = info.get('aof_last_write_status');
    if (status !== undefined && status !== 'ok') failures.push(`last AOF write failed (aof_last_write_status:${status})`);
  }
  return failures;
}

/** The role the definition asks for, and on a replica its link to the primary and how long that was silent. */
function judgeRole(spec: RedisSpec, info: Map<string, string>, values: Record<string, number>): string[] {
  const role = info.get('role');
  const isReplica = role === 'slave';
  if (spec.role === 'master') return isReplica ? [`expected role master, the server is a replica of ${primaryOf(info)}`] : [];
  if (!isReplica) return [`expected role replica, the server is a ${role ?? 'server of unknown role'}`];
  if (info.get('master_link_status') !== 'up') {
    const down = numberOf(info, 'master_link_down_since_seconds');
    const since = down === undefined || down < 0 ? '' : `, down for ${formatDuration(down * 1000)}`;
    return [`replica link down (master_link_status:${info.get('master_link_status') ?? '?'}, primary ${primaryOf(info)}${since})`];
  }
  if (info.get('master_sync_in_progress') === '1') return [`the replica is still syncing from ${primaryOf(info)}`];
  const lag = numberOf(info, 'master_last_io_seconds_ago');
  if (lag === undefined || lag < 0) return [];
  values.replication_lag_s = lag;
  if (spec.maxReplicationLag !== undefined && lag * 1000 > ms(spec.maxReplicationLag)) {
    return [
      `replication lag ${lag}s (the primary ${primaryOf(info)} last spoke ${lag}s ago), over maxReplicationLag ${spec.maxReplicationLag}`,
    ];
  }
  return [];
}

function primaryOf(info: Map<string, string>): string {
  const host = info.get('master_host');
  const port = info.get('master_port');
  return host === undefined ? 'an unknown primary' : `${host}:${port ?? '?'}`;
}

interface Where {
  spec: RedisSpec;
  ctx: ProbeContext;
  start: number;
  where: string;
  phase: string;
  command: string;
  /** node-redis's error reply class, from the module loaded for the run. */
  reply: typeof ErrorReply;
}

/** What a thrown error means for the person paged: the run's end, a refused login, a network or TLS failure. */
function failureOf(err: unknown, w: Where): ProbeResult {
  const fail = (code: FailureCode, message: string): ProbeResult => ({ ok: false, code, message, values: {} });
  if (err instanceof RunEnded || w.ctx.signal.aborted || (err instanceof Error && err.name === 'ConnectionTimeoutError')) {
    return fail('TIMEOUT', `timed out after ${formatDuration(w.ctx.clock.now() - w.start)} ${w.phase}`);
  }
  if (err instanceof w.reply) return replyFailure(err, w);
  const code = codeOf(err);
  const host = new URL(w.spec.url).hostname;
  if (DNS_ERRORS.has(code)) return fail('DNS', `DNS lookup of ${host} failed: ${code}`);
  const reason = connectReason(code);
  if (reason !== undefined) {
    // A TLS-only port resets a client that speaks plain text at it.
    const hint = code === 'ECONNRESET' && w.spec.url.startsWith('redis:') ? ' (if the port wants TLS, use rediss://)' : '';
    return fail('CONNECT', `cannot connect to ${w.where}: ${reason} (${code})${hint}`);
  }
  const tls = tlsFailure(err, w.spec);
  if (tls !== undefined) return fail('TLS', `TLS with ${w.where} failed: ${tls}`);
  if (err instanceof Error && err.name === 'SocketClosedUnexpectedlyError') {
    const hint = w.spec.url.startsWith('redis:') ? ' (is this a Redis port? one that wants TLS needs rediss://)' : '';
    return fail('CONNECT', `${w.where} closed the connection before answering ${w.command}${hint}`);
  }
  return fail('CONNECT', `${w.where}: ${w.phase} failed: ${messageOf(err)}`);
}

/** A Redis error reply: a refused login names the credentials, a read-only server the canary, others as said. */
function replyFailure(err: ErrorReply, w: Where): ProbeResult {
  const fail = (code: FailureCode, message: string): ProbeResult => ({ ok: false, code, message, values: {} });
  const text = err.message;
  const word = /^\S+/.exec(text)?.[0] ?? '';
  if (word === 'WRONGPASS') return fail('AUTH', `${w.where} refused the login: ${text} (check the user and password in url)`);
  if (word === 'NOAUTH') return fail('AUTH', `${w.where} requires a password (NOAUTH): put it in url as redis://:<password>@host`);
  if (/called without any password configured/.test(text)) {
    return fail('AUTH', `${w.where} has no password set but url gives one: drop it from url, or set requirepass on the server`);
  }
  if (word === 'NOPERM')
    return fail('AUTH', `${w.where}: the user in url may not run ${w.command} (${text}): grant it in the server's ACL`);
  if (word === 'READONLY') {
    return fail('ASSERTION', `${w.where} is read-only (${text}): it refused the canary write; set canary: false for a replica`);
  }
  if (word === 'MISCONF') {
    return fail(
      'ASSERTION',
      `${w.where}: last bgsave failed (rdb_last_bgsave_status:err), so the server refuses writes (MISCONF): the server log says why`,
    );
  }
  if (word === 'LOADING') return fail('ASSERTION', `${w.where} is still loading its dataset into memory (LOADING)`);
  return fail('PROTOCOL', `${w.where} answered ${w.command} with an error: ${text}`);
}

/** What a TLS failure means, in the words the tls and grpc probes use; undefined for an error that is no TLS one. */
function tlsFailure(err: unknown, spec: RedisSpec): string | undefined {
  const code = codeOf(err);
  const cause = alertCause(code);
  if (cause !== undefined) return cause;
  if (TRUST_ERRORS.has(code)) {
    return `the certificate is not trusted (${code}): add the issuing CA with ca:, or set insecure: true to skip verification`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the certificate does not cover ${spec.serverName ?? new URL(spec.url).hostname}: ${messageOf(err)} (set serverName: to the name it covers)`;
  }
  if (code === 'CERT_HAS_EXPIRED') return 'the certificate has expired (CERT_HAS_EXPIRED)';
  if (!code.startsWith('ERR_SSL_') && !code.startsWith('ERR_TLS_')) return undefined;
  const text = tlsErrorReason(err);
  return `${text}${notTlsHint(text)}`;
}

/** `work`, or RunEnded as soon as the run's signal aborts (the client is destroyed by then too). */
function untilEnded<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  // The losing side must not surface as an unhandled rejection once the race is decided.
  work.catch(() => {});
  if (signal.aborted) return Promise.reject(new RunEnded());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new RunEnded());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
