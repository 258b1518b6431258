import { type Agent, type Dispatcher, request } from 'undici';
import { untilAborted } from '../lib/abort.js';
import { formatDuration } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { fieldOf, isJsonObject } from '../lib/fields.js';
import type { Redactor } from '../lib/redactor.js';
import { DeliveryError, type SendContext } from './types.js';

/**
 * What every channel needs of an HTTP provider, in one place: one bounded JSON call, a bounded read of
 * an answer, Retry-After, and the text helpers an error message or a message body uses.
 */

/** A provider's answer, read this far (an error excerpt, a message object) and no further: longer is a proxy's page. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

/** What a JSON API answered: its status, the Retry-After header, the body as text and as JSON (when it is JSON). */
export interface JsonAnswer {
  status: number;
  retryAfter: string | undefined;
  text: string;
  /** The parsed body when it is a JSON object; `{}` otherwise. */
  json: Record<string, unknown>;
}

/**
 * Sends one JSON request to a provider and reads its answer, bounded in size and by the send's
 * deadline. Only transport failures throw (a retryable DeliveryError whose words pass through
 * `redactor`, since the URL may carry the channel's credential); every status is the caller's to judge.
 */
export async function callJson(
  url: string,
  init: { method: 'POST' | 'PATCH'; body: unknown; agent: Agent; where: string; redactor: Redactor },
  ctx: SendContext,
): Promise<JsonAnswer> {
  const started = ctx.clock.now();
  try {
    return await untilAborted(ctx.signal, async () => {
      const res = await request(url, {
        method: init.method,
        headers: { 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'vigil' },
        body: JSON.stringify(init.body),
        signal: ctx.signal,
        dispatcher: init.agent,
      });
      const header = res.headers['retry-after'];
      const text = await readCapped(res.body);
      return { status: res.statusCode, retryAfter: Array.isArray(header) ? header[0] : header, text, json: jsonObjectOf(text) };
    });
  } catch (err) {
    const code = codeOf(err) || codeOf(fieldOf(err, 'cause'));
    if (ctx.signal.aborted || code === 'UND_ERR_ABORTED' || code.endsWith('_TIMEOUT')) {
      throw new DeliveryError(`${init.where} timed out after ${formatDuration(ctx.clock.now() - started)}`, { retryable: true });
    }
    // No cause attached: undici's errors may quote the request URL, which holds the credential.
    const why = code || messageOf(err);
    throw new DeliveryError(init.redactor.text(`${init.where} failed: ${why}`), { retryable: true });
  }
}

/** A JSON number of seconds (Discord's `retry_after`, Telegram's `parameters.retry_after`) in ms, or undefined. */
export function secondsToMs(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.ceil(value * 1000) : undefined;
}

/** The start of a body on one line, for an error message when the provider said nothing structured. */
export function excerpt(text: string, max = 200): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** At most `max` UTF-16 units, never splitting a surrogate pair; `ellipsis` marks a cut (`''`: a plain cut, for keys). */
export function cut(text: string, max: number, ellipsis = '…'): string {
  if (text.length <= max) return text;
  return text.slice(0, max - ellipsis.length).replace(/[\uD800-\uDBFF]$/, '') + ellipsis;
}

/** Retry-After as delay-seconds or an HTTP date, in ms from `now`; undefined when absent or neither. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (text === undefined || text === '') return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The host of a URL for a message: never its userinfo, path or query, which may hold a credential. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the configured url';
  }
}

/** Whether a link is an absolute http(s) URL, the only kind providers accept for buttons and embeds. */
export function isAbsoluteHttp(href: string | undefined): href is string {
  if (href === undefined) return false;
  try {
    const u = new URL(href);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** A body parsed as a JSON object; `{}` for anything else (a proxy's HTML page, an array, bad JSON). */
export function jsonObjectOf(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return isJsonObject(v) ? v : {};
  } catch {
    return {};
  }
}

/** Reads up to `limit` bytes of an answer as text, then drops the rest of the stream. */
export async function readCapped(body: Dispatcher.ResponseData['body'], limit = MAX_RESPONSE_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    // A Readable yields `any`: checked here, not trusted.
    const data: unknown = chunk;
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data instanceof Uint8Array ? data : String(data));
    const room = limit - size;
    chunks.push(buf.length > room ? buf.subarray(0, room) : buf);
    size += Math.min(buf.length, room);
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
