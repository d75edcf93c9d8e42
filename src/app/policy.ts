/**
 * Policy use cases: check, test, show, explain, simulate and publish policy
 * sets, and find the policy an environment evaluates.
 *
 * With `requireSignedPolicies: true` (the default) the workspace evaluates only
 * the newest published version, and only after its signature verifies against
 * the workspace's keys (a `policy` key valid at publication) and its content
 * matches its digest. Files on disk are then only proposals: `check`, `test`
 * and `simulate` read them; `explain` refuses them.
 */
import { isAbsolute, resolve } from 'node:path';
import { readLimited, readPolicySources } from '../adapters/policy-files.ts';
import type { Artifact } from '../core/artifact.ts';
import type { Config } from '../core/config.ts';
import { CustodyError } from '../core/errors.ts';
import type { EvidenceItem } from '../core/evidence.ts';
import { requireRole } from '../core/identity.ts';
import { keyLabel, type KeyPurpose, type KeyRecord, type TrustedKeys } from '../core/key.ts';
import {
  compilePolicy,
  evaluate,
  isKnownPredicateType,
  policySetPayload,
  resolvePolicySet,
  runPolicyTests,
  signPolicySet,
  verifyPolicySet,
  type CompiledPolicy,
  type Decision,
  type EnvironmentBinding,
  type GateResult,
  type HistoryEntry,
  type PolicyInput,
  type PolicySetPayload,
  type ResolveResult,
  type ResolvedPolicy,
  type TestReport,
} from '../core/policy/index.ts';
import { compilePattern } from '../core/policy/match.ts';
import { isKnownPredicateType as isIntotoPredicateType } from '../core/intoto.ts';
import type { PolicyVersionRecord, SettledPromotion, Signer, Tx } from '../core/ports.ts';
import { VSA_PREDICATE_TYPE } from '../core/promotion/index.ts';
import type { PolicySource } from '../core/policy/resolve.ts';
import { keyPositionOf, type SourceProblem } from '../core/yaml.ts';
import { findArtifact } from './artifacts.ts';
import { auditRefusal } from './audit.ts';
import { evidenceFor as defaultEvidenceFor } from './evidence.ts';
import { loadSigner as defaultLoadSigner, trustedKeys } from './keys.ts';
import type { Context } from './workspace.ts';

/** What `evaluate` needs from the outside world, replaceable in tests. */
export interface PolicyDeps {
  evidenceFor: (tx: Tx, trusted: TrustedKeys, artifact: Artifact, now: Date) => Promise<EvidenceItem[]>;
  loadSigner: (ctx: Context, name: string, purpose: KeyPurpose) => Promise<{ key: KeyRecord; signer: Signer }>;
}

const DEFAULT_DEPS: PolicyDeps = { evidenceFor: defaultEvidenceFor, loadSigner: defaultLoadSigner };

export function policyDirOf(ctx: Pick<Context, 'home' | 'config'>): string {
  const dir = ctx.config.policies.dir;
  return isAbsolute(dir) ? dir : resolve(ctx.home, dir);
}

// ---------------------------------------------------------------- loading files

/**
 * Policy files a client sent: what a policy folder holds, read on the client's
 * machine. `root` only names the folder in messages; the server never opens it.
 */
export interface PolicyFiles {
  root: string;
  sources: readonly PolicySource[];
}

/** A policy set to read: a folder (or a file in it) on this machine, or the files a client sent. */
export type PolicySetSource = string | PolicyFiles;

/** As the folder reader: at most this many files, relative paths of plain names, no hidden entries, a few levels deep. */
const MAX_SENT_FILES = 500;
const SENT_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** Sent files get the checks the folder reader applies on disk, so both ways in refuse the same sets. */
function checkSentFiles(files: PolicyFiles, maxBytes: number): { root: string; sources: PolicySource[] } {
  if (files.sources.length > MAX_SENT_FILES) throw new CustodyError('INPUT_TOO_LARGE', `${files.root} holds more than ${MAX_SENT_FILES} YAML files`, { hint: 'point at the policy-set folder itself' });
  const seen = new Set<string>();
  for (const f of files.sources) {
    const segments = f.path.split('/');
    if (segments.length > 5 || !segments.every((x) => SENT_SEGMENT.test(x)) || !/\.ya?ml$/.test(f.path)) {
      throw new CustodyError('INPUT_INVALID', `"${f.path.slice(0, 200)}" is not a policy file path (relative, forward slashes, *.yaml)`);
    }
    if (seen.has(f.path)) throw new CustodyError('INPUT_INVALID', `${f.path} is sent twice`);
    seen.add(f.path);
    if (Buffer.byteLength(f.text, 'utf8') > maxBytes) throw new CustodyError('INPUT_TOO_LARGE', `${f.path} is larger than ${maxBytes} bytes`, { hint: 'raise limits.configBytes in custody.yaml if this is intended' });
  }
  // The folder reader's order, so digests and messages do not depend on how the files arrived.
  const sources = [...files.sources].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((f) => ({ path: f.path, text: f.text }));
  return { root: files.root, sources };
}

