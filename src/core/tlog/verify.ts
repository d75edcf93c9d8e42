/**
 * RFC 9162 §2.1.3.2 and §2.1.4.2 proof verification, step by step as the RFC
 * words it. Everything here is attacker-controlled input: sizes, indexes, hashes
 * and proofs are checked for shape first, arithmetic is done in bigint so a
 * 64-bit size cannot overflow, and nothing throws: a malformed proof is a failed
 * proof, with a reason.
 */
import { bytesEqual } from '../digest.ts';
import { HASH_SIZE, nodeHash } from './hash.ts';

export type ProofResult = { ok: true } | { ok: false; reason: string };

/** RFC 9162 tree sizes are uint64; anything outside is malformed. */
const MAX_U64 = (1n << 64n) - 1n;
/** A proof in a 2^64 tree has at most 64 hashes (consistency: one more for the seed). */
const MAX_PROOF_HASHES = 65;

function fail(reason: string): ProofResult {
  return { ok: false, reason };
}

function toU64(v: unknown, what: string): bigint | string {
  if (typeof v === 'bigint') return v >= 0n && v <= MAX_U64 ? v : `${what} is outside 0..2^64-1`;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : `${what} is not a non-negative integer`;
  return `${what} is not a number`;
}

function isHash(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length === HASH_SIZE;
}

function checkProof(proof: unknown): Uint8Array[] | string {
  if (!Array.isArray(proof)) return 'proof is not an array';
  if (proof.length > MAX_PROOF_HASHES) return `proof has ${proof.length} hashes, more than any tree needs`;
  for (const [i, p] of proof.entries()) if (!isHash(p)) return `proof[${i}] is not a ${HASH_SIZE}-byte hash`;
  return proof as Uint8Array[];
}

const lsb = (x: bigint) => (x & 1n) === 1n;

/**
 * Does `proof` show that `leafHash` is the leaf at `index` in the tree of `size`
 * leaves whose root is `root`? RFC 9162 §2.1.3.2.
 */
export function verifyInclusion(index: number | bigint, size: number | bigint, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): ProofResult {
  try {
    const leafIndex = toU64(index, 'index');
    if (typeof leafIndex === 'string') return fail(leafIndex);
    const treeSize = toU64(size, 'size');
    if (typeof treeSize === 'string') return fail(treeSize);
    if (!isHash(leafHash)) return fail(`leaf hash is not a ${HASH_SIZE}-byte hash`);
    if (!isHash(root)) return fail(`root is not a ${HASH_SIZE}-byte hash`);
    const path = checkProof(proof);
    if (typeof path === 'string') return fail(path);

    // 1. leaf_index must be below tree_size.
    if (leafIndex >= treeSize) return fail(`index ${leafIndex} is not below size ${treeSize}`);
    // 2. fn = leaf_index, sn = tree_size - 1; 3. r = hash.
    let fn = leafIndex;
    let sn = treeSize - 1n;
    let r = leafHash;
    // 4. For each p in the inclusion path:
    for (const p of path) {
      // a. A hash left over once sn reaches 0: the proof is too long.
      if (sn === 0n) return fail('proof is longer than the path from the leaf to the root');
      if (lsb(fn) || fn === sn) {
        // b. p is a left sibling.
        r = nodeHash(p, r);
        // Skip the levels where the node has no right sibling (the right edge of the tree).
        while (!lsb(fn) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      } else {
        r = nodeHash(r, p);
      }
      // c.
      fn >>= 1n;
      sn >>= 1n;
    }
    // 5. sn must be 0 (not too short) and r the root.
    if (sn !== 0n) return fail('proof is shorter than the path from the leaf to the root');
    if (!bytesEqual(r, root)) return fail('the proof does not lead to the root');
    return { ok: true };
  } catch (e) {
    return fail(`malformed proof: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Does `proof` show that the tree of `size2` leaves with root `root2` extends the
 * tree of `size1` leaves with root `root1`? RFC 9162 §2.1.4.2 for 0 < size1 <
 * size2; equal sizes need an empty proof and equal roots; a proof from the empty
 * tree proves nothing and is refused (as transparency-dev/merkle does).
 */
export function verifyConsistency(size1: number | bigint, size2: number | bigint, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): ProofResult {
  try {
    const first = toU64(size1, 'size1');
    if (typeof first === 'string') return fail(first);
    const second = toU64(size2, 'size2');
    if (typeof second === 'string') return fail(second);
    if (!isHash(root1)) return fail(`root1 is not a ${HASH_SIZE}-byte hash`);
    if (!isHash(root2)) return fail(`root2 is not a ${HASH_SIZE}-byte hash`);
    const path = checkProof(proof);
    if (typeof path === 'string') return fail(path);

    if (second < first) return fail(`size2 ${second} is smaller than size1 ${first}`);
    if (first === 0n) return fail('a consistency proof from the empty tree proves nothing');
    if (first === second) {
      if (path.length !== 0) return fail('equal sizes need an empty proof');
      return bytesEqual(root1, root2) ? { ok: true } : fail('equal sizes with different roots');
    }

    // 1. An empty path cannot prove growth.
    if (path.length === 0) return fail('empty proof');
    // 2. If first is a power of two, the old root is itself a node of the new tree: prepend it.
    const nodes = (first & (first - 1n)) === 0n ? [root1, ...path] : [...path];
    // 3.
    let fn = first - 1n;
    let sn = second - 1n;
    // 4. Skip the levels where the old tree's last leaf is a right child.
    while (lsb(fn)) {
      fn >>= 1n;
      sn >>= 1n;
    }
    // 5.
    let fr = nodes[0] as Uint8Array;
    let sr = nodes[0] as Uint8Array;
    // 6.
    for (const c of nodes.slice(1)) {
      if (sn === 0n) return fail('proof is longer than the trees need');
      if (lsb(fn) || fn === sn) {
        fr = nodeHash(c, fr);
        sr = nodeHash(c, sr);
        while (!lsb(fn) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      } else {
        sr = nodeHash(sr, c);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    // 7.
    if (sn !== 0n) return fail('proof is shorter than the trees need');
    if (!bytesEqual(fr, root1)) return fail('the proof does not lead to the old root');
    if (!bytesEqual(sr, root2)) return fail('the proof does not lead to the new root');
    return { ok: true };
  } catch (e) {
    return fail(`malformed proof: ${e instanceof Error ? e.message : String(e)}`);
  }
}
