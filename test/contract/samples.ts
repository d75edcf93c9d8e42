/** Records for the contract suite: valid, distinct per `n`, and shaped like real ones. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Artifact } from '../../src/core/artifact.ts';
import type { DigestString } from '../../src/core/digest.ts';
import type { KeyRecord } from '../../src/core/key.ts';
import type { Store } from '../../src/core/ports.ts';
import { CompactRange, entryLeaf } from '../../src/core/tlog/index.ts';

export function hex(seed: string): string {
  return createHash('sha256').update(seed).digest('hex');
}

export function artifact(n: number, overrides: Partial<Artifact> = {}): Artifact {
  const sha256 = hex(`artifact-${n}`);
  return {
    digest: `sha256:${sha256}` as DigestString,
    name: 'pkg:npm/app',
    version: `1.0.${n}`,
    size: 1000 + n,
    digests: { sha256, sha512: createHash('sha512').update(`artifact-${n}`).digest('hex') },
    labels: {},
    source: null,
    stored: true,
    createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, n)).toISOString(),
    createdBy: 'builder@example.com',
    ...overrides,
  };
}

export function keyRecord(name: string, version: number, overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    keyid: hex(`key-${name}-${version}`),
    name,
    version,
    algorithm: 'ed25519',
    owner: 'key-admin@example.com',
    purposes: ['attest'],
    notBefore: '2025-01-01T00:00:00.000Z',
    notAfter: null,
    status: 'active',
    retiredAt: null,
    revokedAt: null,
    revocationReason: null,
    compromisedSince: null,
    backend: 'file',
    publicKeyPem: `-----BEGIN PUBLIC KEY-----\n${Buffer.from(hex(name)).toString('base64')}\n-----END PUBLIC KEY-----\n`,
    createdAt: '2025-01-01T00:00:00.000Z',
    createdBy: 'key-admin@example.com',
    ...overrides,
  };
}

/** The root recomputed from every stored body: what the log must agree with. */
export async function recomputed(store: Store): Promise<{ size: number; root: Uint8Array; roots: Uint8Array[] }> {
  return store.read(async (tx) => {
    const tree = new CompactRange();
    const roots = [tree.root()];
    for (const row of await tx.log.leaves(0, 1_000_000)) {
      assert.equal(row.index, tree.size);
      tree.append(entryLeaf(row.body));
      roots.push(tree.root());
    }
    return { size: tree.size, root: tree.root(), roots };
  });
}
