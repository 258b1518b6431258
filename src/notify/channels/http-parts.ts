import type { Dispatcher } from 'undici';

/** What a channel reads of a provider's answer: its answers are a few hundred bytes; anything longer is a proxy's page, read only this far. */
export const MAX_RESPONSE = 64 * 1024;

/** Retry-After in seconds or as an HTTP date, in milliseconds from now; undefined when absent or unreadable. */
export function retryAfter(header: string | string[] | undefined, now: number): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** A response body as text, at most MAX_RESPONSE bytes: the rest is not read (the stream is destroyed). */
export async function readBounded(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    // A Readable yields `any`: checked here, not trusted.
    const data: unknown = chunk;
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data instanceof Uint8Array ? data : String(data));
    chunks.push(buf);
    size += buf.length;
    if (size >= MAX_RESPONSE) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, MAX_RESPONSE).toString('utf8');
}

/** At most `max` UTF-16 units, never splitting a surrogate pair; `ellipsis` marks a cut. */
export function cut(text: string, max: number, ellipsis = ''): string {
  if (text.length <= max) return text;
  const head = text.slice(0, max - ellipsis.length).replace(/[\uD800-\uDBFF]$/, '');
  return head + ellipsis;
}

/** The host of a URL for a message (never its path or query, which may hold a key); the text itself when it is no URL. */
export function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
