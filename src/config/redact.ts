const SECRET_KEY = /authorization|cookie|token|secret|password|passwd|api[-_]?key|routing[-_]?key|webhook/i;

/**
 * A copy of a config value safe to print: values under secret-looking keys and every value that
 * came from a `${…}` reference become `<secret>`, also where they are embedded in a longer string.
 */
export function redact<T>(value: T, secrets: ReadonlySet<string>): T {
  return walk(value, secrets, false) as T;
}

function walk(v: unknown, secrets: ReadonlySet<string>, secretKey: boolean): unknown {
  if (typeof v === 'string') {
    if (secretKey) return '<secret>';
    let out = v;
    for (const s of secrets) if (s.length >= 4 && out.includes(s)) out = out.split(s).join('<secret>');
    return out;
  }
  if (Array.isArray(v)) return v.map((x) => walk(x, secrets, secretKey));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x, secrets, secretKey || SECRET_KEY.test(k));
    return out;
  }
  return v;
}
