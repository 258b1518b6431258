// The config folder a bench child process runs vigil on: SQLite in the folder, listening on a free
// port, and `probes` http probes on `schedule` against the loopback target, spread over its addresses.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Writes the folder and returns its path; `schedule` is YAML (`"* * * * *"`, `{ every: 1s }`). */
export function probeDir(prefix, probes, port, addresses, schedule) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  writeFileSync(
    path.join(dir, 'default.yaml'),
    'service:\n  host: 127.0.0.1\n  port: 0\n  logLevel: info\nstorage:\n  sqlite:\n    path: ./vigil.db\n',
  );
  mkdirSync(path.join(dir, 'probes'));
  const lines = [];
  for (let i = 0; i < probes; i++) {
    lines.push(
      `- id: p${i}\n  kind: http\n  url: http://${addresses[i % addresses.length]}:${port}/health\n  schedule: ${schedule}\n  timeout: 10s\n`,
    );
  }
  writeFileSync(path.join(dir, 'probes', 'bench.yaml'), lines.join(''));
  return dir;
}
