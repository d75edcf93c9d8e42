import { configJsonSchema } from './core/config.ts';
import { openApiDocument } from './server/app.ts';
import { policyJsonSchema } from './core/policy/schema.ts';

/** Every JSON Schema Custody publishes, by file name under `schemas/`. */
export function publishedSchemas(): Record<string, unknown> {
  return {
    'custody.schema.json': { $id: 'https://custody.dev/schemas/custody.schema.json', ...(configJsonSchema() as object) },
    // The HTTP API, generated from the operation registry: a new operation changes this file (`npm run schemas`).
    'openapi.json': openApiDocument(),
    'policy.schema.json': { $id: 'https://custody.dev/schemas/policy.schema.json', ...(policyJsonSchema() as object) },
  };
}
