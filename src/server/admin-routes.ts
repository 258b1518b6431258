import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../lib/clock.js';
import type { AuditLog } from '../store/index.js';
import { type ApiToken, authenticate } from './auth.js';
import { instant } from './params.js';

/** What the admin routes need: the audit log to read, and a way to reload the config. */
export interface AdminRouteDeps {
  clock: Clock;
  tokens: readonly ApiToken[];
  audit: Pick<AuditLog, 'list'>;
  /**
   * Applies the config files anew; `ok: false` with every problem when they are invalid
   * (`VIGIL_ERR_CONFIG`) or change a key only a restart applies (`VIGIL_ERR_RESTART_REQUIRED`).
   */
  reload(actor: string): Promise<{ ok: true } | { ok: false; code?: string; problems: string[] }>;
}

const AuditQuery = Type.Object(
  {
    since: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    until: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    actor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  },
  { additionalProperties: false },
);

/** `GET /api/v1/audit` and `POST /api/v1/admin/reload`: admin tokens only. */
export function registerAdminRoutes(app: FastifyInstance, deps: AdminRouteDeps): void {
  app.get<{ Querystring: Static<typeof AuditQuery> }>('/api/v1/audit', { schema: { querystring: AuditQuery } }, async (req) => {
    authenticate(deps.tokens, req, 'admin');
    const entries = await deps.audit.list({
      since: instant(req.query.since, 'since'),
      until: instant(req.query.until, 'until'),
      ...(req.query.actor !== undefined ? { actor: req.query.actor } : {}),
      ...(req.query.action !== undefined ? { action: req.query.action } : {}),
      limit: req.query.limit,
    });
    return {
      entries: entries.map(({ at, ...e }) => ({ ...e, at: new Date(at).toISOString() })),
    };
  });

  app.post('/api/v1/admin/reload', async (req, reply) => {
    const caller = authenticate(deps.tokens, req, 'admin');
    const result = await deps.reload(caller.name);
    if (!result.ok) {
      // Every problem, as check-config prints them: the running config is untouched.
      return reply.status(400).send({
        ok: false,
        error: 'Bad Request',
        code: result.code ?? 'VIGIL_ERR_CONFIG',
        message:
          result.code === 'VIGIL_ERR_RESTART_REQUIRED'
            ? `config not reloaded: ${result.problems.length} change(s) only a restart applies; nothing changed, the running config stays`
            : `config not reloaded: ${result.problems.length} problem(s); the running config stays`,
        problems: result.problems,
      });
    }
    return result;
  });
}
