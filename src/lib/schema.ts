import { type Static, type TObject, Type } from '@sinclair/typebox';
import { DURATION_PATTERN } from './duration.js';

/**
 * A duration field (`500ms`, `10s`, `5m`, `1h30m`), with a default when given. `expected` is what a
 * config error says when the value is not one. Shared by the config schema and every prober.
 */
export const Duration = (fallback?: string) =>
  Type.String({
    pattern: DURATION_PATTERN,
    expected: 'a duration like 500ms, 10s, 5m or 1h',
    ...(fallback === undefined ? {} : { default: fallback }),
  });

/** A share written `5%` or as a fraction `0.05`; read it with `share()`. */
export const Share = (fallback?: string | number) =>
  Type.Union([Type.String({ pattern: '^\\d+(\\.\\d+)?%$' }), Type.Number({ minimum: 0, maximum: 1 })], {
    expected: 'a percentage like 5% or a fraction like 0.05',
    ...(fallback === undefined ? {} : { default: fallback }),
  });

/** The fraction a `Share` field holds: `5%` → 0.05. */
export function share(s: string | number): number {
  // "99.9e-2" parses to the double nearest 0.999; dividing 99.9 by 100 lands one ulp off.
  return typeof s === 'number' ? s : Number(`${s.slice(0, -1)}e-2`);
}

const Labels = Type.Record(Type.String({ pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' }), Type.String(), {
  additionalProperties: false,
  default: {},
  expected: 'a map of label names to strings',
});

const Severity = Type.Union([Type.Literal('critical'), Type.Literal('error'), Type.Literal('warning'), Type.Literal('info')], {
  default: 'error',
  expected: 'one of critical, error, warning, info',
});

/** When a probe's runs open an incident, whom it pages, and how loudly. Rules are pure functions of the run history. */
export const AlertSchema = Type.Object(
  {
    /** Consecutive failed runs that open an incident. */
    failures: Type.Integer({ minimum: 1, maximum: 100, default: 2 }),
    /** Consecutive good runs that resolve it. */
    recoveries: Type.Integer({ minimum: 1, maximum: 100, default: 1 }),
    /** Opens an incident while the share of failed runs over the window is above the limit. */
    errorRate: Type.Optional(Type.Object({ over: Duration(), above: Share() }, { additionalProperties: false })),
    /** Opens an incident while the p95 of run durations over the window is above the limit. */
    latency: Type.Optional(Type.Object({ p95: Duration(), over: Duration() }, { additionalProperties: false })),
    /** Thresholds on named values of the last run: `days_remaining < 14`, `p95_ms >= 5000`. */
    values: Type.Array(
      Type.String({
        pattern: '^\\s*[a-z_][a-z0-9_]*\\s*(<|<=|>|>=|==|!=)\\s*-?\\d+(\\.\\d+)?\\s*$',
        expected: 'a threshold like "days_remaining < 14"',
      }),
      {
        default: [],
      },
    ),
    severity: Severity,
    /** Channels paged directly, by name from `channels:`. */
    channels: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    /** An escalation policy from `escalation:`, copied onto each incident when it opens. */
    policy: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * With probes run from several locations: open an incident only while at least this many
     * locations fail the rules on their own runs (e.g. 2 of 3), so one region's trouble does not page.
     */
    quorum: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
    /** Probes whose failure mutes this one's pages (a root cause pages once). */
    dependsOn: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    /**
     * The runbook for this alert: linked from every page and counted by the report's scorecard. A
     * path (`/runbooks/…`) is on vigil itself, made absolute with alerting.baseUrl when a page is sent.
     */
    runbook: Type.Optional(
      Type.String({
        pattern: '^(https?://\\S+|/\\S*)$',
        expected: 'an http:// or https:// link to the runbook, or a path on vigil (/runbooks/…)',
      }),
    ),
    /** Remind while open and unacknowledged, this often. */
    repeat: Type.Optional(Duration()),
  },
  { additionalProperties: false },
);

// The fields of a probe definition every kind shares live here, not in config/, because probers type
// their specs with them (`ProbeBase`) and probers import only lib/.

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
  /** Locations it runs from (instances whose service.location is one of them); every instance when empty. */
  locations: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', expected: 'a location name like eu-west' }), {
    default: [],
    uniqueItems: true,
  }),
  /** Without it the probe is measured and stored but never pages. */
  alert: Type.Optional(AlertSchema),
};

/** A probe's `alert:` block, validated with defaults. */
export type AlertConfig = Static<typeof AlertSchema>;

/** The fields every validated probe definition has, whatever its kind (`alert` included). */
export type ProbeBase = Static<TObject<typeof ProbeBaseProperties>>;

/** Whether a definition pages (has `alert:`); narrows it so `def.alert` needs no check after. */
export function hasAlert<D extends ProbeBase>(def: D): def is D & { alert: AlertConfig } {
  return def.alert !== undefined;
}

const definitionSchemas = new WeakMap<TObject, TObject>();

/** The full schema of one kind's definitions: common fields plus the kind's own, nothing else. */
export function definitionSchema(kindSchema: TObject): TObject {
  // Built once per kind: TypeBox clones every property it is given, and a config holds thousands of probes.
  let schema = definitionSchemas.get(kindSchema);
  if (schema === undefined) {
    schema = Type.Object({ ...ProbeBaseProperties, ...kindSchema.properties }, { additionalProperties: false });
    definitionSchemas.set(kindSchema, schema);
  }
  return schema;
}
