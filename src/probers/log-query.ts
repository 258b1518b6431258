import { type Static, Type } from '@sinclair/typebox';
import { ms } from '../lib/duration.js';
import { maskedSample } from '../lib/mask.js';
import { Duration } from '../lib/schema.js';
import { type Counter, createTransport, credentialsHeader, type TimeRange } from './log-ingestion/backend.js';
import { elasticsearchCounter } from './log-ingestion/elasticsearch.js';
import { genericCounter, RANGE_PLACEHOLDERS, unknownRangePlaceholders } from './log-ingestion/generic.js';
import { lokiCounter } from './log-ingestion/loki.js';
import { checkEntry, defineProber, type ProbeBase, type ProbeResult, type SpecProblem } from './types.js';
import { urlAsWritten } from './url-credentials.js';

const Url = Type.String({ pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// URL' });
const Headers = Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), Type.String(), {
  default: {},
  expected: 'a map of header names to values',
});
const Count = Type.Integer({ minimum: 0, expected: 'a whole number, 0 or more' });

const schema = Type.Object(
  {
    backend: Type.Union([Type.Literal('loki'), Type.Literal('elasticsearch'), Type.Literal('opensearch'), Type.Literal('http')], {
      expected: 'one of loki, elasticsearch, opensearch, http',
    }),
    /** The store's base URL (Loki, Elasticsearch, OpenSearch); the http backend has search.url instead. */
    url: Type.Optional(Url),
    /** Sent as `X-Scope-OrgID` on every request (Loki multi-tenancy). */
    tenant: Type.Optional(Type.String({ minLength: 1, expected: 'a tenant (org) id' })),
    /** Sent with every request; auth belongs here, as `${SECRET}` references. */
    headers: Headers,
    /**
     * What to count: a LogQL log query (Loki), Elasticsearch query DSL (the value of `query`) or a
     * `query_string` string. The http backend puts its query in search.url or search.body.
     */
    query: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Record(Type.String(), Type.Unknown(), { minProperties: 1 })], {
        expected: 'a LogQL query, a query_string string, or an Elasticsearch query object',
      }),
    ),
    /** Elasticsearch/OpenSearch: the index, alias, data stream or pattern searched. */
    index: Type.String({ pattern: '^[a-z0-9*][a-z0-9._*,-]*$', default: '*', expected: 'an index name or pattern such as logs-*' }),
    /** Elasticsearch/OpenSearch: the field the time range filters on. */
    timeField: Type.String({ pattern: '^[A-Za-z0-9_@][A-Za-z0-9_.@-]*$', default: '@timestamp', expected: 'a field name' }),
    /** http backend: the counting search; `{{from}}`, `{{to}}` (and _ms, _s) are the range's ends. */
    search: Type.Optional(
      Type.Object(
        {
          url: Url,
          method: Type.Union([Type.Literal('GET'), Type.Literal('POST')], { default: 'GET', expected: 'GET or POST' }),
          headers: Headers,
          body: Type.Optional(Type.String({ minLength: 1 })),
          /** Dotted JSON path to the count in the answer. */
          count: Type.String({ minLength: 1, expected: 'a dotted JSON path such as data.total' }),
          /** Dotted JSON path (`*` for each element) to the matched lines, shown masked as samples. */
          samples: Type.Optional(Type.String({ minLength: 1, expected: 'a dotted JSON path such as data.events.*' })),
        },
        { additionalProperties: false },
      ),
    ),
    /** The range ends now and starts this long ago. Or `from`/`to`. */
    window: Type.Optional(Duration()),
    /** The range starts this long ago (`61d`): with `to`, a window in the past (retention). */
    from: Type.Optional(Duration()),
    /** The range ends this long ago; now when unset. */
    to: Type.Optional(Duration()),
    /** The count's bounds: `{max: 0}` (none may be found), `{min: 1}` (some must be). */
    expect: Type.Object({ min: Type.Optional(Count), max: Type.Optional(Count) }, { additionalProperties: false, minProperties: 1 }),
    /** How many matched lines the message shows, masked. */
    samples: Type.Integer({ minimum: 0, maximum: 10, default: 3 }),
    /** The checklist item a passing count proves. */
    checklist: Type.Optional(
      Type.Union([Type.Literal('secrets-not-in-logs'), Type.Literal('log-retention')], {
        expected: 'secrets-not-in-logs or log-retention',
      }),
    ),
  },
  { additionalProperties: false },
);

/** The fields of a `log-query` definition. */
export type LogQuerySpec = Static<typeof schema>;
type Spec = ProbeBase & LogQuerySpec;

export const logQuery = defineProber({
  schema,
  report: {
    target: (spec) => target(spec),
    // "Review logs daily": the count a day at a glance (a PII query's zero line, failed logins' trend).
    charts: ['count'],
    evidence(spec, w) {
      if (spec.checklist === 'secrets-not-in-logs') return checkEntry('secretsInLogs', spec.id, target(spec), w);
      if (spec.checklist === 'log-retention') return checkEntry('logRetention', spec.id, target(spec), w);
      return undefined;
    },
  },
  values: () => ['count'],
  check,
  async probe(spec, ctx) {
    const headers = {
      ...(spec.url ? credentialsHeader(spec.url) : {}),
      ...(spec.tenant ? { 'x-scope-orgid': spec.tenant } : {}),
      ...spec.headers,
    };
    const transport = createTransport(headers, ctx.clock);
    const counter = counterFor(spec, transport);
    const now = ctx.clock.now();
    const range = rangeOf(spec, now);
    const details: Record<string, unknown> = {
      store: counter.name,
      query: counter.describe(range),
      from: new Date(range.from).toISOString(),
      to: new Date(range.to).toISOString(),
    };
    try {
      const outcome = await counter.count(range, ctx.signal);
      if ('error' in outcome) {
        if (ctx.signal.aborted) {
          return {
            ok: false,
            code: 'TIMEOUT',
            message: `${counter.name} did not answer the query before the deadline`,
            values: {},
            details,
          };
        }
        return { ok: false, code: 'QUERY_FAILED', message: `querying ${counter.name} failed: ${outcome.error}`, values: {}, details };
      }
      return judge(spec, outcome.count, outcome.samples, details);
    } finally {
      await transport.close();
    }
  },
});

