import { randomBytes } from 'node:crypto';

/** A new API token: 32 random bytes, base64url (43 characters, safe in a header, a URL or YAML). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * What `vigil token` prints: the token alone on the first line (so `$(vigil token | head -1)`
 * takes it), then where it goes. The token itself never goes into YAML: the entry reads it from a
 * file, as every secret in vigil's config is read.
 */
export function tokenText(token: string, name: string, role: string): string {
  const file = `/run/secrets/vigil-token-${name}`;
  return [
    token,
    `# 1. store it, readable by the user vigil runs as:  umask 077; printf '%s' '<the token above>' > ${file}`,
    '# 2. add this under auth.tokens in your config, then reload (or restart):',
    `- { name: ${name}, token: "\${file:${file}}", role: ${role} }`,
    '',
  ].join('\n');
}
