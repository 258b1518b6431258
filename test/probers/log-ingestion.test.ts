import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { afterAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { logIngestion } from '../../src/probers/log-ingestion.js';
import { probeContext } from '../helpers/context.js';
import { type FakeStore, startElasticsearch, startEventApi, startLoki } from '../helpers/log-stores.js';

type Spec = Parameters<typeof logIngestion.probe>[0];

// Tests run concurrently, each with its own stores: close them all at the end, not after each test.
const stores: FakeStore[] = [];
afterAll(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

async function track<T extends FakeStore>(store: Promise<T>): Promise<T> {
  const s = await store;
  stores.push(s);
  return s;
}

/** A definition as config would hand it over: defaults applied, schema and check passed. */
function definition(fields: Record<string, unknown>): Spec {
  const schema = definitionSchema(logIngestion.schema);
  const def = Value.Default(schema, structuredClone({ id: 'logs-canary', kind: 'log-ingestion', schedule: '*/5 * * * *', ...fields }));
  const error = Value.Errors(schema, def).First();
  if (error) throw new Error(`invalid test definition: ${error.path} ${error.message}`);
  const problems = logIngestion.check?.(def as Spec) ?? [];
  if (problems.length > 0) throw new Error(`invalid test definition: ${JSON.stringify(problems)}`);
  return def as Spec;
}

async function run(fields: Record<string, unknown>, timeoutMs = 5_000) {
  const ctx = probeContext(timeoutMs);
  const started = Date.now();
  const result = await logIngestion.probe(definition(fields), ctx);
  return { result, elapsed: Date.now() - started, aborted: ctx.signal.aborted };
}

const canaryId = (r: { details?: Record<string, unknown> }) => r.details?.canary_id as string;

describe.concurrent('log-ingestion against Loki', () => {
  test('finds the canary within maxLatency and measures the delay', async () => {
    const loki = await track(startLoki({ delayMs: 200 }));
    const { result } = await run({ backend: 'loki', url: loki.url, maxLatency: '2s' });

    expect(result.ok, result.message).toBe(true);
    // Found by the first poll after the delay: no earlier, and at most one backoff step (plus load) later.
    const latency = result.values.ingestion_latency_ms as number;
    expect(latency).toBeGreaterThanOrEqual(200);
    expect(latency).toBeLessThan(200 + 700);
    expect(result.values.polls).toBe(loki.searches().length);
    expect(result.values.write_ms).toBeGreaterThanOrEqual(0);
    expect(result.values.write_ms).toBeLessThan(latency);

    const id = canaryId(result);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const [entry] = loki.entries();
    expect(entry?.labels).toEqual({ job: 'vigil-canary' });
    expect(entry?.line).toContain(id);
    const writtenNs = entry?.ts as bigint;
    expect(Number(writtenNs / 1_000_000n)).toBeGreaterThan(Date.now() - 5_000);

    const q = loki.searches()[0]!.query;
    expect(q.get('query')).toBe(`{job="vigil-canary"} |= "${id}"`);
    expect(q.get('direction')).toBe('backward');
    expect(Number(q.get('limit'))).toBeLessThanOrEqual(10);
    expect(BigInt(q.get('start')!)).toBe(writtenNs - 60_000_000_000n);
  });

  test('fails INGESTION_SLOW with the measured latency when the event arrives after maxLatency', async () => {
    const loki = await track(startLoki({ delayMs: 1_200 }));
    const { result } = await run({ backend: 'loki', url: loki.url, maxLatency: '1s', grace: '3s' }, 6_000);

    expect(result.ok).toBe(false);
    expect(result.code).toBe('INGESTION_SLOW');
    expect(result.values.ingestion_latency_ms).toBeGreaterThanOrEqual(1_200);
    expect(result.message).toMatch(/^the canary turned up in Loki at http:\/\/127\.0\.0\.1:\d+ after \d\.\d\ds, limit 1s \(\d+ polls\)$/);
  });

  test('fails INGESTION_MISSING after maxLatency + grace, polling with a doubling backoff', async () => {
    const loki = await track(startLoki({ delayMs: Number.POSITIVE_INFINITY }));
    const { result, elapsed } = await run({ backend: 'loki', url: loki.url, maxLatency: '1s', grace: '500ms' });

    expect(result.code).toBe('INGESTION_MISSING');
    const polls = loki.searches().length;
    expect(result.values.polls).toBe(polls);
    expect(result.message).toBe(
      `the canary was not found in Loki at ${loki.url} after ${polls} polls over ${result.message?.split(' over ')[1]}`,
    );
    expect(result.message).toMatch(/ over 1\.\d\ds$/);
    expect(result.values.ingestion_latency_ms).toBeUndefined();
    expect(elapsed).toBeGreaterThanOrEqual(1_500);
    expect(elapsed).toBeLessThan(2_200);
    // 250 ms, then 500 ms between polls; the last one is cut short at maxLatency + grace (on a busy
    // machine the third gap may not fit before it).
    const at = loki.searches().map((s) => s.at);
    expect(polls).toBeGreaterThanOrEqual(3);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(240);
    expect(at[1]! - at[0]!).toBeLessThan(450);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(490);
    expect(at[2]! - at[1]!).toBeLessThan(700);
  });

  test.each([
    [400, 'Bad Request', 'entry for stream \'{job="vigil-canary"}\' has timestamp too old: 2020-01-01T00:00:00Z'],
    [503, 'Service Unavailable', 'Ingester is shutting down'],
  ])('fails WRITE_FAILED with the status and a bounded body excerpt when the push is rejected with %i', async (status, text, reason) => {
    const loki = await track(startLoki());
    loki.rejectWrites = { status, body: `${reason} ${'x'.repeat(5_000)}` };
    const { result } = await run({ backend: 'loki', url: loki.url, maxLatency: '1s' });

    expect(result.code).toBe('WRITE_FAILED');
    const prefix = `writing the canary to Loki at ${loki.url} failed: ${status} ${text}: `;
    expect(result.message?.startsWith(`${prefix}${reason}`), result.message).toBe(true);
    expect(result.message!.length - prefix.length).toBeLessThanOrEqual(200);
    expect(result.values.polls).toBe(0);
    expect(loki.searches()).toHaveLength(0);
  });

  test('fails WRITE_FAILED naming the connection error when Loki is down', async () => {
    const loki = await startLoki();
    await loki.close();
    const { result } = await run({ backend: 'loki', url: loki.url, maxLatency: '1s' });
    expect(result.code).toBe('WRITE_FAILED');
    expect(result.message).toMatch(/failed: cannot connect to 127\.0\.0\.1:\d+ \(ECONNREFUSED\)$/);
  });

  test('fails SEARCH_FAILED, saying so, when the search keeps failing until the deadline', async () => {
    const loki = await track(startLoki());
    loki.failSearch = { status: 500, body: 'rpc error: code = Unavailable desc = connection refused' };
    const { result } = await run({ backend: 'loki', url: loki.url, maxLatency: '500ms', grace: '200ms' });

    expect(result.code).toBe('SEARCH_FAILED');
    expect(result.message).toMatch(
      /^searching Loki at \S+ kept failing until the deadline: all 3 polls over \d+ms failed, last: 500 Internal Server Error: rpc error: code = Unavailable/,
    );
    expect(result.values.polls).toBeGreaterThanOrEqual(3);
  });

  test('rides out transient search errors and still measures', async () => {
    const loki = await track(startLoki());
    loki.failSearch = { status: 503, body: 'too many outstanding requests', times: 2 };
    const { result } = await run({ backend: 'loki', url: loki.url, maxLatency: '2s' });
    expect(result.ok, result.message).toBe(true);
    expect(result.values.polls).toBe(3);
  });

  test('fails SEARCH_FAILED at once when Loki rejects the query itself', async () => {
    const loki = await track(startLoki());
    loki.failSearch = { status: 400, body: 'parse error at line 1, col 1: syntax error: unexpected IDENTIFIER' };
    const { result, elapsed } = await run({ backend: 'loki', url: loki.url, maxLatency: '2s' });
    expect(result.code).toBe('SEARCH_FAILED');
    expect(result.message).toMatch(/failed: 400 Bad Request: parse error at line 1/);
    expect(result.values.polls).toBe(1);
    expect(elapsed).toBeLessThan(500);
  });

  test('sends the tenant as X-Scope-OrgID on every request; without it a multi-tenant Loki refuses the write', async () => {
    const loki = await track(startLoki({ authEnabled: true, delayMs: 100 }));
    const { result } = await run({ backend: 'loki', url: loki.url, tenant: 'prod', maxLatency: '1s' });
    expect(result.ok, result.message).toBe(true);
    expect(loki.requests.length).toBeGreaterThanOrEqual(2);
    expect(loki.requests.every((r) => r.headers['x-scope-orgid'] === 'prod')).toBe(true);
    expect(loki.entries('prod')).toHaveLength(1);
    expect(loki.entries('fake')).toHaveLength(0);

    const without = await run({ backend: 'loki', url: loki.url, maxLatency: '1s' });
    expect(without.result.code).toBe('WRITE_FAILED');
    expect(without.result.message).toMatch(/failed: 401 Unauthorized: no org id$/);
  });

  test('selects on custom stream labels and matches them as a subset of what Loki 3 returns', async () => {
    const loki = await track(startLoki());
    const labels = { app: 'checkout', env: 'prod' };
    const { result } = await run({ backend: 'loki', url: `${loki.url}/`, streamLabels: labels, maxLatency: '1s' });
    expect(result.ok, result.message).toBe(true);
    expect(loki.entries()[0]?.labels).toEqual(labels);
    expect(loki.searches()[0]?.query.get('query')).toBe(`{app="checkout", env="prod"} |= "${canaryId(result)}"`);
  });

  test('ends before the run deadline when the timeout is shorter than maxLatency, and says what to change', async () => {
    const loki = await track(startLoki({ delayMs: Number.POSITIVE_INFINITY }));
    const { result, elapsed, aborted } = await run({ backend: 'loki', url: loki.url, maxLatency: '30s' }, 1_500);
    expect(result.code).toBe('INGESTION_MISSING');
    expect(result.message).toMatch(/the run's timeout \(10s\) ended the search before maxLatency \(30s\): set timeout to 45.0s or more$/);
    expect(elapsed).toBeLessThan(1_500);
    expect(aborted).toBe(false);
  });

  test('stops at once when the run is aborted', async () => {
    const loki = await track(startLoki({ delayMs: Number.POSITIVE_INFINITY }));
    const controller = new AbortController();
    const ctx = { ...probeContext(10_000), signal: controller.signal };
    setTimeout(() => controller.abort(new Error('shutdown')), 400);
    const started = Date.now();
    const result = await logIngestion.probe(definition({ backend: 'loki', url: loki.url, maxLatency: '5s' }), ctx);
    expect(result.code).toBe('TIMEOUT');
    expect(result.message).toMatch(/^run aborted after \d+ polls over \d+ms, before the canary was found$/);
    expect(Date.now() - started).toBeLessThan(600);
  });
});

describe.concurrent('log-ingestion against Elasticsearch and OpenSearch', () => {
  test('Elasticsearch: finds the canary under dynamic mapping (text + .keyword) after the refresh delay', async () => {
    const es = await track(startElasticsearch({ delayMs: 300 }));
    const { result } = await run({ backend: 'elasticsearch', url: es.url, maxLatency: '1s' });

    expect(result.ok, result.message).toBe(true);
    expect(result.values.ingestion_latency_ms).toBeGreaterThanOrEqual(300);
    expect(result.values.ingestion_latency_ms).toBeLessThan(1_000);
    const [doc] = es.docs('vigil-canary');
    expect(doc?.canary_id).toBe(canaryId(result));
    expect(Date.parse(String(doc?.['@timestamp']))).toBeGreaterThan(Date.now() - 5_000);
    const body = JSON.parse(es.searches()[0]!.body);
    expect(JSON.stringify(body.query)).toContain(`{"term":{"canary_id.keyword":"${canaryId(result)}"}}`);
  });

  test('Elasticsearch: custom index and a field mapped as keyword', async () => {
    const es = await track(startElasticsearch({ keywordFields: ['labels.canary_id'] }));
    const { result } = await run({
      backend: 'elasticsearch',
      url: es.url,
      index: 'logs-canary',
      field: 'labels.canary_id',
      maxLatency: '1s',
    });
    expect(result.ok, result.message).toBe(true);
    expect(es.docs('logs-canary')[0]?.['labels.canary_id']).toBe(canaryId(result));
    expect(es.requests[0]?.path).toBe('/logs-canary/_doc');
  });

  test('Elasticsearch: HTTP 200 with _shards.failed > 0 is a failed search, not a miss', async () => {
    const es = await track(startElasticsearch());
    es.failSearch = { shardsFailed: 1 };
    const { result } = await run({ backend: 'elasticsearch', url: es.url, maxLatency: '500ms', grace: '200ms' });
    expect(result.code).toBe('SEARCH_FAILED');
    expect(result.message).toMatch(
      /kept failing until the deadline: all \d+ polls over .* failed, last: search answered 200 but 1 of 5 shards failed: node_not_connected_exception: /,
    );
  });

  test('Elasticsearch: auth headers are sent; without them the write fails with the security exception', async () => {
    const es = await track(startElasticsearch({ requireAuthorization: 'ApiKey c2VjcmV0LWtleQ==' }));
    const denied = await run({ backend: 'elasticsearch', url: es.url, maxLatency: '1s' });
    expect(denied.result.code).toBe('WRITE_FAILED');
    expect(denied.result.message).toMatch(
      /failed: 401 Unauthorized: security_exception: missing authentication credentials for REST request/,
    );

    const { result } = await run({
      backend: 'elasticsearch',
      url: es.url,
      headers: { Authorization: 'ApiKey c2VjcmV0LWtleQ==' },
      maxLatency: '1s',
    });
    expect(result.ok, result.message).toBe(true);
    expect(JSON.stringify(result)).not.toContain('c2VjcmV0');
  });

  test('Elasticsearch: a rejected index request (429) names the exception', async () => {
    const es = await track(startElasticsearch());
    es.rejectWrites = {
      status: 429,
      body: JSON.stringify({
        error: { type: 'es_rejected_execution_exception', reason: 'rejected execution of coordinating operation' },
        status: 429,
      }),
    };
    const { result } = await run({ backend: 'elasticsearch', url: es.url, maxLatency: '1s' });
    expect(result.code).toBe('WRITE_FAILED');
    expect(result.message).toMatch(
      /failed: 429 Too Many Requests: es_rejected_execution_exception: rejected execution of coordinating operation$/,
    );
  });

  test('OpenSearch: finds the canary within the limit', async () => {
    const os = await track(startElasticsearch({ flavor: 'opensearch', delayMs: 300 }));
    const { result } = await run({ backend: 'opensearch', url: os.url, maxLatency: '1s' });
    expect(result.ok, result.message).toBe(true);
    expect(result.values.ingestion_latency_ms).toBeGreaterThanOrEqual(300);
    expect(result.details?.store).toBe(`OpenSearch at ${os.url}`);
  });

  test('OpenSearch: _shards.failed > 0 fails the search', async () => {
    const os = await track(startElasticsearch({ flavor: 'opensearch' }));
    os.failSearch = { shardsFailed: 1 };
    const { result } = await run({ backend: 'opensearch', url: os.url, maxLatency: '300ms', grace: '100ms' });
    expect(result.code).toBe('SEARCH_FAILED');
    expect(result.message).toContain('1 of 5 shards failed');
  });
});

describe.concurrent('log-ingestion against a generic HTTP API', () => {
  test('writes the default event and matches the id through a wildcard path', async () => {
    const api = await track(startEventApi({ delayMs: 300 }));
    const { result } = await run({
      backend: 'http',
      write: { url: `${api.url}/v1/events` },
      search: { url: `${api.url}/v1/events?q={{id}}`, match: 'data.events.*.id' },
      maxLatency: '1s',
    });
    expect(result.ok, result.message).toBe(true);
    expect(result.values.ingestion_latency_ms).toBeGreaterThanOrEqual(300);
    const posted = JSON.parse(api.requests[0]!.body);
    expect(posted).toMatchObject({ id: canaryId(result), probe: 'logs-canary' });
    expect(Date.parse(posted.timestamp)).toBeGreaterThan(Date.now() - 5_000);
    expect(api.searches()[0]?.query.get('q')).toBe(canaryId(result));
  });

  test('fills a custom body template and per-request headers', async () => {
    const api = await track(startEventApi());
    const { result } = await run({
      backend: 'http',
      headers: { 'x-team': 'sre' },
      write: {
        url: `${api.url}/v1/events`,
        headers: { 'x-api-key': 'k1' },
        body: '{"event":{"canary":"{{ id }}","at_ms":{{timestamp_ms}}}}',
      },
      search: { url: `${api.url}/v1/events?q={{id}}&api_key=k2`, match: 'data.events.0.event.canary' },
      maxLatency: '1s',
    });
    expect(result.ok, result.message).toBe(true);
    const [write, search] = api.requests;
    expect(JSON.parse(write!.body).event.at_ms).toBeGreaterThan(Date.now() - 5_000);
    expect(write?.headers['x-api-key']).toBe('k1');
    expect(write?.headers['x-team']).toBe('sre');
    expect(search?.headers['x-api-key']).toBeUndefined();
    expect(search?.headers['x-team']).toBe('sre');
    expect(search?.query.get('api_key')).toBe('k2');
    expect(result.details?.search).toBe(
      `GET ${api.url}/v1/events?q=${canaryId(result)}&api_key=%3Csecret%3E match data.events.0.event.canary`,
    );
  });

  test('fails INGESTION_MISSING when the id never matches', async () => {
    const api = await track(startEventApi({ delayMs: Number.POSITIVE_INFINITY }));
    const { result } = await run({
      backend: 'http',
      write: { url: `${api.url}/v1/events` },
      search: { url: `${api.url}/v1/events?q={{id}}`, match: 'data.events.*.id' },
      maxLatency: '300ms',
      grace: '100ms',
    });
    expect(result.code).toBe('INGESTION_MISSING');
    expect(result.message).toMatch(/not found in the log store at \S+ after \d+ polls over \d+ms$/);
  });
});

describe('log-ingestion definitions', () => {
  const base = { id: 'x', kind: 'log-ingestion', schedule: '* * * * *', timeout: '45s', retry: { count: 0, delay: '10s' }, labels: {} };
  const check = (fields: Record<string, unknown>) =>
    logIngestion.check!(Value.Default(definitionSchema(logIngestion.schema), structuredClone({ ...base, ...fields })) as Spec).map(
      (p) => p.path,
    );

  test('reports the values it measures', () => {
    expect(logIngestion.values(definition({ backend: 'loki', url: 'http://loki:3100' }))).toEqual([
      'ingestion_latency_ms',
      'polls',
      'write_ms',
    ]);
  });

  test("the issue's definition is valid as written", () => {
    const spec = definition({ backend: 'loki', url: 'http://loki:3100', tenant: 'prod', maxLatency: '30s' });
    expect(spec.grace).toBe('10s');
  });

  test('cross-field problems name their path', () => {
    expect(check({ backend: 'loki' })).toEqual(['url']);
    expect(check({ backend: 'elasticsearch', url: 'http://es:9200', search: { url: 'http://es:9200/x', match: 'a' } })).toEqual(['search']);
    expect(check({ backend: 'http' })).toEqual(['write', 'search']);
    expect(
      check({
        backend: 'http',
        write: { url: 'http://api/{{tenant}}', body: '{"msg":"no id"}' },
        search: { url: 'http://api/?q={{id}}', body: '{}', match: 'a' },
      }),
    ).toEqual(['write.url', 'write.body', 'search.body']);
  });

  test('every example in probes/examples/log-ingestion.yaml is valid', () => {
    const examples = parse(readFileSync('probes/examples/log-ingestion.yaml', 'utf8')) as Array<Record<string, unknown>>;
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const example of examples) {
      expect(example.kind).toBe('log-ingestion');
      const { id, kind, schedule, ...fields } = example;
      expect(() => definition({ id, kind, schedule, ...fields }), String(id)).not.toThrow();
    }
  });
});
