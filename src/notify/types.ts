import type { Static, TObject, TProperties } from '@sinclair/typebox';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';

/** How bad an incident is; channels map it to their own scale (PagerDuty severity, Slack colour). */
export type Severity = 'critical' | 'error' | 'warning' | 'info';

/** What a notification announces. */
export type NotifyAction = 'trigger' | 'acknowledge' | 'resolve' | 'remind' | 'test';

/** An incident as channels see it: everything a message needs, nothing to act on. */
export type IncidentView = {
  id: number;
  /** Stable across retries and restarts: `<probe>/<rule>/<id>`. PagerDuty's dedup_key. */
  key: string;
  probeId: string;
  kind: string;
  /** Which rule fired: `failures`, `errorRate`, `latency`, `values[0]`, … */
  rule: string;
  severity: Severity;
  state: 'open' | 'acknowledged' | 'resolved';
  /** Epoch ms. */
  openedAt: number;
  ackedAt?: number;
  ackedBy?: string;
  resolvedAt?: number;
  /** One line: what is wrong, e.g. `api-health: 503 Service Unavailable: cache down`. */
  summary: string;
  /** The last failing run's code and message, and the files it kept (`<key>/<names>`, see src/lib/artifacts.ts). */
  lastError?: { code: string; message: string; at: number; artifacts?: { key: string; files: string[] } };
  labels: Record<string, string>;
  flapping: boolean;
  /** The alert's runbook link, when it has one. */
  runbook?: string;
};

/** One message to deliver through one channel: a row of the outbox. */
export interface Notification {
  /** Outbox id: unique per (incident change, channel). */
  id: number;
  action: NotifyAction;
  /** Stable for the incident: a retry or a later action reuses it, so the provider deduplicates. */
  dedupKey: string;
  incident: IncidentView;
  links: {
    /** The incident in vigil's API. */
    incident: string;
    /** The dashboard, when `alerting.dashboardUrl` is configured. */
    dashboard?: string;
    /** What to do: the alert's runbook. */
    runbook?: string;
    /** The failing run's screenshot (a browser probe), served by vigil. */
    screenshot?: string;
    /** Signed one-click links to acknowledge / resolve (when a link secret is configured). */
    ack?: string;
    resolve?: string;
  };
  /**
   * What this channel returned when it delivered an earlier notification of the same incident
   * (Slack: `{ channel, ts }`), so it can update that message or reply in its thread.
   */
  ref?: Record<string, string>;
  /**
   * A person this notification is addressed to (escalation paged them through this channel): Slack
   * sends a direct message to `slack`, email writes to `email`. Absent: the channel's own target.
   */
  recipient?: Recipient;
  /** Epoch ms when the incident change that caused it was recorded. */
  createdAt: number;
}

/** How a person can be reached: the fields of their `people:` entry that channel types send to. */
export interface Contact {
  email?: string;
  /** Slack user id (U…). */
  slack?: string;
  /** Reachable through PagerDuty's own on-call routing. */
  pagerduty?: boolean;
  /** Opsgenie username (the email the person logs in with): a page names them as the alert's responder. */
  opsgenie?: string;
  /** Telegram chat id of the person's private chat with the bot. */
  telegram?: string;
}

/** A person as channels address them. */
export interface Recipient extends Contact {
  id: string;
  name: string;
}

/**
 * How a channel type pages a person that escalation names (`person:alice`, `oncall:…`).
 * `{ field }`: it sends to that field of their `people:` entry (set, or `true` for a flag such as
 * `pagerduty`), and escalation picks it for anyone who has the field. `'own-target'`: it always
 * sends to its configured target (a webhook), so it carries a person's page only when a step names
 * it in `via:`.
 */
export type PersonReach = { field: keyof Contact } | 'own-target';

/** What a channel hands back after a delivery: a reference for later updates, if any. */
export interface SendResult {
  ref?: Record<string, string>;
}

/** Everything a send may wait on is bounded by this signal (the worker's per-send deadline). */
export interface SendContext {
  signal: AbortSignal;
  clock: Clock;
  logger: Logger;
}

/**
 * A failed delivery. A channel only says whether trying again can help (and when, if the provider
 * said so); the retry loop, backoff and dead-lettering live in the outbox worker alone.
 */
export class DeliveryError extends Error {
  readonly retryable: boolean;
  /** From a Retry-After header or equivalent. */
  readonly retryAfterMs?: number;
  constructor(message: string, opts: { retryable: boolean; retryAfterMs?: number; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = 'DeliveryError';
    this.retryable = opts.retryable;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
  }
}

/** A configured channel, ready to send. */
export interface Channel {
  /** Delivers one notification; throws DeliveryError on failure. Never retries itself. */
  send(n: Notification, ctx: SendContext): Promise<SendResult>;
  /** Releases pooled connections. */
  close(): Promise<void>;
}

/** What making a channel needs besides its config. */
export interface ChannelDeps {
  logger: Logger;
  clock: Clock;
}

/** One channel type: its config fields (besides `type`) and how to make one. */
export interface ChannelKind<P extends TProperties = TProperties> {
  readonly schema: TObject<P>;
  /** How it pages a person; every type must say, so escalation and the config check never guess. */
  readonly person: PersonReach;
  /** The provider keeps on-call rotations itself (PagerDuty): the scorecard accepts it in place of vigil's schedules. */
  readonly keepsOnCall?: boolean;
  /**
   * The provider forgets an alert that is not sent again (Alertmanager ends it by itself): while an
   * incident it was paged for is unresolved, the engine queues a `remind` for this channel alone
   * every so many milliseconds.
   */
  resendWhileOpen?(config: Static<TObject<P>>): number;
  /** Rules the schema cannot express (one of two modes, not both); each problem becomes a load error. */
  check?(config: Static<TObject<P>>): ChannelProblem[];
  create(name: string, config: Static<TObject<P>>, deps: ChannelDeps): Channel;
}

/** A config problem found by a channel type's own check: the field it is about (`webhookUrl`) and what was expected. */
export interface ChannelProblem {
  path: string;
  message: string;
}

/** Any channel kind, whatever its fields: what the registry holds. */
// biome-ignore lint/suspicious/noExplicitAny: a registry of heterogeneous kinds; each keeps its own type.
export type AnyChannelKind = ChannelKind<any>;

/** Helps a channel module keep its literal schema type. */
export function defineChannel<P extends TProperties>(kind: ChannelKind<P>): ChannelKind<P> {
  return kind;
}
