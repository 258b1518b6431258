/** A parsed YAML value, before validation. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** What one load accumulates: the problems found so far and the secrets read. */
export interface Run {
  env: Record<string, string | undefined>;
  cwd: string;
  problems: string[];
  secrets: Set<string>;
  /** `file: path` of values whose `${…}` did not resolve: already reported, so not reported again as the wrong type. */
  unresolved: Set<string>;
}

/** Where a problem with the environment (not a file) is reported. */
export const ENVIRONMENT = '(environment)';

/** A YAML mapping (not a list, not null). */
export function isMap(v: Json | undefined): v is { [k: string]: Json } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
