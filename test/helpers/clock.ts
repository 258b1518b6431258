import { type Clock, sleepOn, type TimerHandle } from '../../src/lib/clock.js';

/** Lets pending promise chains and I/O callbacks run. */
export const settle = () => new Promise<void>((r) => setImmediate(r));

/**
 * A clock that moves only when told: an hour of schedule runs in milliseconds. Timers count elapsed
 * time, as Node's do; `jump()` steps the wall clock alone (NTP stepping it, a VM resumed), so a test
 * can show a wall clock going back under running timers.
 */
export class ManualClock implements Clock {
  /** The time timers count (elapsed), starting at the start instant. */
  private t: number;
  /** Wall time minus `t`: only a jump changes it. */
  private offset = 0;
  private readonly origin: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; seq: number; fn: () => void }>();
  /** Timer callbacks run so far: a loop that spins on its timers shows here. */
  fired = 0;

  constructor(start = Date.UTC(2026, 10, 26, 12, 0, 0)) {
    this.t = start;
    this.origin = start;
  }

  now(): number {
    return this.t + this.offset;
  }

  /** Elapsed time since the clock was made, unaffected by jumps. */
  monotonic(): number {
    return this.t - this.origin;
  }

  /** Steps the wall clock by `ms` (negative: back) without any time passing for timers. */
  jump(ms: number): void {
    this.offset += ms;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), seq: id, fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete((handle as { id: number }).id);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  /** Moves time without firing timers: for code under test that only reads the clock. */
  advanceSync(ms: number): void {
    this.t += ms;
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
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
      this.t = Math.max(this.t, next.at);
      this.fired++;
      next.fn();
    }
    this.t = end;
    await settle();
  }
}
