import { isIP } from 'node:net';

/**
 * What every kind that opens a socket shares: how it writes host and port, and the error codes it
 * reads the same way, with the words its failure message uses for them.
 */

/** `host:port`, with an IPv6 address in brackets (`[::1]:53`). */
export function endpoint(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The name did not resolve. */
export const DNS_ERRORS: ReadonlySet<string> = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'ENODATA']);

const CONNECT_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  EADDRNOTAVAIL: 'address not available',
};

/** What a failed connect means in words (`connection refused`); undefined for a code that is no connect failure. */
export function connectReason(code: string): string | undefined {
  return Object.hasOwn(CONNECT_REASONS, code) ? CONNECT_REASONS[code] : undefined;
}

/** Verification codes that mean the chain leads to no CA vigil trusts (the fix: `ca:` or `insecure: true`). */
export const TRUST_ERRORS: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
]);
