/**
 * The OpenAPI document, generated from the route schemas by @fastify/swagger, served as
 * `/openapi.json`, and the same document as one self-contained HTML page at `/docs` (no script, no
 * external asset, one `<style>` allowed by hash). Summaries, tags and auth live in the table below
 * rather than in the route files, so a route nobody described is found by comparing the two.
 */
import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { escapeHtml as esc, pageCsp } from '../report/index.js';
import { RESPONSE_BODIES } from './response-schemas.js';

/** What the table says of one route, keyed `"METHOD /path"` with Fastify's `:param` syntax. */
export interface RouteDoc {
  summary: string;
  tags: readonly [Tag, ...Tag[]];
  /** The least role whose bearer token the route accepts; public when absent. */
  auth?: 'operator' | 'admin';
  description?: string;
  /** Success statuses; `[200]` when absent. */
  ok?: readonly number[];
  /** Error statuses beyond those the route's shape implies (400 for a schema, 401/403 for auth, 404 for a path parameter). */
  errors?: readonly number[];
  /** Errors come as HTML pages for a person, not as the API's JSON error body. */
  html?: true;
}

const TAGS = {
  health: "vigil's own health and metrics",
  probes: 'Configured probes, their runs, and running one now',
  incidents: 'Incidents opened by alert rules: read, acknowledge, resolve',
  silences: 'Silences and maintenance windows: they mute notifications for the probes they match',
  channels: 'Notification channels and test pages',
  'on-call': 'On-call schedules, shifts and overrides',
  report: 'The launch report and the status page',
  pages: 'Pages for people and badges for READMEs: HTML and SVG without scripts',
  actions: 'One-click links in pages and Slack buttons: credentials are signatures, not tokens',
  push: "Pings from push probes' jobs (dead-man's switches): the push token in the URL is the credential",
  admin: 'Operating vigil itself',
  other: 'Routes missing from the route table in src/server/openapi.ts',
} as const;
type Tag = keyof typeof TAGS;

