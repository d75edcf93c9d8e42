import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { emptyRoot, leafHash, nodeHash } from '../../../src/core/tlog/hash.ts';
import {
  CompactRange,
  consistencyRanges,
  frontierIds,
  inclusionRanges,
  materialize,
  nodeKey,
  nodesFor,
  type NodeId,
} from '../../../src/core/tlog/tree.ts';
import { verifyConsistency, verifyInclusion } from '../../../src/core/tlog/verify.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

// ---------------------------------------------------------------- a naive reference, straight from RFC 6962 §2.1

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

/** MTH(D[n]) by recursion over the leaf hashes. */
function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256();
  if (leaves.length === 1) return leaves[0]!;
  const split = k(leaves.length);
  return sha256(Uint8Array.of(1), mth(leaves.slice(0, split)), mth(leaves.slice(split)));
}

/** PATH(m, D[n]). */
function refPath(m: number, leaves: Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  const split = k(leaves.length);
  if (m < split) return [...refPath(m, leaves.slice(0, split)), mth(leaves.slice(split))];
  return [...refPath(m - split, leaves.slice(split)), mth(leaves.slice(0, split))];
}

/** SUBPROOF(m, D[n], b). */
function refSubproof(m: number, leaves: Uint8Array[], b: boolean): Uint8Array[] {
  const n = leaves.length;
  if (m === n) return b ? [] : [mth(leaves)];
  const split = k(n);
  if (m <= split) return [...refSubproof(m, leaves.slice(0, split), b), mth(leaves.slice(split))];
  return [...refSubproof(m - split, leaves.slice(split), false), mth(leaves.slice(0, split))];
}

function refConsistency(m: number, leaves: Uint8Array[]): Uint8Array[] {
  return m === 0 || m === leaves.length ? [] : refSubproof(m, leaves, true);
}

/** Builds a tree with CompactRange and keeps every complete subtree, as the store does. */
function build(n: number): { leaves: Uint8Array[]; nodes: Map<string, Uint8Array>; roots: Uint8Array[] } {
  const leaves: Uint8Array[] = [];
  const nodes = new Map<string, Uint8Array>();
  const roots: Uint8Array[] = [emptyRoot()];
  const tree = new CompactRange();
  for (let i = 0; i < n; i++) {
    const leaf = leafHash(Buffer.from(`entry ${i}`));
    leaves.push(leaf);
    tree.append(leaf, (level, index, hash) => nodes.set(nodeKey({ level, index }), hash));
    roots.push(tree.root());
  }
  return { leaves, nodes, roots };
}

const lookup = (nodes: Map<string, Uint8Array>) => (id: NodeId) => nodes.get(nodeKey(id));

// ---------------------------------------------------------------- published facts

/**
 * RFC 6962 test vectors as published by transparency-dev/merkle
 * (testonly/constants.go, from the Certificate Transparency reference code):
 * the leaf inputs and the root of the tree at every size 0..8.
 */
const TD_LEAF_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const TD_ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

/** Probes from transparency-dev/merkle testdata/inclusion/{0,2,3,4}/happy-path.json. */
const TD_INCLUSION = [
  { leafIdx: 0, treeSize: 1, root: 'bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=', leafHash: 'bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=', proof: [] },
  {
    leafIdx: 5,
    treeSize: 8,
    root: 'XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=',
    leafHash: 'QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=',
    proof: ['vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=', 'yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=', '037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc='],
  },
  { leafIdx: 2, treeSize: 3, root: 'rra8/idLcKFPsGel5VeCZNsPqbUa9eC6FZFY8yngbnc=', leafHash: 'ApjRIpBtz8EIkstTpzmS/FufST6kybrbJ7eRtBJ6f+c=', proof: ['+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU='] },
  {
    leafIdx: 1,
    treeSize: 5,
    root: 'Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=',
    leafHash: 'lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=',
    proof: ['bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=', 'Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=', 'vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms='],
  },
];

