import { setFlagsFromString } from 'node:v8';

/** `service.heapGrowth`'s default: the heap may grow by half its live set between full collections. */
export const DEFAULT_HEAP_GROWTH = 50;

/**
 * Caps how far V8 lets the JavaScript heap grow past what its last full collection kept
 * (`service.heapGrowth`, percent); 0 restores V8's own rule, which grows a busy process's heap up to
 * 4x its live set between full collections. Every probe's newest run is replaced at each run, so at
 * 60,000 probes that rule held ~450 MB of garbage as RSS, and loading their config ~70 MB more at
 * the start. V8 reads the flag at each collection, so setting it on a running process takes effect
 * (test/lib/heap.test.ts holds Node to that): the entry point sets the default before it loads the
 * config, then the configured value.
 */
export function limitHeapGrowth(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`heap growth: expected a whole percentage, got ${percent}`);
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}
