/**
 * Offline evidence: a bundle that lets anyone holding the log's public key check
 * a range of entries with nothing else: no workspace, no database.
 *
 * Layout (a tar, members in this order, so a verifier streams it in O(1) memory
 * per member):
 *
 *   manifest.json                 what follows, and the range [from, to)
 *   keys/<keyid>.pub              the log's public keys (informational: trust comes from --log-key)
 *   checkpoints/<seq>.txt         signed checkpoints (C2SP), by size; the last is the anchor
 *   consistency/<a>-<b>.json      RFC 9162 consistency proofs between consecutive checkpoints
 *   entries/<first>-<last>.jsonl  entries with their inclusion proofs in the anchor's tree
 *
 * The verifier here is pure: a driver feeds it members in order and it returns
 * the first finding, in the same terms as `audit verify`.
 */
import { z } from 'zod';
import { bytesEqual } from '../digest.ts';
import { CustodyError } from '../errors.ts';
import type { Finding } from './audit.ts';
import { verifyCheckpoint, type Checkpoint, type NoteVerifier } from './checkpoint.ts';
import { entryId, entryLeaf } from './entry.ts';
import { decodeBase64Strict } from './note.ts';
import { verifyConsistency, verifyInclusion } from './verify.ts';

export const EVIDENCE_FORMAT = 'custody-evidence/v1';
/** Entries per entries/*.jsonl member. */
export const EVIDENCE_CHUNK = 1000;

const NAME = {
  key: /^keys\/[0-9a-f]{64}\.pub$/,
  checkpoint: /^checkpoints\/[0-9]{1,16}\.txt$/,
  consistency: /^consistency\/[0-9]{1,16}-[0-9]{1,16}\.json$/,
  entries: /^entries\/[0-9]{1,16}-[0-9]{1,16}\.jsonl$/,
};

const size = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const ManifestSchema = z.strictObject({
  format: z.literal(EVIDENCE_FORMAT),
  origin: z.string().min(1).max(256),
  from: size,
  to: size,
  treeSize: size,
  createdAt: z.string().max(64),
  keys: z.array(z.string().regex(NAME.key)).max(1000),
  checkpoints: z.array(z.string().regex(NAME.checkpoint)).min(1).max(1_000_000),
  consistency: z.array(z.string().regex(NAME.consistency)).max(1_000_000),
  entries: z.array(z.string().regex(NAME.entries)).max(1_000_000),
});
export type Manifest = z.infer<typeof ManifestSchema>;

const ConsistencySchema = z.strictObject({ size1: size, size2: size, proof: z.array(z.string().max(64)).max(65) });
const EntryLineSchema = z.strictObject({
  index: size,
  id: z.string().max(64),
  body: z.string(),
  leafHash: z.string().regex(/^[0-9a-f]{64}$/),
  proof: z.array(z.string().max(64)).max(64),
});

export function entriesMemberName(first: number, last: number): string {
  return `entries/${first}-${last}.jsonl`;
}

function invalid(message: string): CustodyError {
  return new CustodyError('EVIDENCE_INVALID', message, { hint: 'the bundle is not one `custody audit export` writes' });
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new CustodyError('EVIDENCE_INVALID', `${what} is not JSON`, { cause: e });
  }
}

function decodeProof(proof: readonly string[]): Uint8Array[] | undefined {
  const out: Uint8Array[] = [];
  for (const p of proof) {
    const h = decodeBase64Strict(p);
    if (!h) return undefined;
    out.push(h);
  }
  return out;
}

export interface EvidenceSummary {
  origin: string;
  from: number;
  to: number;
  treeSize: number;
  entries: number;
  checkpoints: number;
  /** Distinct log keys (Custody keyids) whose signatures verified. */
  signedBy: string[];
}

type Stage = 'manifest' | 'keys' | 'checkpoints' | 'consistency' | 'entries' | 'done';

/**
 * Verifies an evidence bundle member by member. `trust` gives the log's note
 * verifiers for an origin (a PEM key is named by the origin it signs for).
 */
