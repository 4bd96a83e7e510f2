/** Writes schema/sandstack.schema.json from the zod config schema (`npm run schema`). */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from '../src/config/schema.ts';

const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'sandstack.schema.json');
writeFileSync(out, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
console.log(`wrote ${out}`);
