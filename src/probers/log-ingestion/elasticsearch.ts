import { fieldOf } from '../../lib/fields.js';
import {
  type Backend,
  type Counter,
  type CountOutcome,
  describeReply,
  isSuccess,
  isTransient,
  joinUrl,
  parseJson,
  type Reply,
  type SearchOutcome,
  shownUrl,
  type TimeRange,
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
  /**
   * The application wrote the line (`trigger`), so the canary may sit in any field (a URL, a message):
   * the search adds a `query_string` phrase over all fields to the term queries on `field`.
   */
  anyField?: boolean;
}

/**
 * Elasticsearch or OpenSearch: `POST /INDEX/_doc`, then `POST /INDEX/_search` with a term query on the id.
 * A document is searchable only after a refresh, which is exactly the delay this measures.
 */
export function elasticsearchBackend({ flavor, url, index, field, transport, anyField = false }: ElasticsearchOptions): Backend {
  const json = { 'content-type': 'application/json' };
  const path = `/${encodeURIComponent(index)}`;
  return {
    name: `${flavor === 'opensearch' ? 'OpenSearch' : 'Elasticsearch'} at ${shownUrl(url)}`,
    describeSearch: (c) => `POST ${path}/_search ${JSON.stringify(searchBody(field, c.id, anyField))}`,
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
        {
          method: 'POST',
          url: joinUrl(url, `${path}/_search`),
          headers: json,
          body: JSON.stringify(searchBody(field, canary.id, anyField)),
        },
        signal,
      );
      if ('error' in reply) return { found: false, error: reply.error };
      if (!isSuccess(reply.status)) return { found: false, error: describeError(reply), permanent: !isTransient(reply.status) };
      return inHits(reply, field, canary.id, anyField);
    },
  };
}

/**
 * Term queries on both `field` and `field.keyword`: a field mapped as keyword matches the first, and a
 * string field left to dynamic mapping (text, with a keyword sub-field) matches only the second.
 */
function searchBody(field: string, id: string, anyField: boolean) {
  const should: unknown[] = [{ term: { [field]: id } }, { term: { [`${field}.keyword`]: id } }];
  // A quoted phrase: the standard analyser splits a UUID at its dashes, the phrase keeps the parts in order.
  if (anyField) should.push({ query_string: { query: JSON.stringify(id) } });
  return { size: 1, query: { bool: { should, minimum_should_match: 1 } } };
}

/** Reads the fields of a search answer (`hits.hits[]._source`, `_shards`, `timed_out`) as unknowns: the store's JSON is checked, not trusted. */
function inHits(reply: Reply, field: string, id: string, anyField: boolean): SearchOutcome {
  const doc = parseJson(reply.text);
  const hits = fieldOf(fieldOf(doc, 'hits'), 'hits');
  if (!Array.isArray(hits)) {
    return { found: false, error: `search answered without hits: ${describeReply(reply)}` };
  }
  const holds = (source: unknown) =>
    fieldOf(source, field) === id || sourceAt(source, field) === id || (anyField && JSON.stringify(source ?? null).includes(id));
  for (const hit of hits) {
    const source = fieldOf(hit, '_source');
    if (holds(source)) return { found: true, line: JSON.stringify(source) };
  }
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

/** What a log query counts over in Elasticsearch or OpenSearch. */
export interface ElasticsearchCountOptions {
  flavor: 'elasticsearch' | 'opensearch';
  url: string;
  /** An index, alias, data stream or pattern (`logs-*`). */
  index: string;
  /** Query DSL (the value of `query`), or a string for a `query_string` query. */
  query: Record<string, unknown> | string;
  /** The field the time range filters on. */
  timeField: string;
  samples: number;
  transport: Transport;
}

/**
 * `POST /INDEX/_count` with the query and a range filter on `timeField`; when something matched,
 * `POST /INDEX/_search` with the same query for a few sample documents.
 */
export function elasticsearchCounter({ flavor, url, index, query, timeField, samples, transport }: ElasticsearchCountOptions): Counter {
  const json = { 'content-type': 'application/json' };
  const path = `/${encodeURIComponent(index).replace(/%2A/gi, '*').replace(/%2C/gi, ',')}`;
  const user = typeof query === 'string' ? { query_string: { query } } : query;
  const body = (r: TimeRange) => ({
    query: {
      bool: {
        filter: [user, { range: { [timeField]: { gte: new Date(r.from).toISOString(), lt: new Date(r.to).toISOString() } } }],
      },
    },
  });
  return {
    name: `${flavor === 'opensearch' ? 'OpenSearch' : 'Elasticsearch'} at ${shownUrl(url)}`,
    describe: (r) => `POST ${path}/_count ${JSON.stringify(body(r))}`,
    async count(range, signal): Promise<CountOutcome> {
      const reply = await transport.send(
        { method: 'POST', url: joinUrl(url, `${path}/_count`), headers: json, body: JSON.stringify(body(range)) },
        signal,
      );
      if ('error' in reply) return { error: reply.error };
      if (!isSuccess(reply.status)) return { error: describeError(reply), permanent: !isTransient(reply.status) };
      const doc = parseJson(reply.text);
      const count = fieldOf(doc, 'count');
      if (typeof count !== 'number') return { error: `_count answered without a count: ${describeReply(reply)}` };
      const failed = fieldOf(fieldOf(doc, '_shards'), 'failed');
      // A partial count under-reports: for `max: 0` that would pass a check that should fail.
      if (typeof failed === 'number' && failed > 0) return { error: `_count answered 200 but ${failed} shards failed` };
      if (count === 0 || samples === 0) return { count, samples: [] };
      const found = await transport.send(
        {
          method: 'POST',
          url: joinUrl(url, `${path}/_search`),
          headers: json,
          body: JSON.stringify({ size: samples, ...body(range) }),
        },
        signal,
      );
      // Samples only illustrate: a count without them is still the finding.
      if ('error' in found || !isSuccess(found.status)) return { count, samples: [] };
      const hits = fieldOf(fieldOf(parseJson(found.text), 'hits'), 'hits');
      const docs = Array.isArray(hits) ? hits.slice(0, samples).map((h) => JSON.stringify(fieldOf(h, '_source') ?? null)) : [];
      return { count, samples: docs };
    },
  };
}