/** Probes from transparency-dev/merkle testdata/consistency/{1,2,3,4}/happy-path.json. */
const TD_CONSISTENCY = [
  {
    size1: 1,
    size2: 8,
    root1: 'bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=',
    root2: 'XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=',
    proof: ['lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=', 'Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=', 'a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ='],
  },
  {
    size1: 6,
    size2: 8,
    root1: 'duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=',
    root2: 'XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=',
    proof: ['DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=', 'yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=', '037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc='],
  },
  {
    size1: 2,
    size2: 5,
    root1: '+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=',
    root2: 'Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=',
    proof: ['Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=', 'vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms='],
  },
  {
    size1: 6,
    size2: 7,
    root1: 'duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=',
    root2: '3bib5AOAnjJXUNPSY814kpwpQreUKjS3fhIslZSnTIw=',
    proof: ['DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=', 'sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=', '037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc='],
  },
];

describe('tlog hashing (RFC 6962 §2.1)', () => {
  it('computes the published roots for the reference leaves at every size 0..8', () => {
    const tree = new CompactRange();
    assert.equal(hex(tree.root()), TD_ROOTS[0]);
    TD_LEAF_INPUTS.forEach((input, i) => {
      tree.append(leafHash(unhex(input)));
      assert.equal(hex(tree.root()), TD_ROOTS[i + 1], `size ${i + 1}`);
      assert.equal(hex(mth(TD_LEAF_INPUTS.slice(0, i + 1).map((x) => leafHash(unhex(x))))), TD_ROOTS[i + 1]);
    });
  });

  it('separates leaves from nodes with the 0x00 and 0x01 prefixes', () => {
    const a = leafHash(Buffer.from('a'));
    assert.equal(hex(a), hex(sha256(Uint8Array.of(0), Buffer.from('a'))));
    assert.equal(hex(nodeHash(a, a)), hex(sha256(Uint8Array.of(1), a, a)));
    assert.equal(hex(emptyRoot()), TD_ROOTS[0]);
    // a non-32-byte input still hashes correctly (no stale scratch bytes)
    assert.equal(hex(nodeHash(Uint8Array.of(1), Uint8Array.of(2, 3))), hex(sha256(Uint8Array.of(1, 1, 2, 3))));
  });
});

describe('compact range', () => {
  it('matches the naive tree hash at every size, and reports each completed subtree once', () => {
    const { leaves, nodes, roots } = build(130);
    for (let n = 0; n <= 130; n++) assert.equal(hex(roots[n]!), hex(mth(leaves.slice(0, n))), `size ${n}`);
    // n leaves complete exactly 2n - 1 subtrees when n is a power of two
    const at128 = [...nodes.keys()].filter((key) => {
      const [level, index] = key.split('/').map(Number) as [number, number];
      return (index + 1) * 2 ** level <= 128;
    });
    assert.equal(at128.length, 2 * 128 - 1);
  });

  it('resumes from a frontier read back from storage', () => {
    const { leaves, nodes } = build(77);
    for (const size of [0, 1, 2, 3, 8, 31, 32, 33, 63, 64, 65, 76, 77]) {
      const frontier = frontierIds(size).map((id) => nodes.get(nodeKey(id))!);
      const resumed = new CompactRange(size, frontier);
      for (let i = size; i < 77; i++) resumed.append(leaves[i]!);
      assert.equal(hex(resumed.root()), hex(mth(leaves)), `resumed at ${size}`);
    }
  });

  it('frontier has one node per set bit of the size', () => {
    assert.deepEqual(frontierIds(0), []);
    assert.deepEqual(frontierIds(1), [{ level: 0, index: 0 }]);
    assert.deepEqual(frontierIds(6), [
      { level: 2, index: 0 },
      { level: 1, index: 2 },
    ]);
    assert.deepEqual(frontierIds(2 ** 40 + 5).map((n) => n.level), [40, 2, 0]);
  });
});

