import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, SocketOptions } from 'amqplib';
import { untilAborted } from '../../lib/abort.js';
import { codeOf, messageOf } from '../../lib/errors.js';
import { lazy } from '../../lib/lazy.js';
import { connectReason, DNS_ERRORS } from '../sockets.js';
import type { ProbeContext, ProbeResult } from '../types.js';
import { shownUrl } from '../url-credentials.js';
import { judgeQueue, outcome, type QueueCheck, QueueFailure, timedOut } from './shared.js';

const amqpLib = lazy(() => import('amqplib'));

/**
 * An AMQP 0-9-1 broker (RabbitMQ): a canary published with confirms to a temporary queue and
 * consumed back, then the named work queue's consumers and ready messages. The connection carries
 * the run's signal down to its socket, so an abort at the deadline destroys it wherever the run is.
 */
export async function probeAmqp(spec: QueueCheck, ctx: ProbeContext): Promise<ProbeResult> {
  const where = shownUrl(spec.url);
  const started = ctx.clock.now();
  const values: Record<string, number> = {};
  let doing = `connecting to ${where}`;
  let conn: ChannelModel | undefined;
  let blocked: string | undefined;
  // Each await of the broker ends at the run's deadline, whether or not amqplib noticed the abort.
  const step = <T>(what: string, run: () => Promise<T>): Promise<T> => {
    doing = what;
    return untilAborted(ctx.signal, run);
  };
  try {
    // amqplib hands these to net.connect / tls.connect: the socket is destroyed when the run aborts,
    // so nothing stays open past the deadline.
    const socketOptions: SocketOptions & { signal: AbortSignal } = {
      signal: ctx.signal,
      timeout: Math.max(1, ctx.deadline - ctx.clock.now()),
      clientProperties: { connection_name: `vigil ${spec.id}` },
    };
    const { connect } = await amqpLib();
    conn = await step(doing, () => connect(spec.url, socketOptions));
    // An 'error' nobody listens to would crash vigil; the failure is read where it surfaces instead.
    conn.on('error', () => {});
    conn.on('blocked', (reason: string) => {
      blocked = reason;
    });
    const model = conn;
    if (spec.canary) values.round_trip_ms = await roundTrip(model, step, where, ctx);
    if (spec.queue !== undefined) {
      const name = spec.queue;
      // A passive declare of a missing queue closes its channel: one of its own, so the canary's is untouched.
      const channel = await step(`opening a channel on ${where}`, () => model.createChannel());
      channel.on('error', () => {});
      const q = await step(`checking queue ${name} on ${where}`, () => channel.checkQueue(name)).catch((err: unknown) => {
        if (codeOf(err) === '404') throw new QueueFailure('QUEUE_MISSING', `queue ${name} does not exist on ${where}`);
        throw err;
      });
      values.depth = q.messageCount;
      values.consumers = q.consumerCount;
      await step(`closing the channel on ${where}`, () => channel.close()).catch(() => {});
    }
    return outcome(values, undefined, spec.queue === undefined ? [] : judgeQueue(spec, values.depth ?? 0, values.consumers));
  } catch (err) {
    const failure = classify(err, ctx, doing, started, where, blocked);
    return outcome(values, failure, []);
  } finally {
    // A graceful close when there is time; at the deadline the aborted signal has destroyed the socket already.
    const open = conn;
    if (open && !ctx.signal.aborted) await untilAborted(ctx.signal, () => open.close()).catch(() => {});
  }
}

type Step = <T>(what: string, run: () => Promise<T>) => Promise<T>;

