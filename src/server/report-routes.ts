import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  type RenderedPage,
  type Report,
  type ReportQuery,
  renderReportHtml,
  renderReportMarkdown,
  renderStatusPage,
  type StatusPage,
} from '../report/index.js';
import { instant } from './params.js';

/** What the report and status page routes need: builders of their data. */
export interface ReportRouteDeps {
  report(q: ReportQuery): Promise<Report>;
  statusPage(): Promise<StatusPage>;
}

const ReportQuerySchema = Type.Object(
  {
    days: Type.Optional(Type.Integer({ minimum: 1, maximum: 400 })),
    /** ISO 8601 or epoch ms: the window's start, instead of report.launchDate. */
    from: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    // An enum, not a union of literals: ajv then says "must be equal to one of the allowed values" once.
    format: Type.Optional(Type.Unsafe<'json' | 'html' | 'markdown' | 'md'>({ type: 'string', enum: ['json', 'html', 'markdown', 'md'] })),
  },
  { additionalProperties: false },
);

/** `/?refresh=30` for a wall screen: the page reloads itself only when asked (see StatusPage.refreshSeconds). */
const StatusQuery = Type.Object({ refresh: Type.Optional(Type.Integer({ minimum: 10, maximum: 3600 })) }, { additionalProperties: false });

type Format = 'json' | 'html' | 'markdown';

/** `format=` wins; otherwise the first of HTML, Markdown or JSON the Accept header names; JSON by default. */
function formatOf(req: FastifyRequest<{ Querystring: Static<typeof ReportQuerySchema> }>): Format {
  const f = req.query.format;
  if (f !== undefined) return f === 'md' ? 'markdown' : f;
  const accept = req.headers.accept ?? '';
  const at = (type: string) => {
    const i = accept.indexOf(type);
    return i < 0 ? Number.POSITIVE_INFINITY : i;
  };
  const ranked: Array<[Format, number]> = [
    ['html', at('text/html')],
    ['markdown', at('text/markdown')],
    ['json', Math.min(at('application/json'), at('*/*'))],
  ];
  const best = ranked.sort((a, b) => a[1] - b[1])[0]!;
  return Number.isFinite(best[1]) ? best[0] : 'json';
}

/** Sends a page with its CSP and headers that keep it from being sniffed, framed, cached or followed by referrers. */
export function sendPage(reply: FastifyReply, page: RenderedPage) {
  return reply
    .header('content-security-policy', page.csp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(page.body);
}

/** `GET /api/v1/report` (JSON, HTML, Markdown) and the status page at `/`. Reads only. */
export function registerReportRoutes(app: FastifyInstance, deps: ReportRouteDeps): void {
  app.get<{ Querystring: Static<typeof ReportQuerySchema> }>(
    '/api/v1/report',
    { schema: { querystring: ReportQuerySchema } },
    async (req, reply) => {
      const from = instant(req.query.from, 'from');
      const report = await deps.report({
        ...(req.query.days !== undefined ? { days: req.query.days } : {}),
        ...(from !== undefined ? { from } : {}),
      });
      const format = formatOf(req);
      reply.header('vary', 'accept');
      if (format === 'html') return sendPage(reply, renderReportHtml(report));
      if (format === 'markdown') return reply.type('text/markdown; charset=utf-8').send(renderReportMarkdown(report));
      return report;
    },
  );

  app.get<{ Querystring: Static<typeof StatusQuery> }>('/', { schema: { querystring: StatusQuery } }, async (req, reply) => {
    const page = await deps.statusPage();
    const { refresh } = req.query;
    return sendPage(reply, renderStatusPage(refresh === undefined ? page : { ...page, refreshSeconds: refresh }));
  });
}
