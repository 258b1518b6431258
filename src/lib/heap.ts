import { constants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/**
 * `service.heapHeadroom`'s default. 32 MiB rather than 64: at 60,000 probes the peak RSS fell
 * 338 -> 313 MB (with the compiled defaulter and flat labels), and the 2,000-probes-a-second bench
 * stayed at 0.95x the bare loop's CPU a run (measured; the 50 % fixed factor it replaced cost 1.22x).
 */
export const DEFAULT_HEAP_HEADROOM = '32MiB';

/**
 * The growth factor while the config loads: one synchronous burst of allocation, during which the
 * governor hears of no collection (its reports arrive between tasks). Fixed at 50 %, the load of
 * 60,000 probes peaks at ~240 MB instead of ~310 MB.
 */
export const LOAD_HEAP_GROWTH = 50;

/**
 * Loads the config as the service starts: under LOAD_HEAP_GROWTH, then with the heap governed by the
 * headroom the loaded config names (`service.heapHeadroom`). One place for the order, which matters:
 * the limit must be in force before the load's burst of allocation.
 */
export function loadUnderHeapLimit<T>(load: () => T, headroomOf: (loaded: T) => number): T {
  limitHeapGrowth(LOAD_HEAP_GROWTH);
  const loaded = load();
  governHeapGrowth(headroomOf(loaded));
  return loaded;
}

/** V8's own rule grows a heap by at most 4x between full collections: 300 % more. */
const MOST = 300;
const LEAST = 10;

/**
 * How far (percent) the heap may grow past a live set of `live` bytes so that it holds about
 * `headroom` bytes of garbage at most before the next full collection: 32 MiB over 130 MB live
 * (60,000 probes) is 25 %, over 25 MB 128 %. Between 10 and 300 (V8's own most).
 */
export function growthPercent(live: number, headroom: number): number {
  if (!(live > 0)) return MOST;
  return Math.min(MOST, Math.max(LEAST, Math.round((headroom / live) * 100)));
}

/** Sets V8's growth factor: V8 reads the flag at each full collection, so it applies to a running process. */
export function limitHeapGrowth(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`heap growth: expected a whole percentage, got ${percent}`);
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/**
 * Keeps the garbage V8 lets the heap hold to about `headroom` bytes (`service.heapHeadroom`): after
 * each full collection, the growth factor becomes headroom / live set. V8's own rule grows a busy
 * heap up to 4x its live set: at 60,000 probes a heap of ~450 MB over ~150 MB live (VmHWM 885 MB). A
 * fixed 50 % instead cost the throughput bench (2,000 probes a second, a small heap) up to 1.22x
 * the bare loop's CPU a run, against 0.94-1.14x governed. 0 leaves V8's rule. For the life of the process.
 */
export function governHeapGrowth(headroom: number): void {
  if (headroom === 0) {
    limitHeapGrowth(0);
    return;
  }
  let current = -1;
  const adjust = () => {
    // Read just after a full collection: what the heap holds is about what it kept.
    const percent = growthPercent(getHeapStatistics().used_heap_size, headroom);
    if (percent !== current) limitHeapGrowth(percent);
    current = percent;
  };
  adjust();
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some(isMajor)) adjust();
  });
  observer.observe({ entryTypes: ['gc'] });
}

const isMajor = (e: PerformanceEntry) =>
  ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1) === constants.NODE_PERFORMANCE_GC_MAJOR;
