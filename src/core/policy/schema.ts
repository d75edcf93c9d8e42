/**
 * The policy language: YAML documents checked by these zod schemas, which are
 * also the source of the published `schemas/policy.schema.json`.
 *
 * A policy set is a folder of documents, each with `apiVersion: custody.dev/v1`
 * and a `kind`: `Policy` (the gates of one or more environments), `Template`
 * (a parameterised policy that others `extend`) or `PolicyTest` (fixtures for
 * `custody policy test`).
 *
 * Gate bodies are written without defaults here, so that an override naming
 * one field (`approvals: { count: 2 }`) changes only that field; defaults are
 * applied after templates and overrides are merged (`withDefaults`).
 */
import { z } from 'zod';
import { ROLES } from '../identity.ts';

export const API_VERSION = 'custody.dev/v1';

const NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;
export const NameSchema = z.string().regex(NAME_RE, 'lowercase letters, digits and "-", starting with a letter');
export const DurationSchema = z.string().regex(/^\d{1,6}(s|m|h|d|w)$/, 'a duration such as 30m, 24h, 7d or 2w');
/** A glob: `*` matches any run of characters, everything else is literal. */
export const PatternSchema = z.string().min(1).max(512);
const CelSchema = z.string().min(1).max(4096);
const ReasonText = z.string().min(1).max(1024);

export const RESERVED_GATE_NAMES = ['tier'] as const;

// ---------------------------------------------------------------- gate bodies