export class EvidenceVerifier {
  private readonly trust: (origin: string) => NoteVerifier[];
  private manifestValue: Manifest | undefined;
  private stage: Stage = 'manifest';
  private cursor = 0;
  private readonly checkpoints: Checkpoint[] = [];
  private readonly signedBy = new Set<string>();
  private nextIndex = 0;
  private entriesSeen = 0;

  constructor(trust: (origin: string) => NoteVerifier[]) {
    this.trust = trust;
  }

  get manifest(): Manifest | undefined {
    return this.manifestValue;
  }

  /** Feeds one member; throws EVIDENCE_INVALID on structure, returns a finding on content. */
  member(name: string, bytes: Uint8Array): Finding | undefined {
    if (this.stage === 'manifest') {
      if (name !== 'manifest.json') throw invalid(`the bundle must start with manifest.json, not ${name}`);
      const parsed = ManifestSchema.safeParse(parseJson(bytes, 'manifest.json'));
      if (!parsed.success) throw invalid(`manifest.json: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      const m = parsed.data;
      if (m.from > m.to || m.to > m.treeSize) throw invalid(`manifest.json: the range [${m.from}, ${m.to}) is not within a tree of ${m.treeSize}`);
      if (m.consistency.length !== m.checkpoints.length - 1) throw invalid('manifest.json: one consistency proof is needed between each two checkpoints');
      this.manifestValue = m;
      this.nextIndex = m.from;
      this.advance();
      return undefined;
    }
    const m = this.manifestValue as Manifest;
    const expected = this.expectedName();
    if (name !== expected) throw invalid(`expected ${expected ?? 'the end of the bundle'}, found ${name}`);
    this.cursor++;
    let finding: Finding | undefined;
    switch (this.stage) {
      case 'keys':
        break;
      case 'checkpoints':
        finding = this.checkpoint(m, name, bytes);
        break;
      case 'consistency':
        finding = this.consistency(name, bytes);
        break;
      case 'entries':
        finding = this.entries(m, name, bytes);
        break;
      default:
        throw invalid(`unexpected member ${name}`);
    }
    this.advance();
    return finding;
  }

  /** After the last member: everything the manifest promised must have been there. */
  finish(): { finding?: Finding; summary: EvidenceSummary } {
    const m = this.manifestValue;
    if (!m) throw invalid('the bundle has no manifest.json');
    if (this.stage !== 'done') throw invalid(`the bundle ends before ${this.expectedName() ?? 'its last member'}`);
    const summary: EvidenceSummary = {
      origin: m.origin,
      from: m.from,
      to: m.to,
      treeSize: m.treeSize,
      entries: this.entriesSeen,
      checkpoints: this.checkpoints.length,
      signedBy: [...this.signedBy],
    };
    if (this.nextIndex !== m.to) {
      return { finding: { index: this.nextIndex, kind: 'entry-missing', message: `entry ${this.nextIndex} is missing from the bundle` }, summary };
    }
    return { summary };
  }

  private list(stage: Stage): string[] {
    const m = this.manifestValue as Manifest;
    switch (stage) {
      case 'keys':
        return m.keys;
      case 'checkpoints':
        return m.checkpoints;
      case 'consistency':
        return m.consistency;
      case 'entries':
        return m.entries;
      default:
        return [];
    }
  }

  private expectedName(): string | undefined {
    return this.list(this.stage)[this.cursor];
  }

  private advance(): void {
    const order: Stage[] = ['keys', 'checkpoints', 'consistency', 'entries', 'done'];
    if (this.stage === 'manifest') {
      this.stage = 'keys';
      this.cursor = 0;
    }
    while (this.stage !== 'done' && this.cursor >= this.list(this.stage).length) {
      this.stage = order[order.indexOf(this.stage) + 1] as Stage;
      this.cursor = 0;
    }
  }

  private checkpoint(m: Manifest, name: string, bytes: Uint8Array): Finding | undefined {
    const previous = this.checkpoints.at(-1);
    const from = previous?.size ?? 0;
    const r = verifyCheckpoint(bytes, this.trust(m.origin), { origin: m.origin });
    if (!r.ok || !r.value) {
      const parse = r.reasons.some((x) => x.code === 'CHECKPOINT_INVALID' || x.code === 'CHECKPOINT_ORIGIN');
      return { index: from, kind: parse ? 'checkpoint-invalid' : 'checkpoint-signature', checkpoint: { source: name }, message: `${name} does not verify: ${r.reasons.map((x) => x.message).join('; ')}` };
    }
    const cp = r.value.checkpoint;
    for (const v of r.value.signedBy) this.signedBy.add(v.keyid);
    if (previous && cp.size < previous.size) throw invalid(`${name} is smaller than the checkpoint before it`);
    const isLast = this.cursor === m.checkpoints.length;
    if (isLast && cp.size !== m.treeSize) throw invalid(`the last checkpoint has size ${cp.size}, the manifest says ${m.treeSize}`);
    this.checkpoints.push(cp);
    return undefined;
  }

  private consistency(name: string, bytes: Uint8Array): Finding | undefined {
    const i = this.cursor - 1;
    const a = this.checkpoints[i] as Checkpoint;
    const b = this.checkpoints[i + 1] as Checkpoint;
    const parsed = ConsistencySchema.safeParse(parseJson(bytes, name));
    if (!parsed.success) throw invalid(`${name} is not a consistency proof`);
    if (parsed.data.size1 !== a.size || parsed.data.size2 !== b.size) throw invalid(`${name} is not between checkpoints of sizes ${a.size} and ${b.size}`);
    const proof = decodeProof(parsed.data.proof);
    if (a.size === 0) {
      // The empty tree is a prefix of every tree; there is nothing to prove.
      return undefined;
    }
    const r = proof ? verifyConsistency(a.size, b.size, proof, a.root, b.root) : { ok: false as const, reason: 'proof hashes are not base64' };
    if (!r.ok) {
      return { index: a.size, kind: 'checkpoint-inconsistent', range: { from: a.size, to: b.size }, message: `the checkpoints of sizes ${a.size} and ${b.size} are not consistent: ${r.reason}` };
    }
    return undefined;
  }

  private entries(m: Manifest, name: string, bytes: Uint8Array): Finding | undefined {
    const anchor = this.checkpoints.at(-1) as Checkpoint;
    const text = Buffer.from(bytes).toString('utf8');
    const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
    for (const line of lines) {
      const parsed = EntryLineSchema.safeParse(parseJson(Buffer.from(line, 'utf8'), name));
      if (!parsed.success) throw invalid(`${name}: a line is not an entry with its proof`);
      const e = parsed.data;
      const expected = this.nextIndex;
      if (e.index !== expected) {
        return e.index > expected
          ? { index: expected, kind: 'entry-missing', message: `entry ${expected} is missing from the bundle` }
          : { index: e.index, kind: 'entry-moved', message: `entry ${e.index} appears out of order` };
      }
      if (e.index >= m.to) throw invalid(`${name} holds entry ${e.index}, beyond the range [${m.from}, ${m.to})`);
      let named: unknown;
      try {
        named = (JSON.parse(e.body) as { index?: unknown }).index;
      } catch {
        named = undefined;
      }
      if (named !== e.index) return { index: e.index, kind: named === undefined ? 'entry-edited' : 'entry-moved', message: `entry ${e.index}'s body names index ${String(named)}` };
      const leaf = entryLeaf(e.body);
      if (!bytesEqual(leaf, Buffer.from(e.leafHash, 'hex')) || e.id !== entryId(e.index, leaf)) {
        return { index: e.index, kind: 'entry-edited', message: `entry ${e.index}'s body does not hash to its leaf hash and id` };
      }
      const proof = decodeProof(e.proof);
      const r = proof ? verifyInclusion(e.index, anchor.size, leaf, proof, anchor.root) : { ok: false as const, reason: 'proof hashes are not base64' };
      if (!r.ok) return { index: e.index, kind: 'entry-edited', message: `entry ${e.index} is not in the signed tree of ${anchor.size}: ${r.reason}` };
      this.nextIndex++;
      this.entriesSeen++;
    }
    return undefined;
  }
}