/** Every route vigil serves; a route missing here still appears in the document, under `other`, and fails the test. */
export const ROUTE_DOCS: Readonly<Record<string, RouteDoc>> = {
  'GET /health': {
    summary: "vigil's own health, check by check",
    tags: ['health'],
    description: 'Status 503 while any check fails, so a load balancer or uptime checker can use it as is.',
    errors: [503],
  },
  'GET /metrics': { summary: 'Prometheus metrics in the text exposition format', tags: ['health'] },

  'GET /api/v1/probes': { summary: 'Every probe with its state and last run', tags: ['probes'] },
  'GET /api/v1/probes/:id': { summary: 'One probe: definition (secrets redacted), state and last run', tags: ['probes'] },
  'GET /api/v1/probes/:id/runs': { summary: "A probe's runs in a time range, newest first", tags: ['probes'] },
  'GET /api/v1/runs/:id/artifacts/:name': {
    summary: "A file a run kept: a failed browser run's screenshot.png or Playwright trace.zip",
    tags: ['probes'],
    description:
      "The run id is the `id` of `/api/v1/probes/{id}/runs`; the names are those in the run's `details.artifacts.files`. " +
      'Any other name, or a file pruned with the failed runs (storage.retention.failedRuns), is a 404.',
  },
  'GET /api/v1/probes/:id/artifacts/:key/:name': {
    summary: "A file a probe's run kept, by the run's artifact key: the screenshot link of an incident's page",
    tags: ['probes'],
    description:
      "`key` and `name` are a run's `details.artifacts` (`{ key, files }`) or an incident's `lastError.artifacts`. " +
      'The page of an incident opened by a failed browser run links here: the incident opens before the run has an id.',
  },
  'POST /api/v1/probes/:id/run': {
    summary: 'Run a probe now',
    tags: ['probes'],
    auth: 'operator',
    description: 'Waits for the result unless `wait=false`, which answers 202 at once.',
    ok: [200, 202],
    errors: [409, 503],
  },

  'GET /api/v1/incidents': { summary: 'Incidents, newest first, filtered by state, probe and start', tags: ['incidents'] },
  'GET /api/v1/incidents/:id': { summary: 'One incident with its timeline and notifications', tags: ['incidents'] },
  'POST /api/v1/incidents/:id/ack': {
    summary: 'Acknowledge an incident: stops its escalation',
    tags: ['incidents'],
    auth: 'operator',
    errors: [409],
  },
  'POST /api/v1/incidents/:id/resolve': { summary: 'Resolve an incident', tags: ['incidents'], auth: 'operator', errors: [409] },

  'GET /api/v1/silences': { summary: 'Silences that have not ended yet', tags: ['silences'] },
  'POST /api/v1/silences': {
    summary: 'Create a silence',
    tags: ['silences'],
    auth: 'operator',
    description:
      'Give `endsAt` or `duration`; the silence starts now unless `startsAt` says otherwise. The answer lists the probe ids it `covers` now, with a `warning` when it covers none.',
    ok: [201],
  },
  'DELETE /api/v1/silences/:id': { summary: 'End a silence now', tags: ['silences'], auth: 'operator', ok: [204] },
  'GET /runbooks/:page': {
    summary: "vigil's own runbooks (docs/runbooks/*.md) as Markdown, linked from its own probes' alerts",
    tags: ['admin'],
  },
  'GET /api/v1/maintenance': {
    summary: 'Maintenance windows from the config: the probes each covers, whether it is in force, its next opening',
    tags: ['silences'],
  },

  'GET /api/v1/channels': { summary: 'Configured channels, name and type', tags: ['channels'] },
  'POST /api/v1/channels/:name/test': {
    summary: 'Queue a test page through a channel',
    tags: ['channels'],
    auth: 'operator',
    description: 'Answers at once with the queued notification; follow its delivery at `tests/{id}`.',
    ok: [202],
  },
  'GET /api/v1/channels/:name/tests/:id': { summary: "A test page's delivery state and latency", tags: ['channels'] },

  'GET /api/v1/oncall': { summary: 'Who is on call now, the next handoffs, and current overrides', tags: ['on-call'] },
  'GET /api/v1/schedules/:id/shifts': { summary: "A schedule's shifts in a range of at most 92 days", tags: ['on-call'] },
  'POST /api/v1/oncall/overrides': { summary: 'Put someone on call for a while', tags: ['on-call'], auth: 'operator', ok: [201] },
  'DELETE /api/v1/oncall/overrides/:id': { summary: 'Remove an on-call override', tags: ['on-call'], auth: 'operator', ok: [204] },

  'GET /': { summary: 'The status page (HTML)', tags: ['report'] },
  'GET /probes/:id': {
    summary: "One probe's page (HTML): state, last run, uptime and p95, latency charts, runs, incidents, redacted definition",
    tags: ['pages'],
    html: true,
  },
  'GET /status': {
    summary: 'The status page for customers (HTML): the probes statusPage chooses, grouped, with daily uptime and incidents',
    tags: ['pages'],
    description:
      'Shows no labels, run messages, targets or people. Open without a token when statusPage.public is true; otherwise a read like any other. 404 without statusPage.',
    html: true,
  },
  'GET /badge/:id/status.svg': {
    summary: "A probe's state as an SVG badge",
    tags: ['pages'],
    description: 'Open without a token for the probes of a public status page; otherwise a read like any other. Cached 60 s.',
  },
  'GET /badge/:id/uptime.svg': {
    summary: "A probe's uptime over `days` (1-365, default 30) as an SVG badge",
    tags: ['pages'],
    description: 'Open without a token for the probes of a public status page; otherwise a read like any other. Cached 60 s.',
  },
  'GET /badge/:id/latency.svg': {
    summary: "A probe's p95 duration over the last 24 hours as an SVG badge",
    tags: ['pages'],
    description: 'Open without a token for the probes of a public status page; otherwise a read like any other. Cached 60 s.',
  },
  'GET /badge/:id/shields.json': {
    summary: "A probe's state in shields.io's endpoint schema (schemaVersion, label, message, color)",
    tags: ['pages'],
    description: 'For https://img.shields.io/endpoint?url=…. Open without a token for the probes of a public status page. Cached 60 s.',
  },
  'GET /api/v1/report': {
    summary: 'The launch report as JSON, HTML or Markdown',
    tags: ['report'],
    description: '`format=` wins; otherwise the Accept header chooses; JSON by default.',
  },

  'GET /act/:token': {
    summary: 'The confirmation page of a one-click link (changes nothing)',
    tags: ['actions'],
    description: 'The token is a signed, expiring claim: it is the credential. Only present when interactions.linkSecret is set.',
    errors: [403, 410],
    html: true,
  },
  'POST /act/:token': {
    summary: 'Acknowledge or resolve the incident a one-click link names',
    tags: ['actions'],
    description: 'The token is a signed, expiring claim: it is the credential. Only present when interactions.linkSecret is set.',
    errors: [403, 409, 410],
    html: true,
  },
  'POST /slack/actions': {
    summary: 'Slack interactive buttons: acknowledge or resolve',
    tags: ['actions'],
    description:
      "Verified by Slack request signing (`x-slack-signature`, `x-slack-request-timestamp`); the body is Slack's form. Only present when interactions.slackSigningSecret is set.",
    errors: [400, 401, 415],
  },

  'GET /api/v1/push/:token': {
    summary: "A push probe's job reports a success",
    tags: ['push'],
    description: 'The push token is the credential (no bearer token). Answers `OK`, and runs the probe at once.',
    errors: [413, 429],
  },
  'POST /api/v1/push/:token': {
    summary: "A push probe's job reports a success (with an optional body, kept as the run's detail)",
    tags: ['push'],
    description: 'The push token is the credential (no bearer token). Any content type, at most 10 kB.',
    errors: [413, 429],
  },
  'GET /api/v1/push/:token/:what': {
    summary: "A push probe's job reports a start, a failure, or an exit code",
    tags: ['push'],
    description: '`what` is `start`, `fail`, or an exit code 0-255 (0 is a success). The push token is the credential.',
    errors: [413, 429],
  },
  'POST /api/v1/push/:token/:what': {
    summary: "A push probe's job reports a start, a failure, or an exit code (with an optional body)",
    tags: ['push'],
    description: '`what` is `start`, `fail`, or an exit code 0-255 (0 is a success). The push token is the credential.',
    errors: [413, 429],
  },

  'GET /api/v1/audit': { summary: 'The audit log: every write, who made it, and how it ended', tags: ['admin'], auth: 'admin' },
  'POST /api/v1/admin/reload': {
    summary: 'Reload config and probes from their files',
    tags: ['admin'],
    auth: 'admin',
    description:
      'Applies probes, channels, people, schedules, escalation, tokens and the rest that can change live, in one step. ' +
      'An invalid config (`VIGIL_ERR_CONFIG`), or one changing a key only a restart applies (`VIGIL_ERR_RESTART_REQUIRED`: ' +
      '`service.port: changed from 8080 to 9090; takes a restart`), answers 400 `ok: false` with every problem, and nothing changes. ' +
      '`restartRequired` in a 200 is always empty (kept for compatibility).',
    errors: [400],
  },
};

