/**
 * The tamper-evident log over the registry, for auditors and witnesses.
 * Checkpoints and log keys an auditor keeps outside the server travel as their
 * texts; an evidence export comes back as the tar's bytes (base64), which the
 * CLI writes where --out says. A witness cosigns on its own machine with its
 * own key: the server only supplies consistency proofs and keeps cosignatures.
 */
import { z } from 'zod';
import { CustodyError } from '../../core/errors.ts';
import {
  checkpointSummary,
  consistencyProof,
  exportEvidence,
  latestCheckpoint,
  MAX_KEY_BYTES,
  MAX_NOTE_BYTES,
  proveEntry,
  recordWitnessRefusal,
  signCheckpointNow,
  attachCosignature,
  auditVerify,
} from '../log.ts';
import { defineOperation } from './registry.ts';

const EntryIndex = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const CheckpointSchema = z
  .object({
    seq: z.number().int(),
    size: z.number().int(),
    root: z.string().describe('base64'),
    keyid: z.string(),
    createdAt: z.string(),
    note: z.string().describe('the signed note (C2SP tlog-checkpoint), cosignatures included'),
  })
  .meta({ id: 'Checkpoint' });

const FindingSchema = z
  .object({
    index: z.number().int(),
    kind: z.string(),
    message: z.string(),
    range: z.object({ from: z.number().int(), to: z.number().int() }).optional(),
    checkpoint: z.object({ size: z.number().int().optional(), seq: z.number().int().optional(), source: z.string().optional() }).optional(),
  })
  .meta({ id: 'LogFinding', description: 'The first place where the log differs from what was recorded or signed.' });

// An example that parses as a checkpoint of another log: accepted, and attached to nothing.
const EXAMPLE_COSIGNED = 'example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/log AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n';

