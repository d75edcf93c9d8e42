import { readText, writeOut } from '../files.ts';
import { invoke } from '../invoke.ts';
import { progressBar } from '../output.ts';
import type { Registrar } from '../program.ts';

const collect = (v: string, prev: string[] = []) => [...prev, v];

function entryIndex(v: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(v)) return Number.NaN;
  return Number(v);
}

export function registerAudit(r: Registrar): void {
  const streams = r.streams;
  const audit = r.group('audit', 'the tamper-evident log: checkpoints, proofs, verification, evidence, witnesses');

  r.command(audit, 'checkpoint', 'print the latest signed checkpoint of the log (C2SP tlog-checkpoint)', 'custody audit checkpoint --sign')
    .option('--sign', 'sign a checkpoint of the whole log now, even if the latest already covers it')
    .action((opts: { sign?: boolean }) => {
      r.run(async (g) => {
        const c = opts.sign ? await invoke(g, 'audit.sign-checkpoint', {}) : await invoke(g, 'audit.checkpoint', {});
        return { json: c, human: c.note };
      });
    });

  r.command(audit, 'proof <entry>', 'print an entry (by index or id), its inclusion proof and the checkpoint it proves into', 'custody audit proof 42 --json')
    .action((ref: string) => {
      r.run(async (g) => {
        const p = await invoke(g, 'audit.proof', { entry: ref });
        const human = [
          `entry ${p.entry.index}  ${p.entry.id}`,
          `  ${p.entry.time} ${p.entry.type} by ${p.entry.actor}${p.entry.subject === undefined ? '' : ` on ${p.entry.subject}`}`,
          `  leaf hash: ${p.entry.leafHash}`,
          `  body:      ${p.entry.body}`,
          `inclusion proof in the tree of ${p.proof.treeSize} entries (${p.proof.hashes.length} hashes):`,
          ...p.proof.hashes.map((h) => `  ${h}`),
          'checkpoint:',
          ...p.checkpoint.trimEnd().split('\n').map((l) => `  ${l}`),
        ];
        return { json: p, human: human.join('\n') };
      });
    });

  r.command(
    audit,
    'verify',
    'recompute the log from its entries and check every checkpoint; or verify an evidence bundle offline (--evidence)',
    'custody audit verify\ncustody audit verify --checkpoint witnessed.txt\ncustody audit verify --evidence evidence.tar --log-key log.pub',
  )
    .option('--evidence <file>', 'verify this evidence bundle offline: no workspace, no database')
    .option('--log-key <file>', 'the log\'s public key (PEM or C2SP vkey; repeatable for rotated keys); pins trust instead of the workspace\'s key records', collect)
    .option('--checkpoint <file>', 'a trusted checkpoint kept outside the database (e.g. witnessed): the log must extend it (repeatable)', collect)
    .action((opts: { evidence?: string; logKey?: string[]; checkpoint?: string[] }) => {
      r.run(async (g) => {
        const { describeFinding, MAX_KEY_BYTES, MAX_NOTE_BYTES, verifyEvidence } = await import('../../app/log.ts');
        // Offline: the bundle and the keys are files here, and no workspace or server is asked, whatever --server says.
        if (opts.evidence !== undefined) {
          const report = await verifyEvidence(opts.evidence, opts.logKey ?? []);
          const s = report.summary;
          const human = report.ok && s
            ? `evidence intact: entries [${s.from}, ${s.to}) of ${s.origin} prove into its signed tree of ${s.treeSize} (${s.checkpoints} checkpoints, consistent)`
            : `evidence TAMPERED: ${report.finding ? describeFinding(report.finding) : 'unknown'}`;
          return { json: report, human, exitCode: report.ok ? 0 : 1 };
        }
        const checkpoints = await Promise.all((opts.checkpoint ?? []).map(async (f) => ({ source: f, note: await readText(f, MAX_NOTE_BYTES, 'file') })));
        const logKeys = await Promise.all((opts.logKey ?? []).map((f) => readText(f, MAX_KEY_BYTES, 'file')));
        const bar = progressBar(streams, !g.json, 'verifying');
        const report = await invoke(g, 'audit.verify', { checkpoints, logKeys }, { onProgress: (p) => bar.update(p.bytes, p.total) }).finally(() => bar.done());
        const human = report.ok
          ? `log intact: ${report.entries} entries, ${report.checkpoints} checkpoints verified, ${report.promotions} promotion rows agree with it${report.outside.length > 0 ? `; consistent with ${report.outside.join(', ')}` : ''}`
          : report.finding?.kind === 'promotion-row'
            ? `promotion rows TAMPERED (the log itself verified): ${describeFinding(report.finding)}`
            : `log TAMPERED: ${report.finding ? describeFinding(report.finding) : 'unknown'}`;
        return { json: report, human, exitCode: report.ok ? 0 : 1 };
      });
    });

  r.command(audit, 'export', 'write an offline evidence bundle: entries, inclusion proofs, checkpoints, consistency proofs and the log\'s public keys', 'custody audit export --out evidence.tar --from 0 --to 1000')
    .requiredOption('--out <file>', 'the tar file to write')
    .option('--from <n>', 'first entry index (default 0)', entryIndex)
    .option('--to <n>', 'end of the range, exclusive (default: the latest checkpoint\'s size)', entryIndex)
    .action((opts: { out: string; from?: number; to?: number }) => {
      r.run(async (g) => {
        const { CustodyError } = await import('../../core/errors.ts');
        for (const [name, v] of [['--from', opts.from], ['--to', opts.to]] as const) {
          if (v !== undefined && Number.isNaN(v)) throw new CustodyError('USAGE', `${name} takes an entry index (a non-negative integer)`);
        }
        const { tar, ...summary } = await invoke(g, 'audit.export', { ...(opts.from === undefined ? {} : { from: opts.from }), ...(opts.to === undefined ? {} : { to: opts.to }) });
        await writeOut(opts.out, Buffer.from(tar, 'base64'));
        const result = { out: opts.out, ...summary };
        return {
          json: result,
          human: `wrote ${result.out}: entries [${result.from}, ${result.to}) with proofs into the signed tree of ${result.treeSize}, ${result.checkpoints} checkpoints (${result.bytes} bytes)\nverify with: custody audit verify --evidence ${result.out} --log-key <log public key>`,
        };
      });
    });

  r.command(
    audit,
    'witness',
    'cosign a checkpoint as a witness (C2SP tlog-cosignature), after checking it is consistent with the last one this witness cosigned',
    'custody audit witness --checkpoint checkpoint.txt --key witness.pem --log-key log.pub --out cosigned.txt',
  )
    .requiredOption('--checkpoint <file>', 'the signed checkpoint to cosign')
    .requiredOption('--key <file>', 'the witness\'s Ed25519 private key (PKCS#8 PEM)')
    .option('--state <file>', 'the witness\'s state: what it cosigned last (default: <key>.state.json)')
    .option('--name <name>', 'the witness\'s key name (default: kept in its state, else witness/<keyid prefix>)')
    .option('--log-key <file>', 'the log\'s public key (PEM or vkey); needed the first time this witness sees the log')
    .option('--proof <file>', 'a consistency proof {size1, size2, proof} from the last cosigned size; without it, the workspace\'s log provides one')
    .option('--out <file>', 'write the cosigned checkpoint here (default: stdout)')
    .action((opts: { checkpoint: string; key: string; state?: string; name?: string; logKey?: string; proof?: string; out?: string }) => {
      r.run(async (g) => {
        const { witnessCheckpoint } = await import('../../app/witness.ts');
        const { systemClock } = await import('../../app/workspace.ts');
        const { CustodyError } = await import('../../core/errors.ts');
        const { decodeBase64Strict } = await import('../../core/tlog/index.ts');
        const base = {
          checkpointFile: opts.checkpoint,
          keyFile: opts.key,
          ...(opts.state === undefined ? {} : { stateFile: opts.state }),
          ...(opts.name === undefined ? {} : { name: opts.name }),
          ...(opts.logKey === undefined ? {} : { logKeyFile: opts.logKey }),
          now: systemClock.now(),
        };
        // The witness's key, state and judgement stay on this machine; the log (a workspace or a server) only
        // supplies the consistency proof and keeps the cosignature. With --proof, no log is asked at all.
        let result;
        if (opts.proof !== undefined) result = await witnessCheckpoint({ ...base, proofFile: opts.proof });
        else {
          try {
            result = await witnessCheckpoint({
              ...base,
              proofSource: async (from, to) => (await invoke(g, 'audit.consistency', { from, to })).proof.map((h) => decodeBase64Strict(h) ?? new Uint8Array(0)),
            });
          } catch (e) {
            // A rollback or a fork the witness would not cosign goes on the log's record.
            if (e instanceof CustodyError && e.code === 'WITNESS_REFUSED') await invoke(g, 'audit.witness-refusal', { reason: e.message.slice(0, 2048) });
            throw e;
          }
          await invoke(g, 'audit.cosign', { checkpoint: result.checkpoint });
        }
        if (opts.out !== undefined) await writeOut(opts.out, result.checkpoint);
        return {
          json: result,
          human: opts.out !== undefined ? `cosigned ${result.origin} at size ${result.size} as ${result.name}; wrote ${opts.out}` : result.checkpoint,
        };
      });
    });
}