describe('proof generation from stored subtrees', () => {
  const N = 70;
  const { leaves, nodes, roots } = build(N);

  it('inclusion proofs equal the naive PATH for every index of every size 1..70, and verify', () => {
    for (let size = 1; size <= N; size++) {
      const tree = leaves.slice(0, size);
      for (let index = 0; index < size; index++) {
        const ranges = inclusionRanges(index, size);
        const proof = materialize(ranges, lookup(nodes));
        assert.deepEqual(proof.map(hex), refPath(index, tree).map(hex), `inclusion ${index} in ${size}`);
        const r = verifyInclusion(index, size, leaves[index]!, proof, roots[size]!);
        assert.deepEqual(r, { ok: true }, `verify ${index} in ${size}`);
        // O(log n): at most two nodes per level are read
        assert.ok(nodesFor(ranges).length <= 2 * Math.ceil(Math.log2(size + 1)), `reads for ${index}/${size}`);
      }
    }
  });

  it('consistency proofs equal the naive SUBPROOF for every pair of sizes 1..70, and verify', () => {
    for (let size2 = 1; size2 <= N; size2++) {
      for (let size1 = 1; size1 <= size2; size1++) {
        const ranges = consistencyRanges(size1, size2);
        const proof = materialize(ranges, lookup(nodes));
        assert.deepEqual(proof.map(hex), refConsistency(size1, leaves.slice(0, size2)).map(hex), `consistency ${size1}→${size2}`);
        assert.deepEqual(verifyConsistency(size1, size2, proof, roots[size1]!, roots[size2]!), { ok: true }, `verify ${size1}→${size2}`);
        assert.ok(nodesFor(ranges).length <= 2 * Math.ceil(Math.log2(size2 + 1)));
      }
    }
  });

  it('refuses to materialise a proof when a stored subtree is missing', () => {
    const partial = new Map(nodes);
    partial.delete(nodeKey({ level: 2, index: 0 }));
    assert.throws(() => materialize(inclusionRanges(5, 8), lookup(partial)), /level 2, index 0/);
  });
});

