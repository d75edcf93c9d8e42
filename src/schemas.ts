import { configJsonSchema } from './core/config.ts';
import { policyJsonSchema } from './core/policy/schema.ts';

/** Every JSON Schema Custody publishes, by file name under `schemas/`. */
export function publishedSchemas(): Record<string, unknown> {
  return {
    'custody.schema.json': { $id: 'https://custody.dev/schemas/custody.schema.json', ...(configJsonSchema() as object) },
    'policy.schema.json': { $id: 'https://custody.dev/schemas/policy.schema.json', ...(policyJsonSchema() as object) },
  };
}