/** The parts of an OpenAPI 3.0 document this module reads and writes. */
export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  tags?: Array<{ name: string; description?: string }>;
  components?: { securitySchemes?: Record<string, unknown>; schemas?: Record<string, unknown> };
  paths: Record<string, Partial<Record<HttpMethod, OpenApiOperation>>>;
}

/** One operation of the document. */
export interface OpenApiOperation {
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ in: string; name: string; required?: boolean; description?: string; schema?: JsonSchema }>;
  requestBody?: { required?: boolean; content: Record<string, { schema?: JsonSchema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema?: JsonSchema }> }>;
}

type JsonSchema = Record<string, unknown>;

/** The methods an OpenAPI path item can hold, lower case as the document writes them. */
export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
type HttpMethod = (typeof HTTP_METHODS)[number];

/** An OpenAPI path (`/probes/{id}`) as Fastify writes it (`/probes/:id`). */
export function fastifyPath(openApiPath: string): string {
  return openApiPath.replace(/\{([^}]+)\}/g, ':$1');
}

/** Every operation in a document, with its table key. */
export function operations(spec: OpenApiDocument): Array<{ key: string; path: string; method: HttpMethod; op: OpenApiOperation }> {
  const out = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (op) out.push({ key: `${method.toUpperCase()} ${fastifyPath(path)}`, path, method, op });
    }
  }
  return out;
}

/** Routes in the document that the table does not describe: they carry only a summary made from their method and path. */
export function undocumentedRoutes(spec: OpenApiDocument): string[] {
  return operations(spec)
    .map((o) => o.key)
    .filter((key) => !Object.hasOwn(ROUTE_DOCS, key));
}