/** Publishes a canary to a server-named, exclusive, auto-delete queue and waits for it to come back; its milliseconds. */
async function roundTrip(conn: ChannelModel, step: Step, where: string, ctx: ProbeContext): Promise<number> {
  const channel: ConfirmChannel = await step(`opening a confirm channel on ${where}`, () => conn.createConfirmChannel());
  channel.on('error', () => {});
  try {
    // Exclusive: gone with this connection even if the close below never happens.
    const { queue } = await step(`declaring the canary queue on ${where}`, () =>
      channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false }),
    );
    const id = randomUUID();
    let arrived: (at: number) => void = () => {};
    const delivered = new Promise<number>((resolve) => {
      arrived = resolve;
    });
    await step(`subscribing to the canary queue on ${where}`, () =>
      channel.consume(
        queue,
        (msg) => {
          if (msg?.properties.messageId === id) arrived(ctx.clock.now());
        },
        { noAck: true },
      ),
    );
    const sent = ctx.clock.now();
    await step(`waiting for ${where} to confirm the canary`, () => publish(channel, queue, id));
    const at = await step(`waiting for the canary to come back from ${where}`, () => delivered);
    return at - sent;
  } finally {
    await closeQuietly(channel, ctx.signal);
  }
}

/** Publishes with a publisher confirm: resolves when the broker has taken the message, rejects on a nack. */
function publish(channel: ConfirmChannel, queue: string, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.sendToQueue(queue, Buffer.from(JSON.stringify({ canary: id })), { messageId: id, contentType: 'application/json' }, (err) => {
      if (err) reject(new QueueFailure('PROTOCOL', `${queue}: the broker refused the canary (nack)`));
      else resolve();
    });
  });
}

/** Closes a channel unless the run is over (then its connection's socket is gone, and the channel with it). */
async function closeQuietly(channel: Channel, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  try {
    await untilAborted(signal, () => channel.close());
  } catch {
    // Already closed with its connection: nothing is left to release.
  }
}

/** Why a run failed, from whatever amqplib or the socket threw, in words for the person paged. */
function classify(
  err: unknown,
  ctx: ProbeContext,
  doing: string,
  started: number,
  where: string,
  blocked: string | undefined,
): QueueFailure {
  if (err instanceof QueueFailure) return err;
  if (ctx.signal.aborted || messageOf(err) === 'connect ETIMEDOUT') {
    const failure = timedOut(ctx.clock.now() - started, doing);
    // A broker in a memory or disk alarm takes publishes and sits on them: say so, it is the fix.
    if (blocked !== undefined) failure.message += ` (the broker blocked publishing: ${blocked})`;
    return failure;
  }
  const code = codeOf(err);
  if (DNS_ERRORS.has(code)) return new QueueFailure('DNS', `DNS lookup of ${new URL(where).hostname} failed: ${code}`);
  const reason = connectReason(code);
  if (reason !== undefined) return new QueueFailure('CONNECT', `cannot connect to ${where}: ${reason} (${code})`);
  if (/^ERR_TLS|CERT|SSL/.test(code)) return new QueueFailure('TLS', `TLS with ${where} failed: ${messageOf(err)}`);
  // The broker's own close: "403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused …"".
  const closed = /(\d{3}) \(([A-Z-]+)\) with message "(.*)"/s.exec(messageOf(err));
  if (closed) {
    const [, status, name, said] = closed;
    // "ACCESS_REFUSED - access to …": the name is in the message already.
    const text = (said ?? '').replace(/^[A-Z_]+ - /, '');
    if (status === '403' && doing.startsWith('connecting')) {
      return new QueueFailure('AUTH', `${where} refused the login (ACCESS_REFUSED): check the user and password in the URL`);
    }
    return new QueueFailure(
      'PROTOCOL',
      `${where} closed the ${doing.startsWith('connecting') ? 'connection' : 'channel'} while ${doing.replace(/ on .*$/, '')}: ${status} ${name}: ${text}`,
    );
  }
  // A refused vhost: amqplib reports the broker's close of the connection.open without its text.
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(messageOf(err))) {
    return new QueueFailure('AUTH', `${where} refused to open virtual host ${vhostOf(where)}: does it exist, and may this user use it?`);
  }
  return new QueueFailure('PROTOCOL', `${doing} failed: ${messageOf(err)}`);
}

/** The virtual host a URL names, as amqplib reads it: no path is `/`. */
function vhostOf(url: string): string {
  const path = new URL(url).pathname.slice(1);
  try {
    return path === '' ? '/' : decodeURIComponent(path);
  } catch {
    return path;
  }
}
