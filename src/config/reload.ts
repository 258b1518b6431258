import { defaultBaseUrl } from './base-url.js';
import type { ServiceConfig } from './schema.js';

/**
 * Keys a running vigil cannot swap: what they configure is built once at start (the listening
 * socket, the store and its pool, the leader's lease, the scheduler's pool, the metric buckets, the
 * outbox worker's timing, the link signer). A reload that changes one is refused as a whole, so
 * nothing runs half on the old config and half on the new. Everything else is applied live:
 * probes, channels, people, schedules, escalation, tokens, who may read, maintenance, flapping,
 * the report, retention, `service.name` and `service.shutdownTimeout`, `interactions.linkTtl`.
 */
export const RESTART_ONLY = [
  'service.host',
  'service.port',
  'service.logLevel',
  'service.location',
  'service.heapHeadroom',
  'probes.dir',
  'scheduler',
  'storage.sqlite',
  'storage.postgres',
  'storage.batch',
  'alerting.baseUrl',
  'alerting.dashboardUrl',
  'alerting.sweepInterval',
  'alerting.delivery',
  'oncall',
  'interactions.linkSecret',
  'interactions.slackSigningSecret',
  'auth.rateLimit',
  'cluster',
  'backup',
  'metrics',
] as const;

/** Values of keys named like these are never printed: "changed" says enough. */
const SENSITIVE = /secret|token|password|url/i;

const at = (config: unknown, path: string): unknown =>
  path
    .split('.')
    .reduce<unknown>((v, k) => (v !== null && typeof v === 'object' && Object.hasOwn(v, k) ? (v as never)[k] : undefined), config);

/** Equal as loaded from YAML (key order follows the files, so reordering counts as a change). */
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

const shown = (v: unknown): string | undefined => {
  if (v === undefined) return 'unset';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string' && v.length <= 64) return JSON.stringify(v);
  return undefined;
};

/**
 * Why a reload from `old` to `next` cannot be applied live: one line per restart-only key that
 * changed (`service.port: changed from 8080 to 9090; takes a restart`); empty when it can.
 */
export function restartOnlyChanges(old: ServiceConfig, next: ServiceConfig): string[] {
  const problems: string[] = [];
  for (const key of RESTART_ONLY) {
    const before = at(old, key);
    const after = at(next, key);
    if (same(before, after)) continue;
    // A baseUrl nobody wrote follows the listen address: the host or port change already says why.
    if (key === 'alerting.baseUrl' && derivedBaseUrl(old) && derivedBaseUrl(next)) continue;
    const from = shown(before);
    const to = shown(after);
    const what = SENSITIVE.test(key) || from === undefined || to === undefined ? 'changed' : `changed from ${from} to ${to}`;
    problems.push(`${key}: ${what}; takes a restart`);
  }
  return problems;
}

function derivedBaseUrl(c: ServiceConfig): boolean {
  return c.alerting.baseUrl === defaultBaseUrl(c.service.host, c.service.port);
}

/** Keys a reload applies in place (with the probe definitions); with RESTART_ONLY, every key of the schema. */
export const LIVE = [
  'service.name',
  'service.shutdownTimeout',
  'storage.retention',
  'alerting.flapping',
  'alerting.maintenance',
  'people',
  'schedules',
  'escalation',
  'channels',
  'interactions.linkTtl',
  'auth.tokens',
  'auth.reads',
  'auth.metrics',
  'report',
  'statusPage',
] as const;
