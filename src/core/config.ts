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
    checkpointInterval: z.string().default('1s').describe('Sign a checkpoint at most this often (e.g. 1s, 30s).'),
    checkpointKey: z.string().optional().describe('Name of the log-checkpoint key that signs checkpoints.'),
  })
  .describe('The tamper-evident log.');

const ENV_NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;
const EnvNameSchema = z.string().regex(ENV_NAME_RE, 'lowercase letters, digits and "-", starting with a letter');

export const EnvironmentSchema = z
  .strictObject({
    description: z.string().max(1024).optional(),
    from: z.array(EnvNameSchema).max(32).default([]).describe('Environments an artifact may be promoted from into this one (none: a root, e.g. dev).'),
    policy: EnvNameSchema.optional().describe('Name of the policy this environment evaluates (default: the environment name).'),
    target: z.record(z.string(), z.unknown()).optional().describe('Where a promotion moves the artifact; defined by the promotion work.'),
  })
  .describe('One stage of the promotion graph.');

export type EnvironmentConfig = z.infer<typeof EnvironmentSchema>;

/**
 * The promotion graph must be a DAG: every source names an environment that
 * exists, no environment is its own source, and following `from` never loops.
 */
export const EnvironmentsSchema = z
  .record(EnvNameSchema, EnvironmentSchema)
  .default({})
  .superRefine((envs, ctx) => {
    for (const [name, env] of Object.entries(envs)) {
      const seen = new Set<string>();
      for (const [i, src] of env.from.entries()) {
        if (!Object.hasOwn(envs, src)) ctx.addIssue({ code: 'custom', path: [name, 'from', i], message: `unknown source environment "${src}"` });
        else if (src === name) ctx.addIssue({ code: 'custom', path: [name, 'from', i], message: 'an environment cannot be promoted from itself' });
        if (seen.has(src)) ctx.addIssue({ code: 'custom', path: [name, 'from', i], message: `"${src}" is listed twice` });
        seen.add(src);
      }
    }
    // Depth-first search for a cycle; each is reported once, at the environment that closes it.
    const state = new Map<string, 'open' | 'done'>();
    const visit = (name: string, path: string[]): void => {
      state.set(name, 'open');
      for (const src of envs[name]?.from ?? []) {
        if (!Object.hasOwn(envs, src) || src === name) continue;
        if (state.get(src) === 'open') {
          const cycle = [...path.slice(path.indexOf(src)), name, src];
          ctx.addIssue({ code: 'custom', path: [name, 'from'], message: `the promotion graph has a cycle: ${cycle.reverse().join(' → ')}` });
        } else if (!state.has(src)) visit(src, [...path, name]);
      }
      state.set(name, 'done');
    };
    for (const name of Object.keys(envs)) if (!state.has(name)) visit(name, []);
  })
  .describe('The promotion graph: environments, their sources, policies and targets.');

export const PoliciesConfigSchema = z
  .strictObject({
    dir: z.string().min(1).max(1024).default('policies').describe('The policy-set folder, relative to the workspace (custody.yaml\'s folder).'),
  })
  .describe('Where policy files live.');

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
    environments: EnvironmentsSchema,
    policies: PoliciesConfigSchema.prefault({}),
    groups: z
      .record(z.string().regex(ENV_NAME_RE), z.array(z.string().min(1).max(256)).max(1000))
      .default({})
      .describe('Named groups of identities, for approvers in policies (group: release-managers).'),
  })
  .describe('Custody workspace configuration (custody.yaml).');

export type Config = z.infer<typeof ConfigSchema>;

export function parseConfig(text: string, file: string): Config {
  return parseYaml(text, ConfigSchema, file, 'CONFIG_INVALID').value;
}

export function configJsonSchema(): unknown {
  return z.toJSONSchema(ConfigSchema, { io: 'input', target: 'draft-2020-12' });
}
