/**
 * Finds a set of secret values in text, in every form a secret takes on its way out: as is, escaped
 * for JSON or HTML, percent-encoded (whole or in part, upper or lower hex), base64 and base64url (alone or
 * inside a longer encoded value such as a Basic `user:password`), and cut short (any run of
 * `MIN_PARTIAL` or more characters that is a prefix or a suffix of one of those forms: a body
 * excerpt cut mid-token; unless it is a short run of lower-case letters, an ordinary word). Each is
 * replaced by `<secret>`.
 *
 * Built once per secret set: every form's first and last `MIN_PARTIAL` characters index it, so a
 * scan is one pass over the text whatever the number of secrets, and a match is extended from there.
 */

/** What a secret is replaced with. */
export const SECRET = '<secret>';

/** Shorter values would turn every "1" or "on" in the output into `<secret>` and hide nothing worth hiding. */
export const MIN_SECRET_LENGTH = 4;

/** A shorter prefix or suffix of a secret is too likely to be ordinary text to be hidden on its own. */
export const MIN_PARTIAL = 8;

/** Removes secrets from what vigil shows. Immutable: a new secret set is a new redactor. */
export interface Redactor {
  /** How many secret values it hides. */
  readonly size: number;
  /** The text with every form of every secret (and URL passwords) replaced by `<secret>`; the same string when there is none. */
  text(s: string): string;
  /** A copy with every string (and object key) redacted; the same value when nothing changed. */
  value<T>(v: T): T;
}

/** Hides nothing: where no secret is known (a prober's unit test). */
export const noRedaction: Redactor = { size: 0, text: (s) => s, value: (v) => v };

/**
 * `scheme://user:password@host`: the password part, whatever the scheme (postgres, amqp, redis, https, …).
 * Neither part crosses a quote, a backslash or an angle bracket (a URL holds them only percent-encoded):
 * on a JSON log line `"redis://h","b":"x@y"` is two strings, not a URL whose password is `"x`.
 */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'\\<>]*):([^\s/?#"'\\<>]+)@/gi;

/** `postgres://u:<secret>@h/db`: the password of every URL in the text, known or not. */
export function redactUrlPasswords(text: string): string {
  return text.includes('@') && text.includes('://') ? text.replace(URL_PASSWORD, '$1:<secret>@') : text;
}

/** A secret value, and whether a cut-short piece of it is worth hiding. */
export interface SecretValue {
  value: string;
  /**
   * False for a value whose start or end is ordinary text (a URL: its prefix is `https://`); its
   * distinctive parts are given as secrets of their own instead. True when absent.
   */
  partial?: boolean;
}

interface Form {
  text: string;
  /** Cut-short pieces count; else only the whole form. */
  partial: boolean;
}

/**
 * A redactor for these secrets. Plain strings may be partially matched; give `{ value, partial: false }`
 * for a value only its whole form should hide.
 */
export function createRedactor(secrets: Iterable<string | SecretValue>): Redactor {
  const forms = new Map<string, boolean>();
  let size = 0;
  for (const s of secrets) {
    for (const { value, partial = true } of expand(typeof s === 'string' ? { value: s } : s)) {
      if (value.length < MIN_SECRET_LENGTH) continue;
      size++;
      // A short secret is hidden whole only: a piece of it is ordinary text.
      const cut = partial && value.length >= MIN_PARTIAL;
      for (const f of formsOf(value)) if (f.length >= MIN_SECRET_LENGTH) forms.set(f, cut || forms.get(f) === true);
    }
  }
  // Most probes hold no secret: they share one redactor that hides URL passwords only.
  if (size === 0) return urlPasswordsOnly;
  const matcher = new Matcher([...forms].map(([text, partial]) => ({ text, partial })));
  // Passwords inside URLs go too, known or not (a DSN in a driver's error message).
  const text = (s: string) => redactUrlPasswords(matcher.redact(s));
  return { size, text, value: <T>(v: T) => walk(v, text) as T };
}

