/**
 * A child process for the concurrency tests: opens a store (migrating it if it
 * is the first), says "ready", waits for "go" on stdin, then appends `count`
 * entries as fast as it can, every third transaction appending two. Prints one
 * JSON line: what it appended and every error code it saw.
 *
 * argv: <location JSON> <worker id> <count>
 */
import { PostgresStore } from '../../src/adapters/store-postgres.ts';
import { SqliteStore } from '../../src/adapters/store-sqlite.ts';
import { CustodyError } from '../../src/core/errors.ts';
import type { Store } from '../../src/core/ports.ts';
import type { StoreLocation } from './stores.ts';

const [where = '', id = '0', n = '0'] = process.argv.slice(2);
const location = JSON.parse(where) as StoreLocation;
const worker = Number(id);
const count = Number(n);

const errors: string[] = [];
const indexes: number[] = [];
let store: Store | undefined;
try {
  store = location.driver === 'sqlite' ? await SqliteStore.open(location.path) : await PostgresStore.open(location.url, { maxConnections: 2 });
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  let seq = 0;
  while (seq < count) {
    const batch = seq % 3 === 2 && seq + 1 < count ? 2 : 1;
    const first = seq;
    try {
      const got = await store.transaction(async (tx) => {
        const out: number[] = [];
        for (let k = 0; k < batch; k++) {
          const e = await tx.log.append({ type: 'test.appended', actor: `worker-${worker}`, time: new Date().toISOString(), subject: `worker-${worker}`, payload: { worker, seq: first + k } });
          out.push(e.index);
        }
        return out;
      });
      indexes.push(...got);
      seq += batch;
    } catch (e) {
      errors.push(e instanceof CustodyError ? `${e.code}: ${e.message}` : String(e));
      if (errors.length > 20) break;
    }
  }
} catch (e) {
  errors.push(e instanceof CustodyError ? `${e.code}: ${e.message}` : String(e));
} finally {
  await store?.close();
}
process.stdout.write(`${JSON.stringify({ worker, indexes, errors })}\n`);
process.exit(0);