export interface LoadedSet {
  root: string;
  /** The texts the set was resolved from, by path: what `publish` signs and `show` prints. */
  texts: Map<string, string>;
  result: ResolveResult;
  compiled: Map<string, CompiledPolicy>;
  problems: SourceProblem[];
  warnings: SourceProblem[];
}

/** Reads, resolves and compiles the policy files at `from`; problems are returned, not thrown. */
export async function loadPolicyFiles(from: PolicySetSource, maxBytes: number): Promise<LoadedSet> {
  const { root, sources } = typeof from === 'string' ? await readPolicySources(from, { maxBytesPerFile: maxBytes }) : checkSentFiles(from, maxBytes);
  const result = resolvePolicySet(sources, { yamlLimits: { maxBytes, maxAliases: 100, maxDepth: 64 } });
  const problems = [...result.problems];
  const compiled = new Map<string, CompiledPolicy>();
  for (const [name, p] of Object.entries(result.policies)) {
    const c = compilePolicy(p, { origins: result.origins, source: 'files' });
    if (c.ok) compiled.set(name, c.policy);
    else problems.push(...c.problems);
  }
  return { root, texts: new Map(sources.map((s) => [s.path, s.text])), result, compiled, problems, warnings: [...result.warnings] };
}

/** The resolved sources with their texts, as read once (never re-read: the files may have changed since). */
function sourcesWithText(set: LoadedSet): { path: string; sha256: string; text: string }[] {
  return set.result.sources.map((s) => ({ ...s, text: set.texts.get(s.path) ?? '' }));
}

function invalid(set: LoadedSet): CustodyError {
  const first = set.problems[0];
  return new CustodyError('POLICY_INVALID', set.problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`).join('\n'), {
    details: { problems: set.problems },
    hint: first ? `fix ${first.file}:${first.line}:${first.col} first (custody policy check ${set.root})` : 'run custody policy check',
  });
}

// ---------------------------------------------------------------- check

export interface CheckReport {
  root: string;
  files: number;
  policies: string[];
  tests: number;
  problems: SourceProblem[];
  warnings: SourceProblem[];
  ok: boolean;
}

/** `custody policy check`: everything static, plus cross-checks against the workspace when there is one. */
export async function checkPolicies(path: string, options: { maxBytes: number; ctx?: Context; strict?: boolean }): Promise<CheckReport> {
  const set = await loadPolicyFiles(path, options.maxBytes);
  const warnings = [...set.warnings];
  const problems = [...set.problems];
  const gateAt = (policy: string, scope: string, gate: string): Pick<SourceProblem, 'file' | 'line' | 'col' | 'path'> => {
    const o = set.result.origins.get(`${policy}/${scope}/${gate}#gate`);
    return o ? { file: o.file, ...keyPositionOf(o.parsed, o.path), path: o.path.join('.') } : { file: `policy ${policy}`, line: 1, col: 1, path: '' };
  };
  const keyNames = options.ctx ? new Set((await options.ctx.store.read((tx) => tx.keys.list())).map((k) => k.name)) : undefined;
  const missingKeys = new Map<string, { at: Pick<SourceProblem, 'file' | 'line' | 'col' | 'path'>; uses: Set<string> }>();
  const seenTypes = new Set<string>();
  for (const [name, p] of Object.entries(set.result.policies)) {
    for (const [scope, gates] of [['gates', p.gates], ...Object.entries(p.tiers).map(([t, v]) => [`tiers.${t}`, v.gates] as const)] as const) {
      for (const gate of gates) {
        const g = gate.name;
        if (gate.kind !== 'require') continue;
        const t = gate.require.predicateType;
        const at = gateAt(name, scope, g);
        const where = `${at.file}:${at.line}:${at.col}`;
        if (!isKnownPredicateType(t) && !isIntotoPredicateType(t) && !seenTypes.has(`${where}|${t}`)) {
          seenTypes.add(`${where}|${t}`);
          warnings.push({ ...at, message: `${at.path}: unknown predicate type ${t}; check the spelling (evidence of a misspelt type never matches)` });
        }
        for (const s of gate.require.signers) {
          if (s.key === undefined || !keyNames) continue;
          const keyName = s.key.replace(/@\d+$/, '');
          if (keyNames.has(keyName)) continue;
          const m = missingKeys.get(keyName) ?? { at, uses: new Set<string>() };
          m.uses.add(`${name}.${g}`);
          missingKeys.set(keyName, m);
        }
      }
    }
  }
  for (const [keyName, m] of missingKeys) {
    warnings.push({ ...m.at, message: `no key named ${keyName} exists in this workspace yet, so ${[...m.uses].join(', ')} cannot pass until one does` });
  }
  if (options.ctx) {
    const envs = options.ctx.config.environments;
    for (const [env, e] of Object.entries(envs)) {
      const policy = e.policy ?? env;
      if (!set.result.policies[policy] && !set.result.problems.length) {
        problems.push({ file: 'custody.yaml', line: 1, col: 1, path: `environments.${env}`, message: `environments.${env}: uses policy "${policy}", which the policy set does not define` });
      }
      const p = set.result.policies[policy];
      for (const gate of p?.gates ?? []) {
        const g = gate.name;
        if (gate.kind !== 'from') continue;
        for (const src of gate.from.environments ?? []) {
          if (!e.from.includes(src)) warnings.push({ ...gateAt(policy, 'gates', g), message: `gates.${g}: ${src} is not a source of ${env} in custody.yaml, so this gate can never pass there` });
        }
        if (gate.from.environments === undefined && e.from.length === 0) {
          warnings.push({ ...gateAt(policy, 'gates', g), message: `gates.${g}: ${env} has no sources in custody.yaml, so this gate can never pass there` });
        }
      }
    }
  }
  const ok = problems.length === 0 && (!options.strict || warnings.length === 0);
  return { root: set.root, files: set.result.sources.length, policies: Object.keys(set.result.policies), tests: set.result.tests.reduce((n, t) => n + t.doc.cases.length, 0), problems, warnings, ok };
}