const urlPasswordsOnly: Redactor = { size: 0, text: redactUrlPasswords, value: <T>(v: T) => walk(v, redactUrlPasswords) as T };

const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;
/** `Bearer <token>`, `Basic <base64>`: a credential after an auth scheme. */
const SCHEMED = /^(?:bearer|basic|token|bot|digest|apikey|key)\s+(\S{4,})$/i;

/**
 * A secret and the parts of it that are secrets on their own. The start of a URL (`https://`), of an
 * auth header (`Bearer `) or of a PEM block (`-----BEGIN `) is ordinary text, so such a value is hidden
 * whole only; its distinctive parts (a URL's userinfo, password, long path segments and query values;
 * the credential after the scheme) are hidden in every form, cut short included, so a receiver that
 * echoes only the token part of a webhook URL is caught.
 */
function expand(s: SecretValue): SecretValue[] {
  const { value } = s;
  if (value.startsWith('-----BEGIN')) return [{ value, partial: false }];
  const credential = SCHEMED.exec(value)?.[1];
  if (credential !== undefined) return [{ value, partial: false }, ...expand({ value: credential, partial: s.partial ?? true })];
  if (!URL_LIKE.test(value)) return [s];
  const out: SecretValue[] = [{ value, partial: false }];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return out;
  }
  const plain = (x: string) => {
    try {
      return decodeURIComponent(x);
    } catch {
      return x;
    }
  };
  if (url.username && url.password) out.push({ value: `${plain(url.username)}:${plain(url.password)}`, partial: false });
  if (url.password) out.push({ value: plain(url.password) });
  for (const part of [...url.pathname.split('/'), ...url.searchParams.values()].map(plain))
    if (distinctive(part)) out.push({ value: part });
  return out;
}

/** A URL part worth hiding on its own: a token, not a word such as `services` or `hooks`. */
const distinctive = (part: string) => part.length >= MIN_PARTIAL && (/\d/.test(part) || part.length >= 16);

