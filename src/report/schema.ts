import { type Static, type TOptional, Type } from '@sinclair/typebox';
import { Duration, Share } from '../lib/schema.js';
import type { ItemTier } from './types.js';

/**
 * The go/no-go items of the launch checklist (shared/launch-checklist.txt, "Go/No-Go Decision
 * Framework"), in its order. `probed` items are judged from runs and config; the others only a
 * person can vouch for, by a dated attestation in `report.attestations`.
 */
export const CHECKLIST = [
  { id: 'backup-restore', tier: 'critical', title: 'Database backup and recovery tested', probed: true },
  { id: 'tls-everywhere', tier: 'critical', title: 'TLS/HTTPS enabled for all endpoints', probed: true },
  { id: 'secrets-not-in-logs', tier: 'critical', title: 'Secrets not hardcoded or in logs', probed: false },
  { id: 'audit-logging', tier: 'critical', title: 'Audit logging for all API calls', probed: false },
  { id: 'alerting', tier: 'critical', title: 'Alerting configured for error rate and latency', probed: true },
  { id: 'load-test-10x', tier: 'important', title: 'Load testing at 10x expected traffic', probed: true },
  { id: 'runbooks', tier: 'important', title: 'Runbooks written for common operations', probed: true },
  { id: 'oncall-rotation', tier: 'important', title: 'On-call rotation established', probed: true },
  { id: 'centralized-logging', tier: 'important', title: 'Centralized logging', probed: true },
  // Not in the framework's list; its Security section asks for it ("VPC and Firewall": SSH to a database
  // server from the internet should time out or reject), and a tcp probe with refused: true can see it.
  { id: 'firewall', tier: 'important', title: 'Firewall: inbound traffic only on necessary ports', probed: true },
  { id: 'multi-region-failover', tier: 'nice', title: 'Multi-region failover', probed: false },
  { id: 'chaos-testing', tier: 'nice', title: 'Chaos testing', probed: false },
  { id: 'security-scanning', tier: 'nice', title: 'Advanced security scanning', probed: false },
] as const satisfies ReadonlyArray<{ id: string; tier: ItemTier; title: string; probed: boolean }>;

export type ChecklistItemId = (typeof CHECKLIST)[number]['id'];

const Attestation = Type.Object(
  {
    status: Type.Union([Type.Literal('pass'), Type.Literal('fail')], { expected: 'pass or fail' }),
    /** Who vouches for it. */
    by: Type.String({ minLength: 1 }),
    /** When it was checked (YYYY-MM-DD); an attestation older than `attestationMaxAge` no longer counts. */
    date: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', expected: 'a date like 2026-11-20' }),
    /** What was checked and where the proof is: a scan report, a ticket, a runbook link. */
    evidence: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);

/** A person's dated word on a checklist item no probe can see. */
export type Attestation = Static<typeof Attestation>;

/** `report:` in the service config. */
export const ReportConfigSchema = Type.Object(
  {
    /** The window starts here (UTC midnight) when set; otherwise the report covers the last `days`. */
    launchDate: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', expected: 'a date like 2026-12-01' })),
    days: Type.Integer({ minimum: 1, maximum: 400, default: 30 }),
    targets: Type.Object(
      {
        p95: Duration('5s'),
        errorRate: Share('5%'),
        uptime: Share('99.9%'),
        logIngestion: Duration('30s'),
        rto: Duration('4h'),
        rpo: Duration('1h'),
        /** A restore drill older than this no longer counts as "tested". */
        drillMaxAge: Duration('7d'),
        tlsMinDays: Type.Integer({ minimum: 0, default: 14 }),
        dnsMaxTtl: Duration('300s'),
        dnsPropagation: Duration('5m'),
        loadP95: Duration('5s'),
        loadErrorRate: Share('5%'),
        mtta: Duration('15m'),
      },
      { additionalProperties: false, default: {} },
    ),
    attestations: Type.Object(
      Object.fromEntries(CHECKLIST.map((c) => [c.id, Type.Optional(Attestation)])) as Record<
        ChecklistItemId,
        TOptional<typeof Attestation>
      >,
      { additionalProperties: false, default: {}, expected: `attestations by checklist item: ${CHECKLIST.map((c) => c.id).join(', ')}` },
    ),
    attestationMaxAge: Duration('90d'),
  },
  { additionalProperties: false, default: {} },
);

export type ReportConfig = Static<typeof ReportConfigSchema>;
