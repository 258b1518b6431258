import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { afterAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { logQuery } from '../../src/probers/log-query.js';
import { probeContext } from '../helpers/context.js';
import { type FakeStore, startElasticsearch, startEventApi, startLoki } from '../helpers/log-stores.js';

type Spec = Parameters<typeof logQuery.probe>[0];

const stores: FakeStore[] = [];
afterAll(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});
async function track<T extends FakeStore>(store: Promise<T>): Promise<T> {
  const s = await store;
  stores.push(s);
  return s;
}

function definition(fields: Record<string, unknown>): Spec {
  const schema = definitionSchema(logQuery.schema);
  const def = Value.Default(schema, structuredClone({ id: 'no-pii', kind: 'log-query', schedule: '0 * * * *', ...fields }));
  const error = Value.Errors(schema, def).First();
  if (error) throw new Error(`invalid test definition: ${error.path} ${error.message}`);
  const problems = logQuery.check?.(def as Spec) ?? [];
  if (problems.length > 0) throw new Error(`invalid test definition: ${JSON.stringify(problems)}`);
  return def as Spec;
}

const run = (fields: Record<string, unknown>, timeoutMs = 3_000) => logQuery.probe(definition(fields), probeContext(timeoutMs));

const MIN = 60_000;
const DAY = 86_400_000;
// Lines an application should never have written, each with the part that must not leave the probe.
const LEAKS: Array<[string, string]> = [
  ['level=warn msg="login failed" email=alice.smith@example.com', 'alice.smith'],
  ['level=info msg="upstream call" authorization="Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"', 'eyJhbGciOiJIUzI1NiJ9'],
  ['level=debug msg="db connect" dsn="postgres://app@db/app" password=hunter2', 'hunter2'],
  ['level=info msg="s3 client" key=AKIAIOSFODNN7EXAMPLE', 'IOSFODNN7EXAMPLE'],
];

