import { Value } from '@sinclair/typebox/value';
import { afterAll, describe, expect, test } from 'vitest';
import { definitionSchema } from '../../src/config/schema.js';
import { logIngestion } from '../../src/probers/log-ingestion.js';
import { probeContext } from '../helpers/context.js';
import { type FakeStore, startElasticsearch, startEventApi, startLoki } from '../helpers/log-stores.js';
import { startHttp, type TestServer } from '../helpers/servers.js';

type Spec = Parameters<typeof logIngestion.probe>[0];

const closers: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(closers.splice(0).map((s) => s.close()));
});
async function track<T extends FakeStore | TestServer>(p: Promise<T>): Promise<T> {
  const s = await p;
  closers.push(s);
  return s;
}

function definition(fields: Record<string, unknown>): Spec {
  const schema = definitionSchema(logIngestion.schema);
  const def = Value.Default(schema, structuredClone({ id: 'audit', kind: 'log-ingestion', schedule: '*/5 * * * *', ...fields }));
  const error = Value.Errors(schema, def).First();
  if (error) throw new Error(`invalid test definition: ${error.path} ${error.message}`);
  const problems = logIngestion.check?.(def as Spec) ?? [];
  if (problems.length > 0) throw new Error(`invalid test definition: ${JSON.stringify(problems)}`);
  return def as Spec;
}

const run = (fields: Record<string, unknown>, timeoutMs = 5_000) => logIngestion.probe(definition(fields), probeContext(timeoutMs));

type Style = 'json' | 'plain' | 'silent' | 'nested';

/**
 * The application under test: answers every request (500 on /boom) and, like a real service, ships
 * one log line per request, with the request id it was given, to its log store after `delayMs`.
 */
async function startApp(ship: (line: string, requestId: string) => Promise<void>, style: Style, delayMs = 150) {
  const seen: Array<{ method: string; url: string; headers: Record<string, unknown>; body: string }> = [];
  const app = await track(
    startHttp((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString('utf8');
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        const requestId = String(req.headers['x-request-id'] ?? 'none');
        const status = req.url?.startsWith('/boom') ? 500 : 200;
        res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
        const at = new Date().toISOString();
        const line =
          style === 'json'
            ? JSON.stringify({
                timestamp: at,
                level: status === 500 ? 'error' : 'info',
                request_id: requestId,
                user_id: 'u-42',
                path: req.url,
              })
            : style === 'nested'
              ? JSON.stringify({ timestamp: at, level: 'info', http: { request_id: requestId }, path: req.url })
              : `${at} INFO request_id=${requestId} path=${req.url}`;
        if (style !== 'silent') setTimeout(() => void ship(line, requestId), delayMs);
      });
    }),
  );
  return { app, seen };
}

