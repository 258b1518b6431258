import { setFlagsFromString } from 'node:v8';

/**
 * Caps how far V8 lets the JavaScript heap grow past what its last full collection kept
 * (`service.heapGrowth`, percent). V8's own rule grows a busy process's heap up to 4x its live set
 * between full collections; every probe's newest run is replaced once a run, so at 60,000 probes that
 * is ~450 MB of garbage held as RSS. V8 reads the flag at each collection, so setting it on a
 * running process takes effect (test/lib/heap.test.ts holds Node to that). The entry point sets it
 * once start-up is done: the config load allocates fast, and a low cap then costs collections for
 * nothing. 0 leaves V8's rule.
 */
export function limitHeapGrowth(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`heap growth: expected a whole percentage, got ${percent}`);
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