export const SignerSchema = z
  .strictObject({
    key: z.string().min(1).max(256).optional().describe('A key name (any version) or name@version, as Custody knows it.'),
    keyid: z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex characters').optional().describe('The sha256 of the key\'s SubjectPublicKeyInfo.'),
    identity: PatternSchema.optional().describe('Keyless: the certificate identity (SAN), a glob.'),
    issuer: PatternSchema.optional().describe('Keyless: the OIDC issuer of the certificate, a glob; required with identity.'),
  })
  .superRefine((s, ctx) => {
    const kinds = [s.key, s.keyid, s.identity].filter((v) => v !== undefined).length;
    if (kinds !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of key, keyid or identity (with issuer)' });
    if ((s.identity === undefined) !== (s.issuer === undefined)) ctx.addIssue({ code: 'custom', message: 'identity and issuer go together' });
  })
  .describe('A trusted signer: a key by name or keyid, or a keyless certificate identity and issuer.');
export type SignerSpec = z.infer<typeof SignerSchema>;

export const RequireSchema = z
  .strictObject({
    predicateType: z.string().regex(/^[a-z][a-z0-9+.-]*:\S+$/, 'an absolute URI').max(512).describe('The in-toto predicate type the evidence must carry.'),
    signers: z.array(SignerSchema).min(1).max(32).describe('Who may sign it; signatures by anyone else do not count.'),
    threshold: z.number().int().min(1).max(16).optional().describe('Distinct trusted keys required across qualifying statements (default 1).'),
    where: CelSchema.optional().describe('CEL over `statement`, `predicate`, `signers` and the policy input; must be true.'),
  })
  .describe('Evidence requirement: a verified attestation of this type, signed by trusted signers.');
export type RequireGate = z.infer<typeof RequireSchema>;

export const FromSchema = z
  .strictObject({
    environments: z.array(NameSchema).min(1).max(32).optional().describe('Allowed source environments (default: the environment\'s `from` in custody.yaml).'),
    soak: DurationSchema.optional().describe('Minimum time the artifact must have spent promoted in the source environment.'),
  })
  .describe('The artifact must come from one of these environments, after a soak time.');
export type FromGate = z.infer<typeof FromSchema>;

export const ApproverSchema = z
  .strictObject({
    role: z.enum(ROLES).optional(),
    group: NameSchema.optional(),
    identity: PatternSchema.optional(),
  })
  .superRefine((a, ctx) => {
    if ([a.role, a.group, a.identity].filter((v) => v !== undefined).length !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of role, group or identity' });
  })
  .describe('Who may approve: holders of a role, members of a group, or identities matching a glob.');
export type ApproverSpec = z.infer<typeof ApproverSchema>;

export const SEPARATIONS = ['requester', 'signers', 'creator'] as const;
export type Separation = (typeof SEPARATIONS)[number];

export const ApprovalsSchema = z
  .strictObject({
    count: z.number().int().min(1).max(20).describe('Distinct approvers required.'),
    approvers: z.array(ApproverSchema).min(1).max(32).optional().describe('Who may approve (any of); default: the approver role.'),
    distinctFrom: z
      .array(z.enum(SEPARATIONS))
      .max(3)
      .optional()
      .describe('Separation of duties: an approver may not be the requester, a signer of the artifact\'s evidence, or its creator (default: requester, signers).'),
  })
  .describe('Human approvals; the promotion work collects the votes, the engine counts them.');
export type ApprovalsGate = z.infer<typeof ApprovalsSchema>;

const WEEK_TIME_RE = /^(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):[0-5]\d$|^(mon|tue|wed|thu|fri|sat|sun) 24:00$/;
const LOCAL_DATE_RE = /^\d{4}-\d{2}-\d{2}(T([01]\d|2[0-3]):[0-5]\d)?$/;

export const WeeklyWindowSchema = z.strictObject({
  from: z.string().regex(WEEK_TIME_RE, 'a day and local time, e.g. "fri 16:00"'),
  to: z.string().regex(WEEK_TIME_RE, 'a day and local time, e.g. "mon 07:00"'),
  reason: ReasonText.optional(),
});
export const DateWindowSchema = z.strictObject({
  from: z.string().regex(LOCAL_DATE_RE, 'a local date or date-time, e.g. 2026-12-21 or 2026-12-21T18:00'),
  to: z.string().regex(LOCAL_DATE_RE, 'a local date (inclusive) or date-time (exclusive)'),
  reason: ReasonText.optional(),
});

export const FreezeSchema = z
  .strictObject({
    timeZone: z.string().min(1).max(64).describe('The IANA time zone the windows are written in, e.g. Europe/Berlin.'),
    weekly: z.array(WeeklyWindowSchema).max(64).optional().describe('Recurring weekly windows, in local wall-clock time.'),
    dates: z.array(DateWindowSchema).max(256).optional().describe('Date ranges, in local time.'),
  })
  .describe('Windows in which promotion is denied; only an exception overrides a freeze.');
export type FreezeGate = z.infer<typeof FreezeSchema>;

export const VersioningSchema = z
  .strictObject({
    semver: z.boolean().optional().describe('The version must be semver (default true).'),
    noDowngrade: z.boolean().optional().describe('Never below the current version, except by rollback (default true).'),
    mustBeNewer: z.boolean().optional().describe('Strictly newer than the current version (default false).'),
    allowPrerelease: z.boolean().optional().describe('Allow versions such as 2.0.0-rc.1 (default true).'),
  })
  .describe('Versioning discipline in the environment.');
export type VersioningGate = z.infer<typeof VersioningSchema>;

export const RuleSchema = z
  .strictObject({
    expr: CelSchema.describe('A CEL expression over the policy input; must be true.'),
    message: ReasonText.optional().describe('What to tell a human when it is false.'),
  })
  .describe('A named CEL rule.');
export type RuleGate = z.infer<typeof RuleSchema>;

export const GATE_KINDS = ['require', 'from', 'approvals', 'freeze', 'versioning', 'rule'] as const;
export type GateKind = (typeof GATE_KINDS)[number];

const BODY = {
  require: RequireSchema,
  from: FromSchema,
  approvals: ApprovalsSchema,
  freeze: FreezeSchema,
  versioning: VersioningSchema,
  rule: RuleSchema,
} as const;

const LoosenSchema = z
  .strictObject({ reason: ReasonText })
  .describe('Marks an override that weakens an inherited gate as intended; `policy check` lists it.');

function kindCount(g: Record<string, unknown>): number {
  return GATE_KINDS.filter((k) => g[k] !== undefined).length;
}

/** A gate as written: in a template, a policy, an override or a tier. Fields are optional so overrides can name one. */
export const GateSourceSchema = z
  .strictObject({
    description: z.string().max(1024).optional(),
    require: RequireSchema.partial().optional(),
    from: FromSchema.partial().optional(),
    approvals: ApprovalsSchema.partial().optional(),
    freeze: FreezeSchema.partial().optional(),
    versioning: VersioningSchema.partial().optional(),
    rule: RuleSchema.partial().optional(),
    loosen: LoosenSchema.optional(),
    remove: z.literal(true).optional().describe('Drop an inherited gate (a loosening: needs `loosen`).'),
  })
  .superRefine((g, ctx) => {
    const n = kindCount(g);
    if (g.remove === true && n > 0) ctx.addIssue({ code: 'custom', message: 'a removed gate has no body' });
    if (g.remove !== true && n !== 1) ctx.addIssue({ code: 'custom', message: `a gate has exactly one kind: ${GATE_KINDS.join(', ')}` });
  })
  .describe('A named gate: exactly one of require, from, approvals, freeze, versioning or rule.');
export type GateSource = z.infer<typeof GateSourceSchema>;

/** A gate after merging, checked in full (required fields present). */
export const GateSchema = z
  .strictObject({
    description: z.string().max(1024).optional(),
    require: RequireSchema.optional(),
    from: FromSchema.optional(),
    approvals: ApprovalsSchema.optional(),
    freeze: FreezeSchema.optional(),
    versioning: VersioningSchema.optional(),
    rule: RuleSchema.optional(),
  })
  .superRefine((g, ctx) => {
    if (kindCount(g) !== 1) ctx.addIssue({ code: 'custom', message: `a gate has exactly one kind: ${GATE_KINDS.join(', ')}` });
  });

export type WeeklyWindow = z.infer<typeof WeeklyWindowSchema>;
export type DateWindow = z.infer<typeof DateWindowSchema>;

export interface ResolvedRequire {
  predicateType: string;
  signers: SignerSpec[];
  threshold: number;
  where?: string;
}
export interface ResolvedApprovals {
  count: number;
  approvers: ApproverSpec[];
  distinctFrom: Separation[];
}
export interface ResolvedFreeze {
  timeZone: string;
  weekly: WeeklyWindow[];
  dates: DateWindow[];
}
export interface ResolvedVersioning {
  semver: boolean;
  noDowngrade: boolean;
  mustBeNewer: boolean;
  allowPrerelease: boolean;
}

/** A resolved gate: one kind, defaults applied. */
export type Gate =
  | { kind: 'require'; description?: string; require: ResolvedRequire }
  | { kind: 'from'; description?: string; from: FromGate }
  | { kind: 'approvals'; description?: string; approvals: ResolvedApprovals }
  | { kind: 'freeze'; description?: string; freeze: ResolvedFreeze }
  | { kind: 'versioning'; description?: string; versioning: ResolvedVersioning }
  | { kind: 'rule'; description?: string; rule: RuleGate };

export function gateKindOf(g: Record<string, unknown>): GateKind | undefined {
  return GATE_KINDS.find((k) => g[k] !== undefined);
}

/** Applies the documented defaults to a fully checked gate. */
export function withDefaults(g: z.infer<typeof GateSchema>): Gate {
  const description = g.description === undefined ? {} : { description: g.description };
  if (g.require) {
    const r = g.require;
    return { kind: 'require', ...description, require: { predicateType: r.predicateType, signers: r.signers, threshold: r.threshold ?? 1, ...(r.where === undefined ? {} : { where: r.where }) } };
  }
  if (g.from) return { kind: 'from', ...description, from: g.from };
  if (g.approvals) {
    return {
      kind: 'approvals',
      ...description,
      approvals: { count: g.approvals.count, approvers: g.approvals.approvers ?? [{ role: 'approver' }], distinctFrom: g.approvals.distinctFrom ?? ['requester', 'signers'] },
    };
  }
  if (g.freeze) return { kind: 'freeze', ...description, freeze: { timeZone: g.freeze.timeZone, weekly: g.freeze.weekly ?? [], dates: g.freeze.dates ?? [] } };
  if (g.versioning) {
    const v = g.versioning;
    return { kind: 'versioning', ...description, versioning: { semver: v.semver ?? true, noDowngrade: v.noDowngrade ?? true, mustBeNewer: v.mustBeNewer ?? false, allowPrerelease: v.allowPrerelease ?? true } };
  }
  return { kind: 'rule', ...description, rule: g.rule ?? { expr: 'false' } };
}

export function bodySchema(kind: GateKind): z.ZodType {
  return BODY[kind];
}

// ---------------------------------------------------------------- documents

export const FastTrackSchema = z
  .strictObject({
    description: z.string().max(1024).optional(),
    identities: z.array(PatternSchema).max(64).optional().describe('Requesters (globs) this fast-track serves.'),
    teams: z.array(z.string().min(1).max(128)).max(64).optional().describe('Owning teams (the artifact\'s `team` label) it serves.'),
    relax: z.array(NameSchema).min(1).max(64).describe('Gates waived when they fail; never a freeze gate.'),
    loosen: LoosenSchema.optional(),
  })
  .superRefine((f, ctx) => {
    if (f.identities === undefined && f.teams === undefined) ctx.addIssue({ code: 'custom', message: 'name the identities or teams the fast-track is for' });
  })
  .describe('Relax named gates for named teams or identities; the decision records its use.');
export type FastTrack = z.infer<typeof FastTrackSchema>;

export const ExceptionRulesSchema = z
  .strictObject({
    maxDuration: DurationSchema.optional().describe('Longest an exception may last (default 30d).'),
    approvers: z.array(ApproverSchema).min(1).max(32).optional().describe('Who may approve an exception (default: the approver role).'),
  })
  .describe('Limits on exceptions (waivers) in environments under this policy.');
export type ExceptionRules = z.infer<typeof ExceptionRulesSchema>;

const TierSchema = z.strictObject({
  description: z.string().max(1024).optional(),
  gates: z.record(NameSchema, GateSourceSchema).describe('Gates added, or inherited gates tightened, for this tier.'),
});

const ParameterSchema = z
  .strictObject({
    type: z.enum(['string', 'integer', 'boolean', 'duration', 'string-list']),
    default: z.unknown().optional(),
    description: z.string().max(1024).optional(),
  })
  .describe('A template parameter: `${{ params.NAME }}` in values, `params.NAME` in CEL.');
export type ParameterSpec = z.infer<typeof ParameterSchema>;

const policyFields = {
  apiVersion: z.literal(API_VERSION),
  name: NameSchema.describe('Environments refer to the policy by this name.'),
  description: z.string().max(4096).optional(),
  extends: z
    .strictObject({
      template: NameSchema,
      with: z.record(z.string(), z.unknown()).optional().describe('Parameter values for the template.'),
    })
    .optional()
    .describe('Inherit the gates of a template, with parameters.'),
  tierLabel: z.string().min(1).max(64).optional().describe('The artifact label naming its risk tier (default: tier).'),
  unknownTier: z.enum(['deny', 'base']).optional().describe('An artifact whose tier the policy does not define: deny (default) or use the base gates.'),
  gates: z.record(NameSchema, GateSourceSchema).optional().describe('Named gates; every one must pass (or be waived).'),
  tiers: z.record(NameSchema, TierSchema).optional().describe('Extra or tighter gates per risk tier.'),
  fastTrack: z.record(NameSchema, FastTrackSchema).optional(),
  exceptions: ExceptionRulesSchema.optional(),
};

export const PolicyDocSchema = z.strictObject({ ...policyFields, kind: z.literal('Policy') }).describe('A policy: the gates an environment evaluates.');
export const TemplateDocSchema = z
  .strictObject({ ...policyFields, kind: z.literal('Template'), parameters: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,62}$/), ParameterSchema).optional() })
  .describe('A template that policies extend with parameters.');
