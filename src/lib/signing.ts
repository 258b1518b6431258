import { createHmac, timingSafeEqual } from 'node:crypto';

const MAX_DATE_MS = 8_640_000_000_000_000;

/** What a one-click link may do to an incident. */
export type LinkAction = 'ack' | 'resolve';

/** What a signed link carries. */
export interface ActionClaim {
  incidentId: number;
  action: LinkAction;
  /** Epoch ms after which the link is refused. */
  expiresAt: number;
}

/** The outcome of checking a link token: its claim, or why it was refused. */
export type ActionVerdict =
  | ({ ok: true } & ActionClaim)
  // An expired token was authentic, so what it was for can still be shown to the person holding it.
  | ({ ok: false; reason: 'expired' } & ActionClaim)
  | { ok: false; reason: 'malformed' | 'bad-signature' };

/** The outcome of checking a Slack request signature. */
export type SlackVerdict = { ok: true } | { ok: false; reason: 'malformed' | 'stale' | 'bad-signature' };

// The version leads the payload, so a later format is told apart before any of it is trusted.
const VERSION = 'v1';
const PAYLOAD = /^v1:([1-9]\d{0,15}):(ack|resolve):(\d{1,16})$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
// HMAC-SHA256 is 32 bytes: 43 base64url characters, unpadded.
const SIGNATURE_CHARS = 43;
// Slack's own window: a request older or newer than this is a replay (or a clock that is badly off).
const SLACK_WINDOW_S = 5 * 60;

const hmac = (secret: string, text: string) => createHmac('sha256', secret).update(text).digest();

/**
 * A compact, URL-safe token: base64url(`v1:<incident>:<action>:<expiresAt>`) + '.' + base64url of
 * its HMAC-SHA256. The MAC covers the encoded payload as sent, so nothing is decoded before it is
 * authenticated.
 */
export function signAction(claim: ActionClaim, secret: string): string {
  if (!Number.isSafeInteger(claim.incidentId) || claim.incidentId < 1)
    throw new TypeError('signAction: incidentId must be a positive integer');
  if (!Number.isSafeInteger(claim.expiresAt) || claim.expiresAt < 0 || claim.expiresAt > MAX_DATE_MS)
    throw new TypeError('signAction: expiresAt must be epoch milliseconds');
  if (claim.action !== 'ack' && claim.action !== 'resolve') throw new TypeError('signAction: action must be ack or resolve');
  if (secret.length === 0) throw new TypeError('signAction: the secret is empty');
  const payload = Buffer.from(`${VERSION}:${claim.incidentId}:${claim.action}:${claim.expiresAt}`).toString('base64url');
  return `${payload}.${hmac(secret, payload).toString('base64url')}`;
}

/** Checks a token from `signAction` at `now` (epoch ms): authentic first, then unexpired. */
export function verifyAction(token: string, secret: string, now: number): ActionVerdict {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot !== token.lastIndexOf('.') || token.length > 256) return { ok: false, reason: 'malformed' };
  const payload = token.slice(0, dot);
  const signature = token.slice(dot + 1);
  if (!BASE64URL.test(payload) || !BASE64URL.test(signature) || signature.length !== SIGNATURE_CHARS) {
    return { ok: false, reason: 'malformed' };
  }
  // Compared as text, not decoded bytes: a decoder ignores the last character's spare bits, which would let
  // altered tokens pass. Both sides are 43 characters, so timingSafeEqual never throws.
  const expected = Buffer.from(hmac(secret, payload).toString('base64url'));
  if (secret.length === 0 || !timingSafeEqual(Buffer.from(signature), expected)) {
    return { ok: false, reason: 'bad-signature' };
  }
  const m = PAYLOAD.exec(Buffer.from(payload, 'base64url').toString('utf8'));
  if (!m) return { ok: false, reason: 'malformed' };
  const action = m[2];
  if (action !== 'ack' && action !== 'resolve') return { ok: false, reason: 'malformed' };
  const claim: ActionClaim = { incidentId: Number(m[1]), action, expiresAt: Number(m[3]) };
  // 8.64e15 ms is the end of the Date range: a signed claim past it cannot be shown as a time.
  if (!Number.isSafeInteger(claim.incidentId) || !Number.isSafeInteger(claim.expiresAt) || claim.expiresAt > MAX_DATE_MS)
    return { ok: false, reason: 'malformed' };
  if (now >= claim.expiresAt) return { ok: false, reason: 'expired', ...claim };
  return { ok: true, ...claim };
}

/** A Slack request as it arrived: the two headers (absent when missing) and the body exactly as sent. */
export interface SlackRequest {
  signingSecret: string;
  /** `X-Slack-Request-Timestamp`: epoch seconds. */
  timestamp: string | undefined;
  /** `X-Slack-Signature`: `v0=<hex>`. */
  signature: string | undefined;
  rawBody: string;
  /** Epoch ms. */
  now: number;
}

/**
 * Slack's v0 scheme: `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<body>` with the app's signing
 * secret. The timestamp is checked too, or a captured request could be replayed forever.
 */
export function verifySlackRequest(req: SlackRequest): SlackVerdict {
  if (req.timestamp === undefined || !/^\d{1,12}$/.test(req.timestamp)) return { ok: false, reason: 'malformed' };
  const sig = req.signature === undefined ? undefined : /^v0=([0-9a-f]{64})$/i.exec(req.signature)?.[1];
  if (sig === undefined) return { ok: false, reason: 'malformed' };
  if (Math.abs(req.now / 1000 - Number(req.timestamp)) > SLACK_WINDOW_S) return { ok: false, reason: 'stale' };
  const expected = hmac(req.signingSecret, `v0:${req.timestamp}:${req.rawBody}`);
  if (req.signingSecret.length === 0 || !timingSafeEqual(Buffer.from(sig, 'hex'), expected)) return { ok: false, reason: 'bad-signature' };
  return { ok: true };
}
