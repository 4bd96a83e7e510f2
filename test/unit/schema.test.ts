import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../src/config/schema.js';

const SCHEMA_FILE = fileURLToPath(new URL('../../schema/sandstack.schema.json', import.meta.url));

describe('schema/sandstack.schema.json', () => {
  it('matches configJsonSchema() (run `npm run schema` after changing src/config/schema.ts)', async () => {
    const committed: unknown = JSON.parse(await readFile(SCHEMA_FILE, 'utf8'));
    expect(committed).toEqual(configJsonSchema());
  });

  it('is formatted as the generator writes it', async () => {
    const text = await readFile(SCHEMA_FILE, 'utf8');
    expect(text).toBe(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

  it('describes the config with its defaults and closed objects', () => {
    const schema = configJsonSchema() as {
      type: string;
      additionalProperties: boolean;
      properties: Record<string, { properties?: Record<string, { default?: unknown; items?: { required?: string[] } }> }>;
    };
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties).sort()).toEqual(['compose', 'data', 'engine', 'env', 'evidence', 'external', 'gate', 'instance', 'observability', 'policy', 'ports', 'secrets', 'services', 'snapshot', 'tests', 'version']);
    expect(schema.properties.ports?.properties?.range?.default).toEqual({ from: 20000, to: 29999 });
    expect(schema.properties.gate?.properties?.timeoutSeconds?.default).toBe(180);
    expect(schema.properties.ports?.properties?.publish?.items?.required).toEqual(['service', 'port']);
  });
});
