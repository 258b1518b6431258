import { describe, expect, it } from 'vitest';
import { type Channel, swapChannels } from '../../src/notify/index.js';

/** A channel object that says which config built it. */
const made = (name: string, url: string): Channel & { url: string; name: string } => ({
  name,
  url,
  send: async () => ({}),
  close: async () => {},
});

describe('channel swap on reload', () => {
  it('keeps unchanged channels, rebuilds changed ones, adds new ones, and retires what is no longer used', () => {
    const before = {
      same: { type: 'webhook', url: 'http://a' },
      token: { type: 'webhook', url: 'http://b', secret: 'old-secret-0123456789' },
      gone: { type: 'webhook', url: 'http://c' },
    };
    const running = new Map<string, Channel>(Object.entries(before).map(([n, c]) => [n, made(n, c.url)]));
    const next = {
      same: { type: 'webhook', url: 'http://a' },
      token: { type: 'webhook', url: 'http://b', secret: 'new-secret-0123456789' },
      added: { type: 'webhook', url: 'http://d' },
    };
    const built: string[] = [];
    const swap = swapChannels(running, before, next, (config) => {
      built.push(...Object.keys(config));
      return new Map(Object.entries(config).map(([n, c]) => [n, made(n, (c as unknown as { url: string }).url)]));
    });
    expect(built).toEqual(['token', 'added']);
    expect([...swap.next.keys()]).toEqual(['same', 'token', 'added']);
    expect(swap.next.get('same')).toBe(running.get('same'));
    expect(swap.next.get('token')).not.toBe(running.get('token'));
    expect(swap).toMatchObject({ added: ['added'], changed: ['token'], removed: ['gone'] });
    expect(swap.retired).toEqual([running.get('token'), running.get('gone')]);
  });

  it('leaves the running channels alone when building a new one throws', () => {
    const running = new Map<string, Channel>([['a', made('a', 'http://a')]]);
    expect(() =>
      swapChannels(running, { a: { type: 'webhook' } }, { a: { type: 'webhook' }, b: { type: 'nope' } }, () => {
        throw new Error('channel b: unknown type nope');
      }),
    ).toThrow('unknown type nope');
    expect([...running.keys()]).toEqual(['a']);
  });
});
