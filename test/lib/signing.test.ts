import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signAction, verifyAction, verifySlackRequest } from '../../src/lib/signing.js';

const SECRET = 'link-secret-0123456789abcdef0123456789';
const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const EXPIRES = NOW + 24 * 3600_000;

/** Replaces one character with another of the same alphabet, so only the content changes, never the shape. */
function flip(text: string, at: number): string {
  const c = text[at];
  return `${text.slice(0, at)}${c === 'A' ? 'B' : 'A'}${text.slice(at + 1)}`;
}

describe('signed action links', () => {
  it('round-trips a valid token, compact and URL-safe', () => {
    const token = signAction({ incidentId: 7, action: 'ack', expiresAt: EXPIRES }, SECRET);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(token.length).toBeLessThan(100);
    expect(encodeURIComponent(token)).toBe(token);
    expect(verifyAction(token, SECRET, NOW)).toEqual({ ok: true, incidentId: 7, action: 'ack', expiresAt: EXPIRES });
    const resolve = signAction({ incidentId: 123456789, action: 'resolve', expiresAt: EXPIRES }, SECRET);
    expect(verifyAction(resolve, SECRET, NOW)).toEqual({ ok: true, incidentId: 123456789, action: 'resolve', expiresAt: EXPIRES });
  });

  it('carries a version in the payload', () => {
    const token = signAction({ incidentId: 7, action: 'ack', expiresAt: EXPIRES }, SECRET);
    const payload = Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8');
    expect(payload).toBe(`v1:7:ack:${EXPIRES}`);
  });

  it('refuses an expired token from the expiry instant on, still saying what it was for', () => {
    const token = signAction({ incidentId: 7, action: 'resolve', expiresAt: EXPIRES }, SECRET);
    expect(verifyAction(token, SECRET, EXPIRES - 1).ok).toBe(true);
    expect(verifyAction(token, SECRET, EXPIRES)).toEqual({
      ok: false,
      reason: 'expired',
      incidentId: 7,
      action: 'resolve',
      expiresAt: EXPIRES,
    });
    expect(verifyAction(token, SECRET, EXPIRES + 3600_000)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses a tampered payload: another incident, another action, a later expiry', () => {
    const token = signAction({ incidentId: 7, action: 'ack', expiresAt: EXPIRES }, SECRET);
    const sig = token.split('.')[1]!;
    const forge = (text: string) => `${Buffer.from(text).toString('base64url')}.${sig}`;
    expect(verifyAction(forge(`v1:8:ack:${EXPIRES}`), SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyAction(forge(`v1:7:resolve:${EXPIRES}`), SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(verifyAction(forge(`v1:7:ack:${EXPIRES * 2}`), SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
    // An expired token made to look fresh is a forgery, not an expired link.
    expect(verifyAction(forge(`v1:7:ack:${EXPIRES}`), SECRET, EXPIRES + 1)).toMatchObject({ ok: false, reason: 'expired' });
    expect(verifyAction(forge(`v1:7:ack:${EXPIRES + 3600_000}`), SECRET, EXPIRES + 1)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a tampered signature, at any position, including the last character', () => {
    const token = signAction({ incidentId: 7, action: 'ack', expiresAt: EXPIRES }, SECRET);
    const dot = token.indexOf('.');
    for (const at of [dot + 1, dot + 20, token.length - 1]) {
      expect(verifyAction(flip(token, at), SECRET, NOW), `position ${at}`).toEqual({ ok: false, reason: 'bad-signature' });
    }
  });

  it('refuses a signature whose last character differs only in the bits a decoder ignores', () => {
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const token = signAction({ incidentId: 7, action: 'ack', expiresAt: EXPIRES }, SECRET);
    const last = ALPHABET.indexOf(token.at(-1)!);
    // 256 bits in 43 characters: the last one's two low bits carry nothing, so both tokens decode to the same bytes.
    const twin = `${token.slice(0, -1)}${ALPHABET[last ^ 1]}`;
    expect(Buffer.from(twin.split('.')[1]!, 'base64url')).toEqual(Buffer.from(token.split('.')[1]!, 'base64url'));
    expect(verifyAction(twin, SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a token signed with another secret', () => {
    const token = signAction({ incidentId: 7, action: 'ack', expiresAt: EXPIRES }, 'another-secret-0123456789abcdef01234');
    expect(verifyAction(token, SECRET, NOW)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('calls anything that is not a token malformed', () => {
    const token = signAction({ incidentId: 7, action: 'ack', expiresAt: EXPIRES }, SECRET);
    const [payload, sig] = token.split('.') as [string, string];
    for (const bad of [
      '',
      'nodot',
      `.${sig}`,
      `${payload}.`,
      `${payload}.${sig}.extra`,
      `${payload}.${sig.slice(0, -1)}`,
      `${payload}.${sig}A`,
      `${payload}+.${sig}`,
      `${payload}.${sig.slice(0, -1)}=`,
      `${'A'.repeat(300)}.${sig}`,
    ]) {
      expect(verifyAction(bad, SECRET, NOW), JSON.stringify(bad)).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('calls an authentic payload of an unknown version or shape malformed', () => {
    const sign = (text: string) => {
      const p = Buffer.from(text).toString('base64url');
      return `${p}.${createHmac('sha256', SECRET).update(p).digest('base64url')}`;
    };
    expect(verifyAction(sign(`v1:7:ack:${EXPIRES}`), SECRET, NOW).ok).toBe(true);
    for (const text of [
      `v2:7:ack:${EXPIRES}`,
      `v1:7:delete:${EXPIRES}`,
      `v1:0:ack:${EXPIRES}`,
      `v1:-7:ack:${EXPIRES}`,
      `v1:7:ack:`,
      '{}',
    ]) {
      expect(verifyAction(sign(text), SECRET, NOW), text).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('refuses to sign what it could not verify', () => {
    expect(() => signAction({ incidentId: 0, action: 'ack', expiresAt: EXPIRES }, SECRET)).toThrow(TypeError);
    expect(() => signAction({ incidentId: 1.5, action: 'ack', expiresAt: EXPIRES }, SECRET)).toThrow(TypeError);
    expect(() => signAction({ incidentId: 7, action: 'ack', expiresAt: Number.NaN }, SECRET)).toThrow(TypeError);
    expect(() => signAction({ incidentId: 7, action: 'ack', expiresAt: EXPIRES }, '')).toThrow(TypeError);
  });
});

describe('Slack request signatures', () => {
  const SIGNING = '8f742231b10e8888abcd99yyyzzz85a5';
  const BODY = 'payload=%7B%22type%22%3A%22block_actions%22%7D';
  const TS = String(Math.floor(NOW / 1000));
  const sign = (ts: string, body: string, secret = SIGNING) =>
    `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
  const req = (over: Partial<Parameters<typeof verifySlackRequest>[0]> = {}) =>
    verifySlackRequest({ signingSecret: SIGNING, timestamp: TS, signature: sign(TS, BODY), rawBody: BODY, now: NOW, ...over });

  it("accepts Slack's documented example", () => {
    // From Slack's "Verifying requests from Slack" guide.
    const body =
      'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
    expect(
      verifySlackRequest({
        signingSecret: SIGNING,
        timestamp: '1531420618',
        signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
        rawBody: body,
        now: 1531420618_000,
      }),
    ).toEqual({ ok: true });
  });

  it('accepts a valid request, and upper-case hex', () => {
    expect(req()).toEqual({ ok: true });
    expect(req({ signature: sign(TS, BODY).toUpperCase().replace('V0=', 'v0=') })).toEqual({ ok: true });
  });

  it('refuses a timestamp more than 5 minutes from now, in both directions, even correctly signed', () => {
    for (const skew of [-5 * 60 - 1, 5 * 60 + 1, -3600, 86_400]) {
      const ts = String(Number(TS) + skew);
      expect(req({ timestamp: ts, signature: sign(ts, BODY) }), `skew ${skew}s`).toEqual({ ok: false, reason: 'stale' });
    }
    for (const skew of [-5 * 60, 5 * 60, -1, 1]) {
      const ts = String(Number(TS) + skew);
      expect(req({ timestamp: ts, signature: sign(ts, BODY) }), `skew ${skew}s`).toEqual({ ok: true });
    }
  });

  it('refuses a replay: an old request with its own valid signature, past the window', () => {
    expect(req({ now: NOW + 5 * 60_000 })).toEqual({ ok: true });
    expect(req({ now: NOW + 5 * 60_000 + 1_000 })).toEqual({ ok: false, reason: 'stale' });
  });

  it('refuses a tampered body, a moved timestamp and another secret', () => {
    expect(req({ rawBody: `${BODY}x` })).toEqual({ ok: false, reason: 'bad-signature' });
    expect(req({ rawBody: BODY.replace('block_actions', 'block_actionz') })).toEqual({ ok: false, reason: 'bad-signature' });
    const moved = String(Number(TS) + 10);
    expect(req({ timestamp: moved })).toEqual({ ok: false, reason: 'bad-signature' });
    expect(req({ signature: sign(TS, BODY, 'another-signing-secret') })).toEqual({ ok: false, reason: 'bad-signature' });
    expect(req({ signature: `v0=${'0'.repeat(64)}` })).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('calls missing or misshapen headers malformed', () => {
    const good = sign(TS, BODY);
    for (const signature of [undefined, '', good.slice(3), `v1=${good.slice(3)}`, good.slice(0, -1), `${good}0`, `v0=${'g'.repeat(64)}`]) {
      expect(req({ signature }), String(signature)).toEqual({ ok: false, reason: 'malformed' });
    }
    for (const timestamp of [undefined, '', 'soon', '-1', '1.5', '1'.repeat(13)]) {
      expect(req({ timestamp }), String(timestamp)).toEqual({ ok: false, reason: 'malformed' });
    }
  });
});
