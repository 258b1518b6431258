import { channelKindOf, channelKinds, isChannelType } from './channels/index.js';
import type { Channel, Contact, PersonReach, Recipient } from './types.js';

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
  for (const name of Object.keys(next)) {
    // A name is in `fresh` unless it is unchanged and running, so one of the two has it.
    const channel = built.get(name) ?? running.get(name);
    if (channel !== undefined) map.set(name, channel);
  }
  return {
    next: map,
    added: Object.keys(next).filter((n) => !Object.hasOwn(before, n)),
    changed: Object.keys(next).filter((n) => Object.hasOwn(before, n) && built.has(n)),
    removed: Object.keys(before).filter((n) => !Object.hasOwn(next, n)),
    retired: [...running].filter(([name, c]) => map.get(name) !== c).map(([, c]) => c),
  };
}

function reachOf(type: string | undefined): PersonReach | undefined {
  return isChannelType(type) ? channelKindOf(type).person : undefined;
}

/** The `people:` fields some channel type sends to, in registry order: a person needs one of them to be paged. */
export function contactFields(): Array<keyof Contact> {
  const fields = Object.values(channelKinds).flatMap((k) => (k.person === 'own-target' ? [] : [k.person.field]));
  return [...new Set(fields)];
}

/** Whether a channel of `type` goes to a provider that keeps on-call rotations itself. */
export function keepsOnCall(type: string | undefined): boolean {
  return isChannelType(type) && channelKindOf(type).keepsOnCall === true;
}

/** Whether escalation picks a channel of `type` for a person when the step names no `via:`. */
export function addressesPeople(type: string | undefined): boolean {
  return typeof reachOf(type) === 'object';
}

/**
 * Whether a channel of `type`, named for a person, pages them: by the field it sends to (a string
 * set, or `true`), or, for a type that sends to its own target, always (the step named it in `via:`).
 */
export function canPage(type: string | undefined, who: Contact): boolean {
  const reach = reachOf(type);
  if (reach === undefined) return false;
  if (reach === 'own-target') return true;
  const value = who[reach.field];
  return value === true || (typeof value === 'string' && value !== '');
}

/** A person as channels address them: their id, name and every field a channel type sends to. */
export function recipientOf(id: string, person: { name: string } & Contact): Recipient {
  const recipient: Recipient = { id, name: person.name };
  for (const field of contactFields()) {
    const value = person[field];
    if (value !== undefined) Object.assign(recipient, { [field]: value });
  }
  return recipient;
}

/**
 * How often a channel of this config must hear again of an incident still unresolved, when its
 * provider forgets alerts that are not re-sent (Alertmanager); undefined for every other type.
 */
export function resendInterval(config: { type: string }): number | undefined {
  if (!isChannelType(config.type)) return undefined;
  const kind = channelKindOf(config.type);
  return kind.resendWhileOpen?.(config);
}
