import { fieldOf } from '../../lib/fields.js';
import {
  type Backend,
  describeReply,
  isSuccess,
  isTransient,
  joinUrl,
  parseJson,
  type Reply,
  type SearchOutcome,
  shownUrl,
  type Transport,
} from './backend.js';

/** Where the canary document goes and which field carries its id. */
export interface ElasticsearchOptions {
  /** Only changes how the store is named in messages: both speak the same document API. */
  flavor: 'elasticsearch' | 'opensearch';
  url: string;
  index: string;
  field: string;
  transport: Transport;
}

/**
 * Elasticsearch or OpenSearch: `POST /INDEX/_doc`, then `POST /INDEX/_search` with a term query on the id.
 * A document is searchable only after a refresh, which is exactly the delay this measures.
 */
export function elasticsearchBackend({ flavor, url, index, field, transport }: ElasticsearchOptions): Backend {
  const json = { 'content-type': 'application/json' };
  const path = `/${encodeURIComponent(index)}`;
  return {
    name: `${flavor === 'opensearch' ? 'OpenSearch' : 'Elasticsearch'} at ${shownUrl(url)}`,
    describeSearch: (c) => `POST ${path}/_search ${JSON.stringify(searchBody(field, c.id))}`,
    async write(canary, signal) {
      const doc = {
        '@timestamp': new Date(canary.at).toISOString(),
        [field]: canary.id,
        message: `vigil log-ingestion canary ${canary.id}`,
        probe: canary.probe,
      };
      const reply = await transport.send(
        { method: 'POST', url: joinUrl(url, `${path}/_doc`), headers: json, body: JSON.stringify(doc) },
        signal,
      );
      if ('error' in reply) return { ok: false, message: reply.error };
      return isSuccess(reply.status) ? { ok: true } : { ok: false, message: describeError(reply) };
    },
    async search(canary, signal) {
      const reply = await transport.send(
        { method: 'POST', url: joinUrl(url, `${path}/_search`), headers: json, body: JSON.stringify(searchBody(field, canary.id)) },
        signal,
      );
      if ('error' in reply) return { found: false, error: reply.error };
      if (!isSuccess(reply.status)) return { found: false, error: describeError(reply), permanent: !isTransient(reply.status) };
      return inHits(reply, field, canary.id);
    },
  };
}

/**
 * Term queries on both `field` and `field.keyword`: a field mapped as keyword matches the first, and a
 * string field left to dynamic mapping (text, with a keyword sub-field) matches only the second.
 */
function searchBody(field: string, id: string) {
  return {
    size: 1,
    query: { bool: { should: [{ term: { [field]: id } }, { term: { [`${field}.keyword`]: id } }], minimum_should_match: 1 } },
  };
}

/** Reads the fields of a search answer (`hits.hits[]._source`, `_shards`, `timed_out`) as unknowns: the store's JSON is checked, not trusted. */
function inHits(reply: Reply, field: string, id: string): SearchOutcome {
  const doc = parseJson(reply.text);
  const hits = fieldOf(fieldOf(doc, 'hits'), 'hits');
  if (!Array.isArray(hits)) {
    return { found: false, error: `search answered without hits: ${describeReply(reply)}` };
  }
  const holds = (source: unknown) => fieldOf(source, field) === id || sourceAt(source, field) === id;
  if (hits.some((h) => holds(fieldOf(h, '_source')))) return { found: true };
  // A 200 can still be partial: a miss on failed shards says nothing about the event.
  const shards = fieldOf(doc, '_shards');
  const failed = fieldOf(shards, 'failed');
  if (typeof failed === 'number' && failed > 0) {
    const failures = fieldOf(shards, 'failures');
    const first = Array.isArray(failures) ? fieldOf(failures[0], 'reason') : undefined;
    const why = first ? `: ${[fieldOf(first, 'type'), fieldOf(first, 'reason')].filter(Boolean).join(': ')}` : '';
    return { found: false, error: `search answered 200 but ${failed} of ${fieldOf(shards, 'total') ?? '?'} shards failed${why}` };
  }
  if (fieldOf(doc, 'timed_out') === true) return { found: false, error: 'search answered 200 but timed out (partial results)' };
  return { found: false };
}

/** `_source` keeps dotted field names as they were written, or as objects when another writer nested them. */
function sourceAt(source: unknown, field: string): unknown {
  let cur: unknown = source;
  for (const part of field.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = fieldOf(cur, part);
  }
  return cur;
}

/** Elasticsearch errors are JSON: `type: reason` reads better than the raw document's first 200 characters. */
function describeError(reply: Reply): string {
  const err = fieldOf(parseJson(reply.text), 'error');
  if (typeof err === 'string') return describeReply(reply, err);
  const type = fieldOf(err, 'type');
  const reason = fieldOf(err, 'reason');
  if (type !== undefined || reason !== undefined) {
    return describeReply(reply, [type, reason].filter(Boolean).join(': '));
  }
  return describeReply(reply);
}
