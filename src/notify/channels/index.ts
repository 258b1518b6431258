import type { Static } from '@sinclair/typebox';
import type { AnyChannelKind } from '../types.js';
import { alertmanager } from './alertmanager.js';
import { discord } from './discord.js';
import { email } from './email.js';
import { opsgenie } from './opsgenie.js';
import { pagerduty } from './pagerduty.js';
import { slack } from './slack.js';
import { teams } from './teams.js';
import { telegram } from './telegram.js';
import { webhook } from './webhook.js';

/** Every channel type vigil knows. Adding one is its module plus one line here. */
export const channelKinds = {
  alertmanager,
  discord,
  email,
  opsgenie,
  pagerduty,
  slack,
  teams,
  telegram,
  webhook,
} satisfies Record<string, AnyChannelKind>;

export type ChannelType = keyof typeof channelKinds;

export function isChannelType(type: unknown): type is ChannelType {
  return typeof type === 'string' && Object.hasOwn(channelKinds, type);
}

/** A configured channel as the loader hands it on: its type, that type's fields (defaults filled), and its test schedule. */
export type ChannelConfig = {
  [T in ChannelType]: { type: T; testSchedule?: string } & Static<(typeof channelKinds)[T]['schema']>;
}[ChannelType];

export function channelKindOf(type: ChannelType): AnyChannelKind {
  const registry: Record<ChannelType, AnyChannelKind> = channelKinds;
  return registry[type];
}
