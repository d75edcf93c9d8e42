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

const KiB = 1024;
const ROLE = z.enum(ROLES);
const ENV_NAME = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and -');

export const OidcRuleSchema = z
  .strictObject({
    claims: z
      .record(z.string().min(1), z.string().min(1))
      .refine((c) => Object.keys(c).length > 0, 'a rule needs at least one claim to match')
      .describe('Claims that must all match: exact values, where `*` matches any run of characters.'),
    roles: z.array(ROLE).describe('Roles granted when the rule matches.'),
    environments: z.array(ENV_NAME).optional().describe('Limit the workload to these environments (default: every environment).'),
  })
  .describe('Maps matching claims to roles. The first rule that matches decides.');

export const OidcIssuerSchema = z
  .strictObject({
    issuer: z.url().describe('The exact `iss` claim, e.g. https://token.actions.githubusercontent.com.'),
    audience: z.string().min(1).describe('The `aud` claim Custody requires (the audience your CI requests).'),
    algorithm: z.enum(['RS256', 'ES256']).describe("The only signature algorithm accepted from this issuer; the token's header never chooses it."),
    jwksUri: z.url().optional().describe('Where to fetch the JSON Web Key Set (HTTPS), cached.'),
    jwksFile: z.string().min(1).optional().describe('A local JWKS file instead of jwksUri (relative to the workspace).'),
    jwksCacheSeconds: z.number().int().min(10).max(86_400).default(600).describe('How long a fetched JWKS is used before it is fetched again.'),
    jwksMaxBytes: z.number().int().positive().max(1024 * KiB).default(64 * KiB).describe('Largest JWKS document accepted, in bytes.'),
    clockSkewSeconds: z.number().int().min(0).max(300).default(60).describe('Tolerance on exp, nbf and iat, in seconds (at most 300).'),
    maxTokenAgeSeconds: z.number().int().positive().max(86_400).default(3600).describe('Refuse tokens issued (iat) longer ago than this.'),
    identity: z
      .union([z.enum(['github', 'gitlab']), z.string().regex(/^claim:[A-Za-z0-9_.-]+$/)])
      .describe('How claims become an identity: github (repository + job_workflow_ref), gitlab (project_path + ref), or claim:<name>.'),
    rules: z.array(OidcRuleSchema).default([]).describe('Claim rules granting roles; a token that matches no rule is refused.'),
  })
  .refine((i) => (i.jwksUri === undefined) !== (i.jwksFile === undefined), 'give exactly one of jwksUri and jwksFile')
  .refine((i) => i.jwksUri === undefined || isSecureUrl(i.jwksUri), { message: 'jwksUri must use https (plain http only on loopback)', path: ['jwksUri'] })
  .describe('One trusted OIDC issuer (a CI system).');