// ---------------------------------------------------------------- test

export async function testPolicies(path: string, options: { maxBytes: number; config?: Config }): Promise<TestReport & { root: string }> {
  const set = await loadPolicyFiles(path, options.maxBytes);
  if (set.problems.length > 0) throw invalid(set);
  const report = runPolicyTests(set.compiled, set.result.tests, (env) => options.config?.environments[env]?.from ?? []);
  return { ...report, root: set.root };
}

// ---------------------------------------------------------------- the active set

export interface ActiveSet {
  source: 'published' | 'files';
  version: number | null;
  setDigest: string | null;
  publishedAt: string | null;
  keyid: string | null;
  environments: Record<string, EnvironmentBinding> | null;
  policies: Map<string, CompiledPolicy>;
  resolved: Record<string, ResolvedPolicy>;
  sources: { path: string; sha256: string; text?: string }[];
}

// Compiled once per published version and process: compiling plans every CEL expression.
const compiledVersions = new Map<string, Map<string, CompiledPolicy>>();

function compilePublished(payload: PolicySetPayload): Map<string, CompiledPolicy> {
  const cached = compiledVersions.get(payload.setDigest + String(payload.version));
  if (cached) return cached;
  const out = new Map<string, CompiledPolicy>();
  for (const [name, p] of Object.entries(payload.policies)) {
    const c = compilePolicy(p, { version: payload.version, setDigest: payload.setDigest, source: 'published' });
    if (!c.ok) throw new CustodyError('POLICY_INVALID', `published policy ${name} (v${payload.version}) does not compile: ${c.problems.map((x) => x.message).join('; ')}`);
    out.set(name, c.policy);
  }
  compiledVersions.set(payload.setDigest + String(payload.version), out);
  return out;
}

