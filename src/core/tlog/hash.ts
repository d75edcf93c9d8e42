import { hash } from 'node:crypto';

/** Every hash in the log is SHA-256: 32 bytes. */
export const HASH_SIZE = 32;

// RFC 9162 §2.1.1: domain separation between leaves and interior nodes, so a leaf can never pose as a node.
const LEAF_PREFIX = Uint8Array.of(0x00);

// One scratch buffer for interior nodes: hashing is synchronous, so it is never shared by two calls at once.
const nodeInput = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeInput[0] = 0x01;

export function leafHash(data: Uint8Array): Uint8Array {
  return hash('sha256', Buffer.concat([LEAF_PREFIX, data]), 'buffer');
}

/** The leaf hash of UTF-8 text, without copying it into a buffer first (the append path's hot spot). */
export function leafHashOfText(text: string): Uint8Array {
  return hash('sha256', `\u0000${text}`, 'buffer');
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    return hash('sha256', Buffer.concat([Uint8Array.of(0x01), left, right]), 'buffer');
  }
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  return hash('sha256', nodeInput, 'buffer');
}

/** The root of the empty tree: SHA-256 of the empty string. */
export function emptyRoot(): Uint8Array {
  return hash('sha256', new Uint8Array(0), 'buffer');
}
