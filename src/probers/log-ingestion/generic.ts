import type { Dispatcher } from 'undici';
import { fieldOf } from '../../lib/fields.js';
import { own } from '../../lib/own.js';
import {
  type Backend,
  type Canary,
  describeReply,
  isSuccess,
  isTransient,
  parseJson,
  type Reply,
  type SearchOutcome,
  shownUrl,
  type Transport,
} from './backend.js';

/** One templated request of the generic backend. */
export interface TemplatedRequest {
  url: string;
  method: Dispatcher.HttpMethod;
  headers: Record<string, string>;
  body?: string;
}

/** The write/search pair for a store vigil has no backend for. */
export interface GenericOptions {
  write: TemplatedRequest;
  search: TemplatedRequest & { match: string };
  transport: Transport;
}

/** The placeholders a template may use. */
export const PLACEHOLDERS = ['id', 'timestamp', 'timestamp_ms', 'timestamp_ns', 'probe'] as const;
const PLACEHOLDER = /\{\{\s*([^}]*?)\s*\}\}/g;

/** The placeholder names in `text` that are not one of PLACEHOLDERS. */
export function unknownPlaceholders(text: string): string[] {
  // Widened, not cast: any name may be asked about.
  const known: readonly string[] = PLACEHOLDERS;
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '').filter((name) => !known.includes(name));
}

export function hasPlaceholder(text: string | undefined, name: (typeof PLACEHOLDERS)[number]): boolean {
  return text !== undefined && [...text.matchAll(PLACEHOLDER)].some((m) => m[1] === name);
}

/** Any store with an HTTP API: POST the event to one URL, GET another, and compare a JSON field with the id. */
export function genericBackend({ write, search, transport }: GenericOptions): Backend {
  return {
    name: `the log store at ${shownUrl(new URL(write.url).origin)}`,
    describeSearch: (c) => `${search.method} ${withoutSecrets(render(search.url, c, encodeURIComponent))} match ${search.match}`,
    async write(canary, signal) {
      const reply = await transport.send(prepare(write, canary), signal);
      if ('error' in reply) return { ok: false, message: reply.error };
      return isSuccess(reply.status) ? { ok: true } : { ok: false, message: describeReply(reply) };
    },
    async search(canary, signal) {
      const reply = await transport.send(prepare(search, canary), signal);
      if ('error' in reply) return { found: false, error: reply.error };
      // An API that serves events by id answers 404 until the event arrives.
      if (reply.status === 404) return { found: false };
      if (!isSuccess(reply.status)) return { found: false, error: describeReply(reply), permanent: !isTransient(reply.status) };
      return matches(reply, search.match, canary.id);
    },
  };
}

/** Some APIs take their key in the query string: the search kept with the run must not show it. */
function withoutSecrets(url: string): string {
  const u = new URL(shownUrl(url));
  for (const name of [...u.searchParams.keys()]) {
    if (/key|token|secret|passw|auth|sig/i.test(name)) u.searchParams.set(name, '<secret>');
  }
  return u.href;
}

function prepare(req: TemplatedRequest, canary: Canary) {
  const headers = { ...req.headers };
  if (req.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/json';
  }
  return {
    method: req.method,
    url: new URL(render(req.url, canary, encodeURIComponent)),
    headers,
    body: req.body === undefined ? undefined : render(req.body, canary, (v) => v),
  };
}

/** Fills the placeholders; every value is a UUID, a timestamp, digits or a probe id, so it is safe inside JSON strings. */
function render(template: string, c: Canary, encode: (v: string) => string): string {
  const values: Record<string, string> = {
    id: c.id,
    timestamp: new Date(c.at).toISOString(),
    timestamp_ms: String(Math.round(c.at)),
    timestamp_ns: (BigInt(Math.round(c.at)) * 1_000_000n).toString(),
    probe: c.probe,
  };
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    const value = own(values, name);
    return value === undefined ? whole : encode(value);
  });
}

function matches(reply: Reply, path: string, id: string): SearchOutcome {
  const doc = parseJson(reply.text);
  if (doc === undefined) return { found: false, error: `search answered ${describeReply(reply)}, which is not JSON` };
  return valuesAt(doc, path).some((v) => v === id) ? { found: true } : { found: false };
}

/** Every value at a dotted path; `*` stands for each element of an array or each value of an object. */
export function valuesAt(doc: unknown, path: string): unknown[] {
  let current: unknown[] = [doc];
  for (const part of path.replace(/^\$\.?/, '').split('.')) {
    if (part === '') continue;
    const next: unknown[] = [];
    for (const node of current) {
      if (node === null || typeof node !== 'object') continue;
      if (part === '*') next.push(...Object.values(node));
      else if (Object.hasOwn(node, part)) next.push(fieldOf(node, part));
    }
    current = next;
  }
  return current;
}
