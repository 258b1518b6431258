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
} from '../rows.js';
import type { AlertStore, HeldPages, Incident, IncidentChange, NewNotification, OutboxItem } from '../types.js';
import type { PgDb, Queryable } from './db.js';

/** Builds `WHERE a = $1 AND b = $2` from the filters that are set; values follow in `args`. */
function filters(conds: Array<[string, unknown]>): { where: string; args: unknown[] } {
  const set = conds.filter(([, v]) => v !== undefined);
  const where = set.map(([sql], i) => sql.replace('?', `$${i + 1}`)).join(' AND ');
  return { where: where ? `WHERE ${where}` : '', args: set.map(([, v]) => v) };
}

/** Pending notifications due at $1, the oldest of each (incident, channel, recipient): one lane, in order. */
const DUE = `SELECT o.* FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= $1 AND o.held_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state = 'pending' AND p.incident_id = o.incident_id AND p.channel = o.channel
                  AND p.recipient IS NOT DISTINCT FROM o.recipient AND p.id < o.id)`;
/** A mark ends the attempt: the next one (a retry) goes to whichever instance finds it due. */
const UNCLAIM = 'claimed_by = NULL, claimed_until = NULL';
/**
 * Fencing of a mark made with a claimant, its parameter at `$n`: it applies only while the row is
 * still claimed by that claimant. Expired but not taken over still counts (its result is the
 * latest); taken over by another, or already marked (claim cleared), it changes nothing, so a late
 * mark never overwrites the newer claimant's outcome. A send whose mark is fenced off may be sent
 * again by the new claimant: delivery is at least once, as with any retry (hence a claim longer
 * than a send's deadline).
 */
const FENCE = (n: number) => `AND ($${n}::text IS NULL OR claimed_by = $${n})`;

/**
 * Incidents, timelines, the outbox and silences in PostgreSQL. An incident change, its event, its
 * notifications and its escalation are one transaction (withTransaction), committed before the
 * promise resolves, exactly as with SQLite; callers serialise their changes per (probe, rule). The
 * unique index on unresolved (probe, rule) holds across instances.
 */
