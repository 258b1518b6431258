/**
 * Credentials written into a URL (`https://user:password@host/`): sent as Basic auth, as curl and
 * Go's net/http do, and never shown. Shared by every prober that takes a URL.
 */

/** `Authorization: Basic …` from a URL's `user:password@`, percent-decoded; empty when it has none. */
export function credentialsHeader(url: string | URL): Record<string, string> {
  const u = new URL(url);
  if (u.username === '' && u.password === '') return {};
  const pair = `${decoded(u.username)}:${decoded(u.password)}`;
  return { authorization: `Basic ${Buffer.from(pair).toString('base64')}` };
}

/** Why a URL's credentials cannot be sent (a `%` that starts no escape), for a definition check. */
export function credentialsProblem(url: string): string | undefined {
  // No `@`, no user or password to check (and no URL to parse: most definitions have none).
  if (!url.includes('@')) return undefined;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined; // the schema's own pattern reports a URL that does not parse
  }
  for (const part of [u.username, u.password]) {
    try {
      decodeURIComponent(part);
    } catch {
      return 'expected the user and password in the URL to be percent-encoded (write % as %25)';
    }
  }
  return undefined;
}

/** The URL without its `user:password@`: what is requested and what any message may show. */
export function withoutCredentials(url: string | URL): URL {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u;
}

/** A URL for messages: never its credentials, and no trailing slash. */
export function shownUrl(url: string | URL): string {
  return withoutCredentials(url).href.replace(/\/$/, '');
}

/** A URL as a report prints it: as written, less any `user:password@`. */
export function urlAsWritten(url: string): string {
  const u = new URL(url);
  return u.username === '' && u.password === '' ? url : withoutCredentials(u).href;
}

// A definition check rejects bad escapes; this keeps a URL that slipped past from ever throwing.
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
