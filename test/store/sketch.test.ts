import { describe, expect, it } from 'vitest';
import { QuantileSketch, SKETCH_ALPHA } from '../../src/store/sketch.js';
import { rng } from '../helpers/random.js';

/** A seeded generator (mulberry32): the same draws on every run, so a failure reproduces. */
const normal = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

/** The sketch's rank convention: floor(q × (n − 1)) of the sorted values. */
const exact = (sorted: number[], q: number) => sorted[Math.floor(q * (sorted.length - 1))]!;
const QS = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

const distributions: Record<string, (r: () => number) => number> = {
  uniform: (r) => 1 + r() * 999,
  'log-normal': (r) => Math.exp(4 + 1.5 * normal(r)),
  // Fast cache hits and slow misses: the case where a histogram with fixed buckets gets p95 wrong.
  bimodal: (r) => (r() < 0.8 ? 5 + normal(r) * 0.5 + 2 : 2_000 + normal(r) * 300 + 1_000),
};

describe('quantile sketch', () => {
  for (const [name, draw] of Object.entries(distributions)) {
    it(`keeps every quantile within ${SKETCH_ALPHA * 100} % of the exact one (${name})`, () => {
      const r = rng(42);
      const xs = Array.from({ length: 50_000 }, () => Math.max(1e-3, draw(r)));
      const s = new QuantileSketch();
      for (const x of xs) s.add(x);
      const sorted = [...xs].sort((a, b) => a - b);
      expect(s.count).toBe(xs.length);
      for (const q of QS) {
        const want = exact(sorted, q);
        const got = s.quantile(q)!;
        expect(Math.abs(got - want) / want, `q=${q}: ${got} vs ${want}`).toBeLessThanOrEqual(SKETCH_ALPHA + 1e-12);
      }
    });
  }

  it('puts zero and negative values in a zero bucket, counted and answered as 0', () => {
    const s = new QuantileSketch();
    for (const x of [0, 0, -3, 5, 10, 20]) s.add(x);
    expect(s.count).toBe(6);
    expect(s.quantile(0)).toBe(-3);
    expect(s.quantile(0.4)).toBe(0);
    // Sorted: -3 0 0 5 10 20; q = 0.6 is rank floor(0.6 × 5) = 3.
    expect(Math.abs(s.quantile(0.6)! - 5) / 5).toBeLessThanOrEqual(SKETCH_ALPHA);
    expect(s.quantile(1)).toBe(20);
    expect(new QuantileSketch().quantile(0.5)).toBeUndefined();
  });

  it('merges into exactly the sketch of all values', () => {
    const r = rng(7);
    const parts = [new QuantileSketch(), new QuantileSketch(), new QuantileSketch()];
    const all = new QuantileSketch();
    for (let i = 0; i < 30_000; i++) {
      const x = Math.exp(3 + normal(r));
      parts[i % 3]!.add(x);
      all.add(x);
    }
    const merged = new QuantileSketch().merge(parts[0]!).merge(parts[1]!).merge(parts[2]!);
    expect(merged.count).toBe(all.count);
    expect(merged.bucketCounts()).toEqual(all.bucketCounts());
    expect(merged.toJSON()).toMatchObject({ o: all.toJSON().o, c: all.toJSON().c });
    for (const q of QS) expect(merged.quantile(q)).toBe(all.quantile(q));
    expect(merged.sum).toBeCloseTo(all.sum, 6);
  });

  it('round-trips through its compact JSON', () => {
    const r = rng(3);
    const s = new QuantileSketch();
    for (let i = 0; i < 5_000; i++) s.add(r() < 0.01 ? 0 : 10 + r() * 90);
    const text = JSON.stringify(s);
    // An hour of one probe: sparse buckets, well under what 5,000 raw durations take.
    expect(text.length).toBeLessThan(3_000);
    const back = QuantileSketch.fromJSON(text);
    expect(back.count).toBe(s.count);
    expect(back.min).toBe(s.min);
    expect(back.max).toBe(s.max);
    for (const q of QS) expect(back.quantile(q)).toBe(s.quantile(q));
    expect(JSON.stringify(back)).toBe(text);
    const empty = QuantileSketch.fromJSON(JSON.stringify(new QuantileSketch()));
    expect(empty.count).toBe(0);
    expect(empty.quantile(0.5)).toBeUndefined();
  });
});
