import { VigilError } from '../lib/errors.js';

/** The largest instant a Date holds (ECMA-262 §21.4.1.1). */
const MAX_INSTANT_MS = 8.64e15;

/** A query-string instant: ISO 8601 or epoch milliseconds; a 400 naming the parameter otherwise. */
export function instant(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  // Finite and a date at all: past ±8.64e15 ms `new Date(n)` is Invalid Date and every view of it throws.
  if (!Number.isFinite(n) || Math.abs(n) > MAX_INSTANT_MS) {
    throw new VigilError(
      'VIGIL_ERR_BAD_REQUEST',
      `querystring/${name} must be an ISO 8601 date-time or epoch milliseconds, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}
