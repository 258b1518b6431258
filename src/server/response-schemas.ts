/**
 * What each route answers on success, as JSON Schema (TypeBox): the bodies `/openapi.json`
 * documents. Kept beside the route table rather than as `schema.response` on the routes: Fastify
 * would then serialize through these schemas and silently drop any field they do not name, so a
 * field added to an answer and forgotten here would vanish from the API instead of failing a test
 * (test/server/openapi-responses.test.ts checks each route's real answer against its schema).
 */
import { type TSchema, Type } from '@sinclair/typebox';

const Time = Type.String({ format: 'date-time' });
const TimeOrNull = Type.Union([Time, Type.Null()]);
const Text = Type.String();
const TextOrNull = Type.Union([Type.String(), Type.Null()]);
const Labels = Type.Record(Type.String(), Type.String());
const Values = Type.Record(Type.String(), Type.Number(), { description: 'Named values of the run (see the README, Metrics)' });
const Strings = Type.Array(Type.String());

/** One run as the API shows it (redacted). */
const Run = Type.Object({
  id: Type.Optional(Type.Integer()),
  ok: Type.Boolean(),
  at: Time,
  durationMs: Type.Number(),
  code: TextOrNull,
  message: TextOrNull,
  values: Values,
  attempts: Type.Integer(),
  trigger: Type.Union([Type.Literal('schedule'), Type.Literal('manual')]),
  location: Type.Optional(Type.String()),
  details: Type.Optional(Type.Object({}, { additionalProperties: true, description: "The kind's details (redacted)" })),
});

const Probe = Type.Object({
  id: Text,
  kind: Text,
  state: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('unknown')]),
  running: Type.Boolean(),
  lastRun: Type.Union([Run, Type.Null()]),
  labels: Labels,
  definition: Type.Object(
    { id: Text, kind: Text },
    { additionalProperties: true, description: 'The definition as loaded, secrets redacted' },
  ),
});

const Incident = Type.Object({
  id: Type.Integer(),
  probe: Text,
  kind: Text,
  rule: Text,
  severity: Text,
  state: Type.Union([Type.Literal('open'), Type.Literal('acknowledged'), Type.Literal('resolved')]),
  summary: Text,
  labels: Labels,
  channels: Strings,
  openedAt: Time,
  acknowledgedAt: TimeOrNull,
  acknowledgedBy: TextOrNull,
  resolvedAt: TimeOrNull,
  resolvedBy: TextOrNull,
  lastError: Type.Union([
    Type.Object({
      code: TextOrNull,
      message: TextOrNull,
      at: Time,
      artifacts: Type.Optional(
        Type.Object({ key: Text, files: Strings }, { description: 'Files the failing run kept (a browser screenshot)' }),
      ),
    }),
    Type.Null(),
  ]),
  flapping: Type.Boolean(),
});

const Notification = Type.Object({
  id: Type.Integer(),
  channel: Text,
  action: Text,
  state: Type.Union(['pending', 'delivered', 'dead', 'muted'].map((s) => Type.Literal(s))),
  attempts: Type.Integer(),
  createdAt: Time,
  deliveredAt: TimeOrNull,
  nextAttemptAt: TimeOrNull,
  lastError: TextOrNull,
  mutedReason: TextOrNull,
  recipient: Type.Optional(TextOrNull),
});

const Silence = Type.Object({
  id: Type.Integer(),
  probes: Strings,
  labels: Labels,
  startsAt: Time,
  endsAt: Time,
  author: Text,
  comment: Text,
  active: Type.Boolean(),
  covers: Strings,
  warning: Type.Optional(Text),
});

const Person = Type.Object({ id: Text, name: Text });
const Override = Type.Object({ id: Type.Integer(), schedule: Text, person: Person, start: Time, end: Time, author: Text });
const Check = Type.Object({ ok: Type.Boolean() }, { additionalProperties: true });

/** A response body: JSON by default, or another media type (text, HTML, a file). */
export interface ResponseBody {
  schema: TSchema;
  type?: string;
}

const json = (schema: TSchema): ResponseBody => ({ schema });
const text = (type: string, description: string): ResponseBody => ({ type, schema: Type.String({ description }) });

