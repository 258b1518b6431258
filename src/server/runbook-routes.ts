import { readdir, readFile } from 'node:fs/promises';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { VigilError } from '../lib/errors.js';

/** Where vigil's own runbooks are: the repository's docs/runbooks, also in the image. */
export interface RunbookRouteDeps {
  dir: string;
}

const Page = Type.Object({ page: Type.String({ minLength: 1, maxLength: 128 }) });

/**
 * `GET /runbooks/:page`: vigil's own runbooks, served as the Markdown they are written in, so an
 * alert can link one (`alert.runbook: /runbooks/README.md#…`, made absolute with alerting.baseUrl)
 * and a page reaches the instructions wherever vigil runs. Only files listed in the folder are
 * served, looked up by exact name: no path from the request ever reaches the file system.
 */
export function registerRunbookRoutes(app: FastifyInstance, deps: RunbookRouteDeps): void {
  let pages: Promise<Map<string, string>> | undefined;
  const list = () => {
    pages ??= readdir(deps.dir)
      .then((names) => new Map(names.filter((n) => n.endsWith('.md')).map((n) => [n, `${deps.dir}/${n}`])))
      .catch(() => new Map<string, string>());
    return pages;
  };
  app.get<{ Params: { page: string } }>('/runbooks/:page', { schema: { params: Page } }, async (req, reply) => {
    const file = (await list()).get(req.params.page);
    if (file === undefined) throw new VigilError('VIGIL_ERR_NOT_FOUND', `no runbook "${req.params.page}"`);
    return reply.type('text/markdown; charset=utf-8').send(await readFile(file, 'utf8'));
  });
}
