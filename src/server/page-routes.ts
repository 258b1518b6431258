import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  type Badge,
  type BadgeKind,
  type ProbePage,
  type PublicStatus,
  renderBadgeSvg,
  renderNotFoundPage,
  renderProbePage,
  renderPublicStatus,
} from '../report/index.js';
import { sendPage } from './report-routes.js';

/** What the probe pages, the public status page and the badges need. */
export interface PageRouteDeps {
  /** One probe's page, or undefined when no probe has the id (looked up as a value, never as a key of an object). */
  probePage(id: string): Promise<ProbePage | undefined>;
  /** The status page for customers, or undefined when config has no `statusPage`. */
  publicStatus(): Promise<PublicStatus | undefined>;
  /** A probe's badge, or undefined when no probe has the id. */
  badge(id: string, kind: BadgeKind, days: number): Promise<Badge | undefined>;
  /** Whether `statusPage.public` is true now (read per request: a reload changes it). */
  statusPublic(): boolean;
  /** Whether the probe is on the status page while it is public: its badges need no token then. */
  publicProbe(id: string): boolean;
}

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const UptimeQuery = Type.Object({ days: Type.Integer({ minimum: 1, maximum: 365, default: 30 }) }, { additionalProperties: false });
const NoQuery = Type.Object({}, { additionalProperties: false });

/** A badge's path exactly: anything else under `/badge/` (a 404 to be) is not waved through. */
const BADGE_PATH = /^\/badge\/([^/]+)\/(?:status\.svg|uptime\.svg|latency\.svg|shields\.json)$/;

/**
 * Paths open without a token even when reads need one: `/status` while it is public, and the badges
 * of the probes it shows. Anything else on those prefixes stays behind the read token.
 */
export function isPublicPage(deps: Pick<PageRouteDeps, 'statusPublic' | 'publicProbe'>, path: string): boolean {
  if (!deps.statusPublic()) return false;
  if (path === '/status') return true;
  const m = BADGE_PATH.exec(path);
  if (!m) return false;
  let id: string;
  try {
    id = decodeURIComponent(m[1]!);
  } catch {
    return false;
  }
  return deps.publicProbe(id);
}

function notFound(reply: FastifyReply, message: string) {
  return sendPage(reply.status(404), renderNotFoundPage(message));
}

// Short: a badge in a README is fetched through caches (GitHub's camo) and should follow the probe within a minute.
const BADGE_CACHE = 'max-age=60';

function sendBadge(reply: FastifyReply, badge: Badge, open: boolean) {
  return reply
    .header('cache-control', open ? `public, ${BADGE_CACHE}` : `private, ${BADGE_CACHE}`)
    .header('content-security-policy', "default-src 'none'")
    .header('x-content-type-options', 'nosniff')
    .type('image/svg+xml; charset=utf-8')
    .send(renderBadgeSvg(badge));
}

/** `/probes/:id`, `/status` and `/badge/:id/…`: pages for people and badges for READMEs. Reads only. */
export function registerPageRoutes(app: FastifyInstance, deps: PageRouteDeps): void {
  app.get<{ Params: Static<typeof IdParams> }>('/probes/:id', { schema: { params: IdParams } }, async (req, reply) => {
    const page = await deps.probePage(req.params.id);
    if (page === undefined) return notFound(reply, `No probe has the id “${req.params.id}”.`);
    return sendPage(reply, renderProbePage(page));
  });

  app.get('/status', async (_req, reply) => {
    const page = await deps.publicStatus();
    if (page === undefined) return notFound(reply, 'No status page is configured: add statusPage to the config.');
    return sendPage(reply, renderPublicStatus(page));
  });

  const badgeRoute = (kind: BadgeKind, file: string) =>
    app.get<{ Params: Static<typeof IdParams>; Querystring: { days?: number } }>(
      `/badge/:id/${file}`,
      { schema: { params: IdParams, querystring: kind === 'uptime' ? UptimeQuery : NoQuery } },
      async (req, reply) => {
        const badge = await deps.badge(req.params.id, kind, req.query.days ?? 30);
        if (badge === undefined) {
          return reply
            .status(404)
            .send({ error: 'Not Found', code: 'VIGIL_ERR_NOT_FOUND', message: `no probe with id "${req.params.id}"` });
        }
        const open = deps.statusPublic() && deps.publicProbe(req.params.id);
        if (file.endsWith('.json')) {
          return reply.header('cache-control', open ? `public, ${BADGE_CACHE}` : `private, ${BADGE_CACHE}`).send(badge);
        }
        return sendBadge(reply, badge, open);
      },
    );
  badgeRoute('status', 'status.svg');
  badgeRoute('uptime', 'uptime.svg');
  badgeRoute('latency', 'latency.svg');
  badgeRoute('status', 'shields.json');
}
