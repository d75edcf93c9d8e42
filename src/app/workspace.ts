import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { FsBlobStore } from '../adapters/blob-fs.ts';
import { writeFileAtomic } from '../adapters/fs-durable.ts';
import { SqliteStore } from '../adapters/store-sqlite.ts';
import { parseConfig, type Config } from '../core/config.ts';
import { CustodyError } from '../core/errors.ts';
import { validateIdentity, type Actor, type Role } from '../core/identity.ts';
import type { BlobStore, Clock, Store } from '../core/ports.ts';

export const CONFIG_FILE = 'custody.yaml';
export const DB_FILE = 'custody.db';

/** Everything a use case needs, wired once per process: the composition root's output. */
export interface Context {
  home: string;
  config: Config;
  store: Store;
  blobs: BlobStore;
  clock: Clock;
  actor: Actor;
  /** True inside `custody server`: inputs come from the network, so use cases refuse what only a local user may ask for. */
  served?: boolean;
  close(): Promise<void>;
}

export const systemClock: Clock = { now: () => new Date() };

/** `--home`, then `CUSTODY_HOME`, then `.custody/` in the current directory. */
export function resolveHome(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const chosen = flag ?? env['CUSTODY_HOME'] ?? '.custody';
  return isAbsolute(chosen) ? chosen : resolve(cwd, chosen);
}

export function defaultIdentity(): string {
  let user = 'user';
  try {
    user = userInfo().username.replace(/[^A-Za-z0-9._-]/g, '') || 'user';
  } catch {
    // No passwd entry (some containers): keep the generic name.
  }
  return `${user}@local`;
}

export interface InitOptions {
  identity?: string;
  origin?: string;
  force?: boolean;
}

export interface InitResult {
  home: string;
  config: string;
  database: string;
  blobs: string;
  identity: string;
  created: boolean;
}

export function configTemplate(identity: string, origin: string): string {
  return `# Custody workspace configuration. Schema: schemas/custody.schema.json
# Every key is optional except version and log.origin; defaults are shown commented.
version: 1

# Who acts in local mode (override per command with --as).
identity: ${identity}

# Roles each identity holds in local mode. Over the network, roles come from
# tokens and OIDC claims instead. Roles: builder, signer, approver, deployer,
# policy-admin, key-admin, auditor.
roles:
  ${identity}: [builder, signer, approver, deployer, policy-admin, key-admin, auditor]

# Where state lives: the embedded SQLite database in this folder, or PostgreSQL
# for several servers (the URL is read from the named environment variable).
# store:
#   driver: sqlite
#   urlEnv: CUSTODY_DATABASE_URL

# Size limits on everything Custody reads, in bytes.
# limits:
#   artifactBytes: 68719476736   # 64 GiB
#   evidenceBytes: 16777216      # 16 MiB
#   configBytes: 1048576         # 1 MiB

# The tamper-evident log: its checkpoint origin must be unique to this log.
log:
  origin: ${origin}
  # checkpointInterval: 1s

# Use only published, signature-verified policy versions.
# requireSignedPolicies: true

# The promotion graph: environments, their sources, policies and targets.
# It must be a DAG; branches are fine (prod-eu and prod-us from staging).
# Each has a target (none, fs or command), a receiptKey (default receipts) and a
# concurrency (supersede or queue).
# environments:
#   dev: { target: { type: fs, dir: channels } }
#   staging: { from: [dev], target: { type: command, command: [./deploy.sh, staging], timeout: 5m } }
#   prod: { from: [staging], policy: prod }
environments: {}

# Policy files (Policy, Template and PolicyTest documents), relative to this
# folder; see examples/policies. Schema: schemas/policy.schema.json
# policies:
#   dir: policies

# Groups of identities, for approvers in policies (approvers: [{ group: … }]).
# groups:
#   release-managers: [alice@example.com, bob@example.com]
`;
}