function target(spec: Spec): string {
  return spec.url === undefined ? spec.backend : `${spec.backend} ${urlAsWritten(spec.url)}`;
}

function counterFor(spec: Spec, transport: ReturnType<typeof createTransport>): Counter {
  const samples = spec.samples;
  if (spec.backend === 'loki') return lokiCounter({ url: spec.url!, query: String(spec.query), samples, transport });
  if (spec.backend === 'http') return genericCounter({ search: spec.search!, samples, transport });
  return elasticsearchCounter({
    flavor: spec.backend,
    url: spec.url!,
    index: spec.index,
    query: spec.query!,
    timeField: spec.timeField,
    samples,
    transport,
  });
}

/** `window` ends now; `from`/`to` are offsets back from now. */
export function rangeOf(spec: Pick<Spec, 'window' | 'from' | 'to'>, now: number): TimeRange {
  if (spec.window !== undefined) return { from: now - ms(spec.window), to: now };
  return { from: now - ms(spec.from ?? '15m'), to: now - ms(spec.to ?? '0s') };
}

function judge(spec: Spec, count: number, samples: string[], details: Record<string, unknown>): ProbeResult {
  const values = { count };
  const { min, max } = spec.expect;
  const span = describeRange(spec);
  // Only masked samples leave the probe: the lines found may hold the very secrets being looked for.
  const shown = samples.map(maskedSample);
  if (shown.length > 0) details.samples = shown;
  if (max !== undefined && count > max) {
    const examples = shown.length > 0 ? `; e.g. ${shown.map((s) => JSON.stringify(s)).join(', ')}` : '';
    return {
      ok: false,
      code: 'ASSERTION',
      message: `${count} matching lines ${span}, expected at most ${max}${examples}`,
      values,
      details,
    };
  }
  if (min !== undefined && count < min) {
    return { ok: false, code: 'ASSERTION', message: `${count} matching lines ${span}, expected at least ${min}`, values, details };
  }
  return { ok: true, values, details };
}

function describeRange(spec: Spec): string {
  if (spec.window !== undefined) return `in the last ${spec.window}`;
  return spec.to === undefined ? `in the last ${spec.from ?? '15m'}` : `from ${spec.from} ago to ${spec.to} ago`;
}

function check(spec: Spec): SpecProblem[] {
  const problems: SpecProblem[] = [];
  if (spec.window !== undefined && (spec.from !== undefined || spec.to !== undefined)) {
    problems.push({ path: 'window', message: 'expected either window or from/to, not both' });
  }
  if (spec.window === undefined && spec.from === undefined) {
    problems.push({ path: 'window', message: 'expected window (e.g. 15m) or from/to (e.g. from: 61d, to: 60d); neither is set' });
  }
  if (spec.from !== undefined && ms(spec.from) <= ms(spec.to ?? '0s')) {
    problems.push({ path: 'from', message: `expected from (${spec.from} ago) to lie before to (${spec.to ?? '0s'} ago)` });
  }
  if (spec.window !== undefined && ms(spec.window) < 1000) problems.push({ path: 'window', message: 'expected a window of 1s or more' });
  const { min, max } = spec.expect;
  if (min !== undefined && max !== undefined && min > max) {
    problems.push({ path: 'expect', message: `expected min (${min}) at most max (${max})` });
  }
  if (spec.backend === 'http') {
    if (spec.url !== undefined) problems.push({ path: 'url', message: 'expected no url with backend http; set search.url' });
    if (spec.query !== undefined)
      problems.push({ path: 'query', message: 'expected no query with backend http; put it in search.url or search.body' });
    if (spec.search === undefined)
      problems.push({ path: 'search', message: 'expected search: {url, count} with backend http; it is missing' });
    for (const [path, text] of [
      ['search.url', spec.search?.url],
      ['search.body', spec.search?.body],
    ] as const) {
      const unknown = text === undefined ? [] : unknownRangePlaceholders(text);
      if (unknown.length > 0) {
        problems.push({
          path,
          message: `expected placeholders among ${RANGE_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}, got {{${unknown.join('}}, {{')}}}`,
        });
      }
    }
    if (spec.search?.method === 'GET' && spec.search.body !== undefined) {
      problems.push({ path: 'search.body', message: 'expected no body with method GET (use method: POST)' });
    }
    return problems;
  }
  if (spec.url === undefined) problems.push({ path: 'url', message: `expected the ${spec.backend} base URL; it is missing` });
  if (spec.search !== undefined)
    problems.push({ path: 'search', message: `expected no search with backend ${spec.backend} (search is for backend: http)` });
  if (spec.query === undefined) problems.push({ path: 'query', message: 'expected query: what to count; it is missing' });
  else if (spec.backend === 'loki' && typeof spec.query !== 'string') {
    problems.push({ path: 'query', message: 'expected a LogQL log query (a string) with backend loki' });
  } else if (spec.backend === 'loki' && !/^\s*\{/.test(String(spec.query))) {
    problems.push({
      path: 'query',
      message: 'expected a LogQL log query starting with a stream selector such as {app="api"}; vigil wraps it in count_over_time',
    });
  }
  return problems;
}
