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
  /**
   * Dense counts: counts[k] is bucket `offset + k`. Latency buckets are contiguous in practice, so
   * an array beats a map several times over in merging (the report merges thousands of day sketches)
   * and needs no sort to walk in order.
   */
  private counts: number[] = [];
  private offset = 0;
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
      this.cover(i, i);
      this.counts[i - this.offset]! += times;
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
    const len = other.counts.length;
    if (len === 0) return this;
    this.cover(other.offset, other.offset + len - 1);
    const shift = other.offset - this.offset;
    const mine = this.counts;
    const theirs = other.counts;
    for (let k = 0; k < len; k++) mine[k + shift]! += theirs[k]!;
    return this;
  }

  /** Grows the dense range to hold buckets lo..hi. */
  private cover(lo: number, hi: number) {
    const c = this.counts;
    if (c.length === 0) {
      this.offset = lo;
      this.counts = new Array<number>(hi - lo + 1).fill(0);
      return;
    }
    if (lo < this.offset) {
      this.counts = new Array<number>(this.offset - lo).fill(0).concat(c);
      this.offset = lo;
    }
    const end = this.offset + this.counts.length - 1;
    if (hi > end) for (let k = end; k < hi; k++) this.counts.push(0);
  }

  /** The value at rank floor(q × (count − 1)), within α relative error; undefined when empty. */
  quantile(q: number): number | undefined {
    return this.quantiles([q])[0];
  }

  /** Several quantiles in one walk over the buckets; `qs` in any order. */
  quantiles(qs: readonly number[]): Array<number | undefined> {
    if (this.n === 0) return qs.map(() => undefined);
    const ranks = qs.map((q) => Math.floor(Math.min(1, Math.max(0, q)) * (this.n - 1)));
    const out: Array<number | undefined> = new Array(qs.length);
    const pending: number[] = [];
    ranks.forEach((rank, k) => {
      // The extremes are known exactly; answering them from a bucket would lose up to α for nothing.
      if (rank === 0) out[k] = this.lo;
      else if (rank === this.n - 1) out[k] = this.hi;
      else if (rank < this.zero) out[k] = 0;
      else pending.push(k);
    });
    if (pending.length === 0) return out;
    pending.sort((a, b) => ranks[a]! - ranks[b]!);
    let seen = this.zero;
    let next = 0;
    const c = this.counts;
    for (let k = 0; k < c.length && next < pending.length; k++) {
      if (c[k] === 0) continue;
      seen += c[k]!;
      while (next < pending.length && seen > ranks[pending[next]!]!) {
        // Clamping to the exact range only moves the estimate closer to every value in the bucket.
        out[pending[next]!] = Math.min(this.hi, Math.max(this.lo, (2 * GAMMA ** (k + this.offset)) / (GAMMA + 1)));
        next++;
      }
    }
    for (; next < pending.length; next++) out[pending[next]!] = this.hi;
    return out;
  }

  /** Non-empty buckets, index → count, in index order. */
  bucketCounts(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    this.counts.forEach((n, k) => {
      if (n > 0) out.push([k + this.offset, n]);
    });
    return out;
  }

  toJSON(): SketchJSON {
    const c: number[] = [];
    let o = 0;
    let gap = 0;
    for (let k = 0; k < this.counts.length; k++) {
      const n = this.counts[k]!;
      if (n === 0) {
        if (c.length > 0) gap++;
        continue;
      }
      if (c.length === 0) o = k + this.offset;
      else if (gap > 0) c.push(-gap);
      gap = 0;
      c.push(n);
    }
    return { z: this.zero, min: this.n === 0 ? null : this.lo, max: this.n === 0 ? null : this.hi, sum: this.total, o, c };
  }

  static fromJSON(json: SketchJSON | string): QuantileSketch {
    const j: SketchJSON = typeof json === 'string' ? JSON.parse(json) : json;
    const s = new QuantileSketch();
    s.zero = j.z;
    s.total = j.sum;
    let n = j.z;
    const counts: number[] = [];
    for (const c of j.c) {
      if (c < 0) for (let g = 0; g < -c; g++) counts.push(0);
      else {
        counts.push(c);
        n += c;
      }
    }
    s.counts = counts;
    s.offset = j.o;
    s.n = n;
    if (n > 0 && j.min !== null && j.max !== null) {
      s.lo = j.min;
      s.hi = j.max;
    }
    return s;
  }
}
