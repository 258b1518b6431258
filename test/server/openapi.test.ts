import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import {
  type OpenApiDocument,
  operations,
  ROUTE_DOCS,
  registerOpenApi,
  staleRouteDocs,
  undocumentedRoutes,
} from '../../src/server/openapi.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { workspace } from '../helpers/workspace.js';

// Every optional part switched on (links, Slack, a channel, a schedule), so every route is served.
const CONFIG = `
service: { name: shop }
storage: { sqlite: { path: ./data/vigil.db } }
auth: { tokens: [{ name: ops, token: "ops-8d1c0f2b9e4a7c55", role: operator }] }
interactions: { linkSecret: "link-secret-0123456789abcdef0123456789", slackSigningSecret: "slack-signing-secret-8f742231b10e" }
people:
  alice: { name: Alice Ng, email: alice@example.com }
schedules:
  primary: { timezone: UTC, layers: [{ rotation: weekly, handoff: "mon 09:00", start: 2026-11-02, participants: [alice] }] }
channels:
  ops: { type: webhook, url: "http://127.0.0.1:9/hook" }
`;

/** The routes that serve the document itself: not part of it. */
const DOC_ROUTES = new Set(['GET /openapi.json', 'GET /docs']);

/**
 * Every `METHOD /path` Fastify serves, read from its own route tree rather than from swagger's hook,
 * so a route the hook missed shows up as a difference. The tree prints one segment per line, four
 * columns of indent per level: a route's path is its ancestors' segments and its own.
 */
function servedRoutes(app: FastifyInstance): string[] {
  const prefixes: string[] = [];
  const out: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^(.*?── )(\S+)(?: \(([A-Z, ]+)\))?\s*$/.exec(line);
    if (!m) continue;
    const depth = [...(m[1] as string)].length / 4;
    const path = (prefixes[depth - 1] ?? '') + (m[2] as string);
    prefixes[depth] = path;
    for (const method of m[3]?.split(', ') ?? []) out.push(`${method} ${path}`);
  }
  return out;
}

