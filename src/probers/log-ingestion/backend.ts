import { STATUS_CODES } from 'node:http';
import { Agent, type Dispatcher, request } from 'undici';
import type { Clock } from '../../lib/clock.js';
import { codeOf, messageOf } from '../../lib/errors.js';
import { fieldOf } from '../../lib/fields.js';

/** `user:pass@` in a store URL becomes a Basic authorization header (undici does not send it). */
export { credentialsHeader, shownUrl } from '../url-credentials.js';

/** The event a run writes and then looks for. */
export interface Canary {
  /** A random UUID: the only thing that identifies this run's event in the store. */
  id: string;
  /** When the write was sent, epoch ms: the event's own timestamp and the start of the latency. */
  at: number;
  /** The probe definition's id, written into the event so a person can trace it. */
  probe: string;
}

/** The outcome of writing the canary. */
export type WriteOutcome = { ok: true } | { ok: false; message: string };

/**
 * The outcome of one search. `line` is the log line found (Loki's line, a document's `_source` as
 * JSON), for checking its fields. `permanent` errors (a bad query, no credentials) end the run at once.
 */
export type SearchOutcome = { found: true; line?: string } | { found: false; error?: string; permanent?: boolean };

/** The time range a count covers, epoch ms, `from` inclusive and `to` exclusive. */
export interface TimeRange {
  from: number;
  to: number;
}

/** The outcome of one count: how many lines matched, and a few of them (unmasked: the caller masks). */
export type CountOutcome = { count: number; samples: string[] } | { error: string; permanent?: boolean };

/** A log store asked how many lines a query matches over a time range (the `log-query` kind). */
export interface Counter {
  /** Shown in messages, e.g. `Loki at http://loki:3100`. */
  readonly name: string;
  /** The query as a person would repeat it, kept with the run. */
  describe(range: TimeRange): string;
  count(range: TimeRange, signal: AbortSignal): Promise<CountOutcome>;
}

/** One log store: how a canary is written and how it is looked for. */
export interface Backend {
  /** Shown in messages, e.g. `Loki at http://loki:3100`. */
  readonly name: string;
  /** The search as a person would repeat it (a LogQL query, a search URL), kept with the run. */
  describeSearch(canary: Canary): string;
  /** Not called when the application itself logs the canary (`trigger`). */
  write(canary: Canary, signal: AbortSignal): Promise<WriteOutcome>;
  search(canary: Canary, signal: AbortSignal): Promise<SearchOutcome>;
}

/** Responses larger than this are not read further: a canary search never needs more. */
export const MAX_BODY_BYTES = 1_048_576;
const EXCERPT_CHARS = 200;

/** A response read whole (up to MAX_BODY_BYTES). */
export interface Reply {
  status: number;
  text: string;
}

/** One request: the headers given here are added to the transport's own (auth, tenant). */
export interface Send {
  method: Dispatcher.HttpMethod;
  url: URL;
  headers?: Record<string, string>;
  body?: string;
}

/** HTTP for one run: its own connection pool, closed when the run ends, and the run's headers on every request. */
export interface Transport {
  send(req: Send, signal: AbortSignal): Promise<Reply | { error: string }>;
  close(): Promise<void>;
}

export function createTransport(headers: Record<string, string>, clock: Clock): Transport {
  const agent = new Agent({ connections: 2 });
  return {
    async send(req, signal) {
      const started = clock.now();
      try {
        const res = await request(req.url, {
          dispatcher: agent,
          method: req.method,
          headers: { 'user-agent': 'vigil/0.1', ...headers, ...req.headers },
          body: req.body,
          signal,
        });
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of res.body) {
          // A Readable yields `any`: checked here, not trusted.
          const data: unknown = chunk;
          const buf = Buffer.isBuffer(data) ? data : Buffer.from(data instanceof Uint8Array ? data : String(data));
          size += buf.length;
          if (size > MAX_BODY_BYTES) {
            res.body.destroy();
            return { error: `${statusLine(res.statusCode)} with a body larger than 1 MiB` };
          }
          chunks.push(buf);
        }
        return { status: res.statusCode, text: Buffer.concat(chunks, size).toString('utf8') };
      } catch (err) {
        return { error: networkError(err, req.url, signal, clock.now() - started) };
      }
    },
    async close() {
      await agent.destroy().catch(() => {});
    },
  };
}

/** Statuses worth polling through: the store is busy or restarting, not misconfigured. */
export function isTransient(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** `401 Unauthorized: no org id` — the status and at most 200 characters of the body. */
export function describeReply(reply: Reply, body: string = reply.text): string {
  const text = excerpt(body);
  return text === '' ? statusLine(reply.status) : `${statusLine(reply.status)}: ${text}`;
}

export function excerpt(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > EXCERPT_CHARS ? `${oneLine.slice(0, EXCERPT_CHARS - 1)}…` : oneLine;
}

export function statusLine(status: number): string {
  const text = STATUS_CODES[status];
  return text ? `${status} ${text}` : `HTTP ${status}`;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `base` with `path` appended to its own path, so stores behind a path prefix (`/loki`) work. */
export function joinUrl(base: string, path: string, query?: Record<string, string>): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
  url.username = '';
  url.password = '';
  return url;
}

function networkError(err: unknown, url: URL, signal: AbortSignal, elapsed: number): string {
  const code = codeOf(err) || codeOf(fieldOf(err, 'cause'));
  if (signal.aborted || fieldOf(err, 'name') === 'AbortError' || code === 'UND_ERR_ABORTED' || code.endsWith('_TIMEOUT')) {
    return `no answer within ${(elapsed / 1000).toFixed(1)}s`;
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `DNS lookup failed for ${url.hostname} (${code})`;
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `cannot connect to ${url.host} (${code})`;
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return `connection to ${url.host} reset (${code})`;
  return `request to ${url.host} failed: ${code ? `${code}: ` : ''}${messageOf(err)}`;
}