export type PolicyDoc = z.infer<typeof PolicyDocSchema>;
export type TemplateDoc = z.infer<typeof TemplateDocSchema>;

// ---------------------------------------------------------------- tests

const Rfc3339 = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/, 'an RFC 3339 time with a zone, e.g. 2026-03-10T09:00:00Z');
const Sha256 = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex>');

const FixtureSignerSchema = z.strictObject({
  key: z.string().min(1).max(256).optional().describe('name@version of a key (a keyid is derived from it).'),
  keyid: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  identity: z.string().min(1).max(512).optional(),
  issuer: z.string().min(1).max(512).optional(),
  owner: z.string().min(1).max(256).optional().describe('Who owns the key (for separation of duties).'),
  valid: z.boolean().optional().describe('Did the signature verify (default true)?'),
  reason: ReasonText.optional().describe('Why it did not, e.g. "key build-ci@1 revoked 2026-03-01T00:00:00Z".'),
});

const FixtureEvidenceSchema = z.strictObject({
  predicateType: z.string().min(1).max(512),
  predicate: z.record(z.string(), z.unknown()).optional(),
  subjectDigest: Sha256.optional().describe('The statement\'s subject (default: the artifact).'),
  signers: z.array(FixtureSignerSchema).min(1).max(16),
});