/** @fastify/swagger types its document as any Swagger/OpenAPI version; vigil's is OpenAPI 3 (`openapi` mode). */
function openApi3(doc: object): OpenApiDocument {
  if (!isOpenApi3(doc)) throw new Error('@fastify/swagger made no OpenAPI 3 document');
  return doc;
}

function isOpenApi3(doc: object): doc is OpenApiDocument {
  return 'openapi' in doc && typeof doc.openapi === 'string' && 'paths' in doc && typeof doc.paths === 'object' && doc.paths !== null;
}

/** Table entries naming a route the document does not have: renamed or removed routes. */
export function staleRouteDocs(spec: OpenApiDocument): string[] {
  const present = new Set(operations(spec).map((o) => o.key));
  return Object.keys(ROUTE_DOCS).filter((key) => !present.has(key));
}

/** vigil's version, from its package.json (one level above both `src/` and `dist/`). */
export function vigilVersion(): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const version: unknown = typeof pkg === 'object' && pkg !== null ? Reflect.get(pkg, 'version') : undefined;
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    // An image built without package.json still serves its API; only the document's version is lost.
    return 'unknown';
  }
}

const ErrorBody = {
  type: 'object',
  properties: {
    error: { type: 'string', description: 'The HTTP status text' },
    code: { type: 'string', description: 'A stable code: VIGIL_ERR_*' },
    message: { type: 'string', description: 'What went wrong, for a person' },
  },
  required: ['error', 'code', 'message'],
};

/**
 * The schema with its defaulted properties no longer required: validation fills them in, so a
 * client may leave them out, and the document should say so (`limit`, `wait`, a silence's `probes`).
 */
function defaultsOptional(schema: unknown): unknown {
  if (typeof schema !== 'object' || schema === null) return schema;
  const required: unknown = Reflect.get(schema, 'required');
  const properties: unknown = Reflect.get(schema, 'properties');
  if (!Array.isArray(required) || typeof properties !== 'object' || properties === null) return schema;
  const left = required.filter((key) => {
    const prop: unknown = Reflect.get(properties, key);
    return !(typeof prop === 'object' && prop !== null && 'default' in prop);
  });
  if (left.length === required.length) return schema;
  const rest = Object.fromEntries(Object.entries(schema).filter(([key]) => key !== 'required'));
  // OpenAPI 3.0 wants a `required` list to have an entry, so an empty one goes.
  return left.length > 0 ? { ...rest, required: left } : rest;
}

/**
 * A JSON Schema (as TypeBox writes it) in OpenAPI 3.0's dialect: `const` becomes a one-value
 * `enum`, a union with null becomes `nullable`, a record's `patternProperties` becomes
 * `additionalProperties`. OpenAPI 3.0 knows none of the former.
 */
export function openApi30(schema: unknown): JsonSchema {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return {};
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'properties' && typeof v === 'object' && v !== null) {
      out.properties = Object.fromEntries(Object.entries(v).map(([name, p]) => [name, openApi30(p)]));
    } else if (k === 'items' || (k === 'additionalProperties' && typeof v === 'object')) out[k] = openApi30(v);
    else if (k === 'patternProperties' && typeof v === 'object' && v !== null) out.additionalProperties = openApi30(Object.values(v)[0]);
    else if (k === 'const') {
      out.type = typeof v;
      out.enum = [v];
    } else if (k === 'anyOf' && Array.isArray(v)) Object.assign(out, union(v));
    else out[k] = v;
  }
  return out;
}

function union(members: unknown[]): JsonSchema {
  const isNull = (m: unknown) => typeof m === 'object' && m !== null && Reflect.get(m, 'type') === 'null';
  const rest = members.filter((m) => !isNull(m)).map(openApi30);
  const nullable = rest.length < members.length ? { nullable: true } : {};
  if (rest.length === 1) return { ...rest[0], ...nullable };
  // Literals of one type: one enum.
  const enums = rest.every((m) => Array.isArray(m.enum) && m.enum.length === 1) && new Set(rest.map((m) => m.type)).size === 1;
  if (enums) return { type: rest[0]?.type, enum: rest.flatMap((m) => m.enum as unknown[]), ...nullable };
  return { anyOf: rest, ...nullable };
}

