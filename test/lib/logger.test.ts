import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, hideLinkTokens, maskEmails, setLogSecrets } from '../../src/lib/logger.js';
import { createRedactor } from '../../src/lib/redactor.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

describe('logger', () => {
  it('writes JSON with an ISO timestamp, a text level and the fields given', () => {
    const { logger, lines } = capture();
    logger.child({ requestId: 'r-1' }).info({ probe: 'api', ok: true }, 'probe run');
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: 'info', service: 'vigil', requestId: 'r-1', probe: 'api', ok: true, msg: 'probe run' });
    expect(new Date(line.time).toISOString()).toBe(line.time);
  });

  it('censors secrets by path and masks email addresses wherever they appear', () => {
    const { logger, lines } = capture();
    logger.warn(
      {
        channel: { token: 'xoxb-123-secret', routingKey: 'R0UT1NG' },
        req: { headers: { authorization: 'Bearer abc' } },
        person: { email: 'alice.ng@example.com' },
        err: new Error('550 rejected: bob+ops@mail.example.co.uk'),
      },
      'page to carol@example.org failed',
    );
    const text = lines.join('\n');
    for (const secret of ['xoxb-123-secret', 'R0UT1NG', 'Bearer abc', 'alice.ng@', 'bob+ops@', 'carol@'])
      expect(text).not.toContain(secret);
    const line = JSON.parse(lines[0]!);
    expect(line.channel).toEqual({ token: '<secret>', routingKey: '<secret>' });
    expect(line.person.email).toBe('a***@example.com');
    expect(line.msg).toBe('page to c***@example.org failed');
    expect(line.err.message).toBe('550 rejected: b***@mail.example.co.uk');
  });

  it('hides a one-click link token and keeps a line whose JSON quotes JSON parseable', () => {
    // A Slack request body logged as a string: the link sits inside escaped quotes.
    const inner = JSON.stringify({ url: 'https://vigil.example/act/SECRET-LINK-TOKEN.abc', text: 'x' });
    const line = JSON.stringify({ msg: 'slack request', body: inner });
    const out = hideLinkTokens(line);
    expect(out).not.toContain('SECRET-LINK-TOKEN');
    expect(JSON.parse(JSON.parse(out).body)).toEqual({ url: 'https://vigil.example/act/<token>', text: 'x' });
    expect(hideLinkTokens('{"url":"/%2Fact%2Fabc"}')).toBe('{"url":"/%2Fact%2F<token>"}');
  });

  it('leaves lines without an address alone', () => {
    expect(maskEmails('{"msg":"no at sign"}')).toBe('{"msg":"no at sign"}');
    expect(maskEmails('{"host":"user@"}')).toBe('{"host":"user@"}');
  });
});

describe('setLogSecrets', () => {
  it('removes known secret values, in any form, from every line of the logger and its children, from then on', () => {
    const { logger, lines } = capture();
    const child = logger.child({ module: 'run' });
    child.warn({ reason: 'body: Bearer PLANTED-TOKEN-0042' }, 'probe run');
    expect(setLogSecrets(logger, createRedactor(['PLANTED-TOKEN-0042']))).toBe(true);
    child.warn({ reason: 'body: Bearer PLANTED-TOKEN-0042', cut: 'Bearer PLANTED-TO' }, 'probe run');
    logger.error({ err: new Error(`refused ${encodeURIComponent('PLANTED-TOKEN-0042')}`) }, 'send failed');
    expect(lines[0]).toContain('PLANTED-TOKEN-0042');
    for (const line of lines.slice(1)) {
      expect(line).not.toContain('PLANTED-TO');
      expect(() => JSON.parse(line)).not.toThrow();
    }
    expect(JSON.parse(lines[1]!).reason).toBe('body: Bearer <secret>');
    // A reload brings other secrets: the new set applies, to children made before too.
    setLogSecrets(logger, createRedactor(['another-secret-77']));
    child.info({ v: 'another-secret-77' }, 'x');
    expect(JSON.parse(lines.at(-1)!).v).toBe('<secret>');
  });

  it('keeps every line one JSON object: a URL-looking value next to an address, or a redactor that would cut a quote', () => {
    const { logger, lines } = capture();
    setLogSecrets(logger, createRedactor(['PLANTED-0042-secret']));
    logger.info({ target: 'redis://h', contact: 'x@y', url: 'http://u:PLANTED-0042-secret@h/' }, 'ping');
    const first = JSON.parse(lines[0]!);
    expect(first).toMatchObject({ target: 'redis://h', contact: 'x@y', url: 'http://u:<secret>@h/' });
    // A redactor whose text pass eats a quote: the line is hidden value by value instead.
    const careless = createRedactor(['PLANTED-0042-secret']);
    setLogSecrets(logger, { ...careless, text: (s) => careless.text(s).replace('"msg":"', '"msg":') });
    logger.warn({ token: 'PLANTED-0042-secret' }, 'sent PLANTED-0042-secret');
    const second = JSON.parse(lines[1]!);
    expect(second).toMatchObject({ level: 'warn', token: '<secret>', msg: 'sent <secret>' });
    expect(lines.join('\n')).not.toContain('PLANTED');
  });

  it('says when a logger cannot take secrets', () => {
    expect(setLogSecrets({} as never, createRedactor(['x-secret-value']))).toBe(false);
  });
});
