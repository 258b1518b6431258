/**
 * Rows as both backends read them, and their mapping to the store's objects. The SQL that reads them
 * stays per engine (src/store/sqlite*.ts, src/store/postgres/); only the row shapes are shared.
 *
 * The two engines differ in booleans: SQLite hands back 0/1, PostgreSQL true/false, so a boolean
 * column is typed `DbBool` and read with `bool`. Numbers need nothing: int8 columns come back as JS
 * numbers from PostgreSQL too (both connections parse oid 20 with `Number`; see postgres/db.ts
 * and postgres/store.ts), as SQLite's integers do.
 */
import type {
  AuditEntry,
  EscalationRow,
  Incident,
  IncidentChange,
  IncidentEvent,
  OncallOverride,
  OutboxItem,
  Silence,
  StoredRun,
} from './types.js';

/** A boolean column: 0/1 from SQLite, true/false from PostgreSQL. */
export type DbBool = boolean | number;

export function bool(v: DbBool): boolean {
  return v === true || v === 1;
}

export interface RunRow {
  id: number;
  probe_id: string;
  kind: string;
  started_at: number;
  duration_ms: number;
  ok: DbBool;
  code: string | null;
  message: string | null;
  attempts: number;
  trigger: StoredRun['trigger'];
  vals: string | null;
  details: string | null;
  location: string;
}

export function runOf(row: RunRow): StoredRun {
  // Assigned one by one, keys in the same order as ever: spreading small conditional objects took
  // ~40 % more time over the 60,000 newest runs a restart reads back (81-107 ms against 55-69).
  const run = {
    id: row.id,
    probeId: row.probe_id,
    kind: row.kind,
    startedAt: row.started_at,
    durationMs: row.duration_ms,
    ok: bool(row.ok),
  } as StoredRun;
  if (row.code !== null) run.code = row.code as StoredRun['code'];
  if (row.message !== null) run.message = row.message;
  run.attempts = row.attempts;
  run.trigger = row.trigger;
  run.values = row.vals ? JSON.parse(row.vals) : {};
  if (row.details) run.details = JSON.parse(row.details);
  if (row.location !== '') run.location = row.location;
  return run;
}

export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  request_id: string | null;
  result: 'success' | 'failure';
  status: number;
  detail: string | null;
}

export function auditEntryOf(r: AuditRow): AuditEntry {
  return {
    id: r.id,
    at: r.at,
    actor: r.actor,
    action: r.action,
    ...(r.target !== null ? { target: r.target } : {}),
    ...(r.request_id !== null ? { requestId: r.request_id } : {}),
    result: r.result,
    status: r.status,
    ...(r.detail !== null ? { detail: r.detail } : {}),
  };
}

export interface IncidentRow {
  id: number;
  probe_id: string;
  rule: string;
  kind: string;
  severity: Incident['severity'];
  state: Incident['state'];
  summary: string;
  labels: string;
  channels: string;
  opened_at: number;
  acked_at: number | null;
  acked_by: string | null;
  resolved_at: number | null;
  resolved_by: string | null;
  last_error: string | null;
  flapping: DbBool;
  notified: DbBool;
  last_reminder_at: number | null;
}

export function incidentOf(r: IncidentRow): Incident {
  return {
    id: r.id,
    probeId: r.probe_id,
    rule: r.rule,
    kind: r.kind,
    severity: r.severity,
    state: r.state,
    summary: r.summary,
    labels: JSON.parse(r.labels),
    channels: JSON.parse(r.channels),
    openedAt: r.opened_at,
    ...(r.acked_at !== null ? { ackedAt: r.acked_at } : {}),
    ...(r.acked_by !== null ? { ackedBy: r.acked_by } : {}),
    ...(r.resolved_at !== null ? { resolvedAt: r.resolved_at } : {}),
    ...(r.resolved_by !== null ? { resolvedBy: r.resolved_by } : {}),
    ...(r.last_error !== null ? { lastError: JSON.parse(r.last_error) } : {}),
    flapping: bool(r.flapping),
    notified: bool(r.notified),
    ...(r.last_reminder_at !== null ? { lastReminderAt: r.last_reminder_at } : {}),
  };
}