/** The schema the document shows for a route: the route's own, plus what the table says. */
function withDocs(method: string, url: string, schema: FastifySchema | undefined): FastifySchema {
  const key = `${method} ${url}`;
  const doc: RouteDoc = ROUTE_DOCS[key] ?? { summary: key, tags: ['other'] };
  const described: FastifySchema & Record<string, unknown> = { ...schema, summary: doc.summary, tags: [...doc.tags] };
  if (schema?.querystring) described.querystring = defaultsOptional(schema.querystring);
  if (schema?.body) described.body = defaultsOptional(schema.body);
  const auth = doc.auth ? `Needs a bearer token with role ${doc.auth}${doc.auth === 'operator' ? ' or admin' : ''}.` : undefined;
  const text = [doc.description, auth].filter(Boolean).join(' ');
  if (text) described.description = text;
  if (doc.auth) described.security = [{ bearer: [] }];
  if (schema?.response === undefined) {
    // Success bodies from response-schemas.ts (in OpenAPI 3.0's dialect); a status without one has no body.
    const response: Record<string, JsonSchema> = {};
    const bodies = RESPONSE_BODIES[key] ?? {};
    for (const status of doc.ok ?? [200]) {
      const body = bodies[status];
      const description = STATUS_CODES[status] ?? String(status);
      response[status] = body
        ? { description, content: { [body.type ?? 'application/json']: { schema: openApi30(body.schema) } } }
        : { description };
    }
    const errors = new Set(doc.errors);
    if (schema?.params || schema?.querystring || schema?.body) errors.add(400);
    if (doc.auth) errors.add(401).add(403);
    if (url.includes(':')) errors.add(404);
    for (const status of [...errors].sort((a, b) => a - b)) {
      const description = STATUS_CODES[status] ?? String(status);
      response[status] = doc.html ? { description } : { ...ErrorBody, description };
    }
    described.response = response;
  }
  return described;
}

/**
 * Registers @fastify/swagger in dynamic mode and serves its document at `/openapi.json` and `/docs`.
 * Synchronous on purpose: swagger learns routes from an `onRoute` hook, which sees only routes
 * added after it exists, and `app.register(swagger)` installs it only when the app boots, missing
 * every route added directly before then. So the plugin function runs here, at once, on this
 * instance: every route added after this call, on the instance or in any scope under it, is in the document.
 */
export function registerOpenApi(app: FastifyInstance, opts: { version: string; title?: string }): void {
  swagger(
    app,
    {
      mode: 'dynamic',
      openapi: {
        openapi: '3.0.3',
        info: {
          title: opts.title ?? 'vigil',
          version: opts.version,
          description:
            'Scheduled probes, durable alerting, on-call and the launch report. Writes need a bearer token; reads need one too where the deployment puts them behind a token.',
        },
        tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      },
      transform: ({ schema, url, route }) => {
        if (schema?.hide) return { schema, url };
        const [method = ''] = [route.method].flat();
        return { schema: withDocs(method, url, schema), url };
      },
    },
    (err) => {
      if (err) throw err;
    },
  );

  let page: string | undefined;
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/docs', { schema: { hide: true } }, async (_req, reply) => {
    page ??= renderDocs(openApi3(app.swagger()));
    return reply
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .type('text/html; charset=utf-8')
      .send(page);
  });
}

// The CSP allows exactly this text by hash, so any edit here changes the policy with it.
const STYLE = `
:root{color-scheme:light;--fg:#1d2125;--mute:#5f6b76;--line:#d9dee3}
*{box-sizing:border-box}
body{margin:0 auto;max-width:64rem;padding:1rem 1.25rem 3rem;color:var(--fg);background:#fff;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
h1{font-size:1.5rem;margin:0 0 .3rem}
h2{font-size:1.15rem;margin:2rem 0 .3rem;padding-bottom:.2rem;border-bottom:2px solid var(--line)}
h3{font-size:1rem;margin:0;font-weight:600}
nav a{margin-right:.8rem}
section.op{border:1px solid var(--line);border-radius:.4rem;padding:.5rem .8rem;margin:.7rem 0}
.method{display:inline-block;min-width:4.2rem;font-weight:700;font-size:.8rem}
.path,code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
.lock{font-size:.8rem;color:var(--mute);border:1px solid var(--line);border-radius:3px;padding:0 .3em;margin-left:.4em}
.mute{color:var(--mute)}
p{margin:.3rem 0}
table{border-collapse:collapse;width:100%;margin:.3rem 0}
th,td{text-align:left;vertical-align:top;padding:.2rem .5rem;border-bottom:1px solid var(--line)}
th{color:var(--mute);font-size:.85rem;font-weight:600}
pre{background:#f6f8fa;padding:.5rem;overflow:auto;margin:.3rem 0}
h4{font-size:.85rem;margin:.5rem 0 0;color:var(--mute)}
`;

