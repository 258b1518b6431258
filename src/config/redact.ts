import { createRedactor, type Redactor, SECRET } from '../lib/redactor.js';

const SECRET_KEY =
  /authorization|cookie|token|secret|password|passwd|passphrase|^pass$|credential|private[-_]?key|api[-_]?key|routing[-_]?key|webhook/i;

/** `scheme://user:password@host`, to find passwords written in a definition (not a `${…}`). */
const URL_PASSWORD = /\b[a-z][a-z0-9+.-]*:\/\/([^\s:/?#@]*):([^\s/?#]+)@/gi;

/**
 * A copy of a config value safe to print: values under secret-looking keys and every value that
 * came from a `${…}` reference become `<secret>`, also where they are embedded in a longer string
 * (in any form: encoded, cut short), and so do the passwords of URLs (`postgres://u:<secret>@h/db`).
 */
export function redact<T>(value: T, secrets: ReadonlySet<string>): T {
  return walk(value, redactorOf(secrets), false) as T;
}

/** One string safe to print: known secret values (in any form) and URL passwords replaced by `<secret>`. */
export function redactText(text: string, secrets: ReadonlySet<string>): string {
  return redactorOf(secrets).text(text);
}

/**
 * The secret values a config value (a probe definition, the service config) holds: every `${…}` value
 * found in it (`known`), values under secret-looking keys (`authorization`, `token`, `password`, …)
 * and the passwords (and `user:password` pairs) of URLs written in it. What a probe's runs must never show.
 */
export function secretsIn(value: unknown, known: ReadonlySet<string>): Set<string> {
  const found = new Set<string>();
  const seen = [...known].filter((k) => k.length >= 4);
  // What a mapping holds depends on its own keys only, so one met again (definitions share equal
  // parts, such as `retry` or `expect`: see shareAlike) has nothing new to give.
  const mappings = new Set<object>();
  // Definitions repeat the same few keys (id, kind, url, …): each is tested once.
  const secretKeys = new Map<string, boolean>();
  const isSecretKey = (k: string) => {
    let secret = secretKeys.get(k);
    if (secret === undefined) {
      secret = SECRET_KEY.test(k);
      secretKeys.set(k, secret);
    }
    return secret;
  };
  const visit = (v: unknown, secretKey: boolean) => {
    if (typeof v === 'string') {
      if (secretKey && v !== '') found.add(v);
      for (const k of seen) if (v.includes(k)) found.add(k);
      if (v.includes('@'))
        for (const m of v.matchAll(URL_PASSWORD)) {
          found.add(m[2] as string);
          if (m[1]) found.add(`${m[1]}:${m[2]}`);
        }
    } else if ((typeof v === 'number' || typeof v === 'bigint') && secretKey) found.add(String(v));
    else if (Array.isArray(v)) for (const x of v) visit(x, secretKey);
    // The key a value sits under decides, not an ancestor's: under `auth.tokens`, a token's `name` is not secret.
    else if (v !== null && typeof v === 'object' && !mappings.has(v)) {
      mappings.add(v);
      for (const k of Object.keys(v)) visit((v as Record<string, unknown>)[k], isSecretKey(k));
    }
  };
  visit(value, false);
  return found;
}

/**
 * One redactor per secret set, rebuilt only when the set grew (a reload adds to it): building one
 * computes every form of every secret, too much to repeat for each value shown.
 */
const built = new WeakMap<ReadonlySet<string>, { size: number; redactor: Redactor }>();
function redactorOf(secrets: ReadonlySet<string>): Redactor {
  const hit = built.get(secrets);
  if (hit && hit.size === secrets.size) return hit.redactor;
  const redactor = createRedactor(secrets);
  built.set(secrets, { size: secrets.size, redactor });
  return redactor;
}

function walk(v: unknown, redactor: Redactor, secretKey: boolean): unknown {
  if (typeof v === 'string') return secretKey ? SECRET : redactor.text(v);
  // A numeric PIN or routing key is as secret as a string one; a flag such as `tokenRequired: true` is not.
  if (typeof v === 'number' || typeof v === 'bigint') return secretKey ? SECRET : v;
  if (Array.isArray(v)) return v.map((x) => walk(x, redactor, secretKey));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x, redactor, secretKey || SECRET_KEY.test(k));
    return out;
  }
  return v;
}
