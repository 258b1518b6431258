import { describe, expect, it } from 'vitest';
import { createRedactor, noRedaction } from '../../src/lib/redactor.js';

const TOKEN = "PLANTED-PROBE-TOKEN-it's-42";
const r = createRedactor([TOKEN, 'hunter22', 'abcd']);

describe('createRedactor', () => {
  it('gives a string with no secret back identical, and a value with none back as the same object', () => {
    const text = 'GET /health → 503 Service Unavailable: cache down (took 12 ms) https://example.com/a?b=c';
    expect(r.text(text)).toBe(text);
    const v = { message: text, details: { list: ['x', 1, null, true] } };
    expect(r.value(v)).toBe(v);
  });

  it.each([
    ['exact', `401: token ${TOKEN} refused`],
    ['JSON-escaped', JSON.stringify({ token: TOKEN })],
    ['HTML-escaped', `<td>${TOKEN.replace("'", '&#39;')}</td>`],
    ['encodeURIComponent', `?t=${encodeURIComponent(TOKEN)}`],
    ['RFC 3986 (%27 for an apostrophe)', `?t=${encodeURIComponent(TOKEN).replace("'", '%27')}`],
    [
      'lower-case hex',
      `?t=${encodeURIComponent(TOKEN)
        .replace("'", '%27')
        .replace(/%[0-9A-F]{2}/g, (x) => x.toLowerCase())}`,
    ],
    ['encodeURI', `https://h/${encodeURI(`${TOKEN} x`)}`],
    ['base64', `x-token: ${Buffer.from(TOKEN).toString('base64')}`],
    ['base64url', `jwt.${Buffer.from(TOKEN).toString('base64url')}.sig`],
    ['base64 inside Basic user:password', `Authorization: Basic ${Buffer.from(`someone:${TOKEN}`).toString('base64')}`],
    ['base64 at the third offset', `Basic ${Buffer.from(`ab:${TOKEN}`).toString('base64')}`],
    ['a body excerpt cut mid-secret', 'body: {"error":"bad auth header Bearer PLANTED-PRO'],
    ['the end of a secret at the start of an excerpt', `…BE-TOKEN-it's-42 was rejected`],
  ])('hides the %s form', (_form, text) => {
    const out = r.text(text);
    expect(out).toContain('<secret>');
    for (const piece of [TOKEN, 'PLANTED-PRO', 'TOKEN-it', encodeURIComponent(TOKEN), Buffer.from(TOKEN).toString('base64').slice(4, 20)])
      expect(out).not.toContain(piece);
  });

  it('hides the HTML-escaped form whole, the apostrophe spelt either way', () => {
    for (const apos of ['&#39;', '&#x27;']) expect(r.text(`<td>${TOKEN.replace("'", apos)}</td>`)).toBe('<td><secret></td>');
  });

  it('hides a cut-short piece only from 8 characters, and a short secret only whole', () => {
    expect(r.text('PLANTED')).toBe('PLANTED');
    expect(r.text('PLANTED-')).toBe('<secret>');
    expect(r.text('hunter2 and hunter22')).toBe('hunter2 and <secret>');
    expect(r.text('abc abcd abcde')).toBe('abc <secret> <secret>e');
    // A 4-7 character secret has no cut-short form at all.
    expect(createRedactor(['s3cret7']).text('s3cret s3cret7')).toBe('s3cret <secret>');
  });

  it('leaves an ordinary word a secret happens to end with, but not a telling piece', () => {
    const pw = createRedactor(['file-password']);
    expect(pw.text('{"password":"x"}')).toBe('{"password":"x"}');
    expect(pw.text('-password')).toBe('<secret>');
  });

  it('leaves values under 4 characters alone', () => {
    expect(createRedactor(['1', 'on']).text('port 1 is on')).toBe('port 1 is on');
  });

  it('hides a URL secret whole and its distinctive parts, not its ordinary start', () => {
    const hook = createRedactor(['https://hooks.example.com/services/T0001/B0002/hook-token-9a8b7c6d?sig=abcdef0123456789']);
    expect(hook.text('see https://hooks.example.com/other')).toBe('see https://hooks.example.com/other');
    expect(hook.text('invalid token hook-token-9a8b7c6d')).toBe('invalid token <secret>');
    expect(hook.text('invalid token hook-token-9a8')).toBe('invalid token <secret>');
    expect(hook.text('sig abcdef0123456789 bad')).toBe('sig <secret> bad');
    expect(hook.text('path /services/ ok')).toBe('path /services/ ok');
  });

  it('hides the password and the Basic form of a URL with credentials', () => {
    const url = createRedactor(["http://probe:pa'ss-w0rd-XYZ@127.0.0.1:9/x"]);
    expect(url.text("password pa'ss-w0rd-XYZ")).toBe('password <secret>');
    expect(url.text('http://probe:pa%27ss-w0rd-XYZ@127.0.0.1:9/x')).not.toContain('w0rd');
    expect(url.text(`Basic ${Buffer.from("probe:pa'ss-w0rd-XYZ").toString('base64')}`)).toBe('Basic <secret>');
  });

  it('hides the credential after an auth scheme, but not the scheme', () => {
    const auth = createRedactor(['Bearer tok-0123456789abcdef']);
    expect(auth.text('Bearer tok-0123 (cut)')).toBe('Bearer <secret> (cut)');
    expect(auth.text('Bearer realm="x"')).toBe('Bearer realm="x"');
  });

  it('keeps a JSON line valid when a piece ends or starts on an escape', () => {
    const quoted = createRedactor(['my"quoted\\secret-0042']);
    const line = JSON.stringify({ msg: 'x my"quoted\\secret-0042 y', cut: 'my"quoted\\se', tail: 'oted\\secret-0042' });
    const out = quoted.text(line);
    expect(() => JSON.parse(out)).not.toThrow();
    expect(out).not.toContain('secret-0042');
    expect(out).not.toContain('quoted');
  });

  it('hides passwords inside any URL, known or not', () => {
    expect(createRedactor([]).text('connect postgres://u:pw@h/db failed')).toBe('connect postgres://u:<secret>@h/db failed');
    expect(noRedaction.text('postgres://u:pw@h/db')).toBe('postgres://u:pw@h/db');
  });

  it('redacts deep values, keys included, without touching the input', () => {
    const v = { message: 'x hunter22', details: { body: ['Bearer PLANTED-PROB'], hunter22: 1 }, n: 5 };
    const out = r.value(v);
    expect(out).toEqual({ message: 'x <secret>', details: { body: ['Bearer <secret>'], '<secret>': 1 }, n: 5 });
    expect(v.message).toBe('x hunter22');
    // A key from outside stays an own key, never the prototype.
    const odd = r.value(JSON.parse('{"__proto__": "hunter22", "a": 1}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(odd)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(odd, '__proto__')?.value).toBe('<secret>');
  });

  it('scans a long text in time linear in its length, whatever the number of secrets', () => {
    const many = createRedactor(Array.from({ length: 500 }, (_, i) => `secret-value-${i}-${'x'.repeat(i % 20)}`));
    const text = `${'lorem ipsum dolor sit amet, '.repeat(4_000)}secret-value-42-${'x'.repeat(2)}`;
    many.text(text);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) many.text(text);
    const perMb = (performance.now() - t0) / 10 / (text.length / 1e6);
    expect(many.text(text).endsWith('<secret>')).toBe(true);
    // ~112 kB a call; generous for a shared CI machine (measured ~100 ms/MB, a 250-byte log line in ~8 µs).
    expect(perMb).toBeLessThan(1_000);
  });
});