describe.concurrent('log-query against Loki', () => {
  test('counts PII and secrets over the window, failing max: 0 with masked samples only', async () => {
    const loki = await track(startLoki());
    const now = Date.now();
    for (const [i, [line]] of LEAKS.entries()) loki.add({ app: 'api' }, now - (i + 1) * MIN, line);
    loki.add({ app: 'api' }, now - 2 * MIN, 'level=info msg="GET /orders 200"');
    loki.add({ app: 'api' }, now - 30 * MIN, 'level=info msg="old" email=old@example.com'); // outside the window
    const query = '{app="api"} |~ "@|Bearer |password=|AKIA"';
    const result = await run({
      backend: 'loki',
      url: loki.url,
      query,
      window: '15m',
      expect: { max: 0 },
      checklist: 'secrets-not-in-logs',
    });

    expect(result.code).toBe('ASSERTION');
    expect(result.values.count).toBe(4);
    expect(result.message).toMatch(/^4 matching lines in the last 15m, expected at most 0; e\.g\. /);
    const all = JSON.stringify(result);
    for (const [, secret] of LEAKS) expect(all).not.toContain(secret);
    expect(result.details?.samples).toEqual([
      'level=warn msg="login failed" email=a***@example.com',
      'level=info msg="upstream call" authorization="Bearer eyJh***"',
      'level=debug msg="db connect" dsn="postgres://app@db/app" password=***',
    ]);
    const [count] = loki.counts();
    expect(count?.query.get('query')).toBe(`sum(count_over_time(${query} [900s]))`);
    expect(Number(BigInt(count!.query.get('time')!) / 1_000_000n)).toBeGreaterThanOrEqual(now);
    const [sample] = loki.searches();
    expect(sample?.query.get('limit')).toBe('3');
  });

  test('passes with count 0 and fetches no samples', async () => {
    const loki = await track(startLoki());
    loki.add({ app: 'api' }, Date.now() - MIN, 'level=info msg="GET /orders 200"');
    const result = await run({ backend: 'loki', url: loki.url, query: '{app="api"} |= "password="', window: '15m', expect: { max: 0 } });
    expect(result.ok, result.message).toBe(true);
    expect(result.values.count).toBe(0);
    expect(loki.searches()).toHaveLength(0);
  });

  test('retention: from 61d to 60d is sent as the range 61 to 60 days back, and min: 1 needs a line there', async () => {
    const loki = await track(startLoki());
    const fields = { backend: 'loki', url: loki.url, query: '{app="api"}', from: '61d', to: '60d', expect: { min: 1 }, samples: 0 };
    const before = Date.now();
    const empty = await run(fields);
    expect(empty.code).toBe('ASSERTION');
    expect(empty.message).toBe('0 matching lines from 61d ago to 60d ago, expected at least 1');
    const q = loki.counts()[0]!.query;
    expect(q.get('query')).toBe(`sum(count_over_time({app="api"} [${86_400}s]))`);
    const time = Number(BigInt(q.get('time')!) / 1_000_000n);
    expect(time).toBeGreaterThanOrEqual(before - 60 * DAY);
    expect(time).toBeLessThan(Date.now() - 60 * DAY + 1);
    expect(empty.details?.from).toBe(new Date(time - DAY).toISOString());

    loki.add({ app: 'api' }, Date.now() - 60.5 * DAY, 'level=info msg="from two months ago"');
    loki.add({ app: 'api' }, Date.now() - 59 * DAY, 'level=info msg="too recent for the window"');
    const found = await run(fields);
    expect(found.ok, found.message).toBe(true);
    expect(found.values.count).toBe(1);
  });

  test('a rejected query fails QUERY_FAILED with Loki’s reason', async () => {
    const loki = await track(startLoki());
    const result = await run({ backend: 'loki', url: loki.url, query: '{app=~".*"}', window: '1h', expect: { max: 5 } });
    expect(result.code).toBe('QUERY_FAILED');
    expect(result.message).toMatch(/^querying Loki at \S+ failed: 400 Bad Request: parse error : queries require at least one/);
  });

  test('a store that hangs fails TIMEOUT at the deadline', async () => {
    const loki = await track(startLoki());
    loki.hang = true;
    const started = Date.now();
    const result = await run({ backend: 'loki', url: loki.url, query: '{app="api"}', window: '1h', expect: { max: 5 } }, 500);
    expect(result.code).toBe('TIMEOUT');
    expect(result.message).toMatch(/^Loki at \S+ did not answer the query before the deadline$/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe.concurrent('log-query against Elasticsearch and the generic backend', () => {
  test('Elasticsearch: a query_string counted with _count over the time field, failed logins ≤ N', async () => {
    const es = await track(startElasticsearch());
    const now = Date.now();
    for (let i = 0; i < 4; i++)
      es.add('logs-2026.12', { '@timestamp': new Date(now - i * MIN).toISOString(), event: 'login failed', user: `u${i}@example.com` });
    es.add('logs-2026.12', { '@timestamp': new Date(now - 2 * 3_600_000).toISOString(), event: 'login failed' });
    es.add('other', { '@timestamp': new Date(now).toISOString(), event: 'login failed' });
    const fields = { backend: 'elasticsearch', url: es.url, index: 'logs-*', query: '"login failed"', window: '1h' };

    const within = await run({ ...fields, expect: { max: 5 } });
    expect(within.ok, within.message).toBe(true);
    expect(within.values.count).toBe(4);
    const body = JSON.parse(es.counts()[0]!.body);
    expect(body.query.bool.filter[0]).toEqual({ query_string: { query: '"login failed"' } });
    const range = body.query.bool.filter[1].range['@timestamp'];
    expect(Date.parse(range.lt) - Date.parse(range.gte)).toBe(3_600_000);
    expect(es.counts()[0]!.path).toBe('/logs-*/_count');

    const over = await run({ ...fields, expect: { max: 3 } });
    expect(over.code).toBe('ASSERTION');
    expect(over.message).toMatch(/^4 matching lines in the last 1h, expected at most 3; e\.g\. /);
    expect(JSON.stringify(over)).not.toMatch(/u\d@example/);
    expect(over.details?.samples).toContain(
      `{"@timestamp":"${new Date(now).toISOString()}","event":"login failed","user":"u***@example.com"}`,
    );
  });

  test('Elasticsearch: query DSL object, custom time field, retention offsets as the range', async () => {
    const es = await track(startElasticsearch({ keywordFields: ['level'] }));
    const now = Date.now();
    es.add('app', { ts: now - 60.5 * DAY, level: 'error' });
    es.add('app', { ts: now - 59 * DAY, level: 'error' });
    const result = await run({
      backend: 'opensearch',
      url: es.url,
      index: 'app',
      timeField: 'ts',
      query: { term: { level: 'error' } },
      from: '61d',
      to: '60d',
      expect: { min: 1 },
      checklist: 'log-retention',
    });
    expect(result.ok, result.message).toBe(true);
    expect(result.values.count).toBe(1);
    const range = JSON.parse(es.counts()[0]!.body).query.bool.filter[1].range.ts;
    expect(Date.parse(range.gte)).toBeGreaterThan(now - 61 * DAY - 5_000);
    expect(Date.parse(range.gte)).toBeLessThanOrEqual(now - 61 * DAY + 5_000);
    expect(Date.parse(range.lt) - Date.parse(range.gte)).toBe(DAY);
  });

  test('Elasticsearch: a store that hangs fails TIMEOUT', async () => {
    const es = await track(startElasticsearch());
    es.hang = true;
    const result = await run({ backend: 'elasticsearch', url: es.url, query: 'password', window: '15m', expect: { max: 0 } }, 400);
    expect(result.code).toBe('TIMEOUT');
  });

  test('generic http: the count at a JSON path, the range as {{from}}/{{to}}, samples masked', async () => {
    const api = await track(startEventApi());
    const now = Date.now();
    api.add({ timestamp: new Date(now - MIN).toISOString(), msg: 'sent token=abcdefghijklmnopqrstuvwxyz to carol@example.com' });
    api.add({ timestamp: new Date(now - 20 * MIN).toISOString(), msg: 'sent token=zyxwvutsrqponmlkjihgfedcba' });
    const result = await run({
      backend: 'http',
      search: { url: `${api.url}/v1/count?q=token%3D&from={{from}}&to={{to}}`, count: 'data.total', samples: 'data.events.*.msg' },
      window: '15m',
      expect: { max: 0 },
    });
    expect(result.code).toBe('ASSERTION');
    expect(result.values.count).toBe(1);
    expect(result.details?.samples).toEqual(['sent token=abcd*** to c***@example.com']);
    const q = api.searches()[0]!.query;
    expect(Date.parse(q.get('to')!) - Date.parse(q.get('from')!)).toBe(15 * MIN);
    expect(JSON.stringify(result)).not.toContain('efghijkl');
  });

  test('generic http: no number at the count path fails QUERY_FAILED saying what was there', async () => {
    const api = await track(startEventApi());
    const result = await run({
      backend: 'http',
      search: { url: `${api.url}/v1/count?q=x&from={{from}}&to={{to}}`, count: 'data.count' },
      window: '15m',
      expect: { max: 0 },
    });
    expect(result.code).toBe('QUERY_FAILED');
    expect(result.message).toMatch(/failed: expected a count \(a whole number\) at data\.count, got nothing$/);
  });

  test('generic http: a store that hangs fails TIMEOUT', async () => {
    const api = await track(startEventApi());
    api.hang = true;
    const result = await run(
      {
        backend: 'http',
        search: { url: `${api.url}/v1/count?from={{from}}&to={{to}}`, count: 'data.total' },
        window: '15m',
        expect: { max: 0 },
      },
      400,
    );
    expect(result.code).toBe('TIMEOUT');
  });
});

describe('log-query definitions', () => {
  const base = { id: 'x', kind: 'log-query', schedule: '* * * * *', timeout: '10s', retry: { count: 0, delay: '10s' }, labels: {} };
  const paths = (fields: Record<string, unknown>) =>
    logQuery.check!(Value.Default(definitionSchema(logQuery.schema), structuredClone({ ...base, ...fields })) as Spec).map((p) => p.path);

  test('cross-field problems name their path', () => {
    const loki = { backend: 'loki', url: 'http://loki:3100', query: '{app="api"}', expect: { max: 0 } };
    expect(paths({ ...loki })).toEqual(['window']);
    expect(paths({ ...loki, window: '1h', from: '2h' })).toEqual(['window']);
    expect(paths({ ...loki, from: '60d', to: '61d' })).toEqual(['from']);
    expect(paths({ ...loki, window: '1h', expect: { min: 3, max: 1 } })).toEqual(['expect']);
    expect(paths({ ...loki, window: '1h', query: 'password=' })).toEqual(['query']);
    expect(paths({ ...loki, window: '1h', query: { term: { a: 1 } } })).toEqual(['query']);
    expect(
      paths({ backend: 'http', window: '1h', expect: { max: 0 }, query: 'x', search: { url: 'http://s/?q={{id}}', count: 'n' } }),
    ).toEqual(['query', 'search.url']);
    expect(paths({ backend: 'elasticsearch', window: '1h', expect: { max: 0 } })).toEqual(['url', 'query']);
  });

  test('evidence lands in the section the definition names', () => {
    const window = { runs: 2, failures: 0, values: {}, last: { ok: true }, lastSuccess: null };
    const def = (checklist?: string) =>
      definition({
        backend: 'loki',
        url: 'http://loki:3100',
        query: '{app="api"}',
        window: '1h',
        expect: { max: 0 },
        ...(checklist ? { checklist } : {}),
      });
    const evidence = (d: Spec) => logQuery.report.evidence?.(d, window, {} as never);
    expect(evidence(def('secrets-not-in-logs'))).toEqual({
      section: 'secretsInLogs',
      item: { probeId: 'no-pii', target: 'loki http://loki:3100', runs: 2, failures: 0, ok: true },
    });
    expect(evidence(def('log-retention'))).toMatchObject({ section: 'logRetention' });
    expect(evidence(def())).toBeUndefined();
  });

  test('every example in probes/examples/log-query.yaml is valid', () => {
    const examples = parse(readFileSync('probes/examples/log-query.yaml', 'utf8')) as Array<Record<string, unknown>>;
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const example of examples) {
      expect(example.kind).toBe('log-query');
      expect(() => definition(example), String(example.id)).not.toThrow();
    }
  });
});