const lokiShipper = (url: string) => async (line: string) => {
  const ns = (BigInt(Date.now()) * 1_000_000n).toString();
  await fetch(`${url}/loki/api/v1/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ streams: [{ stream: { app: 'checkout' }, values: [[ns, line]] }] }),
  });
};

describe.concurrent('log-ingestion with a trigger, against Loki', () => {
  const base = (loki: string, app: string) => ({
    backend: 'loki',
    url: loki,
    streamLabels: { app: 'checkout' },
    trigger: { url: `${app}/orders?trace={{canary}}`, headers: { 'X-Request-Id': '{{canary}}' } },
    maxLatency: '2s',
    grace: '300ms',
  });

  test('a request to the application is found in its log, with every required field', async () => {
    const loki = await track(startLoki());
    const { app, seen } = await startApp(lokiShipper(loki.url), 'json');
    const result = await run({ ...base(loki.url, app.url), expect: { fields: ['timestamp', 'level', 'request_id', 'user_id'] } });

    expect(result.ok, result.message).toBe(true);
    const id = result.details?.canary_id as string;
    expect(seen[0]?.headers['x-request-id']).toBe(id);
    expect(seen[0]?.url).toBe(`/orders?trace=${id}`);
    // The store's credentials are not the application's: nothing of the store's headers goes to it.
    expect(seen[0]?.headers['x-scope-orgid']).toBeUndefined();
    expect(loki.entries()).toHaveLength(1);
    expect(loki.searches()[0]?.query.get('query')).toBe(`{app="checkout"} |= "${id}"`);
    expect(result.values.trigger_status).toBe(200);
    expect(result.values.fields_ok).toBe(1);
    expect(result.values.ingestion_latency_ms).toBeGreaterThanOrEqual(150);
    expect(result.values.write_ms).toBeUndefined();
    expect(result.details?.trigger).toBe(`GET ${app.url}/orders?trace=${id}`);
  });

  test('"trigger an error": a 500 is recorded, not a failure, and expectStatus judges it', async () => {
    const loki = await track(startLoki());
    const { app } = await startApp(lokiShipper(loki.url), 'json');
    const fields = { ...base(loki.url, app.url), trigger: { url: `${app.url}/boom`, headers: { 'X-Request-Id': '{{canary}}' } } };
    const result = await run(fields);
    expect(result.ok, result.message).toBe(true);
    expect(result.values.trigger_status).toBe(500);

    const expected = await run({ ...fields, trigger: { ...fields.trigger, expectStatus: 200 } });
    expect(expected.code).toBe('TRIGGER_FAILED');
    expect(expected.message).toBe(`the trigger request GET ${app.url}/boom answered 500 Internal Server Error, expected 200`);
    expect(expected.values.polls).toBe(0);
  });

  test('a plain-text line fails ASSERTION naming every missing field, never its content', async () => {
    const loki = await track(startLoki());
    const { app } = await startApp(lokiShipper(loki.url), 'plain');
    const result = await run({ ...base(loki.url, app.url), expect: { fields: ['timestamp', 'level', 'request_id'] } });
    expect(result.code).toBe('ASSERTION');
    expect(result.message).toMatch(/^the line found is not a JSON object \(\d+ characters of plain text\)$/);
    expect(result.values.fields_ok).toBe(0);
  });

  test('a JSON line without some fields names them; nested paths are read', async () => {
    const loki = await track(startLoki());
    const { app } = await startApp(lokiShipper(loki.url), 'nested');
    const missing = await run({ ...base(loki.url, app.url), expect: { fields: ['timestamp', 'level', 'request_id', 'user_id'] } });
    expect(missing.code).toBe('ASSERTION');
    expect(missing.message).toBe('the line found lacks the fields request_id, user_id (of timestamp, level, request_id, user_id)');

    const nested = await run({ ...base(loki.url, app.url), expect: { fields: ['timestamp', 'http.request_id'] } });
    expect(nested.ok, nested.message).toBe(true);
  });

  test('an application that never logs the request fails INGESTION_MISSING after maxLatency + grace', async () => {
    const loki = await track(startLoki());
    const { app, seen } = await startApp(lokiShipper(loki.url), 'silent');
    const result = await run({ ...base(loki.url, app.url), maxLatency: '600ms', grace: '200ms' });
    expect(result.code).toBe('INGESTION_MISSING');
    expect(result.message).toMatch(/^the canary was not found in Loki at \S+ after \d+ polls over \d+ms$/);
    expect(seen).toHaveLength(1);
  });

  test('an application that is down fails TRIGGER_FAILED naming the connection error', async () => {
    const loki = await track(startLoki());
    const app = await startHttp(() => {});
    await app.close();
    const result = await run(base(loki.url, app.url));
    expect(result.code).toBe('TRIGGER_FAILED');
    expect(result.message).toMatch(
      /^the trigger request to GET http:\/\/127\.0\.0\.1:\d+\/orders\?trace=[0-9a-f-]{36} failed: cannot connect to .* \(ECONNREFUSED\)$/,
    );
    expect(loki.searches()).toHaveLength(0);
  });

  test('the canary is filled into a POST body', async () => {
    const loki = await track(startLoki());
    const { app, seen } = await startApp(async (line) => {
      await lokiShipper(loki.url)(line.replace('none', JSON.parse(seen.at(-1)?.body ?? '{}').ref));
    }, 'json');
    const result = await run({
      ...base(loki.url, app.url),
      trigger: { url: `${app.url}/orders`, method: 'POST', body: '{"ref":"{{canary}}"}' },
    });
    expect(result.ok, result.message).toBe(true);
    expect(JSON.parse(seen[0]!.body)).toEqual({ ref: result.details?.canary_id });
    expect(seen[0]?.headers['content-type']).toBe('application/json');
  });
});

describe.concurrent('log-ingestion with a trigger, against Elasticsearch and the generic backend', () => {
  const esShipper = (url: string, asMessage: boolean) => async (line: string) => {
    const doc = asMessage ? { '@timestamp': new Date().toISOString(), message: line } : JSON.parse(line);
    await fetch(`${url}/app-logs/_doc`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
  };

  test('Elasticsearch: found by a query_string phrase over any field, fields read from _source', async () => {
    const es = await track(startElasticsearch({ delayMs: 200 }));
    // The application has logged before: its index exists (a missing index is a misconfiguration, not "not yet").
    es.add('app-logs', { message: 'started' });
    const { app } = await startApp(esShipper(es.url, false), 'json');
    const result = await run({
      backend: 'elasticsearch',
      url: es.url,
      index: 'app-logs',
      trigger: { url: `${app.url}/orders`, headers: { 'X-Request-Id': '{{canary}}' } },
      expect: { fields: ['timestamp', 'level', 'request_id', 'user_id'] },
      checklist: 'audit-logging',
      maxLatency: '2s',
    });
    expect(result.ok, result.message).toBe(true);
    const body = JSON.parse(es.searches()[0]!.body);
    expect(JSON.stringify(body.query)).toContain(`{"query_string":{"query":"\\"${result.details?.canary_id}\\""}}`);
  });

  test('Elasticsearch: a JSON line kept whole in `message` is read there; a plain one fails', async () => {
    const es = await track(startElasticsearch());
    es.add('app-logs', { message: 'started' });
    const { app } = await startApp(esShipper(es.url, true), 'json');
    const fields = {
      backend: 'elasticsearch',
      url: es.url,
      index: 'app-logs',
      trigger: { url: `${app.url}/orders`, headers: { 'X-Request-Id': '{{canary}}' } },
      expect: { fields: ['timestamp', 'level', 'request_id', 'user_id'] },
      maxLatency: '2s',
    };
    expect((await run(fields)).ok).toBe(true);

    const plain = await startApp(esShipper(es.url, true), 'plain');
    const result = await run({ ...fields, trigger: { url: `${plain.app.url}/orders`, headers: { 'X-Request-Id': '{{canary}}' } } });
    expect(result.code).toBe('ASSERTION');
    expect(result.message).toBe(
      'the line found lacks the fields timestamp, level, request_id, user_id (of timestamp, level, request_id, user_id)',
    );
  });

  test('generic http: the search finds the application event by {{canary}} and checks its fields', async () => {
    const api = await track(startEventApi());
    const { app } = await startApp(async (line) => {
      await fetch(`${api.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: line });
    }, 'json');
    const result = await run({
      backend: 'http',
      trigger: { url: `${app.url}/orders`, headers: { 'X-Request-Id': '{{canary}}' } },
      search: { url: `${api.url}/v1/events?q={{canary}}`, match: 'data.events.*.request_id' },
      expect: { fields: ['timestamp', 'level', 'request_id', 'user_id'] },
      maxLatency: '2s',
    });
    expect(result.ok, result.message).toBe(true);
    expect(result.values.fields_ok).toBe(1);
  });
});

