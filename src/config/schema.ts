import { type Static, Type } from '@sinclair/typebox';
import { DEFAULT_HEAP_HEADROOM } from '../lib/heap.js';
import { Duration } from '../lib/schema.js';
import { SIZE_PATTERN } from '../lib/size.js';
import type { ChannelConfig } from '../notify/index.js';
import { EscalationSchema, PeopleSchema, SchedulesSchema } from '../oncall/index.js';
import { ReportConfigSchema } from '../report/index.js';
import { StatusPageConfigSchema } from './status-page.js';

export { AlertSchema, Duration, definitionSchema, ProbeBaseProperties } from '../lib/schema.js';

const LogLevel = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)),
  { default: 'info', expected: 'one of fatal, error, warn, info, debug, trace' },
);

/** The service's own configuration: `config/default.yaml` and the per-environment files. */
export const ConfigSchema = Type.Object(
  {
    service: Type.Object(
      {
        /** Shown in logs and reports. */
        name: Type.String({ default: 'vigil', minLength: 1 }),
        host: Type.String({ default: '0.0.0.0', minLength: 1 }),
        port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535, expected: 'a port number 0-65535' }),
        logLevel: LogLevel,
        /** How long in-flight runs may take to finish at SIGTERM before they are aborted. */
        shutdownTimeout: Duration('10s'),
        /**
         * About how much garbage the JavaScript heap may hold before a full collection (src/lib/heap.ts).
         * V8's own rule lets a busy heap grow to 4x its live set: at 60,000 probes a heap of ~450 MB
         * over ~150 MB live. `0B` keeps V8's rule.
         */
        heapHeadroom: Type.String({
          pattern: SIZE_PATTERN,
          default: DEFAULT_HEAP_HEADROOM,
          expected: "a size like 64MiB or 256MB (0B: V8's own rule)",
        }),
        /**
         * Where this instance probes from (`eu-west`; `VIGIL_LOCATION` overrides). Runs and metrics
         * carry it; a probe with `locations:` runs only on instances at one of them.
         */
        location: Type.Optional(
          Type.String({
            pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
            expected: 'a location name of lower-case letters, digits, ".", "_" or "-"',
          }),
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    probes: Type.Object(
      {
        /** Folder of `*.yaml` probe definitions, relative to the working directory. */
        dir: Type.String({ default: './probes', minLength: 1 }),
      },
      { additionalProperties: false, default: {} },
    ),
    scheduler: Type.Object(
      {
        /** Spread probes sharing a schedule over its interval, by a stable offset from their id. */
        spread: Type.Boolean({ default: true }),
        /** Bound on runs in flight at once; a slot that finds it full is counted as skipped. */
        maxConcurrent: Type.Integer({ default: 2000, minimum: 1 }),
      },
      { additionalProperties: false, default: {} },
    ),
    storage: Type.Object(
      {
        sqlite: Type.Object(
          { path: Type.String({ default: './data/vigil.db', minLength: 1 }) },
          { additionalProperties: false, default: {} },
        ),
        /** PostgreSQL instead of SQLite: several vigil instances share one database. */
        postgres: Type.Optional(
          Type.Object(
            {
              /** `postgresql://user@host:5432/vigil` (secrets from `${VIGIL_PG_URL}`). */
              url: Type.String({ pattern: '^postgres(ql)?://', expected: 'a postgresql:// URL' }),
              /** Deadline of one database call (the alert path waits for it). */
              timeout: Duration('10s'),
              /** Connections for batched writes and background roll-ups (at least 2). */
              poolSize: Type.Integer({ minimum: 2, maximum: 64, default: 4 }),
            },
            { additionalProperties: false },
          ),
        ),
        retention: Type.Object(
          {
            /**
             * Raw runs older than this are pruned; the rollups keep their hours (31 days) and days
             * (400). Days, not months: every page and the report read rollups past it (README, Storage).
             */
            runs: Duration('3d'),
            /** Failed runs (and the files they kept) stay this long: the report's window, for reading its incidents back. */
            failedRuns: Duration('30d'),
            /** Audit entries (every write through the API) older than this are pruned. */
            audit: Duration('400d'),
          },
          { additionalProperties: false, default: {} },
        ),
        /** Results are queued and written in batched transactions off the probe path. */
        batch: Type.Object(
          {
            maxRows: Type.Integer({ default: 5000, minimum: 1 }),
            interval: Duration('200ms'),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    alerting: Type.Object(
      {
        /** Where vigil is reached: links in messages point here. */
        // Without one, config/load.ts sets the listen address (base-url.ts); this default is only the schema's.
        baseUrl: Type.String({ default: 'http://localhost:8080', pattern: '^https?://', expected: 'an http:// or https:// URL' }),
        /** The Grafana dashboard, linked from messages when set. */
        dashboardUrl: Type.Optional(Type.String({ pattern: '^https?://', expected: 'an http:// or https:// URL' })),
        /** How often open incidents are re-checked for reminders, ended silences and cleared dependencies. */
        sweepInterval: Duration('5s'),
        delivery: Type.Object(
          {
            /** A notification still failing after this long is dead-lettered (logged and counted). */
            maxAge: Duration('24h'),
            /** Deadline of one send. */
            timeout: Duration('10s'),
            /** First retry delay; doubles per attempt with jitter, up to maxBackoff. */
            minBackoff: Duration('1s'),
            maxBackoff: Duration('5m'),
            /** Sends in flight at once per channel. */
            concurrency: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
            /** How often the worker looks for due notifications when nothing woke it. */
            pollInterval: Duration('1s'),
          },
          { additionalProperties: false, default: {} },
        ),
        /** Nagios-style flap detection over the last 21 runs (weights 0.75 to 1.25). */
        flapping: Type.Object(
          {
            start: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
            stop: Type.Number({ minimum: 0, maximum: 1, default: 0.25 }),
          },
          { additionalProperties: false, default: {} },
        ),
        /** Recurring maintenance windows: pages for matching probes are recorded as muted. */
        maintenance: Type.Array(
          Type.Object(
            {
              name: Type.String({ minLength: 1 }),
              /** When a window starts (cron, 5 or 6 fields) and how long it lasts. */
              schedule: Type.String({ minLength: 1 }),
              duration: Duration(),
              /** Probe ids (`*` wildcards allowed); all probes when empty. */
              probes: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
              /** Labels a probe must all have. */
              labels: Type.Record(Type.String(), Type.String(), { default: {} }),
            },
            { additionalProperties: false },
          ),
          { default: [] },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Who can be paged: `alice: { name, email, slack, pagerduty }`. */
    people: PeopleSchema,
    /** On-call schedules by name: rotations in a time zone, layered, with overrides from the API. */
    schedules: SchedulesSchema,
    oncall: Type.Object(
      {
        /** A dead-man's switch outside vigil, pinged only while the scheduler ticks and the outbox is not stuck. */
        heartbeatUrl: Type.Optional(Type.String({ pattern: '^https?://', expected: 'an http:// or https:// URL' })),
        heartbeatInterval: Duration('1m'),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Acknowledge and resolve from where the page arrives. */
    interactions: Type.Object(
      {
        /** Signs one-click ack/resolve links in pages (HMAC-SHA256); links are left out without it. */
        linkSecret: Type.Optional(Type.String({ minLength: 32, expected: 'a secret of at least 32 characters, from ${ENV} or ${file:…}' })),
        /** How long a link works. */
        linkTtl: Duration('24h'),
        /** Verifies Slack button clicks posted to /slack/actions; the route is off without it. */
        slackSigningSecret: Type.Optional(Type.String({ minLength: 8 })),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Escalation policies by name: steps of targets paged at their delay until someone acknowledges. */
    escalation: EscalationSchema,
    /** Where pages go, by name: `slack-ops: { type: slack, … }`. Each type has its own fields. */
    // additionalProperties: false makes a key outside the pattern an error rather than silently accepted.
    channels: Type.Record(Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]*$' }), Type.Object({ type: Type.String() }), {
      additionalProperties: false,
      default: {},
      expected: 'a mapping of channel names to { type: …, … }',
    }),
    auth: Type.Object(
      {
        /** Bearer tokens for writes (ack, resolve, silences, run-now, tests). Reads stay open. */
        tokens: Type.Array(
          Type.Object(
            {
              name: Type.String({ minLength: 1 }),
              token: Type.String({ minLength: 16, expected: 'a token of at least 16 characters, from ${ENV} or ${file:…}' }),
              role: Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')], {
                default: 'operator',
                expected: 'one of viewer, operator, admin',
              }),
            },
            { additionalProperties: false },
          ),
          { default: [] },
        ),
        /** Who may read the API, the status page and the report: everyone, or viewer tokens and up. `/health` stays open. */
        reads: Type.Union([Type.Literal('public'), Type.Literal('token')], { default: 'public', expected: 'public or token' }),
        /** Whether `/metrics` needs a viewer token (Prometheus: `authorization: { credentials_file: … }`). */
        metrics: Type.Union([Type.Literal('public'), Type.Literal('token')], { default: 'public', expected: 'public or token' }),
        rateLimit: Type.Object(
          {
            /** Requests a minute per client address to the API (`/health` and `/metrics` are exempt). */
            perMinute: Type.Integer({ minimum: 1, default: 600 }),
            /** Requests a minute per address to one-click links and Slack callbacks. */
            linksPerMinute: Type.Integer({ minimum: 1, default: 30 }),
            /**
             * How long a request over the limit waits for its 429: a flooding client then waits instead
             * of resending at once, and `/health` keeps answering (`0s`: at once).
             */
            hold: Duration('1s'),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Several instances on one PostgreSQL database: the leader's lease and how often it reads runs. */
    cluster: Type.Object(
      {
        /** A dead leader is replaced within this; it renews every third of it. */
        leaseTtl: Duration('15s'),
        /** How often the leader reads new runs of every instance to judge them. */
        feedInterval: Duration('500ms'),
      },
      { additionalProperties: false, default: {} },
    ),
    /** vigil's own database, backed up online to `dir` every `interval`, the newest `keep` kept. */
    backup: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        dir: Type.String({ default: './data/backups', minLength: 1 }),
        interval: Duration('1h'),
        /** The first backup after start: a minute by default, so a restart loop does not write one per start. */
        firstAfter: Duration('1m'),
        keep: Type.Integer({ minimum: 1, maximum: 1000, default: 24 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** The 30-day post-launch report: its window, the targets it judges against, attestations. */
    report: ReportConfigSchema,
    /** The public status page at `/status` and which probes' badges need no token; absent: no `/status`. */
    statusPage: StatusPageConfigSchema,
    metrics: Type.Object(
      {
        /** Buckets of `vigil_probe_duration_seconds`. Few buckets keep a scrape of 10,000 probes fast. */
        durationBuckets: Type.Array(Type.Number({ exclusiveMinimum: 0 }), {
          default: [0.05, 0.25, 1, 5, 30],
          minItems: 1,
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

/**
 * The validated, frozen service configuration. `channels:` is validated twice: by ConfigSchema (a
 * mapping of names to `{ type }`), then each entry by its type's own schema, so it carries that type.
 */
export type ServiceConfig = Omit<Static<typeof ConfigSchema>, 'channels'> & { channels: Record<string, ChannelConfig> };
