import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// docker-compose.yml against the Compose Specification's own JSON schema (test/fixtures/README.md
// says where the copy comes from). No Compose engine runs here: this checks the file's shape (keys,
// types, `configs.content`), not that `docker compose up` starts it.

const ROOT = path.resolve(import.meta.dirname, '../..');
const schema = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/compose-spec.json'), 'utf8')) as object;
// The schema names draft-07 by its https address; ajv ships that meta-schema under the http one.
const draft7 = createRequire(import.meta.url)('ajv/dist/refs/json-schema-draft-07.json') as object;
const ajv = new Ajv({ allErrors: true, strict: false }).addMetaSchema({ ...draft7, $id: 'https://json-schema.org/draft-07/schema' });
const validate = ajv.compile(schema);

/** The schema's problems with a Compose document, as `path: message` lines (none when valid). */
function problems(doc: unknown): string[] {
  if (validate(doc)) return [];
  return (validate.errors ?? []).map(
    (e: ErrorObject) =>
      `${e.instancePath || '/'}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${e.params.additionalProperty})` : ''}`,
  );
}

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, Record<string, unknown>>;
  };

  it('is valid against the Compose Specification schema', () => {
    expect(problems(compose)).toEqual([]);
  });

  it('the same schema rejects a misspelt key and a wrong type, naming where', () => {
    const broken = structuredClone(compose);
    (broken.services.vigil as Record<string, unknown>).stop_grace = '30s';
    (broken.services.prometheus as Record<string, unknown>).ports = 9090;
    const found = problems(broken);
    expect(found).toContain('/services/vigil: must NOT have additional properties (stop_grace)');
    expect(found).toContain('/services/prometheus/ports: must be array');
  });
});