export const AUDIT_OPERATIONS = [
  defineOperation({
    id: 'audit.checkpoint',
    method: 'get',
    path: '/v1/log/checkpoint',
    summary: 'The newest signed checkpoint of the log (C2SP tlog-checkpoint)',
    role: 'auditor',
    input: z.strictObject({}),
    output: CheckpointSchema,
    example: {},
    run: async (ctx) => checkpointSummary(await latestCheckpoint(ctx)),
  }),
  defineOperation({
    id: 'audit.sign-checkpoint',
    method: 'post',
    path: '/v1/log/checkpoints',
    summary: 'Sign a checkpoint of the whole log now, even if the newest already covers it',
    role: 'auditor',
    input: z.strictObject({}),
    output: CheckpointSchema,
    example: {},
    run: async (ctx) => checkpointSummary(await signCheckpointNow(ctx)),
  }),
  defineOperation({
    id: 'audit.proof',
    method: 'get',
    path: '/v1/log/entries/{entry}/proof',
    summary: 'An entry (by index or id), its inclusion proof and the checkpoint it proves into',
    role: 'auditor',
    input: z.strictObject({ entry: z.string().min(1).max(100).describe('an index (42) or an entry id (42-6e34…)') }),
    output: z.object({
      entry: z.object({ index: z.number().int(), id: z.string(), leafHash: z.string(), body: z.string(), type: z.string(), actor: z.string(), time: z.string(), subject: z.string().optional() }),
      proof: z.object({ index: z.number().int(), treeSize: z.number().int(), hashes: z.array(z.string()) }),
      checkpoint: z.string(),
    }),
    example: { entry: '0' },
    run: (ctx, input) => proveEntry(ctx, input.entry),
  }),
  defineOperation({
    id: 'audit.verify',
    method: 'post',
    path: '/v1/log/verify',
    summary: 'Recompute the log from its entries and check every checkpoint, against outside checkpoints and pinned keys if given',
    description: 'A POST because trusted checkpoints and keys travel in the body; it changes nothing. A tampered log is reported (ok: false), not refused: the CLI exits 1.',
    role: 'auditor',
    bodyLimit: (c) => c.limits.evidenceBytes,
    input: z.strictObject({
      checkpoints: z
        .array(z.strictObject({ source: z.string().max(1024).describe('what to call it in the report, e.g. its file name'), note: z.string().max(MAX_NOTE_BYTES) }))
        .max(64)
        .optional()
        .describe('trusted checkpoints kept outside the database (e.g. witnessed): the log must extend each'),
      logKeys: z.array(z.string().max(MAX_KEY_BYTES)).max(16).optional().describe("the log's public keys (PEM or vkey), pinned instead of the workspace's key records"),
    }),
    output: z.object({
      ok: z.boolean(),
      origin: z.string(),
      entries: z.number().int(),
      checkpoints: z.number().int(),
      verifiedSize: z.number().int(),
      promotions: z.number().int().describe("promotion rows found equal to what the log's promotion.* entries say of them"),
      finding: FindingSchema.optional(),
      outside: z.array(z.string()),
    }),
    example: {},
    // Progress reaches a local caller only; over HTTP the answer is the report.
    run: (ctx, input, io) => auditVerify(ctx, { checkpoints: input.checkpoints ?? [], logKeys: input.logKeys ?? [], ...(io.onProgress ? { onProgress: (done, total) => io.onProgress?.({ bytes: done, total }) } : {}) }),
  }),
  defineOperation({
    id: 'audit.export',
    method: 'get',
    path: '/v1/log/export',
    summary: "An offline evidence bundle: entries, inclusion proofs, checkpoints, consistency proofs and the log's public keys",
    description: 'The tar comes back base64-encoded, at most 48 MiB before encoding: export a large log in ranges (from, to).',
    role: 'auditor',
    input: z.strictObject({ from: EntryIndex.optional().describe('first entry index (default 0)'), to: EntryIndex.optional().describe("end of the range, exclusive (default: the newest checkpoint's size)") }),
    output: z.object({
      origin: z.string(),
      from: z.number().int(),
      to: z.number().int(),
      treeSize: z.number().int(),
      entries: z.number().int(),
      checkpoints: z.number().int(),
      bytes: z.number().int(),
      tar: z.string().describe('the evidence bundle (a tar), base64'),
    }),
    example: { from: 0, to: 1 },
    run: async (ctx, input) => {
      const r = await exportEvidence(ctx, { ...(input.from === undefined ? {} : { from: input.from }), ...(input.to === undefined ? {} : { to: input.to }) });
      if (r.tar === undefined) throw new CustodyError('INTERNAL', 'the export wrote a file instead of answering with its bytes');
      return { origin: r.origin, from: r.from, to: r.to, treeSize: r.treeSize, entries: r.entries, checkpoints: r.checkpoints, bytes: r.bytes, tar: r.tar.toString('base64') };
    },
  }),
  defineOperation({
    id: 'audit.consistency',
    method: 'get',
    path: '/v1/log/consistency',
    summary: 'A consistency proof between two sizes of the log, for a witness',
    role: 'auditor',
    input: z.strictObject({ from: EntryIndex.describe('the smaller size (the one the witness cosigned)'), to: EntryIndex.describe('the larger size') }),
    output: z.object({ size1: z.number().int(), size2: z.number().int(), proof: z.array(z.string()).describe('base64 hashes') }),
    example: { from: 1, to: 2 },
    run: (ctx, input) => consistencyProof(ctx, input.from, input.to),
  }),
  defineOperation({
    id: 'audit.cosign',
    method: 'post',
    path: '/v1/log/cosignatures',
    summary: "Keep a witness's cosignature with the stored checkpoint it signed",
    description: 'Attached only to a stored checkpoint with exactly the same signed text; exports then carry it.',
    role: 'auditor',
    // A note may be as large as readers accept, and JSON-escaping its newlines grows it a little.
    bodyLimit: () => 2 * MAX_NOTE_BYTES,
    input: z.strictObject({ checkpoint: z.string().max(MAX_NOTE_BYTES).describe('the checkpoint with the cosignature lines added') }),
    output: z.object({ attached: z.boolean().describe('false when no stored checkpoint has that text') }),
    example: { checkpoint: EXAMPLE_COSIGNED },
    run: async (ctx, input) => ({ attached: await attachCosignature(ctx, input.checkpoint) }),
  }),
  defineOperation({
    id: 'audit.witness-refusal',
    method: 'post',
    path: '/v1/log/witness-refusals',
    summary: 'Put on the record that a witness refused to cosign (a rollback or a fork it saw)',
    role: 'auditor',
    input: z.strictObject({ reason: z.string().min(1).max(2048) }),
    output: z.object({ recorded: z.literal(true) }),
    example: { reason: 'the log example.com/log rolled back: this witness cosigned size 7, the checkpoint is for 5' },
    run: async (ctx, input) => {
      await recordWitnessRefusal(ctx, input.reason);
      return { recorded: true as const };
    },
  }),
] as const;
