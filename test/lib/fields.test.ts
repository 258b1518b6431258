import { describe, expect, it } from 'vitest';
import { fieldOf, isJsonObject } from '../../src/lib/fields.js';

describe('fields', () => {
  it('isJsonObject takes objects only: not arrays, null or scalars', () => {
    expect(isJsonObject({ a: 1 })).toBe(true);
    expect(isJsonObject(Object.create(null))).toBe(true);
    expect(isJsonObject([])).toBe(false);
    expect(isJsonObject(null)).toBe(false);
    expect(isJsonObject('x')).toBe(false);
    expect(isJsonObject(undefined)).toBe(false);
  });

  it('fieldOf reads a field of anything thrown or parsed, and undefined off a non-object', () => {
    const err = Object.assign(new Error('boom'), { hostname: 'db.internal', cause: { code: 'ECONNREFUSED' } });
    expect(fieldOf(err, 'hostname')).toBe('db.internal');
    expect(fieldOf(fieldOf(err, 'cause'), 'code')).toBe('ECONNREFUSED');
    expect(fieldOf(err, 'missing')).toBeUndefined();
    expect(fieldOf(null, 'code')).toBeUndefined();
    expect(fieldOf(undefined, 'code')).toBeUndefined();
    expect(fieldOf('text', 'length')).toBeUndefined();
    expect(fieldOf([10, 20], '1')).toBe(20);
  });
});
