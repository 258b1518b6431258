import type { Channel } from './types.js';

/** A channel's config as loaded: its type and its type's fields. */
type ChannelConfig = Record<string, { type: string }>;

/** The channels a reload puts in force, built before anything running changes. */
export interface ChannelSwap {
  /** The new registry: unchanged channels keep their running object (and its connections). */
  next: Map<string, Channel>;
  added: string[];
  changed: string[];
  removed: string[];
  /** Objects no longer in use (removed or replaced): close each once its sends in flight finish. */
  retired: Channel[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Builds the channels of `next` that are new or whose config changed (a new token takes effect for
 * the next send), reusing the others, with `build` (createChannels). Nothing running changes here:
 * the caller swaps `next` in, or drops it when building threw.
 */
export function swapChannels(
  running: ReadonlyMap<string, Channel>,
  before: ChannelConfig,
  next: ChannelConfig,
  build: (config: ChannelConfig) => Map<string, Channel>,
): ChannelSwap {
  const fresh = Object.fromEntries(
    Object.entries(next).filter(([name, c]) => !Object.hasOwn(before, name) || !same(before[name], c) || !running.has(name)),
  );
  const built = build(fresh);
  const map = new Map<string, Channel>();
  for (const name of Object.keys(next)) map.set(name, built.get(name) ?? (running.get(name) as Channel));
  return {
    next: map,
    added: Object.keys(next).filter((n) => !Object.hasOwn(before, n)),
    changed: Object.keys(next).filter((n) => Object.hasOwn(before, n) && built.has(n)),
    removed: Object.keys(before).filter((n) => !Object.hasOwn(next, n)),
    retired: [...running].filter(([name, c]) => map.get(name) !== c).map(([, c]) => c),
  };
}
