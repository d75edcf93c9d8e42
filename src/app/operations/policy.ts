/**
 * Policies and exceptions over the registry. Policy files a client has (a
 * folder for `publish`, `show --policy`, `simulate --policy`; a bundle for
 * `explain --policy` and `verify`) travel as their texts; without them the
 * workspace's own policy folder (policies.dir) is read, on whichever side the
 * workspace is. Evaluating, showing and simulating change nothing; publishing
 * reaches every environment, so a token scoped to some cannot do it.
 */
import { z } from 'zod';
import { ROLES } from '../../core/identity.ts';
import { GATE_KINDS, GATE_OUTCOMES } from '../../core/policy/schema.ts';
import { approveException, listExceptions, requestException, revokeException } from '../exceptions.ts';
import { explainArtifact, listPolicyVersions, publishPolicies, showPolicy, simulatePolicy, verifyPolicyBundle, type PolicyFiles } from '../policy.ts';
import type { Context } from '../workspace.ts';
import { EXAMPLE_POLICY_BUNDLE, EXAMPLE_POLICY_YAML } from './examples.ts';
import { ALL_ENVIRONMENTS, defined, defineOperation } from './registry.ts';

const Environment = z.string().min(1).max(64).describe('an environment of the promotion graph, e.g. prod');
const ArtifactRef = z.string().min(1).max(1300).describe('name@version, or sha256:<hex>');

const PolicyFilesSchema = z
  .strictObject({
    root: z.string().max(1024).describe('what to call the folder in messages, e.g. its path on the client (never opened)'),
    sources: z
      .array(z.strictObject({ path: z.string().max(1024).describe('relative to the folder, e.g. templates/base.yaml'), text: z.string() }))
      .max(500),
  })
  .meta({ id: 'PolicyFiles', description: 'A policy folder as a client read it: every *.yaml in it, by relative path.' });

const ReasonSchema = z.object({ code: z.string(), message: z.string() });

export const DecisionSchema = z
  .object({
    outcome: z.enum(['pass', 'fail', 'pending']),
    allowed: z.boolean(),
    environment: z.string(),
    artifact: z.object({ digest: z.string(), name: z.string(), version: z.string() }),
    policy: z.object({ name: z.string(), digest: z.string(), version: z.number().int().nullable(), setDigest: z.string().nullable(), source: z.enum(['published', 'files']) }),
    time: z.string(),
    kind: z.enum(['promotion', 'rollback']),
    tier: z.string().nullable(),
    gates: z.array(
      z.object({
        name: z.string(),
        kind: z.enum([...GATE_KINDS, 'tier']),
        outcome: z.enum(GATE_OUTCOMES),
        requirement: z.string(),
        reasons: z.array(ReasonSchema),
        waivedBy: z.object({ kind: z.enum(['exception', 'fast-track', 'rollback']), id: z.string() }).optional(),
        evidence: z.array(z.string()).optional(),
      }),
    ),
    fastTrack: z.array(z.object({ name: z.string(), waived: z.array(z.string()) })),
    exceptions: z.array(z.object({ id: z.string(), gates: z.array(z.string()), applied: z.boolean(), reason: z.string() })),
    inputs: z.object({
      actor: z.string(),
      evidence: z.array(z.object({ digest: z.string(), predicateType: z.string(), verified: z.boolean() })),
      approvals: z.array(z.string()),
      current: z.string().nullable(),
      history: z.number().int(),
      exceptions: z.array(z.string()),
    }),
    summary: z.string(),
  })
  .meta({ id: 'Decision', description: 'What the policy decided about one artifact in one environment, gate by gate.' });

export const ExceptionSchema = z
  .object({
    id: z.string(),
    environment: z.string(),
    gates: z.array(z.string()),
    artifact: z.string().describe('a digest, or a glob over name@version'),
    justification: z.string(),
    requestedBy: z.string(),
    createdAt: z.string(),
    expiresAt: z.string(),
    approvedBy: z.string().nullable(),
    approverRoles: z.array(z.enum(ROLES)),
    approvedAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    revokedBy: z.string().nullable(),
    status: z.enum(['requested', 'active', 'expired', 'revoked']),
  })
  .meta({ id: 'Exception', description: 'A time-limited waiver of named gates for one artifact in one environment.' });

const GateChange = z.enum([...GATE_OUTCOMES, 'absent']);

/** The environment of a stored exception, for the token-scope check; none when there is no such exception (the use case says so). */
async function exceptionEnvironment(ctx: Context, id: string): Promise<string | undefined> {
  return (await ctx.store.read((tx) => tx.exceptions.byId(id)))?.environment;
}

function files(input: { files?: z.output<typeof PolicyFilesSchema> | undefined }): { policy?: PolicyFiles } {
  return input.files === undefined ? {} : { policy: input.files };
}