/** The forms a secret is written in, besides itself. */
function formsOf(secret: string): string[] {
  const out = new Set([secret, JSON.stringify(secret).slice(1, -1)]);
  // As an HTML page escapes it (the status page, the confirm page), either spelling of the apostrophe.
  const html = secret.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  out.add(html.replace(/'/g, '&#39;'));
  out.add(html.replace(/'/g, '&#x27;'));
  const component = encodeURIComponent(secret);
  // RFC 3986 escapes `!'()*` too; the WHATWG URL parser does in a query (`'` → `%27`).
  const strict = component.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  for (const e of [component, strict, encodeURI(secret), component.replace(/%20/g, '+')]) {
    out.add(e);
    out.add(e.replace(/%[0-9A-F]{2}/g, (x) => x.toLowerCase()));
  }
  if (secret.length >= MIN_PARTIAL) {
    // Whole, as a Basic header carries `user:password`; and the core at each offset for the rest.
    const bytes = Buffer.from(secret, 'utf8');
    out.add(bytes.toString('base64'));
    out.add(bytes.toString('base64url'));
    for (const b of base64Cores(bytes)) out.add(b);
  }
  return [...out];
}

/**
 * The base64 (and base64url) characters that encode only the secret's own bytes, at each of the
 * three offsets it can have inside a longer encoded value (`user:password` in a Basic header): the
 * characters shared with neighbouring bytes at either end are left out.
 */
function base64Cores(bytes: Buffer): string[] {
  const out: string[] = [];
  for (const offset of [0, 1, 2]) {
    const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
    const total = padded.length;
    const std = padded.toString('base64').replace(/=+$/, '');
    // Characters before `skip` mix in the unknown bytes in front; the last one, when the byte count is
    // not a multiple of 3, mixes in the bytes after.
    const skip = offset === 0 ? 0 : offset + 1;
    const core = std.slice(skip, total % 3 === 0 ? std.length : std.length - 1);
    if (core.length < MIN_PARTIAL) continue;
    out.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return out;
}

/**
 * Slots of the quick filter over three characters of each 8-character window; a miss there skips a
 * position for free. Sized to the forms (about 1 in 16 slots set), so a probe with one secret costs
 * a few kilobytes, not 64 (there may be 60,000 probes).
 */
const filterSize = (grams: number) => Math.min(1 << 16, Math.max(256, 2 ** Math.ceil(Math.log2(grams * 16))));
const filterKey = (a: number, b: number, c: number, mask: number) => (a * 31 + b * 7 + c) & mask;

class Matcher {
  /** Forms by their first MIN_PARTIAL characters, and by their last. */
  private readonly heads = new Map<string, Form[]>();
  private readonly tails = new Map<string, Form[]>();
  private readonly filter: Uint8Array;
  private readonly mask: number;
  /** Forms shorter than MIN_PARTIAL: matched whole, one by one (there are few). */
  private readonly short: string[] = [];

  constructor(forms: readonly Form[]) {
    this.filter = new Uint8Array(filterSize(forms.length * 2));
    this.mask = this.filter.length - 1;
    for (const f of forms) {
      if (f.text.length < MIN_PARTIAL) {
        this.short.push(f.text);
        continue;
      }
      this.index(this.heads, f.text.slice(0, MIN_PARTIAL), f);
      this.index(this.tails, f.text.slice(-MIN_PARTIAL), f);
    }
    // Longest first, so a secret that contains a shorter one is hidden whole.
    this.short.sort((a, b) => b.length - a.length);
  }

  private index(map: Map<string, Form[]>, gram: string, f: Form) {
    const list = map.get(gram);
    if (list) list.push(f);
    else map.set(gram, [f]);
    this.filter[filterKey(gram.charCodeAt(0), gram.charCodeAt(3), gram.charCodeAt(MIN_PARTIAL - 1), this.mask)] = 1;
  }

  redact(s: string): string {
    const spans: Array<[number, number]> = [];
    this.find(s, spans);
    // A secret written with some of its characters percent-encoded (as a URL parser leaves it): look
    // again in the decoded text and map what is found back.
    if (s.includes('%')) {
      const decoded = percentDecoded(s);
      if (decoded) {
        const inDecoded: Array<[number, number]> = [];
        this.find(decoded.text, inDecoded);
        for (const [a, b] of inDecoded) {
          const from = decoded.at[a];
          const to = decoded.at[b];
          if (from !== undefined && to !== undefined) spans.push([from, to]);
        }
      }
    }
    let out = spans.length > 0 ? replaceSpans(s, spans) : s;
    for (const f of this.short) if (out.includes(f)) out = out.split(f).join(SECRET);
    return out;
  }

  /** Adds to `spans` every [start, end) in `s` that is a form, or a cut-short piece of one. */
  private find(s: string, spans: Array<[number, number]>) {
    const last = s.length - MIN_PARTIAL;
    for (let p = 0; p <= last; p++) {
      const slot = filterKey(s.charCodeAt(p), s.charCodeAt(p + 3), s.charCodeAt(p + MIN_PARTIAL - 1), this.mask);
      if (this.filter[slot] === 0) continue;
      const gram = s.slice(p, p + MIN_PARTIAL);
      const starting = this.heads.get(gram);
      if (starting)
        for (const f of starting) {
          let k = MIN_PARTIAL;
          while (k < f.text.length && p + k < s.length && s.charCodeAt(p + k) === f.text.charCodeAt(k)) k++;
          if (k === f.text.length || (f.partial && telling(s, p, p + k))) spans.push([p, p + k]);
        }
      const ending = this.tails.get(gram);
      if (ending)
        for (const f of ending) {
          const end = p + MIN_PARTIAL;
          let k = MIN_PARTIAL;
          while (k < f.text.length && end - k > 0 && s.charCodeAt(end - k - 1) === f.text.charCodeAt(f.text.length - k - 1)) k++;
          if (k === f.text.length || (f.partial && telling(s, end - k, end))) spans.push([end - k, end]);
        }
    }
  }
}

/**
 * Whether a cut-short piece `s[a, b)` gives a secret away. A short run of lower-case letters is
 * more likely an ordinary word that a secret happens to end with (`file-password` ends in
 * `password`) than what is left of the secret; a digit, a capital, a symbol or 12 letters are not.
 */
function telling(s: string, a: number, b: number): boolean {
  if (b - a >= 12) return true;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c < 97 || c > 122) return true;
  }
  return false;
}

/** `s` with `%XX` (ASCII) decoded, and for each position of the result (and its end) the position in `s`. */
function percentDecoded(s: string): { text: string; at: number[] } | undefined {
  let text = '';
  const at: number[] = [];
  for (let i = 0; i < s.length; ) {
    const hex = s.charCodeAt(i) === 37 ? s.slice(i + 1, i + 3) : '';
    if (/^[0-7][0-9a-fA-F]$/.test(hex)) {
      text += String.fromCharCode(Number.parseInt(hex, 16));
      at.push(i);
      i += 3;
    } else {
      text += s[i];
      at.push(i);
      i++;
    }
  }
  if (text.length === s.length) return undefined;
  at.push(s.length);
  return { text, at };
}

/** Replaces the union of `spans` with `<secret>`, keeping a JSON escape sequence whole at either edge. */
function replaceSpans(s: string, spans: Array<[number, number]>): string {
  spans.sort((a, b) => a[0] - b[0]);
  // Overlapping or touching spans become one.
  const merged: Array<[number, number]> = [];
  for (const [a, b] of spans) {
    const last = merged.at(-1);
    if (last !== undefined && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  let out = '';
  let pos = 0;
  for (let [start, end] of merged) {
    // A piece that starts just after an escaping backslash, or ends on one, would leave `\<` or `\"`
    // behind and break the JSON line it sits in: the whole escape goes.
    if (start > 0 && escapes(s, start - 1)) start--;
    if (end > 0 && escapes(s, end - 1)) end = Math.min(s.length, end + (s[end] === 'u' ? 5 : 1));
    if (start < pos) start = pos;
    out += s.slice(pos, start) + SECRET;
    pos = Math.max(pos, end);
  }
  return out + s.slice(pos);
}

/** Whether the backslash (if it is one) at `i` starts an escape: an odd run of backslashes ends there. */
function escapes(s: string, i: number): boolean {
  let n = 0;
  while (i - n >= 0 && s.charCodeAt(i - n) === 92) n++;
  return n % 2 === 1;
}

function walk(v: unknown, text: (s: string) => string): unknown {
  if (typeof v === 'string') return text(v);
  if (Array.isArray(v)) {
    // Copied only once something changed: most results hold no secret, and run a thousand a second.
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const y = walk(v[i], text);
      if (y !== v[i] && out === undefined) out = v.slice(0, i);
      out?.push(y);
    }
    return out ?? v;
  }
  if (v !== null && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
    const entries = Object.entries(v);
    let out: Record<string, unknown> | undefined;
    for (const [i, [k, x]] of entries.entries()) {
      const key = text(k);
      const y = walk(x, text);
      if ((key !== k || y !== x) && out === undefined) {
        out = {};
        for (const [k0, x0] of entries.slice(0, i)) own(out, k0, x0);
      }
      if (out !== undefined) own(out, key, y);
    }
    return out ?? v;
  }
  if (v instanceof Error) {
    const message = text(v.message);
    const stack = v.stack === undefined ? undefined : text(v.stack);
    if (message === v.message && stack === v.stack) return v;
    const copy = new Error(message);
    copy.name = v.name;
    if (stack !== undefined) copy.stack = stack;
    return copy;
  }
  return v;
}

/** Sets an own property, even `__proto__` (a key from outside is never the prototype). */
function own(o: Record<string, unknown>, key: string, value: unknown) {
  if (key === '__proto__') Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}
