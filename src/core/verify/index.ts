/** The verification pipeline's public entry: import from here, not from its steps. */
export { verifyEvidence, verifyEnvelopeSignatures, signerOf, parseInput, type VerifyRequest, type VerifyResult, type EvidenceFormat, type EvidenceKind } from './pipeline.ts';
export { toKeylessTrust, type KeylessTrust, type KeylessExpectation } from './keyless.ts';
export { VERIFY_CODES, MALFORMED_CODES, type VerifyCode, type VerifyReason } from './reasons.ts';
export type { ArtifactDigests } from './subject.ts';
