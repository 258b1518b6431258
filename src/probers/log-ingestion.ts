import { randomUUID } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { formatDuration, ms } from '../lib/duration.js';
import { Duration } from '../lib/schema.js';
import { type Backend, type Canary, createTransport, credentialsHeader, type Transport } from './log-ingestion/backend.js';
import { elasticsearchBackend } from './log-ingestion/elasticsearch.js';
import { genericBackend, hasPlaceholder, PLACEHOLDERS, unknownPlaceholders } from './log-ingestion/generic.js';
import { lokiBackend } from './log-ingestion/loki.js';
import { checkFields, checkTrigger, fireTrigger, Trigger } from './log-ingestion/trigger.js';
import {
  type ChecklistEntry,
  checkEntry,
  defineProber,
  type ProbeBase,
  type ProbeContext,
  type ProbeResult,
  type SpecProblem,
} from './types.js';
import { urlAsWritten } from './url-credentials.js';

const Url = Type.String({ pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// URL' });
const Headers = Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), Type.String(), {
  default: {},
  expected: 'a map of header names to values',
});

const DEFAULT_STREAM_LABELS = { job: 'vigil-canary' };
const DEFAULT_EVENT = '{"id":"{{id}}","timestamp":"{{timestamp}}","message":"vigil log-ingestion canary {{id}}","probe":"{{probe}}"}';

