/**
 * A mergeable quantile sketch (DDSketch, Masson et al. 2019) for run durations in rollups.
 *
 * Error bound: for positive values every quantile it returns is within α = 1 % relative error of
 * the true value at that rank (rank = floor(q × (count − 1)) of the sorted values). Values ≤ 0 fall
 * into one zero bucket and are reported as 0 (durations are never negative; this keeps them counted).
 *
 * Why a sketch and not exact percentiles: hourly rows must merge into daily rows and any window
 * into one number long after the raw runs are pruned, and exact percentiles do not merge. Bucket i
 * holds values in (γ^(i−1), γ^i], γ = (1 + α) / (1 − α); answering 2γ^i / (γ + 1) for a bucket is
 * within α of anything in it. Merging adds bucket counts, so merge(a, b) is exactly the sketch of
 * all values of a and b. Latencies spanning 0.1 ms to 60 s use at most ~670 buckets (ln(6e5)/ln γ);
 * an hour of one probe typically uses tens to a couple of hundred.
 */

/** Relative accuracy of every quantile. */
export const SKETCH_ALPHA = 0.01;
const GAMMA = (1 + SKETCH_ALPHA) / (1 - SKETCH_ALPHA);
const LOG_GAMMA = Math.log(GAMMA);

/**
 * The stored form, kept small because one is stored per probe and hour (400 days of them): the
 * non-empty buckets in index order as a run-length list. `o` is the first bucket's index; in `c` a
 * positive number is the count of the next bucket, a negative one −g skips g empty buckets. Latency
 * buckets are mostly contiguous, so a bucket costs 2–4 bytes instead of ~8 as `"index":count`.
 */
export interface SketchJSON {
  /** Count of values ≤ 0. */
  z: number;
  /** Exact extremes: they clamp estimates so q = 0 and q = 1 are exact. */
  min: number | null;
  max: number | null;
  sum: number;
  o: number;
  c: number[];
}

export class QuantileSketch {
  private readonly buckets = new Map<number, number>();
  private zero = 0;
  private n = 0;
  private lo = Number.POSITIVE_INFINITY;
  private hi = Number.NEGATIVE_INFINITY;
  private total = 0;

  /** Number of values added (merged ones included). */
  get count(): number {
    return this.n;
  }

  get sum(): number {
    return this.total;
  }

  get min(): number | undefined {
    return this.n === 0 ? undefined : this.lo;
  }

  get max(): number | undefined {
    return this.n === 0 ? undefined : this.hi;
  }

  add(x: number, times = 1): this {
    if (!Number.isFinite(x) || times <= 0) return this;
    this.n += times;
    this.total += x * times;
    if (x < this.lo) this.lo = x;
    if (x > this.hi) this.hi = x;
    if (x <= 0) this.zero += times;
    else {
      const i = Math.ceil(Math.log(x) / LOG_GAMMA);
      this.buckets.set(i, (this.buckets.get(i) ?? 0) + times);
    }
    return this;
  }

  merge(other: QuantileSketch): this {
    if (other.n === 0) return this;
    this.n += other.n;
    this.total += other.total;
    this.zero += other.zero;
    if (other.lo < this.lo) this.lo = other.lo;
    if (other.hi > this.hi) this.hi = other.hi;
    for (const [i, c] of other.buckets) this.buckets.set(i, (this.buckets.get(i) ?? 0) + c);
    return this;
  }

  /** The value at rank floor(q × (count − 1)), within α relative error; undefined when empty. */
  quantile(q: number): number | undefined {
    if (this.n === 0) return undefined;
    const qq = Math.min(1, Math.max(0, q));
    const rank = Math.floor(qq * (this.n - 1));
    // The extremes are known exactly; answering them from a bucket would lose up to α for nothing.
    if (rank === 0) return this.lo;
    if (rank === this.n - 1) return this.hi;
    if (rank < this.zero) return 0;
    let seen = this.zero;
    const order = [...this.buckets.keys()].sort((a, b) => a - b);
    for (const i of order) {
      seen += this.buckets.get(i)!;
      if (seen > rank) {
        const estimate = (2 * GAMMA ** i) / (GAMMA + 1);
        // Clamping to the exact range only moves the estimate closer to every value in the bucket.
        return Math.min(this.hi, Math.max(this.lo, estimate));
      }
    }
    return this.hi;
  }

  /** Non-empty buckets, index → count, in index order. */
  bucketCounts(): Array<[number, number]> {
    return [...this.buckets].sort((a, b) => a[0] - b[0]);
  }

  toJSON(): SketchJSON {
    const sorted = this.bucketCounts();
    const c: number[] = [];
    const o = sorted.length > 0 ? sorted[0]![0] : 0;
    let next = o;
    for (const [i, n] of sorted) {
      if (i > next) c.push(next - i);
      c.push(n);
      next = i + 1;
    }
    return { z: this.zero, min: this.n === 0 ? null : this.lo, max: this.n === 0 ? null : this.hi, sum: this.total, o, c };
  }

  static fromJSON(json: SketchJSON | string): QuantileSketch {
    const j: SketchJSON = typeof json === 'string' ? JSON.parse(json) : json;
    const s = new QuantileSketch();
    s.zero = j.z;
    s.total = j.sum;
    let n = j.z;
    let i = j.o;
    for (const c of j.c) {
      if (c < 0) i -= c;
      else {
        s.buckets.set(i++, c);
        n += c;
      }
    }
    s.n = n;
    if (n > 0 && j.min !== null && j.max !== null) {
      s.lo = j.min;
      s.hi = j.max;
    }
    return s;
  }
}
