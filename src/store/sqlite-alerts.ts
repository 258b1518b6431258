import type Database from 'better-sqlite3';
import {
  type EscalationDbRow,
  escalationOf,
  type IncidentEventRow,
  type IncidentRow,
  incidentEventOf,
  incidentOf,
  incidentPatch,
  type OutboxRow,
  type OverrideRow,
  outboxOf,
  overrideOf,
  type SilenceRow,
  silenceOf,
} from './rows.js';
import type { AlertStore, HeldPages, Incident, NewNotification } from './types.js';

/** Incidents, timelines, the outbox and silences in the same SQLite database as the runs. */
export function createSqliteAlertStore(db: Database.Database): AlertStore {
  const insertIncident = db.prepare(
    `INSERT INTO incidents (probe_id, rule, kind, severity, state, summary, labels, channels, opened_at, last_error, flapping, notified)
     VALUES (@probeId, @rule, @kind, @severity, @state, @summary, @labels, @channels, @openedAt, @lastError, @flapping, @notified)`,
  );
  const getIncident = db.prepare<[number], IncidentRow>('SELECT * FROM incidents WHERE id = ?');
  const insertEvent = db.prepare('INSERT INTO incident_events (incident_id, at, type, actor, detail) VALUES (?, ?, ?, ?, ?)');
  const insertOutbox = db.prepare<
    [number | null, string, string | null, string, string, 'pending' | 'muted', number, number, string | null, string],
    OutboxRow
  >(
    `INSERT INTO outbox (incident_id, channel, recipient, action, dedup_key, state, created_at, next_attempt_at, muted_reason, payload)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
  );

  const queue = (incidentId: number | null, items: NewNotification[], at: number) =>
    items.map((n) => {
      const row = insertOutbox.get(
        incidentId,
        n.channel,
        n.recipient ?? null,
        n.action,
        n.dedupKey,
        n.mutedReason === undefined ? 'pending' : 'muted',
        at,
        at,
        n.mutedReason ?? null,
        JSON.stringify(n.payload),
      );
      if (!row) throw new Error('INSERT INTO outbox … RETURNING gave no row');
      return outboxOf(row);
    });

  const apply = db.transaction((change: Parameters<AlertStore['applyIncidentChange']>[0]): Incident => {
    let id = change.id;
    if (id === undefined) {
      if (!change.open) throw new Error('an incident change needs an id or an incident to open');
      const o = change.open;
      id = Number(
        insertIncident.run({
          ...o,
          labels: JSON.stringify(o.labels),
          channels: JSON.stringify(o.channels),
          lastError: o.lastError === undefined ? null : JSON.stringify(o.lastError),
          flapping: o.flapping ? 1 : 0,
          notified: o.notified ? 1 : 0,
        }).lastInsertRowid,
      );
    }
    const patch = incidentPatch(change.patch, 'integer');
    if (patch.length > 0) {
      const sets = patch.map((p) => `${p.column} = ?`).join(', ');
      db.prepare(`UPDATE incidents SET ${sets} WHERE id = ?`).run(...patch.map((p) => p.value), id);
    }
    insertEvent.run(id, change.event.at, change.event.type, change.event.actor, change.event.detail ?? null);
    const row = getIncident.get(id);
    if (!row) throw new Error(`incident ${id} is not in the store`);
    const after = incidentOf(row);
    queue(id, typeof change.notify === 'function' ? change.notify(after) : change.notify, change.event.at);
    if (change.escalation) {
      const st = change.escalation.state;
      if (change.escalation.policy !== undefined) {
        db.prepare('INSERT INTO escalations (incident_id, policy, pass, step, next_due_at, reached) VALUES (?, ?, ?, ?, ?, ?)').run(
          id,
          JSON.stringify(change.escalation.policy),
          st.pass,
          st.step,
          st.nextDueAt,
          st.reached ? 1 : 0,
        );
      } else {
        db.prepare('UPDATE escalations SET pass = ?, step = ?, next_due_at = ?, reached = ? WHERE incident_id = ?').run(
          st.pass,
          st.step,
          st.nextDueAt,
          st.reached ? 1 : 0,
          id,
        );
      }
    }
    return after;
  });

  const deliveriesIn = db.prepare<[number, number], OutboxRow>(
    `SELECT id, incident_id, channel, recipient, action, dedup_key, state, attempts, created_at, next_attempt_at,
            delivered_at, last_error, muted_reason, NULL AS ref, '{}' AS payload
       FROM outbox WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id`,
  );
  const due = db.prepare<[number, number], OutboxRow>(
    `SELECT * FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= ? AND o.held_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state = 'pending' AND p.incident_id = o.incident_id AND p.channel = o.channel
                       AND p.recipient IS o.recipient AND p.id < o.id)
     ORDER BY o.next_attempt_at, o.id LIMIT ?`,
  );

  return {
    applyIncidentChange: async (change) => apply(change),
    incident: async (id) => {
      const row = getIncident.get(id);
      return row ? incidentOf(row) : undefined;
    },
    unresolvedIncidents: async () =>
      db.prepare<[], IncidentRow>(`SELECT * FROM incidents WHERE state <> 'resolved' ORDER BY id`).all().map(incidentOf),
    async incidents(q) {
      const where: string[] = [];
      const args: unknown[] = [];
      if (q.state) {
        where.push('state = ?');
        args.push(q.state);
      }
      if (q.probeId) {
        where.push('probe_id = ?');
        args.push(q.probeId);
      }
      if (q.since !== undefined) {
        where.push('(resolved_at IS NULL OR resolved_at >= ?)');
        args.push(q.since);
      }
      if (q.until !== undefined) {
        where.push('opened_at < ?');
        args.push(q.until);
      }
      const sql = `SELECT * FROM incidents ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY opened_at DESC, id DESC LIMIT ?`;
      return db
        .prepare<unknown[], IncidentRow>(sql)
        .all(...args, Math.min(q.limit ?? 100, 1000))
        .map(incidentOf);
    },
    deliveries: async (from, to) =>
      deliveriesIn.all(from, to).map((r) => {
        const { payload: _p, ref: _r, ...item } = outboxOf(r);
        return item;
      }),
    timeline: async (incidentId) =>
      db
        .prepare<[number], IncidentEventRow>('SELECT * FROM incident_events WHERE incident_id = ? ORDER BY id')
        .all(incidentId)
        .map(incidentEventOf),
    notifications: async (incidentId) =>
      db.prepare<[number], OutboxRow>('SELECT * FROM outbox WHERE incident_id = ? ORDER BY id').all(incidentId).map(outboxOf),
    enqueue: async (items, at) => db.transaction(() => items.flatMap((i) => queue(i.incidentId, [i], at)))(),
    // One process delivers from a SQLite outbox: no claims to take, and marks need no fencing.
    due: async (now, limit) => due.all(now, limit).map(outboxOf),
    outboxItem: async (id) => {
      const row = db.prepare<[number], OutboxRow>('SELECT * FROM outbox WHERE id = ?').get(id);
      return row ? outboxOf(row) : undefined;
    },
    async markDelivered(id, at, ref) {
      db.prepare(
        `UPDATE outbox SET state = 'delivered', delivered_at = ?, attempts = attempts + 1, ref = ?, last_error = NULL WHERE id = ?`,
      ).run(at, ref === undefined ? null : JSON.stringify(ref), id);
    },
    async markRetry(id, _at, error, nextAttemptAt) {
      db.prepare('UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?').run(
        error,
        nextAttemptAt,
        id,
      );
    },
    async markDead(id, _at, error) {
      db.prepare(`UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?`).run(error, id);
    },
    async markHeld(id, at, reason) {
      db.prepare('UPDATE outbox SET held_at = coalesce(held_at, ?), last_error = ? WHERE id = ?').run(at, reason, id);
    },
    async releaseHeld(channels, at) {
      if (channels.length === 0) return 0;
      return db
        .prepare(
          `UPDATE outbox SET held_at = NULL, released_at = ?, next_attempt_at = ?
            WHERE held_at IS NOT NULL AND state = 'pending' AND channel IN (SELECT value FROM json_each(?))`,
        )
        .run(at, at, JSON.stringify(channels)).changes;
    },
    held: async () =>
      db
        .prepare<[], HeldPages>(
          `SELECT channel, count(*) AS count, min(held_at) AS since FROM outbox WHERE held_at IS NOT NULL AND state = 'pending'
            GROUP BY channel ORDER BY channel`,
        )
        .all(),
    async refFor(incidentId, channel, recipient) {
      const row = db
        .prepare<[number, string, string | null], { ref: string }>(
          // The newest: a channel hands back where its message now lives (Slack re-posts a deleted one).
          `SELECT ref FROM outbox WHERE incident_id = ? AND channel = ? AND recipient IS ? AND state = 'delivered' AND ref IS NOT NULL ORDER BY id DESC LIMIT 1`,
        )
        .get(incidentId, channel, recipient ?? null);
      return row ? JSON.parse(row.ref) : undefined;
    },
    async paged(incidentId) {
      const rows = db
        .prepare<[number], { channel: string; recipient: string | null }>(
          `SELECT channel, recipient, min(id) AS first FROM outbox WHERE incident_id = ? AND action IN ('trigger', 'remind') AND state <> 'muted'
           GROUP BY channel, recipient ORDER BY first`,
        )
        .all(incidentId);
      return rows.map((r) => ({ channel: r.channel, ...(r.recipient !== null ? { recipient: r.recipient } : {}) }));
    },
    async outboxStats(now) {
      const r = db
        .prepare<[], { pending: number | null; oldest: number | null; dead: number | null }>(
          `SELECT sum(state = 'pending') AS pending, min(CASE WHEN state = 'pending' THEN created_at END) AS oldest, sum(state = 'dead') AS dead FROM outbox`,
        )
        // An aggregate without GROUP BY always yields one row; its sums are NULL over an empty outbox.
        .get() ?? { pending: null, oldest: null, dead: null };
      return { pending: r.pending ?? 0, oldestPendingMs: r.oldest === null ? 0 : now - r.oldest, dead: r.dead ?? 0 };
    },
    async escalation(incidentId) {
      const r = db.prepare<[number], EscalationDbRow>('SELECT * FROM escalations WHERE incident_id = ?').get(incidentId);
      return r ? escalationOf(r) : undefined;
    },
    async dueEscalations(now) {
      return db
        .prepare<[number], EscalationDbRow>(
          `SELECT e.* FROM escalations e JOIN incidents i ON i.id = e.incident_id
           WHERE e.next_due_at IS NOT NULL AND e.next_due_at <= ? AND i.state = 'open' ORDER BY e.next_due_at`,
        )
        .all(now)
        .map(escalationOf);
    },
    async addOverride(o) {
      const id = Number(
        db
          .prepare('INSERT INTO oncall_overrides (schedule, person, starts_at, ends_at, author, created_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(o.schedule, o.person, o.startsAt, o.endsAt, o.author, o.createdAt).lastInsertRowid,
      );
      return { ...o, id };
    },
    async overrides(now) {
      return db
        .prepare<[number], OverrideRow>('SELECT * FROM oncall_overrides WHERE ends_at > ? ORDER BY starts_at, id')
        .all(now)
        .map(overrideOf);
    },
    deleteOverride: async (id) => db.prepare('DELETE FROM oncall_overrides WHERE id = ?').run(id).changes > 0,
    async addSilence(s) {
      const id = Number(
        db
          .prepare('INSERT INTO silences (probes, labels, starts_at, ends_at, author, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run(JSON.stringify(s.probes), JSON.stringify(s.labels), s.startsAt, s.endsAt, s.author, s.comment, s.createdAt).lastInsertRowid,
      );
      return { ...s, id };
    },
    async silences(now) {
      const rows =
        now === undefined
          ? db.prepare<[], SilenceRow>('SELECT * FROM silences ORDER BY id').all()
          : db.prepare<[number], SilenceRow>('SELECT * FROM silences WHERE ends_at > ? ORDER BY id').all(now);
      return rows.map(silenceOf);
    },
    async deleteSilence(id, now) {
      // Ending a silence keeps it in the record: it stops matching from now on.
      return db.prepare('UPDATE silences SET ends_at = min(ends_at, ?) WHERE id = ? AND ends_at > ?').run(now, id, now).changes > 0;
    },
  };
}