const schema = Type.Object(
  {
    backend: Type.Union([Type.Literal('loki'), Type.Literal('elasticsearch'), Type.Literal('opensearch'), Type.Literal('http')], {
      expected: 'one of loki, elasticsearch, opensearch, http',
    }),
    /** The store's base URL (Loki, Elasticsearch, OpenSearch); the http backend has write.url and search.url instead. */
    url: Type.Optional(Url),
    /** Sent as `X-Scope-OrgID` on every request (Loki multi-tenancy). */
    tenant: Type.Optional(Type.String({ minLength: 1, expected: 'a tenant (org) id' })),
    /** Slower than this from write to found fails with INGESTION_SLOW. */
    maxLatency: Duration('30s'),
    /** How long to keep looking after maxLatency, so a late event is told apart from a lost one. */
    grace: Duration('10s'),
    /** Sent with every request; auth belongs here, as `${SECRET}` references. */
    headers: Headers,
    /**
     * Loki: the canary stream's labels, DEFAULT_STREAM_LABELS when unset. (Not `labels`, which every
     * definition already has for itself.) No schema default: TypeBox merges an object default into the
     * given value, and a user's labels must replace the default, not extend it.
     */
    streamLabels: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' }), Type.String({ minLength: 1 }), {
        minProperties: 1,
        expected: 'a map of Loki label names to non-empty values',
      }),
    ),
    /** Elasticsearch/OpenSearch: the index (or data stream) the canary document goes to. */
    index: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]*$', default: 'vigil-canary', expected: 'a lowercase index or data stream name' }),
    /** Elasticsearch/OpenSearch: the document field carrying the canary id. */
    field: Type.String({ pattern: '^[A-Za-z0-9_@][A-Za-z0-9_.@-]*$', default: 'canary_id', expected: 'a field name' }),
    /** http backend: the request that writes the event; `{{id}}` and friends are filled in. */
    write: Type.Optional(
      Type.Object(
        {
          url: Url,
          method: Type.Union([Type.Literal('POST'), Type.Literal('PUT')], { default: 'POST', expected: 'POST or PUT' }),
          headers: Headers,
          body: Type.String({ default: DEFAULT_EVENT, minLength: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
    /**
     * The application logs the canary instead of vigil writing it: a real request carrying `{{canary}}`,
     * then the search as usual (Loki: `streamLabels` select the application's stream).
     */
    trigger: Type.Optional(Trigger),
    /** What the found line must be: JSON carrying these fields (dotted paths for nested ones). Needs `trigger`. */
    expect: Type.Optional(
      Type.Object(
        {
          fields: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_@$-][A-Za-z0-9_@$.-]*$' }), {
            minItems: 1,
            uniqueItems: true,
            expected: 'a list of field names such as [timestamp, level, request_id]',
          }),
        },
        { additionalProperties: false },
      ),
    ),
    /**
     * The checklist item the found line proves besides centralized logging: `audit-logging` for a
     * request found in the audit log (needs `trigger`).
     */
    checklist: Type.Optional(
      Type.Union([Type.Literal('centralized-logging'), Type.Literal('audit-logging')], {
        expected: 'centralized-logging or audit-logging',
      }),
    ),
    /** http backend: the request that looks for the event, and where the id must appear in its JSON answer. */
    search: Type.Optional(
      Type.Object(
        {
          url: Url,
          method: Type.Union([Type.Literal('GET'), Type.Literal('POST')], { default: 'GET', expected: 'GET or POST' }),
          headers: Headers,
          body: Type.Optional(Type.String({ minLength: 1 })),
          /** Dotted JSON path (`*` for every array element) whose value must equal the id. */
          match: Type.String({ minLength: 1, expected: 'a dotted JSON path such as results.*.id' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The fields of a `log-ingestion` definition. */
export type LogIngestionSpec = Static<typeof schema>;
type Spec = ProbeBase & LogIngestionSpec;

/** Polling starts at this interval and doubles up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;

export const logIngestion = defineProber({
  // Long enough to tell a late event from a lost one: maxLatency, the grace, and 5 s to write and report.
  defaultTimeout: (spec) => formatDuration(ms(spec.maxLatency) + ms(spec.grace) + 5_000),
  schema,
  report: {
    target: (spec) => logTarget(spec),
    evidence(spec, w, targets) {
      const lat = w.values.ingestion_latency_ms;
      const p95 = lat?.p95 ?? null;
      const canary: ChecklistEntry = {
        section: 'logIngestion',
        item: {
          probeId: spec.id,
          backend: spec.backend,
          p95Ms: p95,
          maxMs: lat?.max ?? null,
          runs: w.runs,
          failures: w.failures,
          ok: w.runs === 0 ? null : p95 !== null && p95 <= targets.logIngestionMs && w.last?.ok === true,
        },
      };
      const entries: ChecklistEntry[] = [canary];
      const target = logTarget(spec);
      if (spec.checklist === 'audit-logging') entries.push(checkEntry('auditLogging', spec.id, target, w));
      if (spec.expect?.fields !== undefined) entries.push(structured(spec.id, target, w));
      return entries;
    },
  },
  values: (spec) =>
    spec.trigger === undefined
      ? ['ingestion_latency_ms', 'polls', 'write_ms']
      : ['ingestion_latency_ms', 'polls', 'trigger_ms', 'trigger_status', ...(spec.expect ? ['fields_ok'] : [])],
  percentiles: ['ingestion_latency_ms'],
  check: (spec) => [...(spec.backend === 'http' ? checkGeneric(spec) : checkStore(spec)), ...checkTriggered(spec)],
  async probe(spec, ctx) {
    const transport = createTransport(requestHeaders(spec), ctx.clock);
    // The application gets only the trigger's own headers: the store's credentials stay with the store.
    const appTransport = spec.trigger === undefined ? undefined : createTransport({}, ctx.clock);
    const window = runWindow(ctx);
    try {
      return await measure(spec, backendFor(spec, transport, ctx), ctx, window, appTransport);
    } finally {
      window.dispose();
      await Promise.all([transport.close(), appTransport?.close()]);
    }
  },
});

function logTarget(spec: Spec): string {
  return spec.url === undefined ? spec.backend : `${spec.backend} ${urlAsWritten(spec.url)}`;
}

/**
 * Structured logging holds when every found line carried the fields: `fields_ok` is 1 or 0 per run
 * that found its line, so its count and mean give the runs and the failures.
 */
function structured(probeId: string, target: string, w: Parameters<typeof checkEntry>[3]): ChecklistEntry {
  const v = w.values.fields_ok;
  const runs = v?.count ?? 0;
  const failures = v === undefined ? 0 : Math.round(v.count * (1 - v.mean));
  return { section: 'structuredLogging', item: { probeId, target, runs, failures, ok: runs === 0 ? null : failures === 0 } };
}

/** Sent with every request: `user:pass@` from the URL, the tenant, then the definition's own headers (which win). */
function requestHeaders(spec: Spec): Record<string, string> {
  return { ...(spec.url ? credentialsHeader(spec.url) : {}), ...(spec.tenant ? { 'x-scope-orgid': spec.tenant } : {}), ...spec.headers };
}

function backendFor(spec: Spec, transport: Transport, ctx: ProbeContext): Backend {
  if (spec.backend === 'loki')
    return lokiBackend({ url: spec.url!, labels: spec.streamLabels ?? DEFAULT_STREAM_LABELS, transport, clock: ctx.clock });
  if (spec.backend === 'http') return genericBackend({ write: spec.write, search: spec.search!, transport });
  return elasticsearchBackend({
    flavor: spec.backend,
    url: spec.url!,
    index: spec.index,
    field: spec.field,
    transport,
    anyField: spec.trigger !== undefined,
  });
}

/** The run's own end, a little before the scheduler's deadline so the result is still delivered. */
interface RunWindow {
  signal: AbortSignal;
  stop: number;
  dispose(): void;
}

function runWindow(ctx: ProbeContext): RunWindow {
  const now = ctx.clock.now();
  const stop = ctx.deadline - Math.min(250, Math.max(0, ctx.deadline - now) * 0.05);
  const controller = new AbortController();
  const onAbort = () => controller.abort(ctx.signal.reason);
  if (ctx.signal.aborted) onAbort();
  else ctx.signal.addEventListener('abort', onAbort, { once: true });
  const timer = ctx.clock.setTimeout(() => controller.abort(new Error('run window over')), stop - now);
  return {
    signal: controller.signal,
    stop,
    dispose() {
      ctx.clock.clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
    },
  };
}

async function measure(
  spec: Spec,
  backend: Backend,
  ctx: ProbeContext,
  window: RunWindow,
  appTransport: Transport | undefined,
): Promise<ProbeResult> {
  const { clock } = ctx;
  const maxLatency = ms(spec.maxLatency);
  const canary: Canary = { id: randomUUID(), at: clock.now(), probe: spec.id };
  const details: Record<string, unknown> = { canary_id: canary.id, store: backend.name, search: backend.describeSearch(canary) };
  const values: Record<string, number> = { polls: 0 };
  let polls = 0;

  if (spec.trigger !== undefined && appTransport !== undefined) {
    const fired = await fireTrigger(spec.trigger, canary.id, appTransport, window.signal);
    values.trigger_ms = clock.now() - canary.at;
    details.trigger = fired.shown;
    if (fired.status !== undefined) values.trigger_status = fired.status;
    if (fired.problem !== undefined) {
      return { ok: false, code: 'TRIGGER_FAILED', message: `the trigger request ${fired.problem}`, values, details };
    }
  } else {
    const written = await backend.write(canary, window.signal);
    values.write_ms = clock.now() - canary.at;
    if (!written.ok) {
      return {
        ok: false,
        code: 'WRITE_FAILED',
        message: `writing the canary to ${backend.name} failed: ${written.message}`,
        values,
        details,
      };
    }
  }

  // The last poll must still fit before the run's end; past maxLatency + grace the event counts as lost.
  const reserve = Math.min(1_000, (window.stop - canary.at) / 10);
  const searchUntil = Math.min(canary.at + maxLatency + ms(spec.grace), window.stop - reserve);
  let backoff = FIRST_BACKOFF_MS;
  let failed = 0;
  let lastError: string | undefined;
  for (;;) {
    polls += 1;
    values.polls = polls;
    const outcome = await backend.search(canary, window.signal);
    const now = clock.now();
    if (outcome.found) {
      const latency = now - canary.at;
      values.ingestion_latency_ms = latency;
      const fields = spec.expect === undefined ? undefined : checkFields(outcome.line, spec.expect.fields);
      if (fields !== undefined) values.fields_ok = fields.ok ? 1 : 0;
      const badFields = fields?.ok === false ? `the line found ${fields.problem}` : undefined;
      if (latency > maxLatency) {
        return {
          ok: false,
          code: 'INGESTION_SLOW',
          message: `the canary turned up in ${backend.name} after ${formatDuration(latency)}, limit ${spec.maxLatency} (${polls} polls)${badFields ? `; ${badFields}` : ''}`,
          values,
          details,
        };
      }
      if (badFields !== undefined) return { ok: false, code: 'ASSERTION', message: badFields, values, details };
      return { ok: true, values, details };
    }
    if (outcome.error !== undefined) {
      failed += 1;
      lastError = outcome.error;
      ctx.logger.debug({ canary: canary.id, poll: polls, error: outcome.error }, 'canary search failed');
      if (outcome.permanent) {
        return { ok: false, code: 'SEARCH_FAILED', message: `searching ${backend.name} failed: ${outcome.error}`, values, details };
      }
    }
    if (now >= searchUntil) break;
    try {
      await clock.sleep(Math.min(backoff, searchUntil - now), window.signal);
    } catch {
      break;
    }
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
  return notFound(spec, backend, ctx, { canary, values, details, failed, lastError, searchUntil });
}

function notFound(
  spec: Spec,
  backend: Backend,
  ctx: ProbeContext,
  run: {
    canary: Canary;
    values: Record<string, number>;
    details: Record<string, unknown>;
    failed: number;
    lastError?: string;
    searchUntil: number;
  },
): ProbeResult {
  const { values, details, failed, lastError } = run;
  const over = formatDuration(ctx.clock.now() - run.canary.at);
  if (ctx.signal.aborted) {
    return {
      ok: false,
      code: 'TIMEOUT',
      message: `run aborted after ${values.polls} polls over ${over}, before the canary was found`,
      values,
      details,
    };
  }
  if (failed === values.polls && lastError !== undefined) {
    return {
      ok: false,
      code: 'SEARCH_FAILED',
      message: `searching ${backend.name} kept failing until the deadline: all ${values.polls} polls over ${over} failed, last: ${lastError}`,
      values,
      details,
    };
  }
  const notes: string[] = [];
  if (failed > 0) notes.push(`${failed} of the searches failed, last: ${lastError}`);
  const maxLatency = ms(spec.maxLatency);
  if (run.searchUntil < run.canary.at + maxLatency) {
    const needed = formatDuration(maxLatency + ms(spec.grace) + 5_000);
    notes.push(
      `the run's timeout (${spec.timeout}) ended the search before maxLatency (${spec.maxLatency}): set timeout to ${needed} or more`,
    );
  }
  return {
    ok: false,
    code: 'INGESTION_MISSING',
    message: `the canary was not found in ${backend.name} after ${values.polls} polls over ${over}${notes.length ? `; ${notes.join('; ')}` : ''}`,
    values,
    details,
  };
}

function checkStore(spec: Spec): SpecProblem[] {
  const problems: SpecProblem[] = [];
  if (spec.url === undefined) {
    problems.push({ path: 'url', message: `expected the ${spec.backend} base URL (e.g. ${exampleUrl(spec.backend)}); it is missing` });
  }
  for (const key of ['write', 'search'] as const) {
    if (spec[key] !== undefined)
      problems.push({ path: key, message: `expected no ${key} with backend ${spec.backend} (${key} is for backend: http)` });
  }
  return problems;
}

function checkGeneric(spec: Spec): SpecProblem[] {
  const problems: SpecProblem[] = [];
  if (spec.url !== undefined) problems.push({ path: 'url', message: 'expected no url with backend http; set write.url and search.url' });
  if (spec.write === undefined && spec.trigger === undefined) {
    problems.push({ path: 'write', message: 'expected write: {url, body} (or trigger: {url}) with backend http; it is missing' });
  }
  if (spec.write !== undefined && spec.trigger !== undefined) {
    problems.push({ path: 'write', message: 'expected no write with trigger: the application writes the line' });
  }
  if (spec.search === undefined)
    problems.push({ path: 'search', message: 'expected search: {url, match} with backend http; it is missing' });
  const templates: Array<[string, string | undefined]> = [
    ['write.url', spec.write?.url],
    ['write.body', spec.write?.body],
    ['search.url', spec.search?.url],
    ['search.body', spec.search?.body],
  ];
  for (const [path, text] of templates) {
    const unknown = text === undefined ? [] : unknownPlaceholders(text);
    if (unknown.length > 0) {
      problems.push({
        path,
        message: `expected placeholders among ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}, got {{${unknown.join('}}, {{')}}}`,
      });
    }
  }
  if (spec.write !== undefined && !hasPlaceholder(spec.write.body, 'id')) {
    problems.push({ path: 'write.body', message: 'expected the event to carry {{id}}, the canary id the search looks for' });
  }
  if (spec.search?.method === 'GET' && spec.search.body !== undefined) {
    problems.push({ path: 'search.body', message: 'expected no body with method GET (use method: POST)' });
  }
  return problems;
}

function checkTriggered(spec: Spec): SpecProblem[] {
  const problems = spec.trigger === undefined ? [] : checkTrigger(spec.trigger);
  const needsTrigger: Array<[string, boolean]> = [
    ['expect', spec.expect !== undefined],
    ['checklist', spec.checklist === 'audit-logging'],
  ];
  for (const [path, set] of needsTrigger) {
    if (set && spec.trigger === undefined) {
      problems.push({
        path,
        message: `expected trigger: {url} with ${path}: it judges a line the application logged, and vigil's own canary is not one`,
      });
    }
  }
  if (spec.trigger !== undefined && spec.backend === 'loki' && spec.streamLabels === undefined) {
    problems.push({
      path: 'streamLabels',
      message: "expected streamLabels with trigger: the labels of the application's log stream, e.g. {app: checkout}",
    });
  }
  return problems;
}

function exampleUrl(backend: string): string {
  return backend === 'loki' ? 'http://loki:3100' : backend === 'opensearch' ? 'https://opensearch:9200' : 'https://elasticsearch:9200';
}
