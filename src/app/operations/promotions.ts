import { z } from 'zod';
// The state list only: every CLI command loads this table, and the engine behind it (CEL, the verifiers) is
// loaded by the operations that run it, on use.
import { PROMOTION_STATES } from '../../core/promotion/state.ts';
import { defineOperation } from './registry.ts';

const engine = () => import('../promotion.ts');
const board = () => import('../promotion-board.ts');
const receipts = () => import('../receipts.ts');

// Types only: the use cases check names, digests and keys, so both modes refuse alike.
const ArtifactRef = z.string().min(1).max(1300).describe('name@version, or sha256:<hex>');
const EnvName = z.string().min(1).max(64).describe('an environment of custody.yaml');
const PromotionId = z.string().min(1).max(64).describe('pr_<22 hex>');
const IdempotencyKey = z.string().max(200).describe('a retry with the same key (same requester, same environment) returns the same promotion');

const ReasonSchema = z.object({ code: z.string(), message: z.string() });
const ArtifactRefSchema = z.object({ digest: z.string(), name: z.string(), version: z.string() });
const State = z.enum(PROMOTION_STATES);
const Kind = z.enum(['promotion', 'rollback']);

export const PromotionSchema = z
  .object({
    id: z.string(),
    environment: z.string(),
    kind: Kind,
    state: State,
    artifact: ArtifactRefSchema,
    requestedBy: z.string(),
    requestedAt: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().nullable(),
    idempotencyKey: z.string().nullable(),
    decision: z
      .object({
        outcome: z.enum(['pass', 'fail', 'pending']),
        summary: z.string(),
        time: z.string(),
        policy: z.object({ name: z.string(), digest: z.string(), version: z.number().int().nullable() }),
        gates: z.array(
          z.object({
            name: z.string(),
            kind: z.string(),
            outcome: z.string(),
            requirement: z.string(),
            reasons: z.array(ReasonSchema),
            waivedBy: z.object({ kind: z.string(), id: z.string() }).optional(),
          }),
        ),
      })
      .nullable()
      .describe('the policy decision of the latest plan: every gate with its outcome and reasons'),
    reasons: z.array(ReasonSchema).describe('why it was rejected, or what it waits for'),
    outcome: ReasonSchema.nullable().describe('why it stopped: PROMOTION_REJECTED, PROMOTION_SUPERSEDED, REJECTED_BY_APPROVER, TARGET_FAILED, INTERRUPTED, …'),
    approvals: z.array(
      z.object({
        identity: z.string(),
        vote: z.enum(['approve', 'reject']),
        comment: z.string().nullable(),
        time: z.string(),
        counted: z.boolean(),
        invalidated: z.object({ at: z.string(), reason: z.string() }).nullable(),
      }),
    ),
    relied: z
      .object({
        evidence: z.array(z.string()),
        sources: z.array(z.object({ environment: z.string(), promotion: z.string(), receipt: z.string() })),
        policy: z.string(),
        environmentSeq: z.number().int(),
      })
      .nullable()
      .describe('what the plan relied on: evidence digests, source receipts, policy digest, environment state'),
    receipt: z.string().nullable().describe('digest of the signed receipt (SLSA VSA), once promoted'),
    logIndex: z.number().int().nullable(),
    proof: z.object({ index: z.number().int(), size: z.number().int(), hashes: z.array(z.string()), checkpoint: z.string() }).nullable(),
    targetOutput: z.string().nullable(),
    replayed: z.boolean().describe('true when an earlier answer is repeated: the same idempotency key, or the same vote again'),
  })
  .meta({ id: 'Promotion', description: 'A promotion: its state, decision, votes and receipt.' });

const CandidateSchema = z.object({ promotion: z.string(), digest: z.string(), name: z.string(), version: z.string(), promotedAt: z.string().nullable(), outcome: z.enum(['pass', 'pending']) });

const ChainLinkSchema = z.object({
  environment: z.string(),
  receipt: z.string(),
  promotion: z.string().nullable(),
  version: z.string().nullable(),
  kind: z.string().nullable(),
  timeVerified: z.string().nullable(),
  logIndex: z.number().int().nullable(),
  ok: z.boolean(),
});

const HeadSchema = z.object({ environment: z.string(), artifact: ArtifactRefSchema, promotion: z.string(), receipt: z.string(), seq: z.number().int(), issuedAt: z.string(), expiresAt: z.string() });

