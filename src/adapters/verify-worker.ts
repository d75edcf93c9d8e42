/**
 * One thread of the verification pool: runs the same pure pipeline as the main
 * thread over a batch of keyed requests and posts compact results back.
 */
import { parentPort } from 'node:worker_threads';
import { toTrustedKeys, type TrustedKeys } from '../core/key.ts';
import { verifyEvidence } from '../core/verify/index.ts';
import type { PoolMessage, WireResult } from './verify-pool.ts';

let trusted: TrustedKeys = toTrustedKeys([]);
const port = parentPort;

port?.on('message', (m: PoolMessage) => {
  if (m.type === 'keys') {
    trusted = toTrustedKeys(m.keys);
    return;
  }
  const results: WireResult[] = [];
  for (const r of m.requests) {
    const { statement, ...rest } = verifyEvidence({
      input: r.input,
      maxBytes: r.maxBytes,
      artifact: r.artifact,
      keys: trusted,
      ...(r.signedAt === undefined ? {} : { signedAt: new Date(r.signedAt) }),
      ...(r.predicateType === undefined ? {} : { predicateType: r.predicateType }),
      ...(r.purpose === undefined ? {} : { purpose: r.purpose }),
      ...(r.threshold === undefined ? {} : { threshold: r.threshold }),
    });
    // Only what the caller asked for crosses back: cloning a parsed statement costs more than verifying it.
    results.push(m.withStatement && statement ? { ...rest, statementJson: JSON.stringify(statement) } : rest);
  }
  port.postMessage({ id: m.id, results });
});
