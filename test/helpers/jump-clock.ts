import { type Clock, sleepOn, type TimerHandle } from '../../src/lib/clock.js';
import { settle } from './clock.js';

/**
 * A manual clock whose wall time can jump (NTP stepping it, a VM resumed, someone running `date -s`)
 * while its timers keep counting elapsed time, as Node's do: `setTimeout(fn, 1000)` fires a second of
 * elapsed time later whatever `Date.now()` did meanwhile. ManualClock (test/helpers/clock.ts) keeps one
 * time for both, so it cannot show a wall clock stepping back under running timers.
 */
export class JumpClock implements Clock {
  /** Elapsed (monotonic) time: what timers count. */
  private elapsed = 0;
  /** Wall time minus elapsed time; a jump changes only this. */
  private offset: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; seq: number; fn: () => void }>();
  /** Timer callbacks run so far: a loop that spins on its timers shows here. */
  fired = 0;

  constructor(start = Date.UTC(2026, 10, 26, 12, 0, 0)) {
    this.offset = start;
  }

  now(): number {
    return this.elapsed + this.offset;
  }

  /** Elapsed time since the clock was made, unaffected by jumps. */
  monotonic(): number {
    return this.elapsed;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.elapsed + Math.max(0, ms), seq: id, fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete((handle as { id: number }).id);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  /** Steps the wall clock by `ms` (negative: back) without any time passing for timers. */
  jump(ms: number): void {
    this.offset += ms;
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /** Lets `ms` of elapsed time pass, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.elapsed + ms;
    for (;;) {
      await settle();
      let next: { id: number; at: number; seq: number; fn: () => void } | undefined;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (next === undefined || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq))) {
          next = { id, ...timer };
        }
      }
      if (next === undefined) break;
      this.timers.delete(next.id);
      this.elapsed = Math.max(this.elapsed, next.at);
      this.fired++;
      next.fn();
    }
    this.elapsed = end;
    await settle();
  }
}
