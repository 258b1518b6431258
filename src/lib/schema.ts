import { Type } from '@sinclair/typebox';
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
