import { readFile } from 'node:fs/promises';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { artifactFile } from '../lib/artifacts.js';
import { VigilError } from '../lib/errors.js';
import type { Store } from '../store/index.js';

/** Where runs keep their files, and the store that says which run kept which. */
export interface ArtifactRouteDeps {
  dataDir: string;
  store: Pick<Store, 'runsAfter' | 'flush'>;
}

const Params = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  name: Type.String({ minLength: 1, maxLength: 64 }),
});

const TYPES: Record<string, string> = { '.png': 'image/png', '.zip': 'application/zip' };

/**
 * `GET /api/v1/runs/:id/artifacts/:name`: a file a run kept (a failed browser run's
 * `screenshot.png` and Playwright `trace.zip`), by the run's id as `/api/v1/probes/:id/runs` shows it.
 * Only a name the run's `details.artifacts` lists is served; anything else, or a file pruned with
 * the runs, is a 404. Reads need the viewer role when `auth.reads` is `token`, like every read.
 */
export function registerArtifactRoutes(app: FastifyInstance, deps: ArtifactRouteDeps): void {
  app.get<{ Params: { id: number; name: string } }>(
    '/api/v1/runs/:id/artifacts/:name',
    { schema: { params: Params } },
    async (req, reply) => {
      const { id, name } = req.params;
      await deps.store.flush().catch(() => {});
      const [run] = await deps.store.runsAfter(id - 1, 1);
      const file = run?.id === id ? artifactFile(deps.dataDir, run.probeId, run.details, name) : undefined;
      if (file === undefined) throw new VigilError('VIGIL_ERR_NOT_FOUND', `run ${id} kept no artifact "${name}"`);
      let body: Buffer;
      try {
        body = await readFile(file);
      } catch {
        throw new VigilError('VIGIL_ERR_NOT_FOUND', `artifact "${name}" of run ${id} is gone (pruned with old runs?)`);
      }
      const type = TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream';
      return reply
        .type(type)
        .header('content-disposition', `${type === 'image/png' ? 'inline' : 'attachment'}; filename="run-${id}-${name}"`)
        .header('x-content-type-options', 'nosniff')
        .send(body);
    },
  );
}
