import type { Clock } from '../../lib/clock.js';
import { fieldOf } from '../../lib/fields.js';
import {
  type Backend,
  type Canary,
  describeReply,
  isSuccess,
  isTransient,
  joinUrl,
  parseJson,
  type SearchOutcome,
  shownUrl,
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
    if (values.some((v) => Array.isArray(v) && typeof v[1] === 'string' && v[1].includes(id))) return { found: true };
  }
  return { found: false };
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
