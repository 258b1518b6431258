const SECRET_KEY =
  /authorization|cookie|token|secret|password|passwd|passphrase|^pass$|credential|private[-_]?key|api[-_]?key|routing[-_]?key|webhook/i;

/** `scheme://user:password@host`: the password part, whatever the scheme (postgres, amqp, redis, https, …). */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*):([^\s/?#]+)@/gi;

// Shorter values would turn every "1" or "on" in the output into `<secret>` and hide nothing worth hiding.
const MIN_SECRET_LENGTH = 4;

/**
 * A copy of a config value safe to print: values under secret-looking keys and every value that
 * came from a `${…}` reference become `<secret>`, also where they are embedded in a longer string,
 * and so do the passwords of URLs (`postgres://u:<secret>@h/db`).
 */
export function redact<T>(value: T, secrets: ReadonlySet<string>): T {
  return walk(value, longestFirst(secrets), false) as T;
}

/** One string safe to print: known secret values and URL passwords replaced by `<secret>`. */
export function redactText(text: string, secrets: ReadonlySet<string>): string {
  return scrub(text, longestFirst(secrets));
}

// Longest first, so a secret that contains a shorter one is hidden whole, not left half visible.
function longestFirst(secrets: ReadonlySet<string>): string[] {
  return [...secrets].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('<secret>');
  return out.replace(URL_PASSWORD, '$1:<secret>@');
}

function walk(v: unknown, secrets: readonly string[], secretKey: boolean): unknown {
  if (typeof v === 'string') return secretKey ? '<secret>' : scrub(v, secrets);
  // A numeric PIN or routing key is as secret as a string one; a flag such as `tokenRequired: true` is not.
  if (typeof v === 'number' || typeof v === 'bigint') return secretKey ? '<secret>' : v;
  if (Array.isArray(v)) return v.map((x) => walk(x, secrets, secretKey));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x, secrets, secretKey || SECRET_KEY.test(k));
    return out;
  }
  return v;
}