export function createPostgresAlertStore(db: PgDb): AlertStore {
  const getIncident = async (q: Queryable, id: number) => (await q.query<IncidentRow>('SELECT * FROM incidents WHERE id = $1', [id]))[0];

  const queue = async (q: Queryable, incidentId: number | null, items: NewNotification[], at: number) => {
    const out: OutboxItem[] = [];
    for (const n of items) {
      const [row] = await q.query<OutboxRow>(
        `INSERT INTO outbox (incident_id, channel, recipient, action, dedup_key, state, created_at, next_attempt_at, muted_reason, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) RETURNING *`,
        [
          incidentId,
          n.channel,
          n.recipient ?? null,
          n.action,
          n.dedupKey,
          n.mutedReason === undefined ? 'pending' : 'muted',
          at,
          n.mutedReason ?? null,
          JSON.stringify(n.payload),
        ],
      );
      out.push(outboxOf(row!));
    }
    return out;
  };

  const apply = async (tx: Queryable, change: IncidentChange): Promise<Incident> => {
    let id = change.id;
    if (id === undefined) {
      if (!change.open) throw new Error('an incident change needs an id or an incident to open');
      const o = change.open;
      id = (
        await tx.query<{ id: number }>(
          `INSERT INTO incidents (probe_id, rule, kind, severity, state, summary, labels, channels, opened_at, last_error, flapping, notified)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
          [
            o.probeId,
            o.rule,
            o.kind,
            o.severity,
            o.state,
            o.summary,
            JSON.stringify(o.labels),
            JSON.stringify(o.channels),
            o.openedAt,
            o.lastError === undefined ? null : JSON.stringify(o.lastError),
            o.flapping,
            o.notified,
          ],
        )
      )[0]!.id;
    }
    const patch = incidentPatch(change.patch, 'native');
    if (patch.length > 0) {
      const sets = patch.map((p, i) => `${p.column} = $${i + 1}`).join(', ');
      await tx.run(`UPDATE incidents SET ${sets} WHERE id = $${patch.length + 1}`, [...patch.map((p) => p.value), id]);
    }
    await tx.run('INSERT INTO incident_events (incident_id, at, type, actor, detail) VALUES ($1, $2, $3, $4, $5)', [
      id,
      change.event.at,
      change.event.type,
      change.event.actor,
      change.event.detail ?? null,
    ]);
    const row = await getIncident(tx, id);
    if (row === undefined) throw new Error(`incident ${id} does not exist`);
    const after = incidentOf(row);
    await queue(tx, id, typeof change.notify === 'function' ? change.notify(after) : change.notify, change.event.at);
    if (change.escalation) {
      const st = change.escalation.state;
      if (change.escalation.policy !== undefined) {
        await tx.run('INSERT INTO escalations (incident_id, policy, pass, step, next_due_at, reached) VALUES ($1, $2, $3, $4, $5, $6)', [
          id,
          JSON.stringify(change.escalation.policy),
          st.pass,
          st.step,
          st.nextDueAt,
          st.reached,
        ]);
      } else {
        await tx.run('UPDATE escalations SET pass = $1, step = $2, next_due_at = $3, reached = $4 WHERE incident_id = $5', [
          st.pass,
          st.step,
          st.nextDueAt,
          st.reached,
          id,
        ]);
      }
    }
    return after;
  };

  return {
    applyIncidentChange: (change) => db.withTransaction((tx) => apply(tx, change)),
    async incident(id) {
      const row = await getIncident(db, id);
      return row ? incidentOf(row) : undefined;
    },
    unresolvedIncidents: async () =>
      (await db.query<IncidentRow>(`SELECT * FROM incidents WHERE state <> 'resolved' ORDER BY id`)).map(incidentOf),
    async incidents(q) {
      const { where, args } = filters([
        ['state = ?', q.state || undefined],
        ['probe_id = ?', q.probeId || undefined],
        ['(resolved_at IS NULL OR resolved_at >= ?)', q.since],
        ['opened_at < ?', q.until],
      ]);
      const sql = `SELECT * FROM incidents ${where} ORDER BY opened_at DESC, id DESC LIMIT $${args.length + 1}`;
      return (await db.query<IncidentRow>(sql, [...args, Math.min(q.limit ?? 100, 1000)])).map(incidentOf);
    },
    deliveries: async (from, to) =>
      (
        await db.query<OutboxRow>(
          `SELECT id, incident_id, channel, recipient, action, dedup_key, state, attempts, created_at, next_attempt_at,
                  delivered_at, last_error, muted_reason, NULL AS ref, '{}' AS payload
             FROM outbox WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id`,
          [from, to],
        )
      ).map((r) => {
        const { payload: _p, ref: _r, ...item } = outboxOf(r);
        return item;
      }),
    timeline: async (incidentId) =>
      (await db.query<IncidentEventRow>('SELECT * FROM incident_events WHERE incident_id = $1 ORDER BY id', [incidentId])).map(
        incidentEventOf,
      ),
    notifications: async (incidentId) =>
      (await db.query<OutboxRow>('SELECT * FROM outbox WHERE incident_id = $1 ORDER BY id', [incidentId])).map(outboxOf),
    enqueue: (items, at) =>
      db.withTransaction(async (tx) => {
        const out: OutboxItem[] = [];
        for (const i of items) out.push(...(await queue(tx, i.incidentId, [i], at)));
        return out;
      }),
    async due(now, limit, claim) {
      if (claim === undefined)
        return (await db.query<OutboxRow>(`${DUE} ORDER BY o.next_attempt_at, o.id LIMIT $2`, [now, limit])).map(outboxOf);
      // Pick and claim in one statement. SKIP LOCKED: an instance claiming at the same moment passes
      // over the rows this one has locked instead of waiting for them, and takes the next ones; a row
      // it reaches after this one committed is re-checked on its new version and left out, claimed.
      const rows = await db.query<OutboxRow>(
        `WITH picked AS (
           ${DUE} AND (o.claimed_until IS NULL OR o.claimed_until <= $1 OR o.claimed_by = $3)
           ORDER BY o.next_attempt_at, o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED)
         UPDATE outbox u SET claimed_by = $3, claimed_until = $4 FROM picked WHERE u.id = picked.id RETURNING u.*`,
        [now, limit, claim.by, now + claim.forMs],
      );
      // UPDATE … RETURNING keeps no order.
      return rows.sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.id - b.id).map(outboxOf);
    },
    async outboxItem(id) {
      const row = (await db.query<OutboxRow>('SELECT * FROM outbox WHERE id = $1', [id]))[0];
      return row ? outboxOf(row) : undefined;
    },
    async markDelivered(id, at, ref, claimant) {
      await db.run(
        `UPDATE outbox SET state = 'delivered', delivered_at = $1, attempts = attempts + 1, ref = $2, last_error = NULL, ${UNCLAIM}
          WHERE id = $3 ${FENCE(4)}`,
        [at, ref === undefined ? null : JSON.stringify(ref), id, claimant ?? null],
      );
    },
    async markRetry(id, _at, error, nextAttemptAt, claimant) {
      await db.run(
        `UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, ${UNCLAIM} WHERE id = $3 ${FENCE(4)}`,
        [error, nextAttemptAt, id, claimant ?? null],
      );
    },
    async markDead(id, _at, error, claimant) {
      await db.run(`UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = $1, ${UNCLAIM} WHERE id = $2 ${FENCE(3)}`, [
        error,
        id,
        claimant ?? null,
      ]);
    },
    async markHeld(id, at, reason, claimant) {
      await db.run(`UPDATE outbox SET held_at = coalesce(held_at, $1), last_error = $2, ${UNCLAIM} WHERE id = $3 ${FENCE(4)}`, [
        at,
        reason,
        id,
        claimant ?? null,
      ]);
    },
    async releaseHeld(channels, at) {
      if (channels.length === 0) return 0;
      return db.run(
        `UPDATE outbox SET held_at = NULL, released_at = $1, next_attempt_at = $1
          WHERE held_at IS NOT NULL AND state = 'pending' AND channel = ANY($2::text[])`,
        [at, [...channels]],
      );
    },
    held: () =>
      db.query<HeldPages>(
        `SELECT channel, count(*)::int AS count, min(held_at) AS since FROM outbox WHERE held_at IS NOT NULL AND state = 'pending'
          GROUP BY channel ORDER BY channel`,
      ),
    async refFor(incidentId, channel, recipient) {
      const row = (
        await db.query<{ ref: string }>(
          // The newest: a channel hands back where its message now lives (Slack re-posts a deleted one).
          `SELECT ref FROM outbox WHERE incident_id = $1 AND channel = $2 AND recipient IS NOT DISTINCT FROM $3
           AND state = 'delivered' AND ref IS NOT NULL ORDER BY id DESC LIMIT 1`,
          [incidentId, channel, recipient ?? null],
        )
      )[0];
      return row ? JSON.parse(row.ref) : undefined;
    },
    async paged(incidentId) {
      const rows = await db.query<{ channel: string; recipient: string | null }>(
        `SELECT channel, recipient, min(id) AS first FROM outbox WHERE incident_id = $1 AND action IN ('trigger', 'remind') AND state <> 'muted'
         GROUP BY channel, recipient ORDER BY first`,
        [incidentId],
      );
      return rows.map((r) => ({ channel: r.channel, ...(r.recipient !== null ? { recipient: r.recipient } : {}) }));
    },
    async outboxStats(now) {
      const r = (
        await db.query<{ pending: number; oldest: number | null; dead: number }>(
          `SELECT count(*) FILTER (WHERE state = 'pending') AS pending, min(created_at) FILTER (WHERE state = 'pending') AS oldest,
                count(*) FILTER (WHERE state = 'dead') AS dead FROM outbox`,
        )
      )[0]!;
      return { pending: r.pending, oldestPendingMs: r.oldest === null ? 0 : now - r.oldest, dead: r.dead };
    },
    async escalation(incidentId) {
      const r = (await db.query<EscalationDbRow>('SELECT * FROM escalations WHERE incident_id = $1', [incidentId]))[0];
      return r ? escalationOf(r) : undefined;
    },
    dueEscalations: async (now) =>
      (
        await db.query<EscalationDbRow>(
          `SELECT e.* FROM escalations e JOIN incidents i ON i.id = e.incident_id
           WHERE e.next_due_at IS NOT NULL AND e.next_due_at <= $1 AND i.state = 'open' ORDER BY e.next_due_at, e.incident_id`,
          [now],
        )
      ).map(escalationOf),
    async addOverride(o) {
      const { id } = (
        await db.query<{ id: number }>(
          'INSERT INTO oncall_overrides (schedule, person, starts_at, ends_at, author, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id',
          [o.schedule, o.person, o.startsAt, o.endsAt, o.author, o.createdAt],
        )
      )[0]!;
      return { ...o, id };
    },
    overrides: async (now) =>
      (await db.query<OverrideRow>('SELECT * FROM oncall_overrides WHERE ends_at > $1 ORDER BY starts_at, id', [now])).map(overrideOf),
    deleteOverride: async (id) => (await db.run('DELETE FROM oncall_overrides WHERE id = $1', [id])) > 0,
    async addSilence(s) {
      const { id } = (
        await db.query<{ id: number }>(
          'INSERT INTO silences (probes, labels, starts_at, ends_at, author, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id',
          [JSON.stringify(s.probes), JSON.stringify(s.labels), s.startsAt, s.endsAt, s.author, s.comment, s.createdAt],
        )
      )[0]!;
      return { ...s, id };
    },
    async silences(now) {
      const rows =
        now === undefined
          ? await db.query<SilenceRow>('SELECT * FROM silences ORDER BY id')
          : await db.query<SilenceRow>('SELECT * FROM silences WHERE ends_at > $1 ORDER BY id', [now]);
      return rows.map(silenceOf);
    },
    // Ending a silence keeps it in the record: it stops matching from now on.
    deleteSilence: async (id, now) =>
      (await db.run('UPDATE silences SET ends_at = LEAST(ends_at, $1) WHERE id = $2 AND ends_at > $1', [now, id])) > 0,
  };
}
