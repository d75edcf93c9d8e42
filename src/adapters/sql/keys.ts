import { CustodyError } from '../../core/errors.ts';
import type { KeyRecord } from '../../core/key.ts';
import type { KeyRepository, PrivateKeyRef } from '../../core/ports.ts';
import type { SqlExecutor } from './executor.ts';

interface KeyRow {
  record: string;
}

export function keyRepository(db: SqlExecutor): KeyRepository {
  const parse = (r: KeyRow | undefined) => (r ? (JSON.parse(r.record) as KeyRecord) : undefined);
  return {
    async byKeyid(keyid) {
      return parse(await db.get<KeyRow>('SELECT record FROM keys WHERE keyid = ?', [keyid]));
    },
    async byNameVersion(name, version) {
      return parse(await db.get<KeyRow>('SELECT record FROM keys WHERE name = ? AND version = ?', [name, version]));
    },
    async versionsOf(name) {
      const rows = await db.all<KeyRow>('SELECT record FROM keys WHERE name = ? ORDER BY version', [name]);
      return rows.map((r) => JSON.parse(r.record) as KeyRecord);
    },
    async list() {
      const rows = await db.all<KeyRow>('SELECT record FROM keys ORDER BY name, version');
      return rows.map((r) => JSON.parse(r.record) as KeyRecord);
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
      await db.run('INSERT INTO keys (keyid, name, version, record, private_ref) VALUES (?, ?, ?, ?, ?)', [
        key.keyid,
        key.name,
        key.version,
        JSON.stringify(key),
        privateRef === null ? null : JSON.stringify(privateRef),
      ]);
    },
    async update(key) {
      await db.run('UPDATE keys SET record = ? WHERE keyid = ?', [JSON.stringify(key), key.keyid]);
    },
    async privateRef(keyid) {
      const r = await db.get<{ private_ref: string | null }>('SELECT private_ref FROM keys WHERE keyid = ?', [keyid]);
      return r?.private_ref ? (JSON.parse(r.private_ref) as PrivateKeyRef) : null;
    },
  };
}
