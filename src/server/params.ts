import { VigilError } from '../lib/errors.js';

/** A query-string instant: ISO 8601 or epoch milliseconds; a 400 naming the parameter otherwise. */
export function instant(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(n)) {
    throw new VigilError(
      'VIGIL_ERR_BAD_REQUEST',
      `querystring/${name} must be an ISO 8601 date-time or epoch milliseconds, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}
