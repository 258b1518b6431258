import type Database from 'better-sqlite3';
import { type AuditRow, auditEntryOf } from './rows.js';
import type { AuditLog } from './types.js';

/** The audit log in SQLite. A write here is small and synchronous: it lands before the response does. */
export function createSqliteAuditLog(db: Database.Database): AuditLog {
  const insert = db.prepare(
    'INSERT INTO audit (at, actor, action, target, request_id, result, status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const prune = db.prepare('DELETE FROM audit WHERE at < ?');
  return {
    async record(e) {
      insert.run(e.at, e.actor, e.action, e.target ?? null, e.requestId ?? null, e.result, e.status, e.detail ?? null);
    },
    async list(q) {
      const where: string[] = [];
      const args: unknown[] = [];
      const filter = (sql: string, value: unknown) => {
        if (value === undefined) return;
        where.push(sql);
        args.push(value);
      };
      filter('at >= ?', q.since);
      filter('at < ?', q.until);
      filter('actor = ?', q.actor);
      filter('action = ?', q.action);
      const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ?`;
      return db
        .prepare<unknown[], AuditRow>(sql)
        .all(...args, Math.min(q.limit ?? 100, 1000))
        .map(auditEntryOf);
    },
    prune: async (before) => prune.run(before).changes,
  };
}