/** The policy set the workspace evaluates: the newest published and verified one, or (unsigned mode only) the files. */
export async function activeSet(ctx: Context, tx: Tx): Promise<ActiveSet> {
  if (!ctx.config.requireSignedPolicies) {
    const set = await loadPolicyFiles(policyDirOf(ctx), ctx.config.limits.configBytes);
    if (set.problems.length > 0) throw invalid(set);
    return { source: 'files', version: null, setDigest: null, publishedAt: null, keyid: null, environments: null, policies: set.compiled, resolved: set.result.policies, sources: set.result.sources };
  }
  const latest = await tx.policies.latest();
  if (!latest) {
    throw new CustodyError('POLICY_UNSIGNED', 'no published policy: this workspace uses only published, signed policy versions', {
      hint: 'custody policy publish --key <policy-key> (or set requireSignedPolicies: false while you try things out)',
    });
  }
  const payload = await verifiedLatest(ctx, tx, latest);
  if (payload.version !== latest.version) {
    throw new CustodyError('POLICY_SIGNATURE_INVALID', `the store holds version ${latest.version}, but its signed content says version ${payload.version}: an old set replayed as new`, {
      hint: 'inspect the audit log (policy.published entries); publish again with a trusted key',
    });
  }
  return {
    source: 'published',
    version: payload.version,
    setDigest: payload.setDigest,
    publishedAt: payload.publishedAt,
    keyid: latest.keyid,
    environments: payload.environments,
    policies: compilePublished(payload),
    resolved: payload.policies,
    sources: payload.sources,
  };
}

// The newest published set as verified in this process, by its exact bundle text and the state of the key that
// signed it: verification is a pure function of those, so the same inputs need not be verified on every decision.
const verifiedSets = new Map<string, { keyState: string; payload: PolicySetPayload }>();

async function verifiedLatest(ctx: Context, tx: Tx, latest: PolicyVersionRecord): Promise<PolicySetPayload> {
  const key = await tx.keys.byKeyid(latest.keyid);
  const keyState = key ? JSON.stringify([key.status, key.purposes, key.notBefore, key.notAfter, key.retiredAt, key.revokedAt, key.compromisedSince, key.publicKeyPem]) : '';
  const hit = verifiedSets.get(latest.bundle);
  if (hit && key && hit.keyState === keyState) return hit.payload;
  const payload = await verifiedPayload(ctx, tx, latest.bundle, new Date(latest.publishedAt), `published policy v${latest.version}`);
  if (verifiedSets.size >= 8) verifiedSets.clear();
  verifiedSets.set(latest.bundle, { keyState, payload });
  return payload;
}

async function verifiedPayload(ctx: Context, tx: Tx, bundleText: string, recordedAt: Date | undefined, what: string): Promise<PolicySetPayload> {
  let bundle: unknown;
  try {
    bundle = JSON.parse(bundleText);
  } catch {
    throw new CustodyError('POLICY_SIGNATURE_INVALID', `${what} is not a JSON bundle`);
  }
  const r = verifyPolicySet(bundle, { keys: await trustedKeys(tx), ...(recordedAt ? { recordedAt } : {}), maxBytes: Math.max(ctx.config.limits.evidenceBytes, ctx.config.limits.configBytes) });
  if (!r.ok || !r.value) {
    throw new CustodyError('POLICY_SIGNATURE_INVALID', `${what} is refused: ${r.reasons.map((x) => x.message).join('; ')}`, {
      details: { reasons: r.reasons },
      hint: 'a policy set must be signed by a key trusted for the policy purpose and unchanged since; publish it again',
    });
  }
  return r.value;
}

/** An environment of custody.yaml by name; a name such as "constructor" is not one (the name comes from a request). */
function environmentOf(ctx: Context, environment: string): Config['environments'][string] | undefined {
  return Object.hasOwn(ctx.config.environments, environment) ? ctx.config.environments[environment] : undefined;
}

/** The compiled policy an environment evaluates, after checking custody.yaml still binds it as signed. */
export function policyFor(ctx: Context, set: ActiveSet, environment: string): CompiledPolicy {
  const env = environmentOf(ctx, environment);
  if (!env) {
    const known = Object.keys(ctx.config.environments);
    throw new CustodyError('ENVIRONMENT_NOT_FOUND', `no environment named ${environment}`, { hint: known.length ? `environments: ${known.join(', ')}` : 'define environments in custody.yaml' });
  }
  const name = env.policy ?? environment;
  if (set.source === 'published') {
    const bound = set.environments?.[environment];
    if (!bound || bound.policy !== name || bound.from.join(',') !== env.from.join(',')) {
      throw new CustodyError('POLICY_SIGNATURE_INVALID', `custody.yaml binds ${environment} to policy ${name} from [${env.from.join(', ')}], but the signed set v${set.version ?? '?'} ${bound ? `binds it to ${bound.policy} from [${bound.from.join(', ')}]` : 'does not define it'}`, {
        hint: 'the environment graph changed since publishing: review it and publish the policy set again',
      });
    }
  }
  const policy = set.policies.get(name);
  if (!policy) throw new CustodyError('POLICY_NOT_FOUND', `environment ${environment} uses policy ${name}, which the ${set.source === 'published' ? `published set v${set.version ?? '?'}` : 'policy files'} do not define`);
  return policy;
}

