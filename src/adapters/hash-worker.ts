/**
 * Hashes chunks with SHA-512 on the second core while the main thread hashes
 * SHA-256 and the thread pool writes the blob: the three overlap, so adding a
 * file costs about as much as its slowest digest.
 */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

interface Init {
  buffer: SharedArrayBuffer;
  slotSize: number;
  algorithm: string;
}

const { buffer, slotSize, algorithm } = workerData as Init;
const hash = createHash(algorithm);
const port = parentPort;

port?.on('message', (msg: { slot: number; length: number } | { done: true }) => {
  if ('done' in msg) {
    port.postMessage({ digest: hash.digest('hex') });
    return;
  }
  hash.update(new Uint8Array(buffer, msg.slot * slotSize, msg.length));
  port.postMessage({ slot: msg.slot });
});
