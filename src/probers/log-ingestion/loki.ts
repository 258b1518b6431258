import type { Clock } from '../../lib/clock.js';
import { fieldOf } from '../../lib/fields.js';
import {
  type Backend,
  type Canary,
  type Counter,
  type CountOutcome,
  describeReply,
  isSuccess,
  isTransient,
  joinUrl,
  parseJson,
  type SearchOutcome,
  shownUrl,
  type TimeRange,
  type Transport,
} from './backend.js';

/** Where and as which stream the canary goes. */
export interface LokiOptions {
  url: string;
  /** The canary stream's labels; the search selects on them. */
  labels: Record<string, string>;
  transport: Transport;
  clock: Clock;
}

/** Loki: `POST /loki/api/v1/push`, then `GET /loki/api/v1/query_range` with a line filter on the id. */
export function lokiBackend({ url, labels, transport, clock }: LokiOptions): Backend {
  const query = (c: Canary) => `${selector(labels)} |= ${quote(c.id)}`;
  return {
    name: `Loki at ${shownUrl(url)}`,
    describeSearch: query,
    async write(canary, signal) {
      const body = { streams: [{ stream: labels, values: [[nanos(canary.at), line(canary)]] }] };
      const reply = await transport.send(
        {
          method: 'POST',
          url: joinUrl(url, '/loki/api/v1/push'),
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        },
        signal,
      );
      if ('error' in reply) return { ok: false, message: reply.error };
      return isSuccess(reply.status) ? { ok: true } : { ok: false, message: describeReply(reply) };
    },
    async search(canary, signal) {
      // A minute either side of the write tolerates clock skew between vigil and Loki.
      const params = {
        query: query(canary),
        start: nanos(canary.at - 60_000),
        end: nanos(Math.max(clock.now(), canary.at) + 60_000),
        limit: '5',
        direction: 'backward',
      };
      const reply = await transport.send({ method: 'GET', url: joinUrl(url, '/loki/api/v1/query_range', params) }, signal);
      if ('error' in reply) return { found: false, error: reply.error };
      if (!isSuccess(reply.status)) return { found: false, error: describeReply(reply), permanent: !isTransient(reply.status) };
      return inResult(parseJson(reply.text), labels, canary.id, reply.text);
    },
  };
}

/** Looks for the id in a `query_range` answer; the streams' labels need only contain ours (Loki 3 adds some). */
function inResult(doc: unknown, labels: Record<string, string>, id: string, text: string): SearchOutcome {
  const data = fieldOf(doc, 'data');
  const result = fieldOf(data, 'result');
  if (fieldOf(doc, 'status') !== 'success' || fieldOf(data, 'resultType') !== 'streams' || !Array.isArray(result)) {
    return { found: false, error: `query_range answered with no streams result: ${describeReply({ status: 200, text })}` };
  }
  for (const item of result) {
    const stream = fieldOf(item, 'stream');
    if (!Object.entries(labels).every(([k, v]) => fieldOf(stream, k) === v)) continue;
    const values = fieldOf(item, 'values');
    if (!Array.isArray(values)) continue;
    for (const v of values) {
      if (Array.isArray(v) && typeof v[1] === 'string' && v[1].includes(id)) return { found: true, line: v[1] };
    }
  }
  return { found: false };
}

/** What a log query counts over: the store, the LogQL log query, and how many sample lines to fetch. */
export interface LokiCountOptions {
  url: string;
  /** A LogQL log query (a selector and filters); vigil wraps it in `count_over_time`. */
  query: string;
  samples: number;
  transport: Transport;
}

/**
 * Loki: `GET /loki/api/v1/query` with `sum(count_over_time(QUERY [Ns]))` evaluated at the range's
 * end, so the count covers exactly (end - N s, end] however far back the range lies; then, when
 * something matched, `query_range` over the same range for a few sample lines.
 */
export function lokiCounter({ url, query, samples, transport }: LokiCountOptions): Counter {
  const metric = (r: TimeRange) => `sum(count_over_time(${query} [${Math.max(1, Math.round((r.to - r.from) / 1000))}s]))`;
  return {
    name: `Loki at ${shownUrl(url)}`,
    describe: (r) => `${metric(r)} at ${new Date(r.to).toISOString()}`,
    async count(range, signal): Promise<CountOutcome> {
      const params = { query: metric(range), time: nanos(range.to) };
      const reply = await transport.send({ method: 'GET', url: joinUrl(url, '/loki/api/v1/query', params) }, signal);
      if ('error' in reply) return { error: reply.error };
      if (!isSuccess(reply.status)) return { error: describeReply(reply), permanent: !isTransient(reply.status) };
      const count = vectorSum(parseJson(reply.text));
      if (count === undefined) return { error: `query answered with no vector result: ${describeReply(reply)}` };
      if (count === 0 || samples === 0) return { count, samples: [] };
      // Samples only illustrate: a count without them is still the finding.
      return { count, samples: await sampleLines(url, query, range, samples, transport, signal) };
    },
  };
}

/** An instant vector's values added up; Loki answers an empty vector when nothing matched. */
function vectorSum(doc: unknown): number | undefined {
  const data = fieldOf(doc, 'data');
  const result = fieldOf(data, 'result');
  if (fieldOf(doc, 'status') !== 'success' || fieldOf(data, 'resultType') !== 'vector' || !Array.isArray(result)) return undefined;
  let sum = 0;
  for (const item of result) {
    const value = fieldOf(item, 'value');
    const n = Array.isArray(value) ? Number(value[1]) : Number.NaN;
    if (!Number.isFinite(n)) return undefined;
    sum += n;
  }
  return Math.round(sum);
}

/** A few of the matched lines; none when fetching them fails. */
async function sampleLines(
  url: string,
  query: string,
  range: TimeRange,
  limit: number,
  transport: Transport,
  signal: AbortSignal,
): Promise<string[]> {
  const params = { query, start: nanos(range.from), end: nanos(range.to), limit: String(limit), direction: 'backward' };
  const reply = await transport.send({ method: 'GET', url: joinUrl(url, '/loki/api/v1/query_range', params) }, signal);
  if ('error' in reply || !isSuccess(reply.status)) return [];
  const result = fieldOf(fieldOf(parseJson(reply.text), 'data'), 'result');
  const lines: string[] = [];
  for (const item of Array.isArray(result) ? result : []) {
    const values = fieldOf(item, 'values');
    for (const v of Array.isArray(values) ? values : []) {
      if (Array.isArray(v) && typeof v[1] === 'string' && lines.length < limit) lines.push(v[1]);
    }
  }
  return lines;
}

function line(c: Canary): string {
  return `level=info msg="vigil log-ingestion canary" canary_id=${c.id} probe=${c.probe} written_at=${new Date(c.at).toISOString()}`;
}

function selector(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(', ')}}`;
}

/** A LogQL string literal (Go syntax: a JSON string is one). */
function quote(text: string): string {
  return JSON.stringify(text);
}

function nanos(epochMs: number): string {
  return (BigInt(Math.round(epochMs)) * 1_000_000n).toString();
}