const FixtureExceptionSchema = z.strictObject({
  id: z.string().min(1).max(64).optional(),
  environment: NameSchema.optional(),
  gates: z.array(NameSchema).min(1),
  artifact: z.string().min(1).max(512).optional().describe('A digest, or a glob over name@version or the digest (default: the artifact\'s digest).'),
  justification: ReasonText.optional(),
  requestedBy: z.string().min(1).max(256),
  approvedBy: z.string().min(1).max(256),
  approverRoles: z.array(z.enum(ROLES)).optional(),
  createdAt: Rfc3339.optional(),
  approvedAt: Rfc3339.optional(),
  expiresAt: Rfc3339,
  revokedAt: Rfc3339.optional(),
});

const IdentityFixture = z.strictObject({
  identity: z.string().min(1).max(256),
  roles: z.array(z.enum(ROLES)).optional(),
  groups: z.array(z.string().min(1).max(128)).optional(),
  time: Rfc3339.optional(),
});

export const CaseInputSchema = z.strictObject({
  time: Rfc3339.describe('The reference time of the decision.'),
  kind: z.enum(['promotion', 'rollback']).optional(),
  artifact: z.strictObject({
    name: z.string().min(1).max(256),
    version: z.string().min(1).max(128),
    digest: Sha256.optional(),
    labels: z.record(z.string(), z.string()).optional(),
    source: z.strictObject({ repository: z.string().optional(), commit: z.string().optional() }).optional(),
    createdBy: z.string().optional(),
  }),
  actor: IdentityFixture.optional(),
  evidence: z.array(FixtureEvidenceSchema).max(256).optional(),
  approvals: z.array(IdentityFixture).max(64).optional(),
  current: z.strictObject({ version: z.string(), digest: Sha256.optional(), since: Rfc3339.optional() }).nullable().optional(),
  history: z
    .array(z.strictObject({ environment: NameSchema, event: z.enum(['promoted', 'rolled-back', 'replaced']), time: Rfc3339, version: z.string().optional() }))
    .max(256)
    .optional(),
  exceptions: z.array(FixtureExceptionSchema).max(64).optional(),
});
export type CaseInput = z.infer<typeof CaseInputSchema>;

