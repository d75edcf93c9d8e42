/** The tamper-evident log's pure core: what the app layer and other modules import. */
export { HASH_SIZE, emptyRoot, leafHash, nodeHash } from './hash.ts';
export { verifyConsistency, verifyInclusion, type ProofResult } from './verify.ts';
export { CompactRange, consistencyRanges, foldRange, frontierIds, inclusionRanges, materialize, nodeKey, nodesFor, rangeNodes, type LeafRange, type NodeId } from './tree.ts';
export { entryBody, entryId, entryLeaf, parseEntryBody, parseEntryId, type EntryBody, type EntryFields } from './entry.ts';
export {
  addSignatures,
  cosignCheckpoint,
  cosignatureVerifier,
  formatCheckpointText,
  logNoteVerifier,
  logNoteVerifierFor,
  parseCheckpointText,
  signCheckpoint,
  verifyCheckpoint,
  verifyCosignatures,
  verifyNoteSignatures,
  type Checkpoint,
  type NoteVerifier,
  type VerifiedCheckpoint,
  type VerifiedCosignature,
} from './checkpoint.ts';
export {
  decodeBase64Strict,
  ed25519FromRaw,
  ed25519Raw,
  encodeBase64,
  formatVkey,
  isKeyName,
  MAX_NOTE_BYTES,
  parseNote,
  parseVkey,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  type SignedNote,
  type Vkey,
} from './note.ts';
export { LogAuditor, type AuditCheckpoint, type Finding, type FindingKind } from './audit.ts';
export { EVIDENCE_CHUNK, EVIDENCE_FORMAT, EvidenceVerifier, ManifestSchema, entriesMemberName, type EvidenceSummary, type Manifest } from './evidence.ts';
