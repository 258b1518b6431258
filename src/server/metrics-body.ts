import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import { FastRegistry } from '../metrics/index.js';

/** Work done between two turns of the event loop while a scrape streams. */
const SLICE_MS = 10;

/**
 * The body of a `/metrics` reply. From a FastRegistry a stream: at 60,000 probes the text is
 * ~96 MB, made piece by piece as the socket drains instead of one string copied whole into the
 * reply. A socket with room takes pieces as fast as they come, so every ~10 ms the stream lets the
 * event loop turn: probes, `/health` and pages go on while a large scrape is sent.
 */
export async function metricsBody(registry: Registry): Promise<string | Readable> {
  if (!(registry instanceof FastRegistry)) return registry.metrics();
  return Readable.from(paced(await registry.exposition()));
}

async function* paced(pieces: Iterable<string>): AsyncGenerator<string> {
  let since = performance.now();
  for (const piece of pieces) {
    yield piece;
    if (performance.now() - since >= SLICE_MS) {
      await nextTurn();
      since = performance.now();
    }
  }
}