// ---------------------------------------------------------------- inputs

export function groupsOf(config: Config, identity: string): string[] {
  return Object.entries(config.groups)
    .filter(([, members]) => members.some((m) => compilePattern(m).test(identity)))
    .map(([g]) => g);
}

/**
 * The artifact's history: `promoted` when it became current in an
 * environment, then `replaced` (another promotion became current there) or
 * `rolled-back` (a rollback took the environment away from it). Read from the
 * promotions' rows, which change in the same transaction as the log entries
 * that record these transitions (`promotion.promoted`, `.replaced`,
 * `.rolled-back`), so both say the same; the rows are found by the artifact's
 * index, where the log's subject index is a scan of one sixteenth of the log.
 * Oldest first, as the log has them: by time, then by creation order.
 */
export function historyOf(settled: readonly SettledPromotion[]): HistoryEntry[] {
  const out: { entry: HistoryEntry; ms: number }[] = [];
  for (const s of settled) {
    out.push({ entry: { environment: s.environment, event: 'promoted', time: s.finishedAt, version: s.version }, ms: Date.parse(s.finishedAt) });
    if (s.state !== 'promoted') out.push({ entry: { environment: s.environment, event: s.state, time: s.updatedAt, version: s.version }, ms: Date.parse(s.updatedAt) });
  }
  // Stable: equal times keep creation order, and a promotion's own end after its start.
  return out.sort((a, b) => a.ms - b.ms).map((o) => o.entry);
}

/** `known`: facts the caller has already read in this transaction (the promotion engine reads the environment first). */
export async function policyInput(ctx: Context, tx: Tx, artifact: Artifact, environment: string, now: Date, deps: PolicyDeps = DEFAULT_DEPS, known: { current?: PolicyInput['current'] } = {}): Promise<PolicyInput> {
  const trusted = await trustedKeys(tx);
  // Custody's own promotion receipts are not evidence about how the artifact was built: the graph and history gates speak for them.
  const evidence = (await deps.evidenceFor(tx, trusted, artifact, now)).filter((e) => e.predicateType !== VSA_PREDICATE_TYPE || e.source === 'imported');
  const history = historyOf(await tx.promotions.settled(artifact.digest));
  const exceptions = await tx.exceptions.list({ environment });
  return {
    time: now,
    kind: 'promotion',
    environment: { name: environment, from: environmentOf(ctx, environment)?.from ?? [] },
    artifact: {
      digest: artifact.digest,
      name: artifact.name,
      version: artifact.version,
      digests: artifact.digests,
      labels: artifact.labels,
      source: artifact.source,
      createdAt: artifact.createdAt,
      createdBy: artifact.createdBy,
    },
    actor: { identity: ctx.actor.identity, roles: ctx.actor.roles, groups: groupsOf(ctx.config, ctx.actor.identity) },
    evidence,
    current: known.current !== undefined ? known.current : await currentIn(tx, environment),
    history,
    approvals: [],
    exceptions,
    keys: [...trusted.byKeyid.values()].map((k) => ({ keyid: k.keyid, name: k.name, version: k.version, status: k.status, revokedAt: k.revokedAt, compromisedSince: k.compromisedSince })),
  };
}

/** The version currently promoted in the environment (its pointer's promotion), for the versioning gates. */
export async function currentIn(tx: Tx, environment: string): Promise<PolicyInput['current']> {
  const state = await tx.environments.get(environment);
  const p = state?.current ? await tx.promotions.byId(state.current) : undefined;
  if (!p) return null;
  return { version: p.artifact.version, digest: p.artifact.digest, ...(p.finishedAt === null ? {} : { since: p.finishedAt }) };
}

// ---------------------------------------------------------------- explain

export interface ExplainOptions {
  /** A signed bundle file (`policy publish --out`), or, with requireSignedPolicies off, a policy folder. */
  policy?: string;
  /** A signed bundle's text, as a client sends it, with what to call it in messages. */
  bundle?: { text: string; source: string };
  /** Policy files a client sent (requireSignedPolicies off only). */
  files?: PolicyFiles;
}

