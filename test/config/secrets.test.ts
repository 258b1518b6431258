import { describe, expect, it } from 'vitest';
import { createSecretBook, type LoadedConfig, secretsIn } from '../../src/config/index.js';
import type { Redactor } from '../../src/lib/redactor.js';

/** Just what the secret book reads of a loaded config. */
const loaded = (secrets: string[], service: unknown, probes: unknown[]) =>
  ({ secrets: new Set(secrets), service, probes }) as unknown as LoadedConfig;

describe('secretsIn', () => {
  it('finds interpolated values, values under secret keys and URL passwords; not names beside a token', () => {
    const def = {
      id: 'api',
      url: "http://probe:pa'ss-0099@api.internal/health?key=env-key-123",
      headers: { authorization: 'Bearer tok-abcdef-42', accept: 'application/json' },
      labels: { team: 'label-from-file', tier: 'web' },
      body: { password: 123456 },
    };
    const tokens = { tokens: [{ name: 'operator', token: 'api-token-0042', role: 'operator' }] };
    expect([...secretsIn(def, new Set(['env-key-123', 'label-from-file', 'unused-secret']))].sort()).toEqual(
      ['123456', 'Bearer tok-abcdef-42', 'env-key-123', 'label-from-file', "pa'ss-0099", "probe:pa'ss-0099"].sort(),
    );
    expect([...secretsIn(tokens, new Set())]).toEqual(['api-token-0042']);
  });
});

describe('createSecretBook', () => {
  it('hides every secret of the config, keeps those of an earlier one after a reload, and tells the logger', () => {
    const told: Redactor[] = [];
    const first = loaded(['first-secret-0001'], { channels: { s: { token: 'xoxb-first-0002' } } }, []);
    const book = createSecretBook(first, (r) => told.push(r));
    expect(book.all().text('first-secret-0001 xoxb-first-0002')).toBe('<secret> <secret>');
    book.learn(loaded(['second-secret-0003'], {}, []));
    expect(book.all().text('first-secret-0001 xoxb-first-0002 second-secret-0003')).toBe('<secret> <secret> <secret>');
    expect(told.length).toBe(2);
    expect(told.at(-1)).toBe(book.all());
    // What config redaction by value hides: the `${…}` values of both configs, not the keyed token.
    expect([...book.interpolated()].sort()).toEqual(['first-secret-0001', 'second-secret-0003']);
  });

  it('gives a probe a redactor of its own secrets, built once per definition', () => {
    const def = { id: 'api', url: 'https://h/x?key=probe-key-0042', headers: { authorization: 'Bearer tok-abcdef-42' } };
    const other = { id: 'other', url: 'https://h/y' };
    const book = createSecretBook(loaded(['probe-key-0042', 'channel-secret-77'], {}, [def, other]));
    const r = book.forProbe(def);
    expect(book.forProbe(def)).toBe(r);
    expect(r.text('key probe-key-0042, Bearer tok-abcdef (cut), channel-secret-77')).toBe(
      'key <secret>, Bearer <secret> (cut), channel-secret-77',
    );
    expect(book.forProbe(other).text('probe-key-0042')).toBe('probe-key-0042');
  });
});
