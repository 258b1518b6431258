import { type Static, type TOptional, Type } from '@sinclair/typebox';
import { Duration, Share } from '../lib/schema.js';
import type { CheckSection } from '../probers/index.js';
import type { ItemTier } from './types.js';

/**
 * The go/no-go items of the launch checklist (shared/launch-checklist.txt, "Go/No-Go Decision
 * Framework"), in its order. `probed` items are judged from runs and config; the others only a
 * person can vouch for, by a dated attestation in `report.attestations`.
 */
export const CHECKLIST = [
  { id: 'backup-restore', tier: 'critical', title: 'Database backup and recovery tested', probed: true },
  { id: 'tls-everywhere', tier: 'critical', title: 'TLS/HTTPS enabled for all endpoints', probed: true },
  { id: 'secrets-not-in-logs', tier: 'critical', title: 'Secrets not hardcoded or in logs', probed: true },
  { id: 'audit-logging', tier: 'critical', title: 'Audit logging for all API calls', probed: true },
  { id: 'alerting', tier: 'critical', title: 'Alerting configured for error rate and latency', probed: true },
  { id: 'load-test-10x', tier: 'important', title: 'Load testing at 10x expected traffic', probed: true },
  { id: 'runbooks', tier: 'important', title: 'Runbooks written for common operations', probed: true },
  { id: 'oncall-rotation', tier: 'important', title: 'On-call rotation established', probed: true },
  { id: 'centralized-logging', tier: 'important', title: 'Centralized logging', probed: true },
  // Not in the framework's list; its Security section asks for it ("VPC and Firewall": SSH to a database
  // server from the internet should time out or reject), and a tcp probe with refused: true can see it.
  { id: 'firewall', tier: 'important', title: 'Firewall: inbound traffic only on necessary ports', probed: true },
  // The Infrastructure, Data and Observability checklists' validations that a probe kind can run
  // every minute; each is judged from its standing checks (STANDING_CHECKS) or by attestation.
  { id: 'cache-persistence', tier: 'important', title: 'Cache persists across restarts', probed: true },
  { id: 'queue-delivery', tier: 'important', title: 'Message queue delivers tasks to workers', probed: true },
  { id: 'load-balancer', tier: 'important', title: 'Load balancer routes to healthy instances without 5xx', probed: true },
  { id: 'object-storage', tier: 'important', title: 'Object storage stores and returns files intact', probed: true },
  { id: 'replication', tier: 'important', title: 'Database replicates to a standby', probed: true },
  { id: 'credentials-separation', tier: 'important', title: 'Separate database credentials per environment', probed: true },
  { id: 'log-retention', tier: 'important', title: 'Logs retained 90+ days and queryable', probed: true },
  { id: 'structured-logging', tier: 'important', title: 'Structured JSON logs with timestamp, level, request_id', probed: true },
  { id: 'secret-rotation', tier: 'important', title: 'A rotated secret reaches every service within minutes', probed: true },
  { id: 'multi-region-failover', tier: 'nice', title: 'Multi-region failover', probed: false },
  { id: 'chaos-testing', tier: 'nice', title: 'Chaos testing', probed: false },
  { id: 'security-scanning', tier: 'nice', title: 'Advanced security scanning', probed: false },
] as const satisfies ReadonlyArray<{ id: string; tier: ItemTier; title: string; probed: boolean }>;

export type ChecklistItemId = (typeof CHECKLIST)[number]['id'];

/** How a standing check reads in the scorecard and the report's evidence tables. */
export interface StandingCheck {
  item: ChecklistItemId;
  section: CheckSection;
  /** The evidence table's heading. */
  title: string;
  /** What the table says when no probe makes this check. */
  none: string;
  /** "<target> <held> in all N runs". */
  held: string;
  /** "<target> <broke> in F of N runs". */
  broke: string;
}

/**
 * Checklist items whose evidence is standing checks: each passes when every probe making the check
 * passed every run of the window (and fails on one that did not, or has no runs).
 */
export const STANDING_CHECKS: readonly StandingCheck[] = [
  {
    item: 'secrets-not-in-logs',
    section: 'secretsInLogs',
    title: 'Secrets and personal data in logs (log-query probes that must find none)',
    none: 'No log queries for secrets or personal data.',
    held: 'found no secrets or personal data',
    broke: 'found secrets or personal data in the logs, or could not search',
  },
  {
    item: 'audit-logging',
    section: 'auditLogging',
    title: 'Audit logging (a request made to the application found in its audit log in time)',
    none: 'No audit log checks.',
    held: 'found every request in the audit log in time',
    broke: 'missed a request in the audit log, or found it late',
  },
  {
    item: 'firewall',
    section: 'firewall',
    title: 'Firewall (ports that must stay closed: refused or timed out)',
    none: 'No firewall checks.',
    held: 'stayed closed (refused or timed out)',
    broke: 'failed the closed-port check (open from vigil, or the check could not run)',
  },
  {
    item: 'cache-persistence',
    section: 'cachePersistence',
    title: 'Cache persistence (saves to disk, last save succeeded)',
    none: 'No cache persistence checks.',
    held: 'persisted',
    broke: 'failed its persistence check',
  },
  {
    item: 'queue-delivery',
    section: 'queueDelivery',
    title: 'Message queues (a canary round trip, workers consuming)',
    none: 'No queue checks.',
    held: 'delivered',
    broke: 'failed to deliver or had too few consumers or too deep a backlog',
  },
  {
    item: 'load-balancer',
    section: 'loadBalancer',
    title: 'Load balancers (every instance healthy, no 5xx through the balancer)',
    none: 'No load balancer checks.',
    held: 'had every instance healthy and no 5xx',
    broke: 'had an unhealthy instance or a 5xx',
  },
  {
    item: 'object-storage',
    section: 'objectStorage',
    title: 'Object storage (a file uploaded, read back intact, deleted)',
    none: 'No object storage checks.',
    held: 'round-tripped a file intact',
    broke: 'failed its round trip',
  },
  {
    item: 'replication',
    section: 'replication',
    title: 'Replication (a standby within its lag bound)',
    none: 'No replication checks.',
    held: 'replicated within its bound',
    broke: 'was behind or not replicating',
  },
  {
    item: 'credentials-separation',
    section: 'credentialsSeparation',
    title: "Credentials separation (another environment's login refused)",
    none: 'No credentials separation checks.',
    held: 'refused the other environment',
    broke: 'let the other environment in, or the check could not reach it',
  },
  {
    item: 'log-retention',
    section: 'logRetention',
    title: 'Log retention (lines from the retention horizon still found)',
    none: 'No log retention checks.',
    held: 'still held old lines',
    broke: 'lacked lines from the retention horizon',
  },
  {
    item: 'structured-logging',
    section: 'structuredLogging',
    title: 'Structured logging (lines found are JSON with the required fields)',
    none: 'No structured logging checks.',
    held: 'logged JSON with every required field',
    broke: 'logged a line without a required field',
  },
  {
    item: 'secret-rotation',
    section: 'secretRotation',
    title: 'Secret rotation (every service on the current version in time)',
    none: 'No secret rotation checks.',
    held: 'had every service on the current version in time',
    broke: 'had a service lagging past its bound',
  },
];

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