describe('verifyInclusion (RFC 9162 §2.1.3.2)', () => {
  const { leaves, nodes, roots } = build(33);
  const proofOf = (index: number, size: number) => materialize(inclusionRanges(index, size), lookup(nodes));

  it('accepts the transparency-dev published probes', () => {
    for (const p of TD_INCLUSION) {
      assert.deepEqual(verifyInclusion(p.leafIdx, p.treeSize, b64(p.leafHash), p.proof.map(b64), b64(p.root)), { ok: true }, `${p.leafIdx}/${p.treeSize}`);
      assert.deepEqual(verifyInclusion(BigInt(p.leafIdx), BigInt(p.treeSize), b64(p.leafHash), p.proof.map(b64), b64(p.root)), { ok: true });
    }
  });

  it('size 0 has no leaves; size 1 needs an empty proof and the leaf as root', () => {
    assert.equal(verifyInclusion(0, 0, leaves[0]!, [], emptyRoot()).ok, false);
    assert.deepEqual(verifyInclusion(0, 1, leaves[0]!, [], leaves[0]!), { ok: true });
    assert.equal(verifyInclusion(0, 1, leaves[0]!, [leaves[1]!], leaves[0]!).ok, false);
    assert.equal(verifyInclusion(0, 1, leaves[1]!, [], leaves[0]!).ok, false);
  });

  it('index equal to size, or beyond, fails', () => {
    const r = verifyInclusion(8, 8, leaves[7]!, proofOf(7, 8), roots[8]!);
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /not below size/);
    assert.equal(verifyInclusion(9n, 8n, leaves[7]!, proofOf(7, 8), roots[8]!).ok, false);
  });

  it('the last leaf and power-of-two boundaries verify, and only at their own index', () => {
    for (const size of [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33]) {
      const last = size - 1;
      assert.deepEqual(verifyInclusion(last, size, leaves[last]!, proofOf(last, size), roots[size]!), { ok: true }, `last of ${size}`);
      if (size > 1) {
        assert.equal(verifyInclusion(last - 1, size, leaves[last]!, proofOf(last, size), roots[size]!).ok, false, `moved last of ${size}`);
        assert.equal(verifyInclusion(last, size - 1, leaves[last]!, proofOf(last, size), roots[size]!).ok, false);
      }
    }
  });

  it('proofs one hash too long or too short fail', () => {
    for (const [index, size] of [
      [0, 2],
      [3, 8],
      [5, 7],
      [16, 17],
      [31, 32],
    ] as const) {
      const proof = proofOf(index, size);
      const long = verifyInclusion(index, size, leaves[index]!, [...proof, leaves[0]!], roots[size]!);
      assert.equal(long.ok, false);
      assert.match((long as { reason: string }).reason, /longer/);
      const short = verifyInclusion(index, size, leaves[index]!, proof.slice(0, -1), roots[size]!);
      assert.equal(short.ok, false);
      assert.equal(verifyInclusion(index, size, leaves[index]!, [leaves[0]!, ...proof], roots[size]!).ok, false);
    }
  });

  it('never throws on malformed input', () => {
    const bad: [unknown, unknown, unknown, unknown, unknown][] = [
      [-1, 8, leaves[0], proofOf(0, 8), roots[8]],
      [0.5, 8, leaves[0], proofOf(0, 8), roots[8]],
      [0, Number.NaN, leaves[0], proofOf(0, 8), roots[8]],
      [0, 2 ** 64, leaves[0], proofOf(0, 8), roots[8]],
      [0n, 1n << 64n, leaves[0], proofOf(0, 8), roots[8]],
      ['0', 8, leaves[0], proofOf(0, 8), roots[8]],
      [0, 8, new Uint8Array(31), proofOf(0, 8), roots[8]],
      [0, 8, leaves[0], 'not a proof', roots[8]],
      [0, 8, leaves[0], [new Uint8Array(33), ...proofOf(0, 8)], roots[8]],
      [0, 8, leaves[0], [null], roots[8]],
      [0, 8, leaves[0], Array.from({ length: 100 }, () => leaves[0]), roots[8]],
      [0, 8, leaves[0], proofOf(0, 8), undefined],
      [0, 8, undefined, undefined, undefined],
    ];
    for (const args of bad) {
      const r = (verifyInclusion as (...a: unknown[]) => { ok: boolean; reason?: string })(...args);
      assert.equal(r.ok, false);
      assert.equal(typeof r.reason, 'string');
    }
  });

  it('works with 64-bit sizes as bigint', () => {
    // A leaf at the far right of a 2^63 + 1 tree: proof of one hash, the root of the left 2^63 subtree.
    const left = leaves[0]!;
    const leaf = leaves[1]!;
    const root = nodeHash(left, leaf);
    assert.deepEqual(verifyInclusion(1n << 63n, (1n << 63n) + 1n, leaf, [left], root), { ok: true });
    assert.equal(verifyInclusion((1n << 63n) - 1n, (1n << 63n) + 1n, leaf, [left], root).ok, false);
  });

  it('fast-check: a proof never verifies for any other index or size (with that size\'s root)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 33 }), fc.nat(), fc.integer({ min: -3, max: 3 }), fc.integer({ min: -3, max: 3 }), (size, i, di, ds) => {
        const index = i % size;
        const proof = proofOf(index, size);
        const j = index + di;
        const s = size + ds;
        if (s < 0 || s > 33) return true;
        // Against the true root of each size: the proof binds index, size and root together.
        const r = verifyInclusion(j, s, leaves[index]!, proof, roots[s]!);
        return r.ok === (di === 0 && ds === 0);
      }),
    );
  });
});

