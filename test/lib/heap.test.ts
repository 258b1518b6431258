import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { growthPercent, limitHeapGrowth } from '../../src/lib/heap.js';
import { ensureBuilt } from '../helpers/build.js';

// service.heapHeadroom relies on V8 reading --heap-growing-percent at each collection, so that
// setting it on a running process takes effect. A Node upgrade that froze V8's flags after start would
// make the setting do nothing, silently: these runs would then show no difference.

const HEAP = pathToFileURL(path.resolve(import.meta.dirname, '../../dist/lib/heap.js')).href;

// A live set shaped like vigil's newest run per probe: 100,000 slots, each replaced every round, so
// what a round replaces has lived long enough to be promoted and only a full collection frees it.
const WORKLOAD = `
import { governHeapGrowth, limitHeapGrowth } from ${JSON.stringify(HEAP)};
const [how, amount] = process.argv[1].split(':');
const slots = new Array(100_000);
for (let i = 0; i < slots.length; i++) slots[i] = { at: i, values: { ms: i * 1.5 }, text: 'run ' + i };
if (how === 'limit') limitHeapGrowth(Number(amount));
if (how === 'govern') governHeapGrowth(Number(amount));
let most = 0;
for (let round = 0; round < 40; round++) {
  for (let i = 0; i < slots.length; i++) slots[i] = { at: round, values: { ms: i * 1.5 + round }, text: 'run ' + i + ' ' + round };
  await new Promise((resolve) => setImmediate(resolve));
  most = Math.max(most, process.memoryUsage().heapTotal);
}
process.stdout.write(String(most));
`;

/** The largest heap of the workload: V8's own rule ('own'), a fixed percentage ('limit:25'), a headroom in bytes ('govern:…'). */
const mostHeap = (how: string) =>
  Number(execFileSync(process.execPath, ['--input-type=module', '-e', WORKLOAD, '--', how], { encoding: 'utf8' }));

describe('limitHeapGrowth', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it('set on a running process, keeps the heap far below what V8 grows it to on its own', () => {
    const own = mostHeap('own');
    const capped = mostHeap('limit:25');
    expect(capped).toBeLessThan(own * 0.85);
    // 0 is V8's own rule: no cap.
    expect(mostHeap('limit:0')).toBeGreaterThan(capped / 0.85);
  }, 60_000);

  it("governed by a headroom, keeps the garbage near it: a few MiB over a ~20 MB live set stays far below V8's rule", () => {
    expect(mostHeap(`govern:${8 * 1024 * 1024}`)).toBeLessThan(mostHeap('own') * 0.85);
  }, 60_000);

  it('turns a headroom into a growth factor: headroom over the live set, between 10 % and 300 %', () => {
    const MB = 1e6;
    expect(growthPercent(130 * MB, 64 * MB)).toBe(49);
    expect(growthPercent(25 * MB, 64 * MB)).toBe(256);
    expect(growthPercent(5 * MB, 64 * MB)).toBe(300);
    expect(growthPercent(2000 * MB, 64 * MB)).toBe(10);
    expect(growthPercent(0, 64 * MB)).toBe(300);
  });

  it('refuses a fraction or a negative number', () => {
    expect(() => limitHeapGrowth(-1)).toThrow(/whole percentage, got -1/);
    expect(() => limitHeapGrowth(12.5)).toThrow(/whole percentage, got 12.5/);
  });
});
