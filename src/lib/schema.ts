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
