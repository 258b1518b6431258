import type { IncidentView, Notification } from '../../src/notify/index.js';

/**
 * A trigger page for `api-health` failing with a 503 (incident 7, outbox row 41), as the channel tests
 * send it; each test states only what differs (`notification`) and in the incident (`incident`).
 */
export function testNotification(
  base: { openedAt: number; links: Notification['links']; createdAt?: number },
  notification: Partial<Omit<Notification, 'incident'>> = {},
  incident: Partial<IncidentView> = {},
): Notification {
  return {
    id: 41,
    action: 'trigger',
    dedupKey: 'api-health/failures/7',
    incident: {
      id: 7,
      key: 'api-health/failures/7',
      probeId: 'api-health',
      kind: 'http',
      rule: 'failures',
      severity: 'critical',
      state: 'open',
      openedAt: base.openedAt,
      summary: 'api-health: 503 Service Unavailable: cache down',
      lastError: { code: 'HTTP_STATUS', message: '503 Service Unavailable: cache down (expected 200)', at: base.openedAt },
      labels: { team: 'core' },
      flapping: false,
      ...incident,
    },
    links: base.links,
    createdAt: base.createdAt ?? base.openedAt,
    ...notification,
  };
}