describe('OpenAPI document of the whole app', () => {
  let app: App;
  let ws: ReturnType<typeof workspace>;
  let spec: OpenApiDocument;

  beforeAll(async () => {
    ws = workspace({ 'config/default.yaml': CONFIG });
    app = createApp({ config: loadConfig({ cwd: ws.dir, env: {} }), logger: memoryLogger().logger, clock: new ManualClock() });
    const res = await app.server.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    spec = res.json();
  });

  afterAll(async () => {
    await app.server.close();
    await app.store.close();
    ws.remove();
  });

  it('has every route Fastify serves, each described by the route table', () => {
    const served = servedRoutes(app.server).filter((r) => !r.startsWith('HEAD ') && !DOC_ROUTES.has(r));
    // A sanity check on the tree parsing: these are spread over every route file.
    expect(served).toEqual(
      expect.arrayContaining(['GET /health', 'POST /api/v1/probes/:id/run', 'GET /api/v1/channels/:name/tests/:id', 'POST /slack/actions']),
    );
    expect(served.length).toBeGreaterThanOrEqual(25);

    const documented = operations(spec).map((o) => o.key);
    expect(served.filter((r) => !documented.includes(r))).toEqual([]);
    expect(documented.filter((r) => !served.includes(r))).toEqual([]);
    expect(undocumentedRoutes(spec)).toEqual([]);
    for (const { key, op } of operations(spec)) {
      expect(op.summary, key).toBe(ROUTE_DOCS[key]?.summary);
      expect(op.tags, key).toEqual(ROUTE_DOCS[key]?.tags);
    }
  });

  it('names no route the app does not serve: a renamed route takes its entry along', () => {
    expect(staleRouteDocs(spec)).toEqual([]);
  });

  it('asks for a bearer token on every API write and wherever the table names a role', () => {
    for (const { key, method, path, op } of operations(spec)) {
      // A push ping's credential is the push token in its URL: the job has no bearer token.
      const needsToken =
        (method !== 'get' && path.startsWith('/api/') && !path.startsWith('/api/v1/push/')) || ROUTE_DOCS[key]?.auth !== undefined;
      if (needsToken) {
        expect(op.security, key).toEqual([{ bearer: [] }]);
        expect(ROUTE_DOCS[key]?.auth, key).toBeDefined();
        expect(Object.keys(op.responses), key).toEqual(expect.arrayContaining(['401', '403']));
      } else {
        expect(op.security, key).toBeUndefined();
      }
    }
  });

  it('is an OpenAPI 3.0 document in shape', () => {
    const version = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
    expect(spec.openapi).toBe('3.0.3');
    expect(spec.info).toMatchObject({ title: 'vigil', version });
    expect(spec.components?.securitySchemes).toEqual({ bearer: { type: 'http', scheme: 'bearer' } });
    const tags = new Set(spec.tags?.map((t) => t.name));
    expect(Object.keys(spec.paths).length).toBeGreaterThan(0);

    for (const { key, path, op } of operations(spec)) {
      expect(path, key).toMatch(/^\/[^:]*$/);
      for (const tag of op.tags ?? []) expect(tags.has(tag), `${key}: tag ${tag}`).toBe(true);
      for (const p of op.parameters ?? []) {
        expect(['query', 'path', 'header', 'cookie'], key).toContain(p.in);
        expect(p.name, key).toMatch(/^\w+$/);
        expect(p.schema, `${key} ${p.name}`).toBeTypeOf('object');
        if (p.in === 'path') expect(p.required, `${key} ${p.name}`).toBe(true);
      }
      // Each `{param}` of the path is a path parameter, and only those.
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      const pathParams = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      expect(pathParams.sort(), key).toEqual(templated);
      expect(Object.keys(op.responses).length, key).toBeGreaterThan(0);
      for (const [status, res] of Object.entries(op.responses)) {
        expect(status, key).toMatch(/^[1-5]\d\d$/);
        expect(res.description, `${key} ${status}`).toBeTruthy();
      }
      for (const s of op.security ?? [])
        for (const scheme of Object.keys(s)) expect(spec.components?.securitySchemes).toHaveProperty(scheme);
      // OpenAPI 3.0 has no empty `required` lists and no `type: null`.
      expect(JSON.stringify(op), key).not.toMatch(/"required":\[\]|"type":"null"/);
    }
  });

  it('shows validation defaults as optional, without changing what the route validates', async () => {
    const runs = spec.paths['/api/v1/probes/{id}/runs']?.get;
    expect(runs?.parameters?.find((p) => p.name === 'limit')).toMatchObject({ in: 'query', required: false, schema: { default: 100 } });
    const silence = spec.paths['/api/v1/silences']?.post?.requestBody?.content['application/json']?.schema;
    expect(silence).toMatchObject({ required: ['comment'] });
    const res = await app.server.inject({ url: '/api/v1/incidents?limit=0' });
    expect(res.statusCode).toBe(400);
  });

  it('serves /docs as one self-contained page listing every operation, its CSP hashing its one style', async () => {
    const res = await app.server.inject({ url: '/docs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = res.body;
    expect(html).not.toMatch(/<script|<link|<img|<iframe| src=/i);
    const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)];
    expect(styles).toHaveLength(1);
    const hash = createHash('sha256')
      .update(styles[0]?.[1] as string, 'utf8')
      .digest('base64');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`style-src 'sha256-${hash}'`);

    for (const { key, path, method, op } of operations(spec)) {
      const section = html.split(`<section class="op" id="${method}-${path}">`)[1]?.split('</section>')[0];
      expect(section, key).toBeDefined();
      expect(section).toContain(`<span class="method">${method.toUpperCase()}</span><span class="path">${path}</span>`);
      for (const p of op.parameters ?? []) expect(section, `${key} ${p.name}`).toContain(`<code>${p.name}</code>`);
      for (const status of Object.keys(op.responses)) expect(section, `${key} ${status}`).toContain(`<code>${status}</code>`);
    }
    // The request body is shown as its schema.
    expect(html).toContain('&quot;comment&quot;: {');
    for (const tag of new Set(operations(spec).map((o) => o.op.tags?.[0]))) expect(html).toContain(`<h2 id="tag-${tag}">`);
  });
});

describe('registerOpenApi on its own', () => {
  it('sees routes added after it, in the root and in scopes, and the gap check names those missing from the table', async () => {
    const app = Fastify();
    registerOpenApi(app, { version: '1.2.3', title: 'test' });
    app.get('/health', async () => ({ status: 'ok' }));
    app.post('/api/v1/widgets/:id', { schema: { params: Type.Object({ id: Type.String() }) } }, async () => ({}));
    app.register(async (scope) => {
      scope.delete('/api/v1/widgets/:id/parts', async () => ({}));
    });
    const spec: OpenApiDocument = (await app.inject({ url: '/openapi.json' })).json();

    expect(spec.info).toEqual(expect.objectContaining({ title: 'test', version: '1.2.3' }));
    expect(Object.keys(spec.paths).sort()).toEqual(['/api/v1/widgets/{id}', '/api/v1/widgets/{id}/parts', '/health']);
    expect(spec.paths['/health']?.get?.summary).toBe(ROUTE_DOCS['GET /health']?.summary);
    // Still documented, from method and path, but reported as a gap in the table.
    expect(spec.paths['/api/v1/widgets/{id}']?.post).toMatchObject({ summary: 'POST /api/v1/widgets/:id', tags: ['other'] });
    expect(undocumentedRoutes(spec).sort()).toEqual(['DELETE /api/v1/widgets/:id/parts', 'POST /api/v1/widgets/:id']);
    expect(staleRouteDocs(spec)).toContain('GET /api/v1/probes');

    const docs = await app.inject({ url: '/docs' });
    expect(docs.body).toContain('<h2 id="tag-other">other</h2>');
    await app.close();
  });
});
