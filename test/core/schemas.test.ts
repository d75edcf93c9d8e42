import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { publishedSchemas } from '../../src/schemas.ts';
import { ROOT } from '../helpers.ts';

describe('published JSON Schemas', () => {
  for (const [file, schema] of Object.entries(publishedSchemas())) {
    it(`schemas/${file} matches the schema the code validates with (run \`npm run schemas\` if this fails)`, async () => {
      const committed = JSON.parse(await readFile(join(ROOT, 'schemas', file), 'utf8')) as unknown;
      assert.deepEqual(committed, JSON.parse(JSON.stringify(schema)));
    });
  }
});
