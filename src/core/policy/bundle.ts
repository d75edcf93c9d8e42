/**
 * Published policy sets: the resolved policies and the environment bindings,
 * as canonical JSON, in a DSSE envelope signed by a `policy` key and packaged
 * as a Sigstore bundle v0.3 (like every other Custody signature).
 *
 * What is signed is the resolved set, not the files: the workspace evaluates
 * exactly what was reviewed and signed, and a later edit of a template cannot
 * change a published policy. The environment → policy binding is signed too,
 * so editing custody.yaml cannot point prod at the dev policy unnoticed.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { dsseBundle, parseBundle } from '../bundle.ts';
import { canonicalJson } from '../canonical.ts';
import { digestEquals } from '../digest.ts';
import { signEnvelope } from '../dsse.ts';
import type { VerificationResult } from '../errors.ts';
import type { TrustedKeys } from '../key.ts';
import type { Signer } from '../ports.ts';
import { verifyEnvelopeSignatures } from '../verify/pipeline.ts';
import { API_VERSION } from './schema.ts';
import type { ResolvedPolicy } from './resolve.ts';

export const POLICY_PAYLOAD_TYPE = 'application/vnd.custody.policy-set+json';

export interface EnvironmentBinding {
  from: string[];
  policy: string;
}

export interface PolicySetPayload {
  apiVersion: typeof API_VERSION;
  kind: 'PolicySet';
  /** The published version, counted from 1; signed so an old set cannot be replayed as a new one. */
  version: number;
  publishedAt: string;
  publishedBy: string;
  /** sha256 over the canonical JSON of { environments, policies }: what the set decides, without publishing metadata. */
  setDigest: string;
  environments: Record<string, EnvironmentBinding>;
  policies: Record<string, ResolvedPolicy>;
  /** The files it was resolved from, for `policy show` and for audits. */
  sources: { path: string; sha256: string; text: string }[];
}

export function policySetDigest(environments: Record<string, EnvironmentBinding>, policies: Record<string, ResolvedPolicy>): `sha256:${string}` {
  return `sha256:${createHash('sha256').update(canonicalJson({ environments, policies })).digest('hex')}`;
}

export function policySetPayload(input: Omit<PolicySetPayload, 'apiVersion' | 'kind' | 'setDigest'>): PolicySetPayload {
  return { apiVersion: API_VERSION, kind: 'PolicySet', ...input, setDigest: policySetDigest(input.environments, input.policies) };
}

/** Signs the canonical payload; returns the Sigstore bundle (v0.3, DSSE) as JSON. */
export async function signPolicySet(payload: PolicySetPayload, signer: Signer): Promise<unknown> {
  const envelope = await signEnvelope(POLICY_PAYLOAD_TYPE, Buffer.from(canonicalJson(payload), 'utf8'), signer);
  return dsseBundle(envelope);
}

// The signed JSON was checked when it was published; here it is read back from
// storage or a file, so its shape is checked again before anything trusts it.
const PayloadSchema = z.looseObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('PolicySet'),
  version: z.number().int().positive(),
  publishedAt: z.iso.datetime({ offset: true }),
  publishedBy: z.string(),
  setDigest: z.string(),
  environments: z.record(z.string(), z.strictObject({ from: z.array(z.string()), policy: z.string() })),
  policies: z.record(z.string(), z.looseObject({ name: z.string(), gates: z.array(z.looseObject({ name: z.string(), kind: z.string() })) })),
  sources: z.array(z.looseObject({ path: z.string(), sha256: z.string(), text: z.string() })),
});

export interface VerifyPolicyOptions {
  keys: TrustedKeys;
  /** When the store recorded the publication; the later of this and the signed time is checked against key validity. */
  recordedAt?: Date;
  maxBytes: number;
}

/**
 * Verifies a published set: bundle well-formed, one DSSE signature by a key
 * valid for `policy` at the publication time, payload of the right type and
 * shape, and the set digest recomputed from the content. Never throws.
 */
export function verifyPolicySet(bundle: unknown, opts: VerifyPolicyOptions): VerificationResult<PolicySetPayload> & { keyid?: string } {
  const bad = (code: string, message: string): VerificationResult<PolicySetPayload> => ({ ok: false, reasons: [{ code, message }] });
  const parsed = parseBundle(bundle);
  if (!parsed.ok) return { ok: false, reasons: [parsed.reason] };
  if (parsed.value.content.type !== 'dsse') return bad('POLICY_BUNDLE_INVALID', 'the policy bundle holds a message signature, not a DSSE envelope');
  const env = parsed.value.content.envelope;
  if (env.payloadType !== POLICY_PAYLOAD_TYPE) return bad('POLICY_BUNDLE_INVALID', `payload type is ${env.payloadType.slice(0, 100)}, not ${POLICY_PAYLOAD_TYPE}`);
  if (env.payload.length > opts.maxBytes) return bad('POLICY_BUNDLE_INVALID', `the policy payload is larger than ${opts.maxBytes} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(env.payload.toString('utf8'));
  } catch {
    return bad('POLICY_BUNDLE_INVALID', 'the policy payload is not JSON');
  }
  const shape = PayloadSchema.safeParse(json);
  if (!shape.success) return bad('POLICY_BUNDLE_INVALID', `the policy payload is malformed at ${shape.error.issues[0]?.path.join('.') ?? '?'}`);
  const payload = shape.data as unknown as PolicySetPayload;
  const signedAt = new Date(Math.max(Date.parse(payload.publishedAt), opts.recordedAt?.getTime() ?? 0));
  const sigs = verifyEnvelopeSignatures(env, { keys: opts.keys, signedAt, purpose: 'policy' });
  if (!sigs.ok) return { ok: false, reasons: sigs.reasons };
  const digest = policySetDigest(payload.environments, payload.policies);
  if (!digestEquals(digest, payload.setDigest)) return bad('POLICY_DIGEST_MISMATCH', `the set digest ${payload.setDigest} does not match the content (${digest})`);
  return { ok: true, reasons: [], value: payload, ...(sigs.signers[0] === undefined ? {} : { keyid: sigs.signers[0] }) };
}
