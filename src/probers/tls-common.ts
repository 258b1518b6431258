import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { formatDuration } from '../lib/duration.js';
import type { SpecProblem } from './types.js';

/**
 * What the `tls` and `http` probers share about certificates, so both say the same thing in the
 * same words: how a `ca` field is checked and trusted, how days remaining are counted, and what
 * a server's handshake alert means.
 */

export const DAY = 86_400_000;

/** The problem with a `ca` field at `path`, if its text is not PEM certificates Node can load. */
export function caProblem(ca: string | undefined, path = 'ca'): SpecProblem | undefined {
  if (ca === undefined) return undefined;
  const blocks = ca.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  const bad = blocks.length === 0 || blocks.some((b) => !parses(b));
  return bad ? { path, message: 'expected PEM text of CA certificates (-----BEGIN CERTIFICATE-----…)' } : undefined;
}

/** The CAs a connection trusts: the public roots, plus the definition's own `ca` when it has one. */
export function trustedCas(ca: string | undefined): string[] | undefined {
  return ca === undefined ? undefined : [...tls.rootCertificates, ca];
}

/** Epoch ms of the earliest `notAfter` anywhere in a peer's chain (blackbox_exporter's earliest cert expiry). */
export function earliestExpiry(cert: tls.PeerCertificate): number | undefined {
  const times = certificateChain(cert)
    .map((c) => Date.parse(c.valid_to))
    .filter(Number.isFinite);
  return times.length > 0 ? Math.min(...times) : undefined;
}

/** The issuer `getPeerCertificate(true)` links a certificate to; undefined for one asked for without its chain. */
export function issuerOf(cert: tls.PeerCertificate): tls.PeerCertificate | undefined {
  return isDetailed(cert) ? cert.issuerCertificate : undefined;
}

function isDetailed(cert: tls.PeerCertificate): cert is tls.DetailedPeerCertificate {
  return 'issuerCertificate' in cert && typeof cert.issuerCertificate === 'object' && cert.issuerCertificate !== null;
}

/**
 * The chain as `getPeerCertificate(true)` links it, leaf first: what the server presented, plus the
 * trusted root OpenSSL completed it with. Stops where a certificate is its own issuer.
 */
export function certificateChain(cert: tls.PeerCertificate): tls.PeerCertificate[] {
  const chain: tls.PeerCertificate[] = [];
  const seen = new Set<string>();
  let cur: tls.PeerCertificate | undefined = cert;
  // Ten is far beyond any real chain; it only bounds a malformed one.
  while (cur?.raw !== undefined && chain.length < 10 && !seen.has(cur.fingerprint256)) {
    seen.add(cur.fingerprint256);
    chain.push(cur);
    cur = issuerOf(cur);
  }
  return chain;
}

/**
 * Whole days between `now` and `notAfter`, as a person counts them: 9 with nine and a half days
 * left, 0 on the last day, -2 when it expired two days and an hour ago, and never above -1 once
 * expired, so `days_remaining < 0` means expired from the first second. The one definition behind
 * `days_remaining`, `tls_days_remaining` and every "expires in"/"expired … ago" message.
 */
export function daysRemaining(notAfter: number, now: number): number {
  if (notAfter > now) return Math.floor((notAfter - now) / DAY);
  return Math.min(-1, -Math.floor((now - notAfter) / DAY));
}

/**
 * `expires in 9 days` / `expired 2 days ago`: the number is `daysRemaining`'s. Within a day either
 * side of the expiry the hours say more than a day count.
 */
export function expiryPhrase(notAfter: number, now: number): string {
  const days = daysRemaining(notAfter, now);
  if (days >= 1) return `expires in ${plural(days, 'day')}`;
  if (days === 0) return `expires in ${formatDuration(notAfter - now)}`;
  if (now - notAfter < DAY) return `expired ${formatDuration(now - notAfter)} ago`;
  return `expired ${plural(-days, 'day')} ago`;
}

/**
 * What a TLS alert from the server means, for the alerts whose OpenSSL text misleads: a server
 * that wants a client certificate looks, to an HTTP client, like a peer that hung up.
 * `sends` says which client certificate vigil offered (vigil's probes offer none).
 */
export function alertCause(code: string, sends = 'vigil sends none'): string | undefined {
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') return `the server requires a client certificate (${sends})`;
  // TLS 1.2 has no alert of its own for it: a server that wants one answers "handshake failure".
  if (code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE') {
    return `the server refused the handshake: it may require a client certificate (${sends}), or share no cipher with vigil`;
  }
  return undefined;
}

/**
 * OpenSSL's own reason in a TLS error ("wrong version number"), not its whole error line; the
 * message as it is for an error that has none.
 */
export function tlsErrorReason(err: unknown): string {
  const reason: unknown = typeof err === 'object' && err !== null ? Reflect.get(err, 'reason') : undefined;
  if (typeof reason === 'string' && reason !== '') return reason;
  const message = typeof err === 'string' ? err : err instanceof Error ? err.message : String(err);
  const m = /SSL routines:[^:]*:([^:]+)/.exec(message);
  return (m?.[1] ?? message).trim();
}

/** A hint for a TLS reason that means the port speaks something else than TLS. */
export function notTlsHint(reason: string): string {
  return /wrong version number|packet length too long|unknown protocol|http request/i.test(reason) ? ' (is this port serving TLS?)' : '';
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

function parses(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/**
 * The problems with a client certificate's `cert`/`key` fields: both or neither, each PEM Node can
 * load, and the key the one the certificate was issued for (else every handshake fails obscurely).
 */
export function clientCertProblems(cert: string | undefined, key: string | undefined): SpecProblem[] {
  if (cert === undefined && key === undefined) return [];
  if (cert === undefined)
    return [{ path: 'cert', message: 'key is set without cert: give both, the client certificate (PEM) and its key' }];
  if (key === undefined) return [{ path: 'key', message: 'cert is set without key: give both, the client certificate (PEM) and its key' }];
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    return [{ path: 'cert', message: 'expected PEM text of a certificate (-----BEGIN CERTIFICATE-----…)' }];
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    return [{ path: 'key', message: 'expected PEM text of an unencrypted private key (-----BEGIN PRIVATE KEY-----…)' }];
  }
  if (!x509.checkPrivateKey(privateKey)) return [{ path: 'key', message: 'this key does not belong to the certificate in cert' }];
  return [];
}

/**
 * The fields every kind that opens a TLS-capable connection to `host` + `port` shares: a host
 * without a port in it, a CA that parses, a client certificate pair that belongs together.
 */
export function connectionProblems(spec: { host: string; ca?: string; cert?: string; key?: string }): SpecProblem[] {
  const problems: SpecProblem[] = [];
  if (spec.host.includes(':') && isIP(spec.host) !== 6) {
    problems.push({ path: 'host', message: `expected a host name without a port, got ${spec.host} (put the port in port:)` });
  }
  const ca = caProblem(spec.ca);
  if (ca) problems.push(ca);
  problems.push(...clientCertProblems(spec.cert, spec.key));
  return problems;
}
