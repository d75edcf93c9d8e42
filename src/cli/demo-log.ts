/** Demo steps for the tamper-evident log: a log key, a checkpoint, a proof, the whole log verified, an edit caught. */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { auditVerify, describeFinding, exportEvidence, proveEntry, signCheckpointNow, verifyEvidence, type AuditReport } from '../app/log.ts';
import { createKey, exportPublicKey, listKeys } from '../app/keys.ts';
import { DB_FILE } from '../app/workspace.ts';
import type { DemoState } from './demo.ts';

const KEK_ENV = 'CUSTODY_KEK_FILE';

export const LOG_STEPS: { title: string; run(d: DemoState): Promise<string> }[] = [
  {
    title: 'Audit: every step above is an entry in a Merkle-tree log; sign a checkpoint, prove an entry',
    async run(d) {
      const ownKek = process.env[KEK_ENV] === undefined && process.env['CUSTODY_KEY_PASSPHRASE'] === undefined;
      if (ownKek) {
        const kek = join(d.dir, 'demo-log.kek');
        await writeFile(kek, randomBytes(32), { mode: 0o600 });
        process.env[KEK_ENV] = kek;
      }
      try {
        // The pipeline above made the log key first, so every receipt could be proven into a checkpoint as it was issued.
        const existing = (await listKeys(d.ctx)).find((k) => k.name === 'log' && k.purposes.includes('log-checkpoint'));
        const key = existing ?? (await createKey(d.ctx, { name: 'log', purposes: ['log-checkpoint'] }));
        const cp = await signCheckpointNow(d.ctx);
        const proof = await proveEntry(d.ctx, '1');
        const pub = join(d.dir, 'log.pub');
        await writeFile(pub, (await exportPublicKey(d.ctx, 'log')).pem ?? '');
        d.facts['logKey'] = pub;
        return [
          ...(existing ? [`# the log key ${key.name}@${key.version} (${key.algorithm}) signed a checkpoint after every promotion above`] : ['$ custody key create log --purpose log-checkpoint', `  ${key.name}@${key.version} (${key.algorithm})`]),
          '$ custody audit checkpoint --sign',
          ...cp.note.trimEnd().split('\n').map((l) => `  ${l}`),
          '$ custody audit proof 1',
          `  entry 1 (${proof.entry.type}) proves into the tree of ${proof.proof.treeSize} with ${proof.proof.hashes.length} hashes`,
        ].join('\n');
      } finally {
        if (ownKek) delete process.env[KEK_ENV];
      }
    },
  },
  {
    title: 'Audit: verify the whole log, export offline evidence, then edit the database (a promotion row, then one log entry) and see each caught',
    async run(d) {
      const intact = await auditVerify(d.ctx);
      const out = join(d.dir, 'evidence.tar');
      const exported = await exportEvidence(d.ctx, { out });
      const offline = await verifyEvidence(out, [d.facts['logKey'] ?? '']);
      // What someone with write access to the database file might do. First, back-date 1.4.2's staging promotion
      // (a soak shortened by hand: the log is untouched); the row is put back after.
      const db = new DatabaseSync(join(d.ctx.home, DB_FILE));
      let backdated: AuditReport;
      try {
        const row = db.prepare("SELECT id, finished_at FROM promotions WHERE environment = 'staging' AND version = '1.4.2' ORDER BY seq LIMIT 1").get() as { id: string; finished_at: string };
        db.prepare("UPDATE promotions SET finished_at = '2020-01-01T00:00:00.000Z' WHERE id = ?").run(row.id);
        backdated = await auditVerify(d.ctx);
        db.prepare('UPDATE promotions SET finished_at = ? WHERE id = ?').run(row.finished_at, row.id);
        // Then change one byte of one entry.
        db.prepare("UPDATE log_entries SET body = replace(body, '\"1.4.2\"', '\"1.4.3\"') WHERE idx = (SELECT MIN(idx) FROM log_entries WHERE body LIKE '%\"1.4.2\"%')").run();
      } finally {
        db.close();
      }
      const tampered = await auditVerify(d.ctx);
      return [
        '$ custody audit verify',
        `  ${intact.ok ? 'log intact' : 'TAMPERED'}: ${intact.entries} entries, ${intact.checkpoints} checkpoints verified, ${intact.promotions} promotion rows agree with it`,
        '$ custody audit export --out evidence.tar && custody audit verify --evidence evidence.tar --log-key log.pub',
        `  ${exported.entries} entries exported; offline: ${offline.ok ? 'evidence intact' : 'TAMPERED'}`,
        '$ sqlite3 custody.db "UPDATE promotions SET finished_at = \'2020-01-01T00:00:00.000Z\' WHERE id = <1.4.2 into staging>"   # a soak shortened by hand',
        '$ custody audit verify',
        `  exit 1: promotion rows TAMPERED (the log itself verified): ${backdated.finding ? describeFinding(backdated.finding) : '?'}`,
        '  (the row put back)',
        '$ sqlite3 custody.db "UPDATE log_entries SET body = replace(body, \'1.4.2\', \'1.4.3\') WHERE idx = <the first entry naming 1.4.2>"',
        '$ custody audit verify',
        `  exit 1: log TAMPERED: ${tampered.finding ? describeFinding(tampered.finding) : '?'}`,
      ].join('\n');
    },
  },
];