describe('verifyConsistency (RFC 9162 §2.1.4.2)', () => {
  const { nodes, roots } = build(40);
  const proofOf = (a: number, b: number) => materialize(consistencyRanges(a, b), lookup(nodes));

  it('accepts the transparency-dev published probes', () => {
    for (const p of TD_CONSISTENCY) {
      assert.deepEqual(verifyConsistency(p.size1, p.size2, p.proof.map(b64), b64(p.root1), b64(p.root2)), { ok: true }, `${p.size1}→${p.size2}`);
      // swapped roots (transparency-dev testdata/consistency/*/swapped-roots.json) fail
      assert.equal(verifyConsistency(p.size1, p.size2, p.proof.map(b64), b64(p.root2), b64(p.root1)).ok, false);
    }
  });

  it('size 0: a proof from the empty tree is meaningless and refused (transparency-dev testdata/consistency/additional)', () => {
    assert.equal(verifyConsistency(0, 0, [], emptyRoot(), emptyRoot()).ok, false);
    assert.equal(verifyConsistency(0, 1, [], emptyRoot(), roots[1]!).ok, false);
    assert.equal(verifyConsistency(0, 5, [roots[5]!], emptyRoot(), roots[5]!).ok, false);
  });

  it('equal sizes need an empty proof and equal roots; size 1 to 1 included', () => {
    assert.deepEqual(verifyConsistency(1, 1, [], roots[1]!, roots[1]!), { ok: true });
    assert.deepEqual(verifyConsistency(8, 8, [], roots[8]!, roots[8]!), { ok: true });
    assert.equal(verifyConsistency(1, 1, [roots[1]!], roots[1]!, roots[1]!).ok, false);
    assert.equal(verifyConsistency(8, 8, [], roots[8]!, roots[7]!).ok, false);
  });

  it('size1 > size2 fails; an empty proof for growth fails', () => {
    assert.equal(verifyConsistency(2, 1, [], roots[2]!, roots[1]!).ok, false);
    assert.equal(verifyConsistency(1, 2, [], roots[1]!, roots[2]!).ok, false);
  });

  it('power-of-two boundaries on either side', () => {
    for (const [a, b] of [
      [1, 2],
      [2, 4],
      [4, 8],
      [8, 16],
      [16, 32],
      [32, 33],
      [7, 8],
      [8, 9],
      [15, 16],
      [16, 17],
      [31, 32],
      [1, 40],
      [39, 40],
    ] as const) {
      assert.deepEqual(verifyConsistency(a, b, proofOf(a, b), roots[a]!, roots[b]!), { ok: true }, `${a}→${b}`);
      assert.equal(verifyConsistency(a, b, proofOf(a, b), roots[a]!, roots[b - 1]!).ok, false);
    }
  });

  it('proofs too long or too short fail', () => {
    for (const [a, b] of [
      [3, 8],
      [6, 8],
      [4, 9],
      [5, 33],
    ] as const) {
      const proof = proofOf(a, b);
      assert.equal(verifyConsistency(a, b, [...proof, roots[1]!], roots[a]!, roots[b]!).ok, false, `long ${a}→${b}`);
      assert.equal(verifyConsistency(a, b, proof.slice(0, -1), roots[a]!, roots[b]!).ok, false, `short ${a}→${b}`);
      assert.equal(verifyConsistency(a, b, [roots[1]!, ...proof], roots[a]!, roots[b]!).ok, false);
    }
  });

  it('never throws on malformed input', () => {
    const bad: unknown[][] = [
      [-1, 8, proofOf(3, 8), roots[3], roots[8]],
      [3, 8, 'x', roots[3], roots[8]],
      [3, 8, [new Uint8Array(1)], roots[3], roots[8]],
      [3, 8, proofOf(3, 8), new Uint8Array(0), roots[8]],
      [3, 8, proofOf(3, 8), roots[3], null],
      [3n, 1n << 65n, proofOf(3, 8), roots[3], roots[8]],
      [undefined, undefined, undefined, undefined, undefined],
    ];
    for (const args of bad) {
      const r = (verifyConsistency as (...a: unknown[]) => { ok: boolean; reason?: string })(...args);
      assert.equal(r.ok, false);
      assert.equal(typeof r.reason, 'string');
    }
  });

  it('fast-check: a consistency proof verifies for exactly its own sizes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: -2, max: 2 }), (x, y, d) => {
        const a = Math.min(x, y);
        const b = Math.max(x, y);
        const proof = proofOf(a, b);
        const a2 = a + d;
        if (a2 < 1 || a2 > 40) return true;
        return verifyConsistency(a2, b, proof, roots[a2]!, roots[b]!).ok === (d === 0 || (a === b && a2 === b));
      }),
    );
  });
});