/** Evaluates one artifact against an environment's policy in a read-only snapshot: nothing changes. */
export async function explainArtifact(ctx: Context, ref: string, environment: string, options: ExplainOptions = {}, deps: PolicyDeps = DEFAULT_DEPS): Promise<Decision> {
  const now = ctx.clock.now();
  return ctx.store.read(async (tx) => {
    const artifact = await findArtifact(tx, ref);
    const set =
      options.bundle !== undefined
        ? await setFromBundle(ctx, tx, options.bundle.text, options.bundle.source)
        : options.files !== undefined
          ? await setFromFiles(ctx, options.files)
          : options.policy === undefined
            ? await activeSet(ctx, tx)
            : /\.json$/.test(options.policy)
              ? await setFromBundle(ctx, tx, await readLimited(options.policy, ctx.config.limits.evidenceBytes), options.policy)
              : await setFromFiles(ctx, options.policy);
    const policy = policyFor(ctx, set, environment);
    return evaluate(policy, await policyInput(ctx, tx, artifact, environment, now, deps));
  });
}

async function setFromBundle(ctx: Context, tx: Tx, text: string, source: string): Promise<ActiveSet> {
  if (Buffer.byteLength(text, 'utf8') > ctx.config.limits.evidenceBytes) throw new CustodyError('INPUT_TOO_LARGE', `${source} is larger than ${ctx.config.limits.evidenceBytes} bytes`);
  const payload = await verifiedPayload(ctx, tx, text, undefined, source);
  return {
      source: 'published',
      version: payload.version,
      setDigest: payload.setDigest,
      publishedAt: payload.publishedAt,
      keyid: null,
      environments: payload.environments,
      policies: compilePublished(payload),
      resolved: payload.policies,
    sources: payload.sources,
  };
}

async function setFromFiles(ctx: Context, from: PolicySetSource): Promise<ActiveSet> {
  const path = typeof from === 'string' ? from : from.root;
  if (ctx.config.requireSignedPolicies) {
    throw new CustodyError('POLICY_UNSIGNED', `${path} is unsigned: this workspace evaluates only signed policy sets (requireSignedPolicies: true)`, {
      hint: 'publish it (custody policy publish --key <policy-key> --out set.json) and pass the bundle, or use custody policy simulate to try it',
    });
  }
  const set = await loadPolicyFiles(from, ctx.config.limits.configBytes);
  if (set.problems.length > 0) throw invalid(set);
  return { source: 'files', version: null, setDigest: null, publishedAt: null, keyid: null, environments: null, policies: set.compiled, resolved: set.result.policies, sources: set.result.sources };
}

// ---------------------------------------------------------------- show

export interface ShowResult {
  environment: string;
  policy: string;
  source: 'published' | 'files';
  version: number | null;
  digest: string;
  resolved: ResolvedPolicy;
  /** The policy document as written (published sources or files), when not resolved. */
  text?: string;
  file?: string;
}

export async function showPolicy(ctx: Context, environment: string, options: { policy?: PolicySetSource } = {}): Promise<ShowResult> {
  return ctx.store.read(async (tx) => {
    const set = options.policy === undefined ? await activeSet(ctx, tx) : await proposedSet(ctx, options.policy);
    const policy = set.source === 'published' ? policyFor(ctx, set, environment) : policyForFiles(ctx, set, environment);
    const name = policy.resolved.name;
    const src = set.sources.find((s) => s.text !== undefined && new RegExp(`^\\s*name:\\s*${name}\\s*$`, 'm').test(s.text) && /kind:\s*Policy\b/.test(s.text));
    return {
      environment,
      policy: name,
      source: set.source,
      version: set.version,
      digest: policy.ref.digest,
      resolved: policy.resolved,
      ...(src?.text === undefined ? {} : { text: src.text, file: src.path }),
    };
  });
}

/** Proposed files are read whatever requireSignedPolicies says: showing and simulating change nothing. */
async function proposedSet(ctx: Context, from: PolicySetSource): Promise<ActiveSet> {
  const set = await loadPolicyFiles(from, ctx.config.limits.configBytes);
  if (set.problems.length > 0) throw invalid(set);
  const sources = sourcesWithText(set);
  return { source: 'files', version: null, setDigest: null, publishedAt: null, keyid: null, environments: null, policies: set.compiled, resolved: set.result.policies, sources };
}

