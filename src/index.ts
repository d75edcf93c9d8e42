/** The library surface of Custody, for tools that embed it rather than shell out. */
export { CustodyError, ERROR_CODES, exitCodeFor, httpStatusFor, type ErrorCode, type Reason, type VerificationResult } from './core/errors.ts';
export { parseDigest, formatDigest, digestEquals, type Digest, type DigestString } from './core/digest.ts';
export { validateName, validateVersion, parseArtifactRef, type Artifact } from './core/artifact.ts';
export { keyValidAt, keyMaySign, type KeyRecord, type KeyPurpose, type KeyAlgorithm } from './core/key.ts';
export { initWorkspace, openWorkspace, type Context } from './app/workspace.ts';
export { addArtifact, listArtifacts, showArtifact } from './app/artifacts.ts';
export { main } from './cli/main.ts';
export { verifyInclusion, verifyConsistency, verifyCheckpoint, type ProofResult } from './core/tlog/index.ts';
