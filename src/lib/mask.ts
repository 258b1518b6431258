/**
 * Masking of what a log search finds. A probe that looks for secrets and personal data in logs must
 * show enough of a match for a person to find the line (`a***@example.com`, `eyJh***`), never the
 * value itself: its messages go to pages, chat and the report.
 */

/** Characters of a token kept in front of the mask: enough to tell tokens apart, too few to use one. */
const KEEP = 4;
const MASK = '***';
/** A masked sample is cut to this many characters: a sample is a pointer to the line, not a copy. */
export const MAX_SAMPLE_CHARS = 160;

const keep = (value: string, n = KEEP) => `${value.slice(0, n)}${MASK}`;

/** In order: the first pattern to claim a stretch of text masks it; later ones see only the rest. */
const RULES: Array<[RegExp, (m: string, ...groups: string[]) => string]> = [
  // `password=…`, `"secret": "…"`, `api_key: …`: the key stays, the whole value goes (a password's first
  // characters are a real clue, unlike a random token's).
  [
    /((?:pass(?:word|wd)?|pwd|secret|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret)["']?\s*[=:]\s*["']?)([^\s"'&,;}]+)/gi,
    (_m, key) => `${key}${MASK}`,
  ],
  // `Authorization: Bearer …` / `Basic …` and tokens after `token=`.
  [/\b(Bearer|Basic|Token)(\s+)([A-Za-z0-9\-._~+/]+=*)/gi, (_m, scheme, space, token) => `${scheme}${space}${keep(token)}`],
  [/\b((?:access_|refresh_|id_)?token["']?\s*[=:]\s*["']?)([^\s"'&,;}]+)/gi, (_m, key, token) => `${key}${keep(token)}`],
  // e-mail addresses: the first character of the local part and the domain.
  [/\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b/g, (_m, first, domain) => `${first}${MASK}@${domain}`],
  // AWS access key ids: the 4-letter prefix says the kind and nothing else.
  [/\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b/g, (m) => keep(m)],
  // JWTs and other long opaque strings (AWS secret keys, API keys, hex digests, card numbers).
  [/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, (m) => keep(m)],
  [/(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{20,}={0,2}(?![A-Za-z0-9+/=_-])/g, (m) => (/\d/.test(m) && /[A-Za-z]/.test(m) ? keep(m) : m)],
  [/\b\d(?:[ -]?\d){12,18}\b/g, (m) => keep(m)],
];

/** `text` with every e-mail address, credential and token-shaped string masked. */
export function maskSecrets(text: string): string {
  let out = text;
  for (const [pattern, replace] of RULES) {
    // Already-masked values end in MASK: the later, looser rules must not mask the mask's prefix again.
    out = out.replace(pattern, (m, ...rest) => (m.endsWith(MASK) ? m : replace(m, ...(rest as string[]))));
  }
  return out;
}

/** One found line as a message may show it: masked, on one line, and cut to MAX_SAMPLE_CHARS. */
export function maskedSample(line: string): string {
  const masked = maskSecrets(line.replace(/\s+/g, ' ').trim());
  return masked.length > MAX_SAMPLE_CHARS ? `${masked.slice(0, MAX_SAMPLE_CHARS - 1)}…` : masked;
}