const CSP = pageCsp(STYLE);

/** A parameter's schema in a few words: `integer, ≥ 1, ≤ 1000, default 100`. */
function typeText(schema: JsonSchema | undefined): string {
  if (!schema) return '';
  const parts: string[] = [];
  const type = typeof schema.type === 'string' ? schema.type : 'any';
  parts.push(typeof schema.format === 'string' ? `${type} (${schema.format})` : type);
  if (Array.isArray(schema.enum)) parts.push(`one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  if (schema.minimum !== undefined) parts.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) parts.push(`≤ ${schema.maximum}`);
  if (schema.maxLength !== undefined) parts.push(`≤ ${schema.maxLength} chars`);
  if (schema.default !== undefined) parts.push(`default ${JSON.stringify(schema.default)}`);
  return parts.join(', ');
}

/** The markup of one operation; every string from the document is escaped. */
function operationHtml(path: string, method: string, op: OpenApiOperation): string {
  const out = [
    `<section class="op" id="${esc(`${method}-${path}`)}">`,
    `<h3><span class="method">${esc(method.toUpperCase())}</span><span class="path">${esc(path)}</span>${
      op.security?.length ? '<span class="lock">bearer token</span>' : ''
    }</h3>`,
    `<p>${esc(op.summary ?? '')}</p>`,
  ];
  if (op.description) out.push(`<p class="mute">${esc(op.description)}</p>`);
  if (op.parameters?.length) {
    out.push(
      '<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>',
    );
    for (const p of op.parameters) {
      out.push(
        `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${esc(typeText(p.schema))}</td>` +
          `<td>${p.required ? 'yes' : 'no'}</td><td>${esc(p.description ?? '')}</td></tr>`,
      );
    }
    out.push('</tbody></table>');
  }
  if (op.requestBody) {
    for (const [type, media] of Object.entries(op.requestBody.content)) {
      out.push(
        `<h4>Request body <span class="path">${esc(type)}</span></h4><pre>${esc(JSON.stringify(media.schema ?? {}, null, 2))}</pre>`,
      );
    }
  }
  out.push('<h4>Responses</h4><table><tbody>');
  for (const [status, res] of Object.entries(op.responses)) {
    out.push(`<tr><td><code>${esc(status)}</code></td><td>${esc(res.description)}</td></tr>`);
  }
  out.push('</tbody></table></section>');
  return out.join('\n');
}

/** The document as one HTML page, operations grouped by their first tag in the document's tag order. */
export function renderDocs(spec: OpenApiDocument): string {
  const groups = new Map<string, string[]>((spec.tags ?? []).map((t) => [t.name, []]));
  for (const { path, method, op } of operations(spec)) {
    const tag = op.tags?.[0] ?? 'other';
    if (!groups.has(tag)) groups.set(tag, []);
    groups.get(tag)?.push(operationHtml(path, method, op));
  }
  const described = new Map((spec.tags ?? []).map((t) => [t.name, t.description]));
  const filled = [...groups].filter(([, ops]) => ops.length > 0);
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">',
    `<title>${esc(spec.info.title)} API ${esc(spec.info.version)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<header><h1>${esc(spec.info.title)} API <span class="mute">${esc(spec.info.version)}</span></h1>`,
    spec.info.description ? `<p>${esc(spec.info.description)}</p>` : '',
    '<p class="mute">The machine-readable document is at <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.0).</p>',
    `<nav>${filled.map(([tag]) => `<a href="#tag-${esc(tag)}">${esc(tag)}</a>`).join('')}</nav></header>`,
    ...filled.map(([tag, ops]) =>
      [
        `<h2 id="tag-${esc(tag)}">${esc(tag)}</h2>`,
        described.get(tag) ? `<p class="mute">${esc(described.get(tag) ?? '')}</p>` : '',
        ...ops,
      ].join('\n'),
    ),
    '</body></html>',
  ].join('\n');
}
