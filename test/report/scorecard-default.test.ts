import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { memoryLogger } from '../helpers/context.js';

// A default install (config/default.yaml and the shipped probes/) judged by its own scorecard:
// every shipped paging alert links a runbook, and the runbook it links is served by vigil itself.

const ROOT = path.resolve(import.meta.dirname, '../..');
type Alerting = { id: string; alert?: { severity: string; runbook?: string } };

describe('the default install', () => {
  let app: App;
  let base: string;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vigil-default-'));
    // Only where it writes moves to a temp folder; everything else is the repository's default.
    writeFileSync(path.join(dir, 'local.yaml'), `storage: { sqlite: { path: ${dir}/vigil.db } }\nbackup: { enabled: false }\n`);
    const config = loadConfig({ cwd: ROOT, env: { VIGIL_CONFIG: path.join(dir, 'local.yaml') } });
    app = createApp({ config, logger: memoryLogger().logger });
    base = await app.server.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await app.server.close();
    await app.store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("passes its own scorecard's runbooks item: every shipped critical or error alert links a runbook", async () => {
    const probes = loadConfig({ cwd: ROOT, env: { VIGIL_CONFIG: path.join(dir, 'local.yaml') } }).probes as readonly Alerting[];
    const paging = probes.filter((p) => p.alert && ['critical', 'error'].includes(p.alert.severity));
    expect(paging.map((p) => p.id)).toContain('vigil-health');
    const report = (await (await fetch(`${base}/api/v1/report`)).json()) as { scorecard: { items: Array<{ id: string; status: string }> } };
    expect(report.scorecard.items.find((i) => i.id === 'runbooks')).toMatchObject({ status: 'pass' });
  });

  it('serves the runbook each shipped alert links, and the section it points to exists', async () => {
    const probes = loadConfig({ cwd: ROOT, env: { VIGIL_CONFIG: path.join(dir, 'local.yaml') } }).probes as readonly Alerting[];
    for (const p of probes.filter((x) => x.alert?.runbook)) {
      const link = p.alert?.runbook as string;
      const [where, anchor] = link.split('#');
      const res = await fetch(`${base}${where}`);
      expect(res.status, link).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/markdown; charset=utf-8');
      const text = await res.text();
      expect(text).toBe(readFileSync(path.join(ROOT, 'docs', (where as string).slice(1)), 'utf8'));
      // GitHub's anchor of each heading: lower case, punctuation dropped, spaces to dashes.
      const anchors = [...text.matchAll(/^#+ (.+)$/gm)].map((m) =>
        (m[1] as string)
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      );
      expect(anchors, link).toContain(anchor);
    }
  });

  it('serves only the files in docs/runbooks, by exact name', async () => {
    for (const page of ['nope.md', '__proto__', '..%2Fpackage.json', '..%2F..%2Fpackage.json', 'README']) {
      const res = await fetch(`${base}/runbooks/${page}`);
      expect(res.status, page).toBe(404);
      expect(await res.json()).toMatchObject({ code: 'VIGIL_ERR_NOT_FOUND' });
    }
  });
});
