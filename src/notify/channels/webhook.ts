import { createHmac } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { Agent, request } from 'undici';
import { untilAborted } from '../../lib/abort.js';
import { formatDuration } from '../../lib/duration.js';
import { codeOf, messageOf } from '../../lib/errors.js';
import { fieldOf } from '../../lib/fields.js';
import { render } from '../message.js';
import { parseRetryAfter, readCapped } from '../provider-http.js';
import { DeliveryError, defineChannel, type Notification, type SendContext, type SendResult } from '../types.js';

const schema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// URL' }),
    /** Signs every request (`x-vigil-signature`) so the receiver can tell vigil from anyone else. */
    secret: Type.Optional(
      Type.String({ minLength: 16, expected: 'a shared secret of at least 16 characters, from ${HOOK_SECRET} or ${file:…}' }),
    ),
    /** Extra request headers (e.g. an Authorization for the receiver); cannot replace the signed ones. */
    headers: Type.Record(Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), Type.String(), {
      default: {},
      // A Record with a key pattern only describes matching keys; without this, a bad name would pass.
      additionalProperties: false,
      expected: 'a map of header names to strings',
    }),
  },
  { additionalProperties: false },
);

/** A `webhook` channel's config, defaults applied. */
export type WebhookConfig = Static<typeof schema>;

/** The JSON a receiver gets; `version` changes only when a field changes meaning or goes away. */
export interface WebhookPayload {
  version: 1;
  /** The outbox id: the same on every retry of one notification, so a receiver can drop duplicates. */
  deliveryId: number;
  action: Notification['action'];
  dedupKey: string;
  incident: Notification['incident'];
  links: Notification['links'];
  title: string;
  text: string;
}

const EXCERPT_CHARS = 200;

/** Headers vigil owns: a configured header of the same name is dropped rather than sent twice or forged. */
const OWN_HEADERS = new Set(['content-type', 'content-length', 'host', 'transfer-encoding', 'x-vigil-timestamp', 'x-vigil-signature']);

export const webhook = defineChannel({
  schema,
  person: 'own-target',
  create(name, config, deps) {
    const log = deps.logger.child({ channel: name, type: 'webhook' });
    const url = new URL(config.url);
    // Header values may carry credentials for the receiver: they are scrubbed from anything a receiver echoes back.
    const secrets = [config.secret, ...Object.values(config.headers)].filter((s): s is string => s !== undefined && s.length >= 8);
    const extra = Object.fromEntries(Object.entries(config.headers).filter(([k]) => !OWN_HEADERS.has(k.toLowerCase())));
    const dropped = Object.keys(config.headers).filter((k) => OWN_HEADERS.has(k.toLowerCase()));
    if (dropped.length > 0) log.warn({ headers: dropped }, 'webhook headers vigil sets itself are ignored');
    // Backstops only: the worker's per-send signal normally ends a request first.
    const agent = new Agent({ connect: { timeout: 10_000 }, headersTimeout: 30_000, bodyTimeout: 30_000 });

    return {
      async send(n: Notification, ctx: SendContext): Promise<SendResult> {
        const started = ctx.clock.now();
        const msg = render(n, started);
        const payload: WebhookPayload = {
          version: 1,
          deliveryId: n.id,
          action: n.action,
          dedupKey: n.dedupKey,
          incident: n.incident,
          links: n.links,
          title: msg.title,
          text: msg.text,
        };
        const body = JSON.stringify(payload);
        const timestamp = String(Math.floor(started / 1000));
        const headers: Record<string, string> = {
          'user-agent': 'vigil',
          ...lowerKeys(extra),
          'content-type': 'application/json',
          'x-vigil-timestamp': timestamp,
        };
        if (config.secret !== undefined) headers['x-vigil-signature'] = sign(config.secret, timestamp, body);

        const where = `webhook POST to ${url.host}`;
        let status: number;
        let excerpt: string;
        let retryAfter: string | undefined;
        try {
          ({ status, excerpt, retryAfter } = await untilAborted(ctx.signal, async () => {
            const res = await request(url, { method: 'POST', headers, body, signal: ctx.signal, dispatcher: agent });
            const first = res.headers['retry-after'];
            const text = await readCapped(res.body);
            return { status: res.statusCode, excerpt: text, retryAfter: Array.isArray(first) ? first[0] : first };
          }));
        } catch (err) {
          throw networkError(err, where, ctx, started);
        }

        if (status >= 200 && status < 300) return {};
        const said = oneLine(scrub(excerpt, secrets)).slice(0, EXCERPT_CHARS);
        const answered = `${where} answered ${status}${said ? `: ${said}` : ''}`;
        if (status === 408 || status === 425 || status === 429 || status >= 500) {
          const wait = status === 429 || status === 503 ? parseRetryAfter(retryAfter, ctx.clock.now()) : undefined;
          throw new DeliveryError(answered, { retryable: true, ...(wait === undefined ? {} : { retryAfterMs: wait }) });
        }
        const hint = status >= 300 && status < 400 ? ' (redirects are not followed: set url to the final address)' : '';
        throw new DeliveryError(`${answered}${hint}`, { retryable: false });
      },
      async close() {
        await agent.close();
      },
    };
  },
});

/** `sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`: the timestamp is signed so a capture cannot be replayed later. */
export function sign(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

function networkError(err: unknown, where: string, ctx: SendContext, started: number): DeliveryError {
  const code = codeOf(err) || codeOf(fieldOf(err, 'cause'));
  if (ctx.signal.aborted || code === 'UND_ERR_ABORTED' || code.endsWith('_TIMEOUT')) {
    return new DeliveryError(`${where} timed out after ${formatDuration(ctx.clock.now() - started)}`, { retryable: true, cause: err });
  }
  // Every transport failure may heal (DNS, refused, reset, TLS mid-rotation); the worker's maximum age bounds it.
  const why = code || messageOf(err);
  return new DeliveryError(`${where} failed: ${why}`, { retryable: true, cause: err });
}

function lowerKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function scrub(text: string, secrets: string[]): string {
  return secrets.reduce((t, s) => t.split(s).join('<secret>'), text);
}