/** Incident fields a patch may set, and their columns. */
const INCIDENT_COLUMNS: Record<string, string> = {
  kind: 'kind',
  severity: 'severity',
  state: 'state',
  summary: 'summary',
  labels: 'labels',
  channels: 'channels',
  ackedAt: 'acked_at',
  ackedBy: 'acked_by',
  resolvedAt: 'resolved_at',
  resolvedBy: 'resolved_by',
  lastError: 'last_error',
  flapping: 'flapping',
  notified: 'notified',
  lastReminderAt: 'last_reminder_at',
};

/**
 * The columns an incident patch sets and their values, in the patch's order; fields without a
 * column are left out. `booleans: 'integer'` writes a boolean as 0/1 (SQLite), `'native'` as is.
 */
export function incidentPatch(patch: IncidentChange['patch'], booleans: 'native' | 'integer'): Array<{ column: string; value: unknown }> {
  return Object.entries(patch ?? {})
    .filter(([k]) => k in INCIDENT_COLUMNS)
    .map(([k, v]) => ({ column: INCIDENT_COLUMNS[k]!, value: toColumn(k, v, booleans) }));
}

function toColumn(key: string, v: unknown, booleans: 'native' | 'integer'): unknown {
  if (v === undefined) return null;
  if (key === 'labels' || key === 'channels' || key === 'lastError') return JSON.stringify(v);
  if (booleans === 'integer' && typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

export interface IncidentEventRow {
  id: number;
  incident_id: number;
  at: number;
  type: string;
  actor: string;
  detail: string | null;
}

export function incidentEventOf(r: IncidentEventRow): IncidentEvent {
  return {
    id: r.id,
    incidentId: r.incident_id,
    at: r.at,
    type: r.type,
    actor: r.actor,
    ...(r.detail !== null ? { detail: r.detail } : {}),
  };
}

export interface OutboxRow {
  id: number;
  incident_id: number | null;
  channel: string;
  recipient: string | null;
  action: OutboxItem['action'];
  dedup_key: string;
  state: OutboxItem['state'];
  attempts: number;
  created_at: number;
  next_attempt_at: number;
  delivered_at: number | null;
  last_error: string | null;
  muted_reason: string | null;
  /** Absent from reads that list their columns (deliveries). */
  held_at?: number | null;
  released_at?: number | null;
  ref: string | null;
  payload: string;
}

export function outboxOf(r: OutboxRow): OutboxItem {
  return {
    id: r.id,
    incidentId: r.incident_id,
    channel: r.channel,
    ...(r.recipient !== null ? { recipient: r.recipient } : {}),
    action: r.action,
    dedupKey: r.dedup_key,
    state: r.state,
    attempts: r.attempts,
    createdAt: r.created_at,
    nextAttemptAt: r.next_attempt_at,
    ...(r.delivered_at !== null ? { deliveredAt: r.delivered_at } : {}),
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
    ...(r.muted_reason !== null ? { mutedReason: r.muted_reason } : {}),
    ...(r.held_at != null ? { heldAt: r.held_at } : {}),
    ...(r.released_at != null ? { releasedAt: r.released_at } : {}),
    ...(r.ref !== null ? { ref: JSON.parse(r.ref) } : {}),
    payload: JSON.parse(r.payload),
  };
}

/** A row of `escalations` (EscalationRow is the object made from it). */
export interface EscalationDbRow {
  incident_id: number;
  policy: string;
  pass: number;
  step: number;
  next_due_at: number | null;
  reached: DbBool;
}

export function escalationOf(r: EscalationDbRow): EscalationRow {
  return {
    incidentId: r.incident_id,
    policy: JSON.parse(r.policy),
    state: { pass: r.pass, step: r.step, nextDueAt: r.next_due_at ?? null, reached: bool(r.reached) },
  };
}

export interface OverrideRow {
  id: number;
  schedule: string;
  person: string;
  starts_at: number;
  ends_at: number;
  author: string;
  created_at: number;
}

export function overrideOf(r: OverrideRow): OncallOverride {
  return {
    id: r.id,
    schedule: r.schedule,
    person: r.person,
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    author: r.author,
    createdAt: r.created_at,
  };
}

export interface SilenceRow {
  id: number;
  probes: string;
  labels: string;
  starts_at: number;
  ends_at: number;
  author: string;
  comment: string;
  created_at: number;
}

export function silenceOf(r: SilenceRow): Silence {
  return {
    id: r.id,
    probes: JSON.parse(r.probes),
    labels: JSON.parse(r.labels),
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    author: r.author,
    comment: r.comment,
    createdAt: r.created_at,
  };
}