export const ServerSchema = z
  .strictObject({
    listen: z.string().default('127.0.0.1:8080').describe('host:port to listen on; put TLS in front when it is not loopback.'),
    bodyLimitBytes: z.number().int().positive().default(64 * KiB).describe('Largest JSON request body, in bytes (evidence routes use limits.evidenceBytes, uploads limits.artifactBytes).'),
    rateLimit: z
      .strictObject({
        perSecond: z.number().positive().default(50).describe('Sustained requests per second per identity.'),
        burst: z.number().int().positive().default(200).describe('Requests an identity may send at once before the sustained rate applies.'),
      })
      .prefault({})
      .describe('Per-identity rate limit (token bucket).'),
    storeQueue: z.number().int().positive().default(512).describe('Store transactions allowed to wait at once; beyond it requests get 503 STORE_BUSY with Retry-After.'),
    timeouts: z
      .strictObject({
        headersSeconds: z.number().positive().default(10).describe('Time to receive request headers.'),
        requestSeconds: z.number().positive().default(3600).describe('Time to receive a whole request, uploads included.'),
        handlerSeconds: z.number().positive().default(30).describe('Time a JSON route may take before 503 REQUEST_TIMEOUT.'),
        keepAliveSeconds: z.number().positive().default(5).describe('Idle keep-alive connections are closed after this.'),
        shutdownSeconds: z.number().positive().default(20).describe('On SIGTERM, how long in-flight requests may run before connections are cut.'),
      })
      .prefault({}),
    tokenCacheSeconds: z.number().int().min(0).max(60).default(5).describe('How long a verified API token is remembered; a revocation made on another server takes effect within this.'),
    maxBearerBytes: z.number().int().min(256).max(64 * KiB).default(8 * KiB).describe('Longest Authorization bearer value accepted.'),
    cors: z
      .strictObject({ origins: z.array(z.url()).default([]).describe('Origins allowed to call the API from a browser; empty turns CORS off.') })
      .prefault({}),
    oidc: z.strictObject({ issuers: z.array(OidcIssuerSchema).default([]) }).prefault({}).describe('OIDC workload identity for CI.'),
    pkcs11Modules: z
      .array(z.string().regex(/^\//, 'an absolute path').max(4096))
      .max(32)
      .default([])
      .describe('PKCS#11 libraries `key create --backend pkcs11` may load when asked over the API (absolute paths); a module not listed is refused, since loading a library runs its code in the server.'),
  })
  .describe('`custody server`: listening, limits and authentication.');

/** Keys fetched over plain HTTP could be swapped by anyone on the path; loopback is the one exception (tests, sidecars). */
export function isSecureUrl(url: string): boolean {
  const u = new URL(url);
  return u.protocol === 'https:' || (u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname));
}

export type ServerConfig = z.infer<typeof ServerSchema>;
export type OidcIssuerConfig = z.infer<typeof OidcIssuerSchema>;
const ENV_NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;
const EnvNameSchema = z.string().regex(ENV_NAME_RE, 'lowercase letters, digits and "-", starting with a letter');

const DURATION = z.string().regex(/^\d{1,6}(s|m|h|d|w)$/, 'a duration such as 30s, 5m, 2h');
const KEY_NAME = z.string().regex(/^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/, 'a key name');

/**
 * Where a promotion moves the artifact. The engine only knows the Target port
 * (core/ports.ts); each type here is one adapter, and new ones (OCI tags, npm
 * dist-tags, progressive rollouts) are new members of this union.
 */
export const TargetSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('none').describe('Move nothing: the receipt and the log are the promotion (e.g. a deploy job polls custody verify).') }),
    z.strictObject({
      type: z.literal('fs'),
      dir: z.string().min(1).max(4096).describe('Channel folder (relative to the workspace): <dir>/<env>/<name>/<version>, and a `current` symlink replaced atomically.'),
    }),
    z.strictObject({
      type: z.literal('command'),
      command: z.array(z.string().min(1).max(4096)).min(1).max(256).describe('argv, run without a shell; the artifact and environment arrive in CUSTODY_* environment variables. It must be idempotent: after a crash it runs again with CUSTODY_RESUMED=1.'),
      timeout: DURATION.default('5m').describe('Longest the command may run before it is killed (its whole process group) and the promotion fails.'),
      maxOutputBytes: z.number().int().positive().max(1024 * 1024).default(64 * 1024).describe('Captured stdout+stderr kept in the promotion record, in bytes.'),
    }),
  ])
  .describe('Where a promotion moves the artifact: none, fs or command.');

export type TargetConfig = z.infer<typeof TargetSchema>;

export const EnvironmentSchema = z
  .strictObject({
    description: z.string().max(1024).optional(),
    from: z.array(EnvNameSchema).max(32).default([]).describe('Environments an artifact may be promoted from into this one (none: a root, e.g. dev).'),
    policy: EnvNameSchema.optional().describe('Name of the policy this environment evaluates (default: the environment name).'),
    target: TargetSchema.default({ type: 'none' }),
    receiptKey: KEY_NAME.default('receipts').describe('Name of the promotion-receipt key that signs this environment\'s receipts and heads.'),
    concurrency: z
      .enum(['supersede', 'queue'])
      .default('supersede')
      .describe('When a promotion arrives while another one is applying: supersede rejects the newcomer (PROMOTION_SUPERSEDED, exit 4); queue makes it wait its turn and plan again.'),
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
    trustedRoot: z
      .string()
      .min(1)
      .optional()
      .describe('Sigstore trusted root JSON for keyless evidence (a path, relative to the workspace); default: the public-good root shipped in @sigstore/tuf.'),
    requireSignedPolicies: z.boolean().default(true).describe('Use only published, signature-verified policy versions.'),
    server: ServerSchema.prefault({}),
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