export async function initWorkspace(dir: string, options: InitOptions = {}): Promise<InitResult> {
  const home = resolve(dir);
  const configPath = join(home, CONFIG_FILE);
  const identity = validateIdentity(options.identity ?? defaultIdentity());
  let created = true;
  if (await exists(configPath)) {
    if (!options.force) {
      throw new CustodyError('WORKSPACE_EXISTS', `a workspace already exists at ${home}`, {
        hint: 'use it as it is, or pass --home to create another one elsewhere',
      });
    }
    created = false;
  }
  await mkdir(join(home, 'blobs'), { recursive: true, mode: 0o700 });
  await mkdir(join(home, 'keys'), { recursive: true, mode: 0o700 });
  if (created) {
    const origin = options.origin ?? `custody.local/${randomBytes(6).toString('hex')}`;
    await writeFileAtomic(configPath, configTemplate(identity, origin));
  }
  // Opening migrates the database; closing leaves a ready, empty store.
  const store = await SqliteStore.open(join(home, DB_FILE));
  await store.close();
  return { home, config: configPath, database: join(home, DB_FILE), blobs: join(home, 'blobs'), identity, created };
}

export interface OpenOptions {
  /** `--as`: act as this identity in local mode. */
  as?: string;
  clock?: Clock;
  /** Where to read `store.urlEnv` from; the process environment by default. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The store the config names: the workspace's SQLite file, or the PostgreSQL
 * database whose URL is in the environment variable `store.urlEnv` (never in
 * the config file, and never repeated in a message: it may hold a password).
 */
export async function openStore(home: string, config: Config, env: NodeJS.ProcessEnv = process.env): Promise<Store> {
  if (config.store.driver !== 'postgres') return SqliteStore.open(join(home, DB_FILE));
  const variable = config.store.urlEnv;
  const url = env[variable];
  if (url === undefined || url.trim() === '') {
    throw new CustodyError('CONFIG_INVALID', `store.driver is postgres, but the environment variable ${variable} is not set`, {
      hint: `set ${variable} to postgresql://user:password@host:5432/database (store.urlEnv in custody.yaml names the variable)`,
      details: { variable },
    });
  }
  // Loaded on use, so commands on the embedded store do not pay for the pg driver.
  const { PostgresStore } = await import('../adapters/store-postgres.ts');
  return PostgresStore.open(url.trim(), { urlSource: `$${variable}` });
}

export async function loadConfig(home: string): Promise<Config> {
  const path = join(home, CONFIG_FILE);
  let text: string;
  try {
    const st = await stat(path);
    if (st.size > 1024 * 1024) throw new CustodyError('CONFIG_INVALID', `${path} is larger than 1 MiB`);
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof CustodyError) throw e;
    throw new CustodyError('WORKSPACE_NOT_FOUND', `no Custody workspace at ${home}`, {
      cause: e,
      hint: 'run `custody init`, or point --home / CUSTODY_HOME at an existing workspace',
    });
  }
  return parseConfig(text, path);
}

export async function openWorkspace(homeDir: string, options: OpenOptions = {}): Promise<Context> {
  const home = resolve(homeDir);
  const config = await loadConfig(home);
  const store = await openStore(home, config, options.env);
  const blobs = new FsBlobStore(join(home, 'blobs'), { maxBytes: config.limits.artifactBytes });
  try {
    await blobs.recover(async (digest) => (await store.read((tx) => tx.artifacts.byDigest(digest))) !== undefined);
  } catch (e) {
    await store.close();
    throw e;
  }
  const identity = validateIdentity(options.as ?? config.identity ?? defaultIdentity());
  const roles: Role[] = [...(config.roles[identity] ?? [])];
  return {
    home,
    config,
    store,
    blobs,
    clock: options.clock ?? systemClock,
    actor: { identity, roles },
    close: () => store.close(),
  };
}

/**
 * The same workspace acting as another actor: the server's per-request context,
 * whose actor comes from authentication. Closing it closes nothing; the server
 * owns the workspace.
 */
export function actingAs(ctx: Context, actor: Actor): Context {
  return { ...ctx, actor, close: () => Promise.resolve() };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

