import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { artifactFile, keptFile } from '../lib/artifacts.js';
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

const ByKey = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._-]+$' }),
  key: Type.String({ minLength: 1, maxLength: 64 }),
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
      return send(reply, file, `run-${id}-${name}`, `artifact "${name}" of run ${id}`);
    },
  );

  // The link an incident's page carries: made when the incident opens, before the failing run has
  // an id (runs are written in batches). The key names one run's folder; a key or name of any other
  // shape, or a probe id that is a path step, is a 404 before any file is looked at.
  app.get<{ Params: { id: string; key: string; name: string } }>(
    '/api/v1/probes/:id/artifacts/:key/:name',
    { schema: { params: ByKey } },
    async (req, reply) => {
      const { id: probe, key, name } = req.params;
      const file = keptFile(deps.dataDir, probe, key, name);
      if (file === undefined) throw new VigilError('VIGIL_ERR_NOT_FOUND', `probe "${probe}" kept no artifact "${key}/${name}"`);
      return send(reply, file, `${probe}-${key}-${name}`, `artifact "${key}/${name}" of probe "${probe}"`);
    },
  );
}

async function send(reply: FastifyReply, file: string, filename: string, what: string) {
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    throw new VigilError('VIGIL_ERR_NOT_FOUND', `${what} is gone (pruned with old runs?)`);
  }
  const name = path.basename(file);
  const type = TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream';
  return reply
    .type(type)
    .header('content-disposition', `${type === 'image/png' ? 'inline' : 'attachment'}; filename="${filename}"`)
    .header('x-content-type-options', 'nosniff')
    .send(body);
}
