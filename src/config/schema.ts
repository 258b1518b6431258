import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox';
import { Duration } from '../lib/schema.js';

export { Duration } from '../lib/schema.js';

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
        retention: Type.Object(
          {
            /** Raw runs older than this are pruned (rollups, once they exist, keep longer). */
            runs: Duration('90d'),
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

/** The validated, frozen service configuration. */
export type ServiceConfig = Static<typeof ConfigSchema>;

const Labels = Type.Record(Type.String({ pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' }), Type.String(), {
  default: {},
  expected: 'a map of label names to strings',
});

/** The fields every probe definition has; a kind's own schema adds the rest. */
export const ProbeBaseProperties = {
  id: Type.String({
    pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$',
    expected: 'an id of letters, digits, ".", "_" or "-"',
  }),
  kind: Type.String(),
  schedule: Type.Union([Type.String({ minLength: 1 }), Type.Object({ every: Duration() }, { additionalProperties: false })], {
    expected: 'a cron expression ("* * * * *", 5 or 6 fields) or { every: 30s }',
  }),
  timeout: Duration('10s'),
  retry: Type.Object(
    {
      /** Extra attempts after a failure before it is recorded as one. */
      count: Type.Integer({ minimum: 0, maximum: 10, default: 0 }),
      delay: Duration('10s'),
    },
    { additionalProperties: false, default: {} },
  ),
  labels: Labels,
};

/** The full schema of one kind's definitions: common fields plus the kind's own, nothing else. */
export function definitionSchema(kindSchema: TObject): TObject {
  return Type.Object({ ...ProbeBaseProperties, ...(kindSchema.properties as Record<string, TSchema>) }, { additionalProperties: false });
}
