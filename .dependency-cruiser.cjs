/**
 * vigil's layer rules, checked in CI (`npm run lint:deps`, part of `npm test`):
 * - no cycles between modules;
 * - probers depend on lib/ only (a probe kind is one file plus a registry line, and knows nothing of
 *   stores, alerting or HTTP serving);
 * - a folder is entered through its index.ts: code in src/a/ imports src/b/index.ts, never src/b/x.ts
 *   (lib/ is the exception: a toolbox of leaf modules, each imported by itself);
 * - only server/ imports Fastify.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes both ends load (and change) together.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'probers-use-lib-only',
      severity: 'error',
      comment: 'A prober turns a spec into a result; it reaches the rest of vigil only through lib/.',
      from: { path: '^src/probers/' },
      to: { path: '^src/', pathNot: ['^src/probers/', '^src/lib/'] },
    },
    {
      name: 'cross-folder-through-index',
      severity: 'error',
      comment: "Another folder's insides are its own: import its index.ts.",
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$', '^src/lib/'] },
    },
    {
      name: 'root-through-index',
      severity: 'error',
      comment: 'The composition root and main.ts reach each folder through its index.ts too.',
      from: { path: '^src/[^/]+\\.ts$' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/[^/]+/index\\.ts$', '^src/lib/'] },
    },
    {
      name: 'fastify-in-server-only',
      severity: 'error',
      comment: 'HTTP serving is one folder: the rest of vigil does not know Fastify.',
      from: { path: '^src/', pathNot: '^src/server/' },
      to: { path: 'node_modules/(fastify|@fastify)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
