import { Validator } from '@seriousme/openapi-schema-validator';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { type OpenApiDocument, operations, ROUTE_DOCS } from '../../src/server/openapi.js';
import { RESPONSE_BODIES } from '../../src/server/response-schemas.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';
import { target, workspace } from '../helpers/workspace.js';

// `/openapi.json` describes the body of every success answer, the document passes a maintained
// OpenAPI validator, and each route's real answer (from an app with a probe up, one down and
// alerting, a silence, an override, a test page, a push) matches the schema it documents.

const OPS = 'ops-8d1c0f2b9e4a7c55';
const PUSH = 'push-token-0123456789abcdef';

// The format the schemas give instants: an ISO 8601 UTC time as toISOString() writes it.
FormatRegistry.Set('date-time', (v) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(v) && !Number.isNaN(Date.parse(v)));

/**
 * The schema with every object closed where it does not say otherwise (`additionalProperties`):
 * a field the API answers but the document does not name is then a mismatch, not a silent pass.
 */
function closed<T>(schema: T): T {
  if (Array.isArray(schema)) return schema.map(closed) as T;
  if (typeof schema !== 'object' || schema === null) return schema;
  const out = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, closed(v)]));
  // TypeBox's Kind symbol is kept: Value.Errors dispatches on it.
  for (const sym of Object.getOwnPropertySymbols(schema)) (out as Record<symbol, unknown>)[sym] = (schema as Record<symbol, unknown>)[sym];
  if ((out as { type?: unknown }).type === 'object' && 'properties' in out && !('additionalProperties' in out)) {
    (out as { additionalProperties?: boolean }).additionalProperties = false;
  }
  return out as T;
}

/** Routes whose real answer this test does not fetch, and why. */
const NOT_FETCHED: Record<string, string> = {
  'GET /api/v1/runs/:id/artifacts/:name': 'a browser run in Chromium: test/server/artifact-routes tests cover the file',
  'GET /act/:token': 'HTML; test/server/actions.test.ts',
  'POST /act/:token': 'HTML; test/server/actions.test.ts',
  'GET /': 'HTML; test/report/status-page.test.ts',
  'GET /api/v1/probes/:id/artifacts/:key/:name': 'a browser run in Chromium: test/probers/browser.test.ts fetches it',
  'GET /status': 'HTML, only with statusPage configured; test/server/pages.test.ts',
  'GET /runbooks/:page': 'Markdown of docs/runbooks; test/e2e/runbooks.test.ts',
  'GET /metrics': 'text; test/metrics',
};

