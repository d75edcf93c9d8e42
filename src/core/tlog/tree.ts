/**
 * The RFC 6962 / RFC 9162 Merkle tree over the log's leaves, as the store keeps it:
 * the hashes of complete (perfect) subtrees, each named by its level (0 = leaf)
 * and its index within that level. A complete subtree never changes once its
 * last leaf is appended, so those hashes are write-once facts. Every other hash
 * the tree needs (the root, a right-edge sibling in a proof) is a fold of at
 * most log2(n) of them, which is what keeps proofs O(log n) reads.
 *
 * Sizes and indexes here are JavaScript numbers: a log never reaches 2^53 entries,
 * and plain arithmetic (never 32-bit bitwise operators) keeps them exact.
 */
import { CustodyError } from '../errors.ts';
import { emptyRoot, nodeHash } from './hash.ts';

/** A complete subtree: leaves [index·2^level, (index+1)·2^level). */
export interface NodeId {
  level: number;
  index: number;
}

/** The leaves [start, end) of the tree: a proof element is the hash of one such range. */
export interface LeafRange {
  start: number;
  end: number;
}

/** Anything that can name the hash of a complete subtree. */
export type NodeLookup = (id: NodeId) => Uint8Array | undefined;

export function nodeKey(id: NodeId): string {
  return `${id.level}/${id.index}`;
}

function assertSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new CustodyError('INPUT_INVALID', `${what} must be a non-negative integer, got ${String(n)}`);
}

/** The largest power of two strictly below n (n ≥ 2): RFC 9162 §2.1.1's k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The complete subtrees that tile [start, end), left to right. For the ranges a
 * proof uses (start aligned to a power of two at least end - start, or start 0)
 * this is one node per set bit of end - start: at most log2(n) nodes.
 */
export function rangeNodes(range: LeafRange): NodeId[] {
  const out: NodeId[] = [];
  let start = range.start;
  while (start < range.end) {
    let level = 0;
    let width = 1;
    // Grow while the next power of two still starts aligned at `start` and fits before `end`.
    while (start % (width * 2) === 0 && start + width * 2 <= range.end) {
      width *= 2;
      level++;
    }
    out.push({ level, index: start / width });
    start += width;
  }
  return out;
}

/** Folds the complete subtrees of a range into its RFC 6962 hash (MTH of those leaves). */
export function foldRange(nodes: readonly Uint8Array[]): Uint8Array {
  if (nodes.length === 0) return emptyRoot();
  let acc = nodes[nodes.length - 1] as Uint8Array;
  for (let i = nodes.length - 2; i >= 0; i--) acc = nodeHash(nodes[i] as Uint8Array, acc);
  return acc;
}

/** The ranges whose hashes make the RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in a tree of `size`. */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  assertSize(index, 'index');
  assertSize(size, 'size');
  if (index >= size) throw new CustodyError('LOG_ENTRY_NOT_FOUND', `index ${index} is not in a tree of size ${size}`);
  const out: LeafRange[] = [];
  // PATH(m, D[start:end]) unrolled from the root down; elements come out root-first, so reverse at the end.
  let m = index;
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (m < k) {
      out.push({ start: start + k, end });
      end = start + k;
    } else {
      out.push({ start, end: start + k });
      start += k;
      m -= k;
    }
  }
  return out.reverse();
}

/** The ranges whose hashes make the RFC 9162 §2.1.4.1 consistency proof from `size1` to `size2`. */
export function consistencyRanges(size1: number, size2: number): LeafRange[] {
  assertSize(size1, 'size1');
  assertSize(size2, 'size2');
  if (size1 > size2) throw new CustodyError('INPUT_INVALID', `size1 ${size1} is larger than size2 ${size2}`);
  if (size1 === 0 || size1 === size2) return [];
  const out: LeafRange[] = [];
  // SUBPROOF(m, D[start:end], b), unrolled; like PATH it is produced root-first.
  let m = size1;
  let start = 0;
  let end = size2;
  let complete = true;
  for (;;) {
    const n = end - start;
    if (m === n) {
      if (!complete) out.push({ start, end });
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      out.push({ start: start + k, end });
      end = start + k;
    } else {
      out.push({ start, end: start + k });
      start += k;
      m -= k;
      complete = false;
    }
  }
  return out.reverse();
}

/** Every complete node a set of ranges needs, without duplicates. */
export function nodesFor(ranges: readonly LeafRange[]): NodeId[] {
  const seen = new Map<string, NodeId>();
  for (const r of ranges) for (const id of rangeNodes(r)) seen.set(nodeKey(id), id);
  return [...seen.values()];
}

/** Turns ranges into hashes; throws STORE_ERROR when a node the store should hold is missing. */
export function materialize(ranges: readonly LeafRange[], lookup: NodeLookup): Uint8Array[] {
  return ranges.map((r) =>
    foldRange(
      rangeNodes(r).map((id) => {
        const h = lookup(id);
        if (!h) throw new CustodyError('LOG_TAMPERED', `the log has no hash for the complete subtree at level ${id.level}, index ${id.index}`, { details: { level: id.level, index: id.index } });
        return h;
      }),
    ),
  );
}

/**
 * A compact range over [0, size): the roots of the perfect subtrees that tile
 * it, one per set bit of size, largest first. Appending a leaf merges equal-sized
 * neighbours, so the state is O(log n) and each append does O(1) hashing on
 * average. Every merge yields a newly complete subtree, which the caller stores.
 */
export class CompactRange {
  private readonly stack: Uint8Array[];
  private n: number;

  constructor(size = 0, frontier: readonly Uint8Array[] = []) {
    assertSize(size, 'size');
    if (frontier.length !== frontierIds(size).length) {
      throw new CustodyError('INTERNAL', `a tree of size ${size} has ${frontierIds(size).length} frontier nodes, got ${frontier.length}`);
    }
    this.n = size;
    this.stack = [...frontier];
  }

  get size(): number {
    return this.n;
  }

  /** The frontier: the hashes of `frontierIds(size)`, in that order. */
  get frontier(): readonly Uint8Array[] {
    return this.stack;
  }

  /**
   * Appends one leaf hash. `onNode` sees every subtree this completes, the leaf
   * itself (level 0) first, then each merged parent upwards.
   */
  append(leaf: Uint8Array, onNode?: (level: number, index: number, hash: Uint8Array) => void): void {
    let h = leaf;
    let index = this.n;
    let level = 0;
    onNode?.(0, index, h);
    // A set low bit of the old size is a same-sized subtree waiting on the left to merge with.
    for (let rest = this.n; rest % 2 === 1; rest = (rest - 1) / 2) {
      h = nodeHash(this.stack.pop() as Uint8Array, h);
      level++;
      index = (index - 1) / 2;
      onNode?.(level, index, h);
    }
    this.stack.push(h);
    this.n++;
  }

  root(): Uint8Array {
    return foldRange(this.stack);
  }

  clone(): CompactRange {
    return new CompactRange(this.n, this.stack);
  }
}

/** The complete subtrees whose hashes are a tree's frontier at `size`, largest (leftmost) first. */
export function frontierIds(size: number): NodeId[] {
  assertSize(size, 'size');
  return rangeNodes({ start: 0, end: size });
}
