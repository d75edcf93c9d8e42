import { z } from 'zod';
import { ROLES } from './identity.ts';
import { parseYaml } from './yaml.ts';

/**
 * `custody.yaml`: the workspace configuration. This schema is the single source
 * for validation and for the published JSON Schema (`schemas/custody.schema.json`).
 */
const GiB = 1024 * 1024 * 1024;

export const LimitsSchema = z
  .strictObject({
    artifactBytes: z.number().int().positive().default(64 * GiB).describe('Largest artifact file `artifact add` accepts, in bytes.'),
    evidenceBytes: z.number().int().positive().default(16 * 1024 * 1024).describe('Largest bundle, envelope or statement file read, in bytes.'),
    configBytes: z.number().int().positive().default(1024 * 1024).describe('Largest YAML file (config, policy) read, in bytes.'),
  })
  .describe('Size limits on everything Custody reads.');

export const StoreSchema = z
  .strictObject({
    driver: z.enum(['sqlite', 'postgres']).default('sqlite').describe('sqlite: embedded, in the workspace. postgres: shared by several servers.'),
    urlEnv: z.string().default('CUSTODY_DATABASE_URL').describe('Environment variable holding the PostgreSQL URL (never the URL itself: it may hold a password).'),
  })
  .describe('Where state is kept.');

export const LogSchema = z
  .strictObject({
    origin: z.string().min(1).max(256).regex(/^[^\s+]+$/, 'no spaces or "+"').describe('Checkpoint origin line, unique to this log (C2SP tlog-checkpoint).'),
    checkpointInterval: z
      .string()
      .regex(/^\d{1,6}(s|m|h|d|w)$/, 'a duration such as 1s, 30s or 5m')
      .default('1s')
      .describe('Sign a checkpoint at most this often in a long-running process (e.g. 1s, 30s); a CLI command signs once, as it ends.'),
    checkpointKey: z.string().optional().describe('Name of the log-checkpoint key that signs checkpoints.'),
  })
  .describe('The tamper-evident log.');

export const ConfigSchema = z
  .strictObject({
    version: z.literal(1).describe('Config format version.'),
    identity: z.string().optional().describe('Who acts in local mode, unless --as says otherwise.'),
    roles: z
      .record(z.string(), z.array(z.enum(ROLES)))
      .default({})
      .describe('Roles held by each identity in local mode: builder, signer, approver, deployer, policy-admin, key-admin, auditor.'),
    store: StoreSchema.prefault({}),
    limits: LimitsSchema.prefault({}),
    log: LogSchema,
    requireSignedPolicies: z.boolean().default(true).describe('Use only published, signature-verified policy versions.'),
    environments: z.record(z.string(), z.unknown()).default({}).describe('The promotion graph: see the policy documentation.'),
  })
  .describe('Custody workspace configuration (custody.yaml).');

export type Config = z.infer<typeof ConfigSchema>;

export function parseConfig(text: string, file: string): Config {
  return parseYaml(text, ConfigSchema, file, 'CONFIG_INVALID').value;
}

export function configJsonSchema(): unknown {
  return z.toJSONSchema(ConfigSchema, { io: 'input', target: 'draft-2020-12' });
}