describe('response bodies in the OpenAPI document', () => {
  let app: App;
  let ws: ReturnType<typeof workspace>;
  let upstream: Awaited<ReturnType<typeof target>>;
  let hook: Awaited<ReturnType<typeof target>>;
  let spec: OpenApiDocument;
  /** Real answers by route key and status. */
  const answers = new Map<string, Array<{ status: number; type: string; body: unknown }>>();

  beforeAll(async () => {
    upstream = await target((req, res) => {
      res.statusCode = req.url === '/health' ? 200 : 503;
      res.end('{}');
    });
    hook = await target((_req, res) => {
      res.statusCode = 204;
      res.end();
    });
    ws = workspace({
      'config/default.yaml': `
service: { name: shop, port: 0, host: 127.0.0.1 }
storage: { sqlite: { path: ./data/vigil.db } }
auth: { tokens: [{ name: ops, token: "${OPS}", role: admin }] }
people:
  alice: { name: Alice Ng, email: alice@example.com }
schedules:
  primary: { timezone: UTC, layers: [{ rotation: weekly, handoff: "mon 09:00", start: 2026-11-02, participants: [alice] }] }
channels:
  ops: { type: webhook, url: "${hook.url}/hook" }
alerting:
  maintenance: [{ name: nightly, schedule: "0 3 * * *", duration: 30m, probes: ["api*"] }]
`,
      'probes/p.yaml': `
- { id: api, kind: http, url: "${upstream.url}/health", schedule: "0 3 * * *" }
- { id: broken, kind: http, url: "${upstream.url}/down", schedule: "0 3 * * *", alert: { failures: 1, channels: [ops] } }
- { id: job, kind: push, token: ${PUSH}, period: 1d, schedule: "0 3 * * *" }
`,
    });
    app = createApp({
      config: loadConfig({ cwd: ws.dir, env: {} }),
      logger: memoryLogger().logger,
      reloadConfig: () => loadConfig({ cwd: ws.dir, env: {} }),
    });
    await app.start();
    spec = (await app.server.inject({ url: '/openapi.json' })).json();

    const call = async (key: string, url: string, body?: unknown) => {
      const [method] = key.split(' ');
      const res = await app.server.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${OPS}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });
      const type = String(res.headers['content-type'] ?? '');
      const parsed: unknown = type.startsWith('application/json') ? res.json() : res.body;
      const list = answers.get(key) ?? [];
      list.push({ status: res.statusCode, type, body: parsed });
      answers.set(key, list);
      return parsed as Record<string, unknown> & { incidents: unknown[]; notification: { id: number; state: string }; id: number };
    };
    await call('GET /health', '/health');
    await call('POST /api/v1/probes/:id/run', '/api/v1/probes/api/run');
    await call('POST /api/v1/probes/:id/run', '/api/v1/probes/broken/run');
    await call('POST /api/v1/probes/:id/run', '/api/v1/probes/api/run?wait=false');
    await waitFor('the incident', async () => (await call('GET /api/v1/incidents', '/api/v1/incidents')).incidents.length > 0, 5_000);
    await call('GET /api/v1/probes', '/api/v1/probes');
    await call('GET /api/v1/probes/:id', '/api/v1/probes/broken');
    await call('GET /api/v1/probes/:id/runs', '/api/v1/probes/api/runs');
    await call('GET /probes/:id', '/probes/api');
    for (const b of ['status.svg', 'uptime.svg', 'latency.svg', 'shields.json']) await call(`GET /badge/:id/${b}`, `/badge/api/${b}`);
    await call('POST /api/v1/incidents/:id/ack', '/api/v1/incidents/1/ack');
    await call('POST /api/v1/incidents/:id/resolve', '/api/v1/incidents/1/resolve');
    await call('GET /api/v1/incidents/:id', '/api/v1/incidents/1');
    const silence = await call('POST /api/v1/silences', '/api/v1/silences', { probes: ['api'], duration: '1h', comment: 'deploy' });
    await call('POST /api/v1/silences', '/api/v1/silences', { probes: ['nothing-*'], duration: '1h', comment: 'covers none' });
    await call('GET /api/v1/silences', '/api/v1/silences');
    await call('DELETE /api/v1/silences/:id', `/api/v1/silences/${silence.id}`);
    await call('GET /api/v1/maintenance', '/api/v1/maintenance');
    await call('GET /api/v1/channels', '/api/v1/channels');
    const test = await call('POST /api/v1/channels/:name/test', '/api/v1/channels/ops/test');
    const testId = test.notification.id;
    await waitFor(
      'the test page',
      async () =>
        (await call('GET /api/v1/channels/:name/tests/:id', `/api/v1/channels/ops/tests/${testId}`)).notification.state === 'delivered',
      5_000,
    );
    const hour = 3_600_000;
    const override = await call('POST /api/v1/oncall/overrides', '/api/v1/oncall/overrides', {
      schedule: 'primary',
      person: 'alice',
      start: new Date(Date.now() + hour).toISOString(),
      end: new Date(Date.now() + 2 * hour).toISOString(),
    });
    await call('GET /api/v1/oncall', '/api/v1/oncall');
    await call('GET /api/v1/schedules/:id/shifts', '/api/v1/schedules/primary/shifts');
    await call('DELETE /api/v1/oncall/overrides/:id', `/api/v1/oncall/overrides/${override.id}`);
    await call('GET /api/v1/push/:token', `/api/v1/push/${PUSH}`);
    await call('POST /api/v1/push/:token', `/api/v1/push/${PUSH}`, { note: 'done' });
    await call('GET /api/v1/push/:token/:what', `/api/v1/push/${PUSH}/start`);
    await call('POST /api/v1/push/:token/:what', `/api/v1/push/${PUSH}/0`, { note: 'exit 0' });
    await call('GET /api/v1/report', '/api/v1/report?days=2');
    await call('POST /api/v1/admin/reload', '/api/v1/admin/reload');
    await call('GET /api/v1/audit', '/api/v1/audit');
  });

  afterAll(async () => {
    await app?.stop();
    await upstream?.close();
    await hook?.close();
    ws?.remove();
  });

  it('is a valid OpenAPI document (@seriousme/openapi-schema-validator)', async () => {
    const result = await new Validator().validate(spec as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    // The validator can fail: a response schema in a dialect OpenAPI 3.0 does not know is caught.
    const broken = structuredClone(spec);
    (broken.paths['/health']!.get!.responses['200'] as { content: Record<string, { schema: unknown }> }).content[
      'application/json'
    ]!.schema = { const: 'ok' };
    expect((await new Validator().validate(broken as unknown as Record<string, unknown>)).valid).toBe(false);
  });

  it('documents a body for every success answer that has one', () => {
    const missing: string[] = [];
    for (const { key, op } of operations(spec)) {
      if (!Object.hasOwn(ROUTE_DOCS, key)) continue;
      for (const status of ROUTE_DOCS[key]!.ok ?? [200]) {
        const documented = op.responses[status]?.content;
        const expected = RESPONSE_BODIES[key]?.[status];
        if (expected === undefined && status !== 204 && key !== 'POST /slack/actions') missing.push(`${key} ${status}: no schema`);
        if (expected !== undefined && documented === undefined) missing.push(`${key} ${status}: not in the document`);
      }
    }
    expect(missing).toEqual([]);
    expect(Object.keys(RESPONSE_BODIES).sort()).toEqual(Object.keys(ROUTE_DOCS).sort());
  });

  it("matches each route's real answers to its documented schema and media type", () => {
    const problems: string[] = [];
    for (const [key, list] of answers) {
      for (const { status, type, body } of list) {
        const documented = RESPONSE_BODIES[key]?.[status];
        if (status === 204) {
          if (documented !== undefined || body !== '') problems.push(`${key} 204 has a body`);
          continue;
        }
        if (documented === undefined) {
          problems.push(`${key} answered ${status}, which it does not document: ${JSON.stringify(body).slice(0, 200)}`);
          continue;
        }
        const media = (documented.type ?? 'application/json').split(';')[0]!;
        if (!type.startsWith(media)) problems.push(`${key} ${status}: ${type}, documented ${media}`);
        for (const e of Value.Errors(closed(documented.schema), body)) problems.push(`${key} ${status}: ${e.path || '/'} ${e.message}`);
      }
    }
    expect(problems).toEqual([]);
    // The check can fail: a field the document does not name is caught.
    const channels = RESPONSE_BODIES['GET /api/v1/channels']![200]!.schema;
    expect([...Value.Errors(closed(channels), { channels: [{ name: 'ops', type: 'webhook', url: 'x' }] })]).toHaveLength(1);
    const fetched = new Set(answers.keys());
    const unfetched = Object.keys(RESPONSE_BODIES).filter(
      (key) => !fetched.has(key) && !Object.hasOwn(NOT_FETCHED, key) && key !== 'POST /slack/actions',
    );
    expect(unfetched).toEqual([]);
    // Both success statuses of running a probe were seen, and an incident's full view.
    expect(answers.get('POST /api/v1/probes/:id/run')?.map((a) => a.status)).toEqual([200, 200, 202]);
  });
});
