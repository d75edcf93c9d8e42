import { CustodyError } from '../../core/errors.ts';
import type { KeyRecord } from '../../core/key.ts';
import type { KeyRepository, PrivateKeyRef } from '../../core/ports.ts';
import { TxCache } from './cache.ts';
import type { SqlExecutor } from './executor.ts';

interface SnapshotRow {
  keyid: string;
  record: string;
  private_ref: string | null;
}

/** Key records, read through the connection's cache (./cache.ts): a promotion reads them five times. */
export function keyRepository(db: SqlExecutor, cache: TxCache = new TxCache(db)): KeyRepository {
  const snapshot = () =>
    cache.keys(async () => {
      const rows = await db.all<SnapshotRow>('SELECT keyid, record, private_ref FROM keys ORDER BY name, version');
      const byKeyid = new Map<string, { record: KeyRecord; privateRef: string | null }>();
      const records = rows.map((r) => {
        const record = JSON.parse(r.record) as KeyRecord;
        byKeyid.set(r.keyid, { record, privateRef: r.private_ref });
        return record;
      });
      return { records, byKeyid };
    });
  return {
    async byKeyid(keyid) {
      return (await snapshot()).byKeyid.get(keyid)?.record;
    },
    async byNameVersion(name, version) {
      return (await snapshot()).records.find((k) => k.name === name && k.version === version);
    },
    async versionsOf(name) {
      return (await snapshot()).records.filter((k) => k.name === name);
    },
    async list() {
      return (await snapshot()).records;
    },
    async insert(key, privateRef) {
      const clash = await db.get<{ name: string; version: unknown }>('SELECT name, version FROM keys WHERE keyid = ? OR (name = ? AND version = ?)', [
        key.keyid,
        key.name,
        key.version,
      ]);
      if (clash) {
        throw new CustodyError('KEY_EXISTS', `key ${key.name}@${key.version} (${key.keyid.slice(0, 12)}…) clashes with the recorded key ${clash.name}@${String(clash.version)}`, {
          details: { keyid: key.keyid },
        });
      }
      cache.dropKeys();
      await db.run('INSERT INTO keys (keyid, name, version, record, private_ref) VALUES (?, ?, ?, ?, ?)', [
        key.keyid,
        key.name,
        key.version,
        JSON.stringify(key),
        privateRef === null ? null : JSON.stringify(privateRef),
      ]);
    },
    async update(key) {
      cache.dropKeys();
      await db.run('UPDATE keys SET record = ? WHERE keyid = ?', [JSON.stringify(key), key.keyid]);
    },
    async privateRef(keyid) {
      const ref = (await snapshot()).byKeyid.get(keyid)?.privateRef;
      return ref ? (JSON.parse(ref) as PrivateKeyRef) : null;
    },
  };
}
