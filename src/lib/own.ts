/**
 * `record[key]` for a key from outside (an API path, a request body, a config reference): only the
 * record's own entries count, so `__proto__`, `constructor` or `hasOwnProperty` find nothing instead
 * of something inherited from Object.prototype.
 */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