/** The success bodies by route key (`"METHOD /path"`) and status; a status absent here has no body (204). */
export const RESPONSE_BODIES: Readonly<Record<string, Readonly<Record<number, ResponseBody>>>> = {
  'GET /health': {
    200: json(
      Type.Object({
        status: Type.Union([Type.Literal('ok'), Type.Literal('fail')]),
        checks: Type.Record(Type.String(), Check, { description: 'database, scheduler, outbox: each with ok and its figures' }),
      }),
    ),
  },
  'GET /metrics': { 200: text('text/plain; version=0.0.4', 'Prometheus text exposition format') },
  'GET /api/v1/probes': { 200: json(Type.Object({ probes: Type.Array(Probe) })) },
  'GET /api/v1/probes/:id': { 200: json(Probe) },
  'GET /api/v1/probes/:id/runs': { 200: json(Type.Object({ probe: Text, runs: Type.Array(Run) })) },
  'GET /api/v1/runs/:id/artifacts/:name': { 200: { type: 'application/octet-stream', schema: Type.String({ format: 'binary' }) } },
  'GET /api/v1/probes/:id/artifacts/:key/:name': {
    200: { type: 'application/octet-stream', schema: Type.String({ format: 'binary' }) },
  },
  'POST /api/v1/probes/:id/run': {
    200: json(Type.Object({ probe: Text, run: Run })),
    202: json(Type.Object({ probe: Text, status: Type.Literal('started') })),
  },
  'GET /api/v1/incidents': { 200: json(Type.Object({ incidents: Type.Array(Incident) })) },
  'GET /api/v1/incidents/:id': {
    200: json(
      Type.Composite([
        Incident,
        Type.Object({
          timeline: Type.Array(Type.Object({ at: Time, type: Text, actor: TextOrNull, detail: TextOrNull })),
          notifications: Type.Array(Notification),
        }),
      ]),
    ),
  },
  'POST /api/v1/incidents/:id/ack': { 200: json(Incident) },
  'POST /api/v1/incidents/:id/resolve': { 200: json(Incident) },
  'GET /api/v1/silences': { 200: json(Type.Object({ silences: Type.Array(Silence) })) },
  'POST /api/v1/silences': { 201: json(Silence) },
  'DELETE /api/v1/silences/:id': {},
  'GET /runbooks/:page': { 200: text('text/markdown; charset=utf-8', 'The runbook, Markdown') },
  'GET /api/v1/maintenance': {
    200: json(
      Type.Object({
        windows: Type.Array(
          Type.Object({
            name: Text,
            schedule: Text,
            durationSeconds: Type.Number(),
            probes: Strings,
            labels: Labels,
            covers: Strings,
            active: Type.Boolean(),
            startsAt: TimeOrNull,
            endsAt: TimeOrNull,
            nextStartsAt: TimeOrNull,
          }),
        ),
      }),
    ),
  },
  'GET /api/v1/channels': { 200: json(Type.Object({ channels: Type.Array(Type.Object({ name: Text, type: Text })) })) },
  'POST /api/v1/channels/:name/test': { 202: json(Type.Object({ channel: Text, notification: Notification })) },
  'GET /api/v1/channels/:name/tests/:id': {
    200: json(Type.Object({ channel: Text, notification: Notification, deliveryMs: Type.Union([Type.Number(), Type.Null()]) })),
  },
  'GET /api/v1/oncall': {
    200: json(
      Type.Object({
        schedules: Type.Array(
          Type.Object({
            schedule: Text,
            timezone: Text,
            onCall: Type.Union([Type.Object({ id: Text, name: Text, since: TimeOrNull, until: TimeOrNull, source: Text }), Type.Null()]),
            next: Type.Array(Type.Object({ at: Time, person: Type.Union([Person, Type.Null()]) })),
          }),
        ),
        overrides: Type.Array(Override),
      }),
    ),
  },
  'GET /api/v1/schedules/:id/shifts': {
    200: json(
      Type.Object({
        schedule: Text,
        timezone: Text,
        shifts: Type.Array(Type.Object({ person: Type.Union([Person, Type.Null()]), start: Time, end: Time, source: Text })),
      }),
    ),
  },
  'POST /api/v1/oncall/overrides': { 201: json(Override) },
  'DELETE /api/v1/oncall/overrides/:id': {},
  'GET /': { 200: text('text/html; charset=utf-8', 'The status page') },
  'GET /probes/:id': { 200: text('text/html; charset=utf-8', "One probe's page") },
  'GET /status': { 200: text('text/html; charset=utf-8', 'The public status page') },
  'GET /badge/:id/status.svg': { 200: text('image/svg+xml; charset=utf-8', "The probe's state") },
  'GET /badge/:id/uptime.svg': { 200: text('image/svg+xml; charset=utf-8', 'Uptime over `days`') },
  'GET /badge/:id/latency.svg': { 200: text('image/svg+xml; charset=utf-8', 'p95 over 24 h') },
  'GET /badge/:id/shields.json': {
    200: json(
      Type.Object(
        {
          schemaVersion: Type.Literal(1),
          label: Text,
          message: Text,
          color: Type.Union(['brightgreen', 'green', 'yellow', 'orange', 'red', 'lightgrey'].map((c) => Type.Literal(c))),
        },
        { description: 'The shields.io endpoint badge schema' },
      ),
    ),
  },
  'GET /api/v1/report': {
    200: json(
      Type.Object(
        {
          service: Text,
          generatedAt: Time,
          window: Type.Object({ from: Time, to: Time, days: Type.Integer(), basis: Text, launchDate: TextOrNull }),
          targets: Type.Record(Type.String(), Type.Number()),
          dataThrough: Time,
          percentiles: Text,
          summary: Type.Object({
            probes: Type.Integer(),
            runs: Type.Integer(),
            failures: Type.Integer(),
            uptime: Type.Union([Type.Number(), Type.Null()]),
            probesMeetingSlo: Type.Integer(),
            incidents: Type.Integer(),
          }),
          probes: Type.Array(Type.Object({ id: Text, kind: Text }, { additionalProperties: true })),
          incidents: Type.Object({ count: Type.Integer() }, { additionalProperties: true }),
          checklist: Type.Object({}, { additionalProperties: true }),
          topFailures: Type.Array(Type.Object({ code: Text, count: Type.Integer() }, { additionalProperties: true })),
          scorecard: Type.Object({ verdict: Text, gaps: Strings }, { additionalProperties: true }),
        },
        { description: 'JSON; format=html or format=markdown (or the Accept header) answer text/html or text/markdown instead' },
      ),
    ),
  },
  'GET /act/:token': { 200: text('text/html; charset=utf-8', 'The confirmation page') },
  'POST /act/:token': { 200: text('text/html; charset=utf-8', 'What the link did') },
  'POST /slack/actions': {},
  'GET /api/v1/push/:token': { 200: text('text/plain; charset=utf-8', 'OK') },
  'POST /api/v1/push/:token': { 200: text('text/plain; charset=utf-8', 'OK') },
  'GET /api/v1/push/:token/:what': { 200: text('text/plain; charset=utf-8', 'OK') },
  'POST /api/v1/push/:token/:what': { 200: text('text/plain; charset=utf-8', 'OK') },
  'GET /api/v1/audit': {
    200: json(
      Type.Object({
        entries: Type.Array(
          Type.Object({
            id: Type.Integer(),
            actor: Text,
            action: Text,
            target: Type.Optional(Text),
            requestId: Type.Optional(Text),
            result: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
            status: Type.Optional(Type.Integer()),
            detail: Type.Optional(Text),
            at: Time,
          }),
        ),
      }),
    ),
  },
  'POST /api/v1/admin/reload': {
    200: json(
      Type.Object({
        ok: Type.Literal(true),
        probes: Type.Object({ total: Type.Integer(), added: Strings, removed: Strings, changed: Strings }),
        channels: Type.Object({ added: Strings, removed: Strings, changed: Strings }),
        restartRequired: Strings,
        ms: Type.Number(),
      }),
    ),
  },
};
