/** A parsed JSON object (not an array, not null): its fields can be read, as unknowns to be checked. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `value[key]` when value is an object, else undefined: for fields no type declares, such as the
 * extras Node, undici or a provider's SDK hang on an error (`hostname`, `data`, `retryAfter`).
 */
export function fieldOf(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? Reflect.get(value, key) : undefined;
}
