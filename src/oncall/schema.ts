import { type Static, Type } from '@sinclair/typebox';
import { Duration } from '../lib/schema.js';

/** An escalation policy: steps of targets paged at their delay until someone acknowledges. */
export const EscalationPolicySchema = Type.Object(
  {
    steps: Type.Array(
      Type.Object(
        {
          /** Channel names, `oncall:<schedule>`, `person:<name>`. */
          notify: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
          /** Channels a person is paged through; by default every channel that can address them. */
          via: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
          /** Delay from the incident opening (within a pass). */
          after: Duration('0m'),
        },
        // A default on the item makes TypeBox fill `after` inside the list.
        { additionalProperties: false, default: {} },
      ),
      { minItems: 1 },
    ),
    /** Extra passes over the steps while nobody acknowledges. */
    repeat: Type.Integer({ minimum: 0, maximum: 10, default: 0 }),
    /** How long after the last step the next pass starts. */
    repeatAfter: Duration('5m'),
    /** Channels paged when a whole pass reached nobody. */
    fallback: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  },
  // A default on the record's value makes TypeBox fill the fields of each policy.
  { additionalProperties: false, default: {} },
);

/** `escalation:` in the config: policy name → policy. Alerts name a policy with `policy:`. */
export const EscalationSchema = Type.Record(Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]*$' }), EscalationPolicySchema, {
  additionalProperties: false,
  default: {},
});

/** An escalation policy as configured (and as copied onto an incident when it opens), validated with defaults. */
export type EscalationPolicy = Static<typeof EscalationPolicySchema>;
