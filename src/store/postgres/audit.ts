import { type AuditRow, auditEntryOf } from '../rows.js';
import type { AuditLog } from '../types.js';
import type { Queryable } from './db.js';

/** The audit log in PostgreSQL: `record` resolves once the entry is written, so the route can answer after it. */
export function createPostgresAuditLog(db: Queryable): AuditLog {
  return {
    async record(e) {
      await db.run(
        'INSERT INTO audit (at, actor, action, target, request_id, result, status, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [e.at, e.actor, e.action, e.target ?? null, e.requestId ?? null, e.result, e.status, e.detail ?? null],
      );
    },
    async list(q) {
      const where: string[] = [];
      const args: unknown[] = [];
      const filter = (sql: string, value: unknown) => {
        if (value === undefined) return;
        args.push(value);
        where.push(`${sql} $${args.length}`);
      };
      filter('at >=', q.since);
      filter('at <', q.until);
      filter('actor =', q.actor);
      filter('action =', q.action);
      args.push(Math.min(q.limit ?? 100, 1000));
      const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT $${args.length}`;
      return (await db.query<AuditRow>(sql, args)).map(auditEntryOf);
    },
    prune: (before) => db.run('DELETE FROM audit WHERE at < $1', [before]),
  };
}
