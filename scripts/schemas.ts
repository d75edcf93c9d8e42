/**
 * Writes the published JSON Schemas from the same zod schemas the code validates
 * with. `npm run schemas` after changing a schema; a test fails if they drift.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { publishedSchemas } from '../src/schemas.ts';

const root = join(import.meta.dirname, '..');
for (const [file, schema] of Object.entries(publishedSchemas())) {
  await writeFile(join(root, 'schemas', file), `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote schemas/${file}`);
}
