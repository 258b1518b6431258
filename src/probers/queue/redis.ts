import { randomUUID } from 'node:crypto';
import { untilAborted } from '../../lib/abort.js';
import { codeOf, messageOf } from '../../lib/errors.js';
import { lazy } from '../../lib/lazy.js';
import { connectReason, DNS_ERRORS } from '../sockets.js';
import type { ProbeContext, ProbeResult } from '../types.js';
import { shownUrl } from '../url-credentials.js';
import { judgeQueue, outcome, type QueueCheck, QueueFailure, timedOut } from './shared.js';

/** How long a canary key may outlive a run that died between its push and its delete. */
const CANARY_TTL_MS = 60_000;

/**
 * Redis as a queue: a canary pushed onto a temporary list and popped back, then the named list's or
 * stream's length. A list, not a stream, for the canary: lists are what Redis work queues are built
 * on (Sidekiq, RQ, Celery, Resque, Bull's wait lists) and what their workers pop, LPUSH/RPOP works on
 * every Redis version, and a popped entry is gone, where a stream entry stays until trimmed.
 */
export async function probeRedis(spec: QueueCheck, ctx: ProbeContext): Promise<ProbeResult> {
  const where = shownUrl(spec.url);
  const started = ctx.clock.now();
  const values: Record<string, number> = {};
  let doing = `connecting to ${where}`;
  const client = clientFor((await redisLib()).createClient, spec, ctx);
  const step = <T>(what: string, run: () => Promise<T>): Promise<T> => {
    doing = what;
    return untilAborted(ctx.signal, run);
  };
  let canaryKey: string | undefined;
  try {
    await step(doing, () => client.connect());
    if (spec.canary) {
      const id = randomUUID();
      const key = `vigil:queue-canary:${id}`;
      canaryKey = key;
      const sent = ctx.clock.now();
      // Pushed with its expiry in one transaction: the key never exists without a TTL.
      await step(`pushing the canary onto ${key} on ${where}`, () => client.multi().lPush(key, id).pExpire(key, CANARY_TTL_MS).exec());
      const popped = await step(`popping the canary from ${key} on ${where}`, () => client.rPop(key));
      if (popped !== id) {
        throw new QueueFailure(
          'PROTOCOL',
          `the canary pushed onto ${key} on ${where} did not come back (popped ${popped === null ? 'nothing' : 'another value'})`,
        );
      }
      values.round_trip_ms = ctx.clock.now() - sent;
    }
    if (spec.queue !== undefined) {
      const name = spec.queue;
      const type = spec.type ?? 'list';
      const held = await step(`reading the type of ${name} on ${where}`, () => client.type(name));
      // An empty list does not exist in Redis: a missing key is a queue with nothing waiting.
      if (held !== 'none' && held !== type) {
        throw new QueueFailure('ASSERTION', `${name} on ${where} is a ${held}, not a ${type} (set type: to what it holds)`);
      }
      values.depth =
        held === 'none'
          ? 0
          : await step(`reading the length of ${name} on ${where}`, () => (type === 'list' ? client.lLen(name) : client.xLen(name)));
    }
    const unit = spec.type === 'stream' ? 'entries' : 'messages ready';
    return outcome(values, undefined, spec.queue === undefined ? [] : judgeQueue(spec, values.depth ?? 0, undefined, unit));
  } catch (err) {
    return outcome(values, classify(err, ctx, doing, started, where), []);
  } finally {
    await release(client, canaryKey, ctx);
  }
}

const redisLib = lazy(() => import('redis'));

/** A client for one run; nothing is sent until `connect()`. */
function clientFor(createClient: typeof import('redis').createClient, spec: QueueCheck, ctx: ProbeContext) {
  const client = createClient({
    url: spec.url,
    // One attempt: a run that cannot connect fails and says why; the next run tries again.
    socket: { connectTimeout: Math.max(1, ctx.deadline - ctx.clock.now()), reconnectStrategy: false },
    // A command sent while disconnected fails at once instead of waiting for a reconnect that never comes.
    disableOfflineQueue: true,
  });
  // An 'error' nobody listens to would crash vigil; the failure is read where it surfaces instead.
  client.on('error', () => {});
  return client;
}

type Client = ReturnType<typeof clientFor>;

/** Deletes a canary left behind (its TTL is the fallback) and closes the connection; at the deadline, drops it at once. */
async function release(client: Client, canaryKey: string | undefined, ctx: ProbeContext): Promise<void> {
  if (ctx.signal.aborted || !client.isReady) {
    if (client.isOpen) client.destroy();
    return;
  }
  try {
    if (canaryKey !== undefined) await untilAborted(ctx.signal, () => client.del(canaryKey));
    await untilAborted(ctx.signal, () => client.close());
  } catch {
    if (client.isOpen) client.destroy();
  }
}

/** Why a run failed, from whatever node-redis or the socket threw, in words for the person paged. */
function classify(err: unknown, ctx: ProbeContext, doing: string, started: number, where: string): QueueFailure {
  if (err instanceof QueueFailure) return err;
  const text = messageOf(err);
  if (ctx.signal.aborted || (err instanceof Error && err.name === 'ConnectionTimeoutError')) {
    return timedOut(ctx.clock.now() - started, doing);
  }
  const code = codeOf(err);
  if (DNS_ERRORS.has(code)) return new QueueFailure('DNS', `DNS lookup of ${new URL(where).hostname} failed: ${code}`);
  const reason = connectReason(code);
  if (reason !== undefined) return new QueueFailure('CONNECT', `cannot connect to ${where}: ${reason} (${code})`);
  if (/^ERR_TLS|CERT|SSL/.test(code)) return new QueueFailure('TLS', `TLS with ${where} failed: ${text}`);
  // The server's error reply starts with its code: WRONGPASS, NOAUTH, NOPERM, …
  if (/^(WRONGPASS|NOAUTH|NOPERM)\b/.test(text)) {
    return new QueueFailure(
      'AUTH',
      `${where} refused vigil (${text.split(' ')[0]}) while ${doing.replace(/ on .*$/, '')}: check the user and password in the URL and the user's ACL`,
    );
  }
  return new QueueFailure('PROTOCOL', `${doing} failed: ${text}`);
}