describe('log-ingestion trigger definitions', () => {
  const base = { id: 'x', kind: 'log-ingestion', schedule: '* * * * *', timeout: '45s', retry: { count: 0, delay: '10s' }, labels: {} };
  const check = (fields: Record<string, unknown>) =>
    logIngestion.check!(Value.Default(definitionSchema(logIngestion.schema), structuredClone({ ...base, ...fields })) as Spec);

  test('the trigger must carry {{canary}} and no other placeholder; ${…} is left to secrets', () => {
    const problems = check({
      backend: 'loki',
      url: 'http://loki:3100',
      streamLabels: { app: 'api' },
      trigger: { url: 'http://api/orders?u={{user}}', headers: { Authorization: 'Bearer ${API_TOKEN}' } },
    });
    expect(problems.map((p) => p.path)).toEqual(['trigger.url', 'trigger']);
    expect(problems[1]?.message).toMatch(/^expected \{\{canary\}\} in trigger\.url, a header value or trigger\.body/);
  });

  test('cross-field rules name their path', () => {
    const paths = (f: Record<string, unknown>) => check(f).map((p) => p.path);
    expect(paths({ backend: 'loki', url: 'http://loki:3100', expect: { fields: ['level'] }, checklist: 'audit-logging' })).toEqual([
      'expect',
      'checklist',
    ]);
    expect(paths({ backend: 'loki', url: 'http://loki:3100', trigger: { url: 'http://api/{{canary}}' } })).toEqual(['streamLabels']);
    expect(
      paths({
        backend: 'http',
        trigger: { url: 'http://api/{{canary}}', method: 'GET', body: '{}' },
        write: { url: 'http://store/events', body: '{"id":"{{id}}"}' },
        search: { url: 'http://store/?q={{canary}}', match: 'a' },
      }),
    ).toEqual(['write', 'trigger.body']);
  });

  test('values follow the definition', () => {
    const spec = definition({
      backend: 'loki',
      url: 'http://loki:3100',
      streamLabels: { app: 'api' },
      trigger: { url: 'http://api/{{canary}}' },
      expect: { fields: ['level'] },
    });
    expect(logIngestion.values(spec)).toEqual(['ingestion_latency_ms', 'polls', 'trigger_ms', 'trigger_status', 'fields_ok']);
  });

  test('evidence: the canary, audit logging and structured logging from one definition', () => {
    const spec = definition({
      backend: 'loki',
      url: 'http://loki:3100',
      streamLabels: { app: 'api' },
      trigger: { url: 'http://api/{{canary}}' },
      expect: { fields: ['level'] },
      checklist: 'audit-logging',
    });
    const value = (mean: number, count: number) => ({ min: 0, max: 1, last: 1, mean, count });
    const window = {
      runs: 4,
      failures: 1,
      values: { ingestion_latency_ms: { ...value(900, 3), p95: 1_000 }, fields_ok: value(2 / 3, 3) },
      last: { ok: true },
      lastSuccess: null,
    };
    const entries = [logIngestion.report.evidence?.(spec, window, { logIngestionMs: 30_000 } as never) ?? []].flat();
    expect(entries.map((e) => e.section)).toEqual(['logIngestion', 'auditLogging', 'structuredLogging']);
    expect(entries[1]?.item).toEqual({ probeId: 'audit', target: 'loki http://loki:3100', runs: 4, failures: 1, ok: false });
    expect(entries[2]?.item).toEqual({ probeId: 'audit', target: 'loki http://loki:3100', runs: 3, failures: 1, ok: false });
  });
});
