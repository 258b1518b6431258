import { Type } from '@sinclair/typebox';

const Globs = (what: string) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 200, expected: 'a probe id, `*` wildcards allowed' }), {
    default: [],
    expected: `a list of probe ids (\`*\` wildcards allowed) ${what}`,
  });

/**
 * The status page for customers at `/status`: only the probes chosen here, grouped, with daily uptime
 * and incident history, and nothing internal (no labels, messages, targets or on-call names).
 */
export const StatusPageConfigSchema = Type.Optional(
  Type.Object(
    {
      /** The page's heading and title. */
      title: Type.String({ minLength: 1, maxLength: 200, default: 'Status', expected: 'a title of 1-200 characters' }),
      /** Served without a token even when `auth.reads` is `token` (and so are the badges of its probes). */
      public: Type.Boolean({ default: false, expected: 'true or false' }),
      /** Probes shown outside any group. */
      probes: Globs('shown outside any group'),
      /** Named groups of probes, shown in this order after the ungrouped ones. */
      groups: Type.Array(
        Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200, expected: 'a group name of 1-200 characters' }),
            probes: Globs('shown in this group'),
          },
          { additionalProperties: false },
        ),
        { default: [], expected: 'a list of { name, probes: [globs] }' },
      ),
    },
    { additionalProperties: false, expected: '{ title, public, probes: [globs], groups: [{ name, probes }] }' },
  ),
);