function policyForFiles(ctx: Context, set: ActiveSet, environment: string): CompiledPolicy {
  const env = environmentOf(ctx, environment);
  if (!env) throw new CustodyError('ENVIRONMENT_NOT_FOUND', `no environment named ${environment}`, { hint: `environments: ${Object.keys(ctx.config.environments).join(', ') || 'none'}` });
  const name = env.policy ?? environment;
  const p = set.policies.get(name);
  if (!p) throw new CustodyError('POLICY_NOT_FOUND', `environment ${environment} uses policy ${name}, which the files do not define`);
  return p;
}

// ---------------------------------------------------------------- simulate

export interface Flip {
  artifact: { digest: string; name: string; version: string };
  before: Decision['outcome'] | 'no-policy';
  after: Decision['outcome'];
  gates: { name: string; before: GateResult['outcome'] | 'absent'; after: GateResult['outcome'] | 'absent'; reason: string }[];
}

export interface SimulationReport {
  environment: string;
  time: string;
  scope: 'registered-artifacts';
  note: string;
  current: { source: 'published' | 'files'; version: number | null; digest: string } | null;
  proposed: { path: string; digest: string };
  evaluated: number;
  flips: Flip[];
  unchanged: number;
}

/**
 * Change control with evidence: which artifacts would decide differently under
 * the proposed files than under the policy in force. Promotion state does not
 * exist yet, so the candidates are the registered artifacts (newest first).
 */
export async function simulatePolicy(ctx: Context, environment: string, options: { policy?: PolicySetSource; limit?: number } = {}, deps: PolicyDeps = DEFAULT_DEPS): Promise<SimulationReport> {
  const now = ctx.clock.now();
  const from = options.policy ?? policyDirOf(ctx);
  const path = typeof from === 'string' ? from : from.root;
  const proposedFiles = await loadPolicyFiles(from, ctx.config.limits.configBytes);
  if (proposedFiles.problems.length > 0) throw invalid(proposedFiles);
  const proposedSetValue: ActiveSet = { source: 'files', version: null, setDigest: null, publishedAt: null, keyid: null, environments: null, policies: proposedFiles.compiled, resolved: proposedFiles.result.policies, sources: proposedFiles.result.sources };
  const proposed = policyForFiles(ctx, proposedSetValue, environment);
  return ctx.store.read(async (tx) => {
    let current: CompiledPolicy | undefined;
    try {
      current = policyFor(ctx, await activeSet(ctx, tx), environment);
    } catch (e) {
      if (!(e instanceof CustodyError) || e.code !== 'POLICY_UNSIGNED') throw e;
    }
    const artifacts = await tx.artifacts.list({ limit: options.limit ?? 1000 });
    const flips: Flip[] = [];
    for (const a of artifacts) {
      const input = await policyInput(ctx, tx, a, environment, now, deps);
      const after = evaluate(proposed, input);
      const before = current ? evaluate(current, input) : undefined;
      if (before && before.outcome === after.outcome) continue;
      const names = [...new Set([...(before?.gates ?? []).map((g) => g.name), ...after.gates.map((g) => g.name)])];
      const gates = names
        .map((name) => {
          const b = before?.gates.find((g) => g.name === name);
          const x = after.gates.find((g) => g.name === name);
          return { name, before: b?.outcome ?? ('absent' as const), after: x?.outcome ?? ('absent' as const), reason: (x ?? b)?.reasons.map((r) => r.message).join('; ') ?? '' };
        })
        .filter((g) => g.before !== g.after);
      flips.push({ artifact: { digest: a.digest, name: a.name, version: a.version }, before: before?.outcome ?? 'no-policy', after: after.outcome, gates });
    }
    return {
      environment,
      time: now.toISOString(),
      scope: 'registered-artifacts',
      note: 'no promotion state exists yet, so the candidates are the registered artifacts (newest first), each as if it were being promoted now',
      current: current ? { source: current.ref.source, version: current.ref.version, digest: current.ref.digest } : null,
      proposed: { path, digest: proposed.ref.digest },
      evaluated: artifacts.length,
      flips,
      unchanged: artifacts.length - flips.length,
    };
  });
}

// ---------------------------------------------------------------- publish

export interface PublishResult {
  version: number;
  setDigest: string;
  keyid: string;
  key: string;
  created: boolean;
  policies: string[];
  loosened: number;
  bundle: unknown;
}

