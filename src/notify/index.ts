import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { channelKindOf, isChannelType } from './channels/index.js';
import type { Channel } from './types.js';

/** A configured channel's type: what config's `channels:` entries are once each type's schema validated them. */
export type { ChannelConfig } from './channels/index.js';
export { channelKindOf, channelKinds, isChannelType } from './channels/index.js';
export { createHeartbeat } from './heartbeat.js';
export { render } from './message.js';
export { type ChannelSwap, swapChannels } from './registry.js';
export * from './types.js';
export { backoff, createOutboxWorker, type DeliveryObserver, type OutboxWorker } from './worker.js';

/** Makes every configured channel (already validated by config). */
export function createChannels(
  config: Record<string, { type: string; testSchedule?: string; [field: string]: unknown }>,
  deps: { logger: Logger; clock: Clock },
): Map<string, Channel> {
  const channels = new Map<string, Channel>();
  for (const [name, c] of Object.entries(config)) {
    if (!isChannelType(c.type)) throw new Error(`channel ${name}: unknown type ${c.type}`);
    const { type: _type, testSchedule: _test, ...fields } = c;
    channels.set(
      name,
      channelKindOf(c.type).create(name, fields as never, { logger: deps.logger.child({ channel: name }), clock: deps.clock }),
    );
  }
  return channels;
}

// What the rest of vigil asks of a channel type (how it pages a person, whether its provider keeps on-call).
export type { ChannelType } from './channels/index.js';
export { addressesPeople, canPage, contactFields, keepsOnCall, recipientOf, resendInterval } from './registry.js';
