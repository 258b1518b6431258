import { expect } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { DeliveryError, type IncidentView, type Notification, type SendContext } from '../../src/notify/index.js';
import { memoryLogger } from './context.js';

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

/** A send context with a real deadline, as the outbox worker gives one send. */
export function sendContext(timeoutMs = 5_000, logger = memoryLogger().logger): SendContext {
  return { signal: AbortSignal.timeout(timeoutMs), clock: systemClock, logger };
}

/** The DeliveryError a send rejects with; fails the test when it resolves or throws anything else. */
export async function failure(p: Promise<unknown>): Promise<DeliveryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}