export const DeployReportSchema = z
  .object({
    ok: z.boolean(),
    mode: z.enum(['online', 'offline']),
    environment: z.string(),
    artifact: z.object({ digest: z.string(), name: z.string().nullable(), version: z.string().nullable() }),
    current: z.object({ promotion: z.string(), digest: z.string(), version: z.string() }).nullable(),
    reasons: z.array(ReasonSchema),
    chain: z.array(ChainLinkSchema),
    head: HeadSchema.nullable(),
    checkedAt: z.string(),
  })
  .meta({ id: 'DeployVerification', description: 'The deploy-time gate: may this artifact run in this environment?' });

const PendingSchema = z.object({
  id: z.string(),
  kind: Kind,
  state: State,
  artifact: ArtifactRefSchema,
  requestedBy: z.string(),
  requestedAt: z.string(),
  waitingMs: z.number(),
  waitingFor: z.array(ReasonSchema),
  approvals: z.array(z.string()),
});

export const StatusSchema = z
  .object({
    generatedAt: z.string(),
    environments: z.array(
      z.object({
        name: z.string(),
        from: z.array(z.string()),
        target: z.string(),
        current: z
          .object({ promotion: z.string(), kind: Kind, artifact: ArtifactRefSchema, since: z.string(), by: z.string(), approvedBy: z.array(z.string()), receipt: z.string().nullable() })
          .nullable(),
        applying: z.string().nullable(),
        pending: z.array(PendingSchema),
      }),
    ),
    recovered: z.array(z.object({ promotion: z.string(), environment: z.string(), action: z.enum(['resumed', 'rolled-back', 'cancelled', 'deferred']), state: State })),
  })
  .meta({ id: 'StatusBoard', description: 'Each environment: its current version, since when and who, and what is in flight.' });

export const HistorySchema = z
  .object({
    subject: z.union([z.object({ kind: z.literal('environment'), name: z.string() }), z.object({ kind: z.literal('artifact'), digest: z.string(), name: z.string(), version: z.string() })]),
    promotions: z.array(
      z.object({
        id: z.string(),
        environment: z.string(),
        kind: Kind,
        state: State,
        artifact: ArtifactRefSchema,
        requestedBy: z.string(),
        requestedAt: z.string(),
        finishedAt: z.string().nullable(),
        decision: z.object({ outcome: z.string(), summary: z.string(), policy: z.string() }).nullable(),
        outcome: ReasonSchema.nullable(),
        approvals: z.array(z.string()),
        receipt: z.string().nullable(),
      }),
    ),
  })
  .meta({ id: 'PromotionHistory' });

