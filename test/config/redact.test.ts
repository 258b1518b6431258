import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, redact } from '../../src/config/index.js';
import { redactText } from '../../src/config/redact.js';

const none = new Set<string>();

describe('redact', () => {
  it('replaces every value under a secret-looking key, at any depth', () => {
    const input = {
      url: 'https://api.example.com/health',
      headers: { Authorization: 'Bearer abc', Cookie: 'sid=1', 'X-Api-Key': 'k-1', accept: 'application/json' },
      slack: { token: 'xoxb-1', channel: '#ops' },
      pagerduty: { routingKey: 'R0UT1NG', severity: 'critical' },
      smtp: { user: 'vigil', password: 'pw', pass: 'pw2' },
      db: { privateKey: 'pem', credentials: ['a', 'b'] },
      webhook: { url: 'https://hooks.example.com/x' },
      secrets: { nested: { deep: 'value' } },
    };
    expect(redact(input, none)).toEqual({
      url: 'https://api.example.com/health',
      headers: { Authorization: '<secret>', Cookie: '<secret>', 'X-Api-Key': '<secret>', accept: 'application/json' },
      slack: { token: '<secret>', channel: '#ops' },
      pagerduty: { routingKey: '<secret>', severity: 'critical' },
      smtp: { user: 'vigil', password: '<secret>', pass: '<secret>' },
      db: { privateKey: '<secret>', credentials: ['<secret>', '<secret>'] },
      webhook: { url: '<secret>' },
      secrets: { nested: { deep: '<secret>' } },
    });
  });

  it('hides numbers under secret keys too, but keeps flags and empty values', () => {
    expect(redact({ pin: 1, password: 123456, tokenRequired: true, apiKey: null }, none)).toEqual({
      pin: 1,
      password: '<secret>',
      tokenRequired: true,
      apiKey: null,
    });
  });

  it('replaces interpolated secret values wherever they are embedded', () => {
    const secrets = new Set(['s3cr3t-token', 'hunter22']);
    const input = {
      url: 'https://api.example.com/v1?key=s3cr3t-token&x=1',
      body: '{"user":"me","pass":"hunter22"}',
      list: ['hunter22', 'plain', 'a hunter22 b hunter22'],
      label: 'nothing here',
    };
    expect(redact(input, secrets)).toEqual({
      url: 'https://api.example.com/v1?key=<secret>&x=1',
      body: '{"user":"me","pass":"<secret>"}',
      list: ['<secret>', 'plain', 'a <secret> b <secret>'],
      label: 'nothing here',
    });
  });

  it('hides a secret whole when a shorter secret is part of it', () => {
    const secrets = new Set(['abcd', 'abcdefgh']);
    expect(redact({ v: 'x abcdefgh y abcd z' }, secrets)).toEqual({ v: 'x <secret> y <secret> z' });
  });

  it('leaves values shorter than 4 characters alone, so a secret "1" does not blank every digit', () => {
    expect(redact({ a: 'port 1 of 10' }, new Set(['1']))).toEqual({ a: 'port 1 of 10' });
  });

  it.each([
    ['postgres://u:pw@h/db', 'postgres://u:<secret>@h/db'],
    ['connect to amqp://vigil:s3cret@mq.internal:5672/vh failed', 'connect to amqp://vigil:<secret>@mq.internal:5672/vh failed'],
    ['redis://:onlypass@cache:6379/0', 'redis://:<secret>@cache:6379/0'],
    ['postgres://u:p@ss@h/db', 'postgres://u:<secret>@h/db'],
    ['https://a:b@one.example https://c:d@two.example', 'https://a:<secret>@one.example https://c:<secret>@two.example'],
    ['https://user@host/path', 'https://user@host/path'],
    ['http://127.0.0.1:8080/health', 'http://127.0.0.1:8080/health'],
    ['mailto:ops@example.com', 'mailto:ops@example.com'],
    ['time 10:30 @ noon', 'time 10:30 @ noon'],
  ])('redacts the password of a URL in any string: %s', (text, want) => {
    expect(redact({ dsn: 'x', note: text }, none).note).toBe(want);
    expect(redactText(text, none)).toBe(want);
  });

  it('returns a copy and leaves its input untouched', () => {
    const input = { headers: { authorization: 'Bearer abc' }, url: 'postgres://u:pw@h/db' };
    const out = redact(input, none);
    expect(out).not.toBe(input);
    expect(input).toEqual({ headers: { authorization: 'Bearer abc' }, url: 'postgres://u:pw@h/db' });
  });

  it('hides what a loaded config read from the environment and files', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-redact-'));
    try {
      mkdirSync(path.join(dir, 'config'));
      mkdirSync(path.join(dir, 'probes'));
      writeFileSync(path.join(dir, 'config/default.yaml'), '');
      writeFileSync(path.join(dir, 'pw'), 'file-password\n');
      writeFileSync(
        path.join(dir, 'probes/api.yaml'),
        [
          '- id: api',
          '  kind: http',
          '  url: https://api.example.com/health?key=${API_KEY}',
          '  schedule: "* * * * *"',
          '  body: \'{"password":"${file:pw}"}\'',
          '  method: POST',
          '  headers: { x-trace: "${TRACE:-on}" }',
        ].join('\n'),
      );
      const config = loadConfig({ cwd: dir, env: { API_KEY: 'key-from-env' } });
      const shown = JSON.stringify(redact(config.probes, config.secrets));
      expect(shown).not.toContain('key-from-env');
      expect(shown).not.toContain('file-password');
      expect(shown).toContain('https://api.example.com/health?key=<secret>');
      expect(shown).toContain('{\\"password\\":\\"<secret>\\"}');
      expect(shown).toContain('"x-trace":"on"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
