import { formatDuration } from '../../lib/duration.js';
import type { FailureCode, ProbeResult } from '../types.js';

/** What a broker's probe reads of a `queue` definition (the fields both brokers share). */
export interface QueueCheck {
  id: string;
  url: string;
  canary: boolean;
  queue?: string;
  type?: 'list' | 'stream';
  minConsumers?: number;
  maxDepth?: number;
}

/** A failure found on the way, before the run is over. */
export class QueueFailure extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
  ) {
    super(message);
    this.name = 'QueueFailure';
  }
}

/** `1,204`: counts in messages read as people write them. */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** The named queue's measurements judged against its bounds: each broken bound, in words. */
export function judgeQueue(spec: QueueCheck, depth: number, consumers: number | undefined, unit = 'messages ready'): string[] {
  const broken: string[] = [];
  const name = spec.queue ?? '';
  if (spec.minConsumers !== undefined && consumers !== undefined && consumers < spec.minConsumers) {
    broken.push(`${name} has ${count(consumers)} consumer${consumers === 1 ? '' : 's'} (expected at least ${count(spec.minConsumers)})`);
  }
  if (spec.maxDepth !== undefined && depth > spec.maxDepth) {
    broken.push(`${name} has ${count(depth)} ${unit} (at most ${count(spec.maxDepth)})`);
  }
  return broken;
}

/** The result of a run: a failure when a step failed or a bound broke, with what was measured either way. */
export function outcome(values: Record<string, number>, failure: QueueFailure | undefined, broken: string[]): ProbeResult {
  if (failure) return { ok: false, code: failure.code, message: failure.message, values };
  if (broken.length > 0) return { ok: false, code: 'ASSERTION', message: broken.join('; '), values };
  return { ok: true, values };
}

/** "timed out after 2s waiting for …": what the run was doing when its deadline came. */
export function timedOut(elapsedMs: number, doing: string): QueueFailure {
  return new QueueFailure('TIMEOUT', `timed out after ${formatDuration(elapsedMs)} ${doing}`);
}
