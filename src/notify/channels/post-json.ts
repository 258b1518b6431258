/**
 * One JSON POST to a webhook-style provider (Slack incoming webhooks, Teams workflows): the request,
 * a bounded read of the answer, and the transport failure as a DeliveryError. What an answer's status
 * means is each provider's own; the channel decides that.
 */
import { type Agent, request } from 'undici';
import { untilAborted } from '../../lib/abort.js';
import { formatDuration } from '../../lib/duration.js';
import { codeOf, messageOf } from '../../lib/errors.js';
import { fieldOf } from '../../lib/fields.js';
import type { Redactor } from '../../lib/redactor.js';
import { DeliveryError, type SendContext } from '../types.js';

/** Providers answer in a few bytes ("ok", "1"); anything longer is a proxy's page, read only this far. */
const MAX_ANSWER_BYTES = 16 * 1024;

/** What the provider said: its status, the start of its body, and its Retry-After header. */
export interface JsonAnswer {
  status: number;
  text: string;
  retryAfter?: string;
}

/** Posts `body` as JSON; throws a retryable DeliveryError (its text redacted) when no answer came back. */
export async function postJson(
  url: URL,
  body: unknown,
  at: { where: string; agent: Agent; ctx: SendContext; started: number; redactor: Redactor },
): Promise<JsonAnswer> {
  const { ctx } = at;
  try {
    return await untilAborted(ctx.signal, async () => {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'vigil' },
        body: JSON.stringify(body),
        signal: ctx.signal,
        dispatcher: at.agent,
      });
      const first = res.headers['retry-after'];
      const text = await readCapped(res.body, MAX_ANSWER_BYTES);
      return { status: res.statusCode, text, ...(first === undefined ? {} : { retryAfter: Array.isArray(first) ? first[0] : first }) };
    });
  } catch (err) {
    // No cause on these errors: undici's can quote the URL, and the URL is the secret here.
    const code = codeOf(err) || codeOf(fieldOf(err, 'cause'));
    if (ctx.signal.aborted || code === 'UND_ERR_ABORTED' || code.endsWith('_TIMEOUT')) {
      throw new DeliveryError(`${at.where} timed out after ${formatDuration(ctx.clock.now() - at.started)}`, { retryable: true });
    }
    // Every transport failure may heal (DNS, refused, reset); the worker's maximum age bounds the retries.
    throw new DeliveryError(`${at.where} failed: ${at.redactor.text(code || messageOf(err))}`, { retryable: true });
  }
}

/** The answer's body on one line, redacted and cut short, for an error message. */
export function excerpt(text: string, redactor: Redactor, max = 200): string {
  const line = redactor.text(text).replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** Reads up to `limit` bytes as text, then drops the rest of the stream. */
async function readCapped(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const room = limit - size;
    chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
    size += Math.min(chunk.length, room);
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
