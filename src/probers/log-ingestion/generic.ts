import type { Dispatcher } from 'undici';
import { fieldOf } from '../../lib/fields.js';
import { maskedSample } from '../../lib/mask.js';
import { own } from '../../lib/own.js';
import {
  type Backend,
  type Canary,
  type Counter,
  type CountOutcome,
  describeReply,
  isSuccess,
  isTransient,
  parseJson,
  type Reply,
  type SearchOutcome,
  shownUrl,
  type TimeRange,
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
  /** Absent when the application writes the event (`trigger`): `write()` is then never called. */
  write?: TemplatedRequest;
  search: TemplatedRequest & { match: string };
  transport: Transport;
}

/** The placeholders a template may use. */
/** `canary` is `id` by the name a trigger knows it by. */
export const PLACEHOLDERS = ['id', 'canary', 'timestamp', 'timestamp_ms', 'timestamp_ns', 'probe'] as const;
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
    name: `the log store at ${shownUrl(new URL(write?.url ?? search.url).origin)}`,
    describeSearch: (c) => `${search.method} ${withoutSecrets(render(search.url, c, encodeURIComponent))} match ${search.match}`,
    async write(canary, signal) {
      if (write === undefined) return { ok: false, message: 'no write request configured' };
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
    canary: c.id,
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

/**
 * The id must be the value at `path`, or inside it (a whole log line the application wrote). The
 * line found is that value when it is a string longer than the id, else the object holding it.
 */
function matches(reply: Reply, path: string, id: string): SearchOutcome {
  const doc = parseJson(reply.text);
  if (doc === undefined) return { found: false, error: `search answered ${describeReply(reply)}, which is not JSON` };
  const parentPath = path.split('.').slice(0, -1).join('.');
  for (const parent of parentPath === '' ? [doc] : valuesAt(doc, parentPath)) {
    const last = path.split('.').at(-1) ?? '';
    for (const value of valuesAt(parent, last)) {
      if (value === id) return { found: true, line: JSON.stringify(parent) };
      if (typeof value === 'string' && value.includes(id)) return { found: true, line: value };
    }
  }
  return { found: false };
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

/** The placeholders a log-query search template may use: the range's ends. */
export const RANGE_PLACEHOLDERS = ['from', 'to', 'from_ms', 'to_ms', 'from_s', 'to_s'] as const;

/** The placeholder names in `text` that are not one of RANGE_PLACEHOLDERS. */
export function unknownRangePlaceholders(text: string): string[] {
  const known: readonly string[] = RANGE_PLACEHOLDERS;
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '').filter((name) => !known.includes(name));
}

/** A counting search for a store vigil has no backend for: the count at one JSON path, samples at another. */
export interface GenericCountOptions {
  search: TemplatedRequest & { count: string; samples?: string };
  samples: number;
  transport: Transport;
}

export function genericCounter({ search, samples, transport }: GenericCountOptions): Counter {
  const fill = (template: string, r: TimeRange, encode: (v: string) => string) => {
    const values: Record<string, string> = {
      from: new Date(r.from).toISOString(),
      to: new Date(r.to).toISOString(),
      from_ms: String(Math.round(r.from)),
      to_ms: String(Math.round(r.to)),
      from_s: String(Math.floor(r.from / 1000)),
      to_s: String(Math.floor(r.to / 1000)),
    };
    return template.replace(PLACEHOLDER, (whole, name: string) => {
      const value = own(values, name);
      return value === undefined ? whole : encode(value);
    });
  };
  return {
    name: `the log store at ${shownUrl(new URL(search.url).origin)}`,
    describe: (r) => `${search.method} ${withoutSecrets(fill(search.url, r, encodeURIComponent))} count ${search.count}`,
    async count(range, signal): Promise<CountOutcome> {
      const headers = { ...search.headers };
      if (search.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
        headers['content-type'] = 'application/json';
      }
      const reply = await transport.send(
        {
          method: search.method,
          url: new URL(fill(search.url, range, encodeURIComponent)),
          headers,
          body: search.body === undefined ? undefined : fill(search.body, range, (v) => v),
        },
        signal,
      );
      if ('error' in reply) return { error: reply.error };
      if (!isSuccess(reply.status)) return { error: describeReply(reply), permanent: !isTransient(reply.status) };
      const doc = parseJson(reply.text);
      if (doc === undefined) return { error: `search answered ${describeReply(reply)}, which is not JSON` };
      const [count] = valuesAt(doc, search.count);
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) {
        // What sits there may be a log line: shown masked, like a sample.
        const got = count === undefined ? 'nothing' : maskedSample(JSON.stringify(count));
        return { error: `expected a count (a whole number) at ${search.count}, got ${got}` };
      }
      const found = search.samples === undefined ? [] : valuesAt(doc, search.samples);
      const lines = found.slice(0, samples).map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
      return { count, samples: lines };
    },
  };
}
