import { type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { defaulterOf } from '../../src/config/defaults.js';
import { ConfigSchema, definitionSchema } from '../../src/config/schema.js';
import { channelKinds } from '../../src/notify/index.js';
import { probers } from '../../src/probers/index.js';

/** A small deterministic generator (mulberry32), so a failure names a seed that reproduces it. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD_VALUES: unknown[] = [undefined, null, {}, [], 'x', 42, true, { unexpected: 1 }, [{}]];

/**
 * Values a config may hold where this schema is: its full default (everything filled) taken apart at
 * random — keys removed, objects emptied, values replaced by odd ones — so every branch of the
 * defaulter (missing, present, wrong type, union variants, arrays) meets inputs.
 */
function inputsFor(schema: TSchema, seed: number, count: number): unknown[] {
  const rnd = random(seed);
  const full = Value.Default(schema, {});
  const out: unknown[] = [undefined, {}, structuredClone(full)];
  const mangle = (v: unknown, depth: number): unknown => {
    if (Array.isArray(v)) return v.map((x) => mangle(x, depth + 1));
    if (typeof v !== 'object' || v === null) return rnd() < 0.1 ? ODD_VALUES[Math.floor(rnd() * ODD_VALUES.length)] : v;
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const r = rnd();
      if (r < 0.3) continue;
      o[k] = r < 0.4 ? ODD_VALUES[Math.floor(rnd() * ODD_VALUES.length)] : r < 0.5 ? {} : mangle(x, depth + 1);
    }
    return o;
  };
  for (let i = 0; i < count; i++) out.push(mangle(full, 0));
  return out;
}

/** The same value, keys in the same order: what a later JSON text, a shared-parts key or a YAML dump would see. */
const same = (a: unknown, b: unknown) => {
  expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  expect(a).toStrictEqual(b);
};

function compare(schema: TSchema, seed: number) {
  for (const input of inputsFor(schema, seed, 150)) {
    const theirs = Value.Default(schema, structuredClone(input));
    const ours = defaulterOf(schema)(structuredClone(input));
    same(ours, theirs);
  }
}

describe('the compiled defaulter', () => {
  it.each(Object.keys(probers))('gives what Value.Default gives for every %s definition it meets', (kind) => {
    compare(definitionSchema(probers[kind as keyof typeof probers].schema), kind.length);
  });

  it.each(Object.keys(channelKinds))('gives what Value.Default gives for a %s channel', (type) => {
    compare(Type.Object(channelKinds[type as keyof typeof channelKinds].schema.properties), type.length + 100);
  });

  it('gives what Value.Default gives for the whole config', () => {
    compare(ConfigSchema, 7);
  });

  it('merges an object value over a copy of an object default, the default keys first, and never shares the default', () => {
    const schema = Type.Object({
      retry: Type.Object({ count: Type.Number(), delay: Type.String() }, { default: { count: 1, delay: '5s' } }),
    });
    const fill = defaulterOf(schema);
    const a = fill({ retry: { delay: '1s' } }) as { retry: object };
    expect(JSON.stringify(a)).toBe('{"retry":{"count":1,"delay":"1s"}}');
    const b = fill({}) as { retry: { count: number } };
    const c = fill({}) as { retry: { count: number } };
    expect(b.retry).toEqual({ count: 1, delay: '5s' });
    b.retry.count = 9;
    expect(c.retry.count).toBe(1);
    expect((schema.properties.retry as { default: { count: number } }).default.count).toBe(1);
  });

  it('takes the first union variant that its defaults make valid, as TypeBox does', () => {
    const schema = Type.Union([
      Type.Object({ every: Type.String(), jitter: Type.String({ default: '0s' }) }),
      Type.Object({ cron: Type.String(), tz: Type.String({ default: 'UTC' }) }),
    ]);
    same(defaulterOf(schema)({ cron: '* * * * *' }), { cron: '* * * * *', tz: 'UTC' });
    same(defaulterOf(schema)({ every: '1m' }), { every: '1m', jitter: '0s' });
    same(defaulterOf(schema)(5), 5);
  });

  it('leaves schemas with references to TypeBox', () => {
    const Item = Type.Object({ n: Type.Number({ default: 3 }) }, { $id: 'Item' });
    const schema = Type.Object({ item: Type.Ref(Item) });
    // A reference TypeBox cannot resolve without its target: the same error from both.
    expect(() => Value.Default(schema, { item: {} })).toThrow();
    expect(() => defaulterOf(schema)({ item: {} })).toThrow();
  });
});