/** Signs the resolved set with a `policy` key and records it as the next version, with its log entry, in one transaction. */
export async function publishPolicies(ctx: Context, options: { path?: string; files?: PolicyFiles; key: string }, deps: PolicyDeps = DEFAULT_DEPS): Promise<PublishResult> {
  const now = ctx.clock.now();
  try {
    requireRole(ctx.actor, 'policy-admin', 'publishing policies');
    const from: PolicySetSource = options.files ?? options.path ?? policyDirOf(ctx);
    const path = typeof from === 'string' ? from : from.root;
    const set = await loadPolicyFiles(from, ctx.config.limits.configBytes);
    if (set.problems.length > 0) throw invalid(set);
    const environments: Record<string, EnvironmentBinding> = {};
    for (const [env, e] of Object.entries(ctx.config.environments)) {
      const policy = e.policy ?? env;
      if (!set.result.policies[policy]) throw new CustodyError('POLICY_NOT_FOUND', `environment ${env} uses policy ${policy}, which ${path} does not define`);
      environments[env] = { from: e.from, policy };
    }
    const { key, signer } = await deps.loadSigner(ctx, options.key, 'policy');
    const texts = sourcesWithText(set);
    return await ctx.store.transaction(async (tx) => {
      const latest = await tx.policies.latest();
      const version = (latest?.version ?? 0) + 1;
      const payload = policySetPayload({ version, publishedAt: now.toISOString(), publishedBy: ctx.actor.identity, environments, policies: set.result.policies, sources: texts });
      if (latest && latest.setDigest === payload.setDigest) {
        return { version: latest.version, setDigest: latest.setDigest, keyid: latest.keyid, key: keyLabel(key), created: false, policies: Object.keys(payload.policies), loosened: 0, bundle: JSON.parse(latest.bundle) as unknown };
      }
      const size = Buffer.byteLength(JSON.stringify(payload));
      const maxBytes = Math.max(ctx.config.limits.evidenceBytes, ctx.config.limits.configBytes);
      if (size > maxBytes) throw new CustodyError('INPUT_TOO_LARGE', `the policy set is ${size} bytes; readers accept at most ${maxBytes} (limits.evidenceBytes)`);
      const bundle = await signPolicySet(payload, signer);
      // Verify what was just signed, as every reader will: a misconfigured key must fail here, not later.
      const check = verifyPolicySet(bundle, { keys: await trustedKeys(tx), recordedAt: now, maxBytes: Number.MAX_SAFE_INTEGER });
      if (!check.ok) throw new CustodyError('KEY_NOT_USABLE', `the signature by ${keyLabel(key)} does not verify: ${check.reasons.map((r) => r.message).join('; ')}`);
      const loosened = Object.values(payload.policies).reduce((n, p) => n + p.loosened.length, 0);
      await tx.policies.insert({ version, setDigest: payload.setDigest, bundle: JSON.stringify(bundle), keyid: key.keyid, publishedAt: payload.publishedAt, publishedBy: ctx.actor.identity });
      await tx.log.append({
        type: 'policy.published',
        actor: ctx.actor.identity,
        time: payload.publishedAt,
        subject: payload.setDigest,
        payload: {
          version,
          setDigest: payload.setDigest,
          keyid: key.keyid,
          key: keyLabel(key),
          environments,
          policies: Object.fromEntries([...set.compiled].map(([n, c]) => [n, c.ref.digest])),
          sources: set.result.sources,
          loosened,
        },
      });
      return { version, setDigest: payload.setDigest, keyid: key.keyid, key: keyLabel(key), created: true, policies: Object.keys(payload.policies), loosened, bundle };
    });
  } catch (e) {
    return auditRefusal(ctx, 'policy.publish', undefined, e);
  }
}

export async function listPolicyVersions(ctx: Context): Promise<{ version: number; setDigest: string; keyid: string; publishedAt: string; publishedBy: string }[]> {
  return ctx.store.read((tx) => tx.policies.list());
}

/** Verifies a bundle file (from `publish --out`) against this workspace's keys. */
export async function verifyBundleFile(ctx: Context, file: string): Promise<PolicySetPayload> {
  return verifyPolicyBundle(ctx, await readLimited(file, ctx.config.limits.evidenceBytes), file);
}

/** Verifies a bundle's text (a client sent it; `source` names it in messages) against this workspace's keys. */
export async function verifyPolicyBundle(ctx: Context, text: string, source: string): Promise<PolicySetPayload> {
  if (Buffer.byteLength(text, 'utf8') > ctx.config.limits.evidenceBytes) throw new CustodyError('INPUT_TOO_LARGE', `${source} is larger than ${ctx.config.limits.evidenceBytes} bytes`);
  return ctx.store.read((tx) => verifiedPayload(ctx, tx, text, undefined, source));
}