export const GATE_OUTCOMES = ['pass', 'fail', 'waived', 'pending'] as const;
export type GateOutcome = (typeof GATE_OUTCOMES)[number];

export const TestCaseSchema = z.strictObject({
  name: z.string().min(1).max(256),
  input: CaseInputSchema,
  expect: z.strictObject({
    outcome: z.enum(['pass', 'fail', 'pending']),
    gates: z.record(z.string(), z.enum(GATE_OUTCOMES)).optional().describe('Expected outcome per gate; gates not listed are not checked.'),
    reasons: z.record(z.string(), z.string()).optional().describe('A text each listed gate\'s reasons must contain.'),
    tier: z.string().nullable().optional(),
    fastTrack: z.array(NameSchema).optional().describe('Fast-tracks that must have waived something.'),
    exceptions: z.array(z.string()).optional().describe('Ids of the exceptions that must have been applied.'),
  }),
});
export type TestCase = z.infer<typeof TestCaseSchema>;

export const PolicyTestDocSchema = z
  .strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('PolicyTest'),
    name: z.string().min(1).max(128),
    policy: NameSchema.describe('The policy under test.'),
    environment: NameSchema.optional().describe('The environment the input is for (default: the policy name).'),
    from: z.array(NameSchema).optional().describe('The environment\'s sources (default: those in custody.yaml, or none).'),
    cases: z.array(TestCaseSchema).min(1).max(1000),
  })
  .describe('Policy unit tests: inputs and the decisions they must produce.');
export type PolicyTestDoc = z.infer<typeof PolicyTestDocSchema>;

export const DocumentHeaderSchema = z.looseObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.enum(['Policy', 'Template', 'PolicyTest']),
});

/** The published JSON Schema: any document of a policy set. */
export const PolicyFileSchema = z.discriminatedUnion('kind', [PolicyDocSchema, TemplateDocSchema, PolicyTestDocSchema]).describe('A Custody policy-set document (Policy, Template or PolicyTest).');

export function policyJsonSchema(): unknown {
  return z.toJSONSchema(PolicyFileSchema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any', reused: 'ref' });
}