export const POLICY_OPERATIONS = [
  defineOperation({
    id: 'policy.publish',
    method: 'post',
    path: '/v1/policy/versions',
    summary: 'Sign the resolved policy set with a policy key and make it the version in force',
    description: "Without `files`, the workspace's own policy folder is published. The set binds every environment, so an environment-scoped token is refused.",
    role: 'policy-admin',
    envScope: () => ALL_ENVIRONMENTS,
    bodyLimit: (c) => c.limits.evidenceBytes,
    input: z.strictObject({ key: z.string().min(1).max(160).describe('a key with the policy purpose, name or name@version'), files: PolicyFilesSchema.optional() }),
    output: z.object({
      version: z.number().int(),
      setDigest: z.string(),
      keyid: z.string(),
      key: z.string(),
      created: z.boolean().describe('false when the set is unchanged since the newest version'),
      policies: z.array(z.string()),
      loosened: z.number().int(),
      bundle: z.string().describe('the signed policy bundle, as --out writes it'),
    }),
    example: { key: 'example-policy' },
    run: async (ctx, input) => {
      const res = await publishPolicies(ctx, { key: input.key, ...(input.files === undefined ? {} : { files: input.files }) });
      const { bundle, ...rest } = res;
      return { ...rest, bundle: `${JSON.stringify(bundle, null, 2)}\n` };
    },
  }),
  defineOperation({
    id: 'policy.versions',
    method: 'get',
    path: '/v1/policy/versions',
    summary: 'Published policy versions, newest first',
    role: null,
    input: z.strictObject({}),
    output: z.object({ versions: z.array(z.object({ version: z.number().int(), setDigest: z.string(), keyid: z.string(), publishedAt: z.string(), publishedBy: z.string() })) }),
    example: {},
    run: async (ctx) => ({ versions: await listPolicyVersions(ctx) }),
  }),
  defineOperation({
    id: 'policy.show',
    method: 'post',
    path: '/v1/policy/show',
    summary: "An environment's policy, as written and fully resolved: the one in force, or proposed files",
    description: 'A POST because proposed files travel in the body; it changes nothing.',
    role: null,
    bodyLimit: (c) => c.limits.evidenceBytes,
    input: z.strictObject({ environment: Environment, files: PolicyFilesSchema.optional().describe('proposed policy files instead of the policy in force') }),
    output: z.object({
      environment: z.string(),
      policy: z.string(),
      source: z.enum(['published', 'files']),
      version: z.number().int().nullable(),
      digest: z.string(),
      resolved: z.record(z.string(), z.unknown()).describe('after templates, parameters, overrides and tiers'),
      text: z.string().optional().describe('the policy document as written'),
      file: z.string().optional(),
    }),
    example: { environment: 'dev' },
    run: async (ctx, input) => {
      const s = await showPolicy(ctx, input.environment, files(input));
      return { ...s, resolved: s.resolved as unknown as Record<string, unknown> };
    },
  }),
  defineOperation({
    id: 'policy.explain',
    method: 'post',
    path: '/v1/policy/explain',
    summary: "Evaluate an artifact against an environment's policy and explain every gate; changes nothing",
    description: 'outcome pass, fail or pending (the CLI exits 0, 1 or 3). A POST because a signed bundle may travel in the body.',
    role: null,
    bodyLimit: (c) => c.limits.evidenceBytes,
    input: z.strictObject({
      artifact: ArtifactRef,
      environment: Environment,
      bundle: z.string().optional().describe('a signed policy bundle (policy publish --out) instead of the policy in force'),
      bundleSource: z.string().max(1024).optional().describe('what to call the bundle in messages (never opened)'),
      files: PolicyFilesSchema.optional().describe('unsigned policy files (only with requireSignedPolicies: false)'),
    }),
    output: DecisionSchema,
    example: { artifact: 'pkg:npm/example@1.0.0', environment: 'dev' },
    run: async (ctx, input) =>
      explainArtifact(ctx, input.artifact, input.environment, {
        ...(input.bundle === undefined ? {} : { bundle: { text: input.bundle, source: input.bundleSource ?? 'the policy bundle' } }),
        ...(input.files === undefined ? {} : { files: input.files }),
      }),
  }),
  defineOperation({
    id: 'policy.simulate',
    method: 'post',
    path: '/v1/policy/simulate',
    summary: 'Which artifacts would flip between pass and fail under proposed policy files, before they are published',
    description: "Without `files`, the workspace's policy folder is the proposal. A POST because files travel in the body; it changes nothing.",
    role: null,
    bodyLimit: (c) => c.limits.evidenceBytes,
    input: z.strictObject({ environment: Environment, files: PolicyFilesSchema.optional(), limit: z.number().int().min(1).max(10_000).optional().describe('at most n artifacts, newest first') }),
    output: z.object({
      environment: z.string(),
      time: z.string(),
      scope: z.literal('registered-artifacts'),
      note: z.string(),
      current: z.object({ source: z.enum(['published', 'files']), version: z.number().int().nullable(), digest: z.string() }).nullable(),
      proposed: z.object({ path: z.string(), digest: z.string() }),
      evaluated: z.number().int(),
      flips: z.array(
        z.object({
          artifact: z.object({ digest: z.string(), name: z.string(), version: z.string() }),
          before: z.enum(['pass', 'fail', 'pending', 'no-policy']),
          after: z.enum(['pass', 'fail', 'pending']),
          gates: z.array(z.object({ name: z.string(), before: GateChange, after: GateChange, reason: z.string() })),
        }),
      ),
      unchanged: z.number().int(),
    }),
    example: { environment: 'dev', files: { root: 'policies', sources: [{ path: 'dev.yaml', text: EXAMPLE_POLICY_YAML }] }, limit: 100 },
    run: (ctx, input) => simulatePolicy(ctx, input.environment, { ...files(input), ...(input.limit === undefined ? {} : { limit: input.limit }) }),
  }),
  defineOperation({
    id: 'policy.verify',
    method: 'post',
    path: '/v1/policy/verify',
    summary: "Verify a signed policy bundle against the workspace's keys",
    role: null,
    bodyLimit: (c) => c.limits.evidenceBytes,
    input: z.strictObject({ bundle: z.string().describe('the bundle, as policy publish --out wrote it'), source: z.string().max(1024).optional().describe('what to call it in messages (never opened)') }),
    output: z.object({
      ok: z.literal(true),
      version: z.number().int(),
      setDigest: z.string(),
      publishedAt: z.string(),
      publishedBy: z.string(),
      environments: z.record(z.string(), z.object({ from: z.array(z.string()), policy: z.string() })),
      policies: z.array(z.string()),
    }),
    example: { bundle: EXAMPLE_POLICY_BUNDLE, source: 'policy-v1.json' },
    run: async (ctx, input) => {
      const p = await verifyPolicyBundle(ctx, input.bundle, input.source ?? 'the policy bundle');
      return { ok: true as const, version: p.version, setDigest: p.setDigest, publishedAt: p.publishedAt, publishedBy: p.publishedBy, environments: p.environments, policies: Object.keys(p.policies) };
    },
  }),
  defineOperation({
    id: 'exception.request',
    method: 'post',
    path: '/v1/exceptions',
    summary: 'Request a time-limited waiver of named gates for one artifact in one environment',
    description: 'Anyone may ask; an approver who is someone else makes it active.',
    role: null,
    envScope: (input) => input.environment,
    input: z.strictObject({
      environment: Environment,
      gates: z.array(z.string().max(64)).max(64).describe('the gates to waive'),
      artifact: z.string().max(1300).describe('name@version, a digest, or a glob such as pkg:npm/app@1.4.*'),
      expires: z.string().max(64).describe('a duration from now (24h, 3d) or an RFC 3339 time'),
      justification: z.string().max(4096).describe('why, with the ticket'),
    }),
    output: ExceptionSchema,
    example: { environment: 'dev', gates: ['named'], artifact: 'pkg:npm/example@1.0.0', expires: '24h', justification: 'EXAMPLE-1: a waiver for the documentation' },
    run: (ctx, input) => requestException(ctx, input),
  }),
  defineOperation({
    id: 'exception.approve',
    method: 'post',
    path: '/v1/exceptions/{id}/approve',
    summary: 'Approve an exception someone else requested',
    role: 'approver',
    envScope: (input, ctx) => exceptionEnvironment(ctx, input.id),
    input: z.strictObject({ id: z.string().max(64) }),
    output: ExceptionSchema,
    example: { id: 'ex-00000000a001' },
    run: (ctx, input) => approveException(ctx, input.id),
  }),
  defineOperation({
    id: 'exception.revoke',
    method: 'post',
    path: '/v1/exceptions/{id}/revoke',
    summary: 'Revoke an exception before it expires',
    description: 'Its requester may withdraw it; anyone else needs the approver or policy-admin role.',
    role: null,
    envScope: (input, ctx) => exceptionEnvironment(ctx, input.id),
    input: z.strictObject({ id: z.string().max(64), reason: z.string().max(1024).optional() }),
    output: ExceptionSchema,
    example: { id: 'ex-00000000a002', reason: 'the fix is out' },
    run: (ctx, input) => revokeException(ctx, input.id, input.reason),
  }),
  defineOperation({
    id: 'exception.list',
    method: 'get',
    path: '/v1/exceptions',
    summary: 'Requested and active exceptions (all: expired and revoked too)',
    role: null,
    input: z.strictObject({ environment: Environment.optional(), all: z.boolean().optional() }),
    output: z.object({ exceptions: z.array(ExceptionSchema) }),
    example: { environment: 'dev', all: true },
    run: async (ctx, input) => ({ exceptions: await listExceptions(ctx, defined(input)) }),
  }),
] as const;