export const PROMOTION_OPERATIONS = [
  defineOperation({
    id: 'promotion.request',
    method: 'post',
    path: '/v1/promotions',
    summary: 'Promote an artifact into an environment: plan (policy decision), then apply, sign the receipt and log every step',
    description: 'The answer is the promotion as it rests: promoted, rejected (with every gate and reason), awaiting-approval, or failed. A retry with the same idempotencyKey returns the same promotion.',
    role: 'deployer',
    envScope: (input) => input.to,
    input: z.strictObject({ artifact: ArtifactRef, to: EnvName, idempotencyKey: IdempotencyKey.optional() }),
    output: PromotionSchema,
    example: { artifact: 'pkg:npm/example@1.0.0', to: 'dev' },
    run: async (ctx, input) => (await engine()).promote(ctx, input),
  }),
  defineOperation({
    id: 'promotion.show',
    method: 'get',
    path: '/v1/promotions/{id}',
    summary: 'One promotion: state, decision, votes, receipt',
    role: null,
    input: z.strictObject({ id: PromotionId }),
    output: PromotionSchema,
    example: { id: 'pr_00000000000000a1' },
    run: async (ctx, input) => (await engine()).showPromotion(ctx, input.id),
  }),
  defineOperation({
    id: 'promotion.approve',
    method: 'post',
    path: '/v1/environments/{environment}/promotions/{id}/approve',
    summary: 'Approve a promotion awaiting approval; when the quorum is met it continues to applying by itself',
    description: 'Separation of duties applies to the authenticated caller: the approver role, not the requester, not a signer of the evidence it relies on, one vote per identity. The same vote again is answered without being counted twice. The environment must be the promotion\'s (it is what an environment-scoped token is checked against).',
    role: 'approver',
    envScope: (input) => input.environment,
    input: z.strictObject({ environment: EnvName, id: PromotionId, comment: z.string().max(4096).optional() }),
    output: PromotionSchema,
    example: { environment: 'prod', id: 'pr_00000000000000a1', comment: 'reviewed' },
    run: async (ctx, input) => (await engine()).approvePromotion(ctx, input),
  }),
  defineOperation({
    id: 'promotion.reject',
    method: 'post',
    path: '/v1/environments/{environment}/promotions/{id}/reject',
    summary: 'Reject (veto) a promotion awaiting approval, with a reason',
    role: 'approver',
    envScope: (input) => input.environment,
    input: z.strictObject({ environment: EnvName, id: PromotionId, reason: z.string().max(4096) }),
    output: PromotionSchema,
    example: { environment: 'prod', id: 'pr_00000000000000b1', reason: 'the release notes are missing' },
    run: async (ctx, input) => (await engine()).rejectPromotion(ctx, input),
  }),
  defineOperation({
    id: 'promotion.rollback',
    method: 'post',
    path: '/v1/environments/{environment}/rollback',
    summary: 'Roll an environment back to the version before the current one (or a named one), re-verified against today\'s keys and policy',
    description: 'Records a promotion of kind rollback. When the version no longer verifies it is refused (state rejected, with reasons) and the next candidate that would pass is suggested.',
    role: 'deployer',
    envScope: (input) => input.environment,
    input: z.strictObject({ environment: EnvName, to: z.string().max(1300).optional().describe('a version (or name@version, or digest) promoted there before'), idempotencyKey: IdempotencyKey.optional() }),
    output: PromotionSchema.extend({ suggestion: CandidateSchema.nullable() }).meta({ id: 'Rollback' }),
    example: { environment: 'dev' },
    run: async (ctx, input) => (await engine()).rollback(ctx, input),
  }),
  defineOperation({
    id: 'promotion.status',
    method: 'get',
    path: '/v1/status',
    summary: 'The status board: each environment\'s current artifact, since when and who, and pending promotions with their waiting time',
    role: null,
    input: z.strictObject({ environment: EnvName.optional() }),
    output: StatusSchema,
    example: {},
    run: async (ctx, input) => (await board()).promotionStatus(ctx, input),
  }),
  defineOperation({
    id: 'promotion.history',
    method: 'get',
    path: '/v1/history/{ref}',
    summary: 'Every promotion of an environment or of an artifact, newest first, with its decision',
    role: null,
    input: z.strictObject({ ref: z.string().min(1).max(1300).describe('an environment, or an artifact (name@version or digest)'), limit: z.number().int().min(1).max(10_000).optional() }),
    output: HistorySchema,
    example: { ref: 'dev' },
    run: async (ctx, input) => (await board()).promotionHistory(ctx, input),
  }),
  defineOperation({
    id: 'promotion.verify',
    method: 'get',
    path: '/v1/artifacts/{artifact}/environments/{environment}/verify',
    summary: 'The deploy-time gate: ok only if a current, validly signed receipt admits this artifact, its chain is complete, its evidence still holds and it is in the log',
    role: null,
    input: z.strictObject({ artifact: ArtifactRef, environment: EnvName }),
    output: DeployReportSchema,
    example: { artifact: 'pkg:npm/example@1.0.0', environment: 'dev' },
    run: async (ctx, input) => (await receipts()).verifyEnvironment(ctx, input),
  }),
  defineOperation({
    id: 'receipt.export',
    method: 'get',
    path: '/v1/environments/{environment}/receipts',
    summary: 'Everything the offline deploy-time gate needs: a freshly signed environment head, the receipt chain, evidence, log entries and public key records',
    role: null,
    // It signs a head with the environment's receipt key: only callers that may act on the environment ask for one.
    envScope: (input) => input.environment,
    input: z.strictObject({ environment: EnvName, validFor: z.string().max(16).optional().describe('how long the signed head is valid, e.g. 24h (default)') }),
    output: z
      .object({ environment: z.string(), artifact: ArtifactRefSchema, head: HeadSchema, files: z.array(z.object({ path: z.string(), content: z.string() })) })
      .meta({ id: 'ReceiptExport' }),
    example: { environment: 'dev', validFor: '1h' },
    run: async (ctx, input) => (await receipts()).exportReceipts(ctx, input),
  }),
] as const;
