/**
 * Promotion commands: promote, approve, reject, rollback, status, history,
 * promotion show and receipts export. Each calls a registered operation, so it
 * works the same on a local workspace and against a server; human output is
 * rendered from the operation's answer alone.
 */
import type { OutputOf } from '../../app/operations/index.ts';
import { CustodyError } from '../../core/errors.ts';
import { humanDuration, parseDuration } from '../../core/time.ts';
import { invoke } from '../invoke.ts';
import { shortDigest, table, type GlobalOptions } from '../output.ts';
import type { Registrar } from '../program.ts';

type PromotionOut = OutputOf<'promotion.request'>;
type RollbackOut = OutputOf<'promotion.rollback'>;

const MARK: Record<string, string> = { pass: 'PASS   ', fail: 'FAIL   ', waived: 'WAIVED ', pending: 'PENDING' };
const OPEN = new Set(['requested', 'evaluating', 'awaiting-approval', 'applying']);

/**
 * Exit codes: 0 promoted; 1 rejected (a gate failed, vetoed) or cancelled;
 * 3 awaiting approval or still in flight; 4 superseded by a concurrent
 * promotion (retry); 5 the target failed or the apply was interrupted.
 */
export function promotionExit(p: Pick<PromotionOut, 'state' | 'outcome'>): number {
  switch (p.state) {
    case 'promoted':
    case 'replaced':
    case 'rolled-back':
      return 0;
    case 'rejected':
      return p.outcome?.code === 'PROMOTION_SUPERSEDED' ? 4 : 1;
    case 'failed':
      return 5;
    case 'cancelled':
      return 1;
    default:
      return 3;
  }
}

export function promotionText(p: PromotionOut): string {
  const head = `${p.kind === 'rollback' ? 'rollback of ' : ''}${p.artifact.name}@${p.artifact.version} → ${p.environment}: ${p.state.toUpperCase()}${p.replayed ? ' (an earlier answer, repeated)' : ''}`;
  const lines = [head, `  promotion ${p.id}, requested by ${p.requestedBy} at ${p.requestedAt}`, `  artifact  ${p.artifact.digest}`];
  const d = p.decision;
  if (d) {
    lines.push(`  policy    ${d.policy.name}${d.policy.version === null ? ' (unsigned files)' : ` v${d.policy.version}`}, digest ${shortDigest(d.policy.digest)}, decided ${d.time}`, '');
    for (const g of d.gates) {
      lines.push(`  ${MARK[g.outcome] ?? g.outcome} ${g.name} (${g.kind}): ${g.requirement}`);
      for (const r of g.reasons) lines.push(`          ${r.message}`);
    }
    lines.push('', `  ${d.summary}`);
  }
  const extra = p.reasons.filter((r) => !d?.gates.some((g) => g.reasons.some((x) => r.message.endsWith(x.message))));
  for (const r of extra) lines.push(`  ${r.code}: ${r.message}`);
  if (p.approvals.length > 0) {
    lines.push('  votes:');
    for (const v of p.approvals) {
      const status = v.invalidated ? `not counted: ${v.invalidated.reason}` : v.vote === 'approve' ? (v.counted ? 'counted' : 'not counted') : 'veto';
      lines.push(`    ${v.vote} by ${v.identity} at ${v.time}${v.comment ? ` ("${v.comment}")` : ''}: ${status}`);
    }
  }
  if (p.outcome && p.state !== 'promoted') lines.push(`  ${p.outcome.code}: ${p.outcome.message}`);
  if (p.targetOutput) lines.push('  target output:', ...p.targetOutput.trimEnd().split('\n').slice(-20).map((l) => `    | ${l}`));
  if (p.receipt) lines.push(`  receipt   ${p.receipt} (SLSA VSA, log entry #${p.logIndex ?? '?'})`);
  if (p.state === 'awaiting-approval') lines.push(`  next: custody approve ${p.id}   (an approver other than the requester and the evidence's signers)`);
  if (p.state === 'promoted') lines.push(`  deploy gate: custody verify ${p.artifact.digest} --env ${p.environment}`);
  return lines.join('\n');
}

function rollbackText(p: RollbackOut): string {
  const text = promotionText(p);
  if (p.state !== 'rejected') return text;
  const s = p.suggestion;
  return `${text}\n  ${s ? `next candidate: ${s.name}@${s.version} (${s.outcome === 'pass' ? 'passes today' : 'passes with approval'}): custody rollback ${p.environment} --to ${s.version}` : 'no earlier version passes today'}`;
}

const POLL_MS = 2000;

/** `--wait`: follows a promotion that is still open until it rests or the time is up (works locally and remotely). */
async function waitFor(g: GlobalOptions, p: PromotionOut, waitMs: number | undefined): Promise<PromotionOut> {
  if (waitMs === undefined) return p;
  const deadline = Date.now() + waitMs;
  let cur = p;
  while (OPEN.has(cur.state) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
    cur = await invoke(g, 'promotion.show', { id: p.id });
  }
  return cur;
}

function waitOption(v: string | boolean | undefined): number | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return 30 * 60_000;
  return parseDuration(v);
}

async function environmentOf(g: GlobalOptions, id: string, env: string | undefined): Promise<string> {
  if (env !== undefined) return env;
  return (await invoke(g, 'promotion.show', { id })).environment;
}

export function registerPromote(r: Registrar): void {
  r.command(r.program, 'promote <artifact>', 'promote an artifact into an environment: policy decision, target, signed receipt, log (exit 0 promoted, 1 rejected, 3 awaiting approval)', 'custody promote pkg:npm/app@1.4.2 --to staging --idempotency-key "$CI_PIPELINE_ID"')
    .requiredOption('--to <env>', 'the environment to promote into')
    .option('--idempotency-key <key>', 'a retry with the same key returns the same promotion (CI retries)')
    .option('--wait [timeout]', 'wait until it is promoted or rejected (approvals included), up to a duration (default 30m)')
    .action((artifact: string, opts: { to: string; idempotencyKey?: string; wait?: string | boolean }) => {
      r.run(async (g) => {
        const waitMs = waitOption(opts.wait);
        const first = await invoke(g, 'promotion.request', { artifact, to: opts.to, ...(opts.idempotencyKey === undefined ? {} : { idempotencyKey: opts.idempotencyKey }) });
        const out = await waitFor(g, first, waitMs);
        return { json: out, human: promotionText(out), exitCode: promotionExit(out) };
      });
    });

  r.command(r.program, 'approve <promotion-id>', 'approve a promotion awaiting approval (separation of duties applies); it continues by itself when the quorum is met', 'custody approve pr_3f2c1e9a0b4d5e6f --comment "release notes reviewed"')
    .option('--comment <text>', 'why, for the record')
    .option('--env <env>', 'the promotion\'s environment (looked up when omitted)')
    .action((id: string, opts: { comment?: string; env?: string }) => {
      r.run(async (g) => {
        const environment = await environmentOf(g, id, opts.env);
        const out = await invoke(g, 'promotion.approve', { environment, id, ...(opts.comment === undefined ? {} : { comment: opts.comment }) });
        return { json: out, human: promotionText(out), exitCode: promotionExit(out) };
      });
    });

  r.command(r.program, 'reject <promotion-id>', 'reject (veto) a promotion awaiting approval', 'custody reject pr_3f2c1e9a0b4d5e6f --reason "fails the load test"')
    .requiredOption('--reason <text>', 'why, for the record')
    .option('--env <env>', 'the promotion\'s environment (looked up when omitted)')
    .action((id: string, opts: { reason: string; env?: string }) => {
      r.run(async (g) => {
        const environment = await environmentOf(g, id, opts.env);
        const out = await invoke(g, 'promotion.reject', { environment, id, reason: opts.reason });
        // The veto itself succeeded: exit 0 unless it could not be cast.
        return { json: out, human: promotionText(out), exitCode: out.state === 'rejected' ? 0 : promotionExit(out) };
      });
    });

  r.command(r.program, 'rollback <env>', 'roll an environment back to the version before the current one, re-verified against today\'s keys and policy (exit 0, 1 refused with the next candidate, 3 awaiting approval)', 'custody rollback prod\ncustody rollback prod --to 1.4.1')
    .option('--to <version>', 'a version promoted there before (default: the one before the current)')
    .option('--idempotency-key <key>', 'a retry with the same key returns the same rollback')
    .option('--wait [timeout]', 'wait until it is promoted or rejected, up to a duration (default 30m)')
    .action((env: string, opts: { to?: string; idempotencyKey?: string; wait?: string | boolean }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'promotion.rollback', { environment: env, ...(opts.to === undefined ? {} : { to: opts.to }), ...(opts.idempotencyKey === undefined ? {} : { idempotencyKey: opts.idempotencyKey }) });
        const waited = await waitFor(g, out, waitOption(opts.wait));
        const final: RollbackOut = waited === out ? out : { ...waited, suggestion: out.suggestion };
        return { json: final, human: rollbackText(final), exitCode: promotionExit(final) };
      });
    });

  r.command(r.program, 'status', 'the promotion board: each environment\'s current version, since when and who, and what is pending', 'custody status --env prod')
    .option('--env <env>', 'only this environment')
    .action((opts: { env?: string }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'promotion.status', opts.env === undefined ? {} : { environment: opts.env });
        return { json: out, human: statusText(out) };
      });
    });

  r.command(r.program, 'history <ref>', 'every promotion of an environment or an artifact, newest first, with its decision', 'custody history prod\ncustody history pkg:npm/app@1.4.2')
    .option('--limit <n>', 'at most n rows', (v) => Number.parseInt(v, 10))
    .action((ref: string, opts: { limit?: number }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'promotion.history', { ref, ...(opts.limit === undefined || Number.isNaN(opts.limit) ? {} : { limit: opts.limit }) });
        const rows = out.promotions.map((p) => [
          p.requestedAt,
          p.environment,
          `${p.artifact.name}@${p.artifact.version}`,
          p.kind === 'rollback' ? 'rollback' : '',
          p.state,
          p.decision?.outcome ?? '-',
          p.requestedBy,
          p.approvals.join(',') || '-',
          p.outcome && p.state !== 'promoted' ? `${p.outcome.code}` : p.decision?.summary ?? '',
          p.id,
        ]);
        const title = out.subject.kind === 'environment' ? `history of ${out.subject.name}` : `history of ${out.subject.name}@${out.subject.version} (${shortDigest(out.subject.digest)})`;
        return { json: out, human: rows.length === 0 ? `${title}: no promotions yet` : `${title}\n${table(['REQUESTED', 'ENV', 'ARTIFACT', 'KIND', 'STATE', 'DECISION', 'BY', 'APPROVED BY', 'WHY', 'ID'], rows)}` };
      });
    });

  const promotion = r.group('promotion', 'inspect promotions');
  r.command(promotion, 'show <promotion-id>', 'one promotion: state, every gate with its reasons, votes, receipt', 'custody promotion show pr_3f2c1e9a0b4d5e6f').action((id: string) => {
    r.run(async (g) => {
      const out = await invoke(g, 'promotion.show', { id });
      return { json: out, human: promotionText(out), exitCode: 0 };
    });
  });

  const receipts = r.group('receipts', 'export promotion receipts for the offline deploy-time gate');
  r.command(receipts, 'export', 'write the signed environment head, receipt chain, evidence, log entries and public keys into a folder for custody verify --offline', 'custody receipts export --env prod --out ./prod-receipts --valid-for 24h')
    .requiredOption('--env <env>', 'the environment')
    .requiredOption('--out <dir>', 'the folder to write (receipts under it, public key records under <dir>/keys)')
    .option('--valid-for <duration>', 'how long the signed head is trusted (default 24h): a stale status is refused after it', '24h')
    .action((opts: { env: string; out: string; validFor: string }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'receipt.export', { environment: opts.env, validFor: opts.validFor });
        const { writeExport } = await import('../../app/receipts.ts');
        const written = await writeExport(opts.out, out.files);
        const { files: _files, ...rest } = out;
        return {
          json: { ...rest, out: opts.out, files: out.files.map((f) => f.path) },
          human: [
            `exported ${out.environment}: ${out.artifact.name}@${out.artifact.version} (${shortDigest(out.artifact.digest)}), head valid until ${out.head.expiresAt}`,
            `  ${written.length} files in ${opts.out}`,
            `  verify: custody verify ${out.artifact.digest} --env ${out.environment} --offline --receipts ${opts.out} --keys ${opts.out}/keys`,
          ].join('\n'),
        };
      });
    });
}

function statusText(s: OutputOf<'promotion.status'>): string {
  const lines: string[] = [`status at ${s.generatedAt}`];
  for (const r of s.recovered) lines.push(`  recovered ${r.promotion} in ${r.environment}: ${r.action} (${r.state})`);
  const rows = s.environments.map((e) => [
    e.name,
    e.from.join(',') || '-',
    e.current ? `${e.current.artifact.name}@${e.current.artifact.version}${e.current.kind === 'rollback' ? ' (rollback)' : ''}` : '-',
    e.current ? e.current.since : '-',
    e.current ? `${e.current.by}${e.current.approvedBy.length ? ` (approved by ${e.current.approvedBy.join(', ')})` : ''}` : '-',
    e.target,
    String(e.pending.length),
  ]);
  lines.push(table(['ENV', 'FROM', 'CURRENT', 'SINCE', 'BY', 'TARGET', 'PENDING'], rows) || '  no environments: define them in custody.yaml');
  const pending = s.environments.flatMap((e) => e.pending.map((p) => ({ env: e.name, p })));
  if (pending.length > 0) {
    lines.push('', 'pending:');
    lines.push(
      table(
        ['ENV', 'ARTIFACT', 'STATE', 'WAITING', 'REQUESTED BY', 'WAITING FOR', 'ID'],
        pending.map(({ env, p }) => [env, `${p.artifact.name}@${p.artifact.version}${p.kind === 'rollback' ? ' (rollback)' : ''}`, p.state, humanDuration(p.waitingMs), p.requestedBy, p.waitingFor.map((w) => w.message).join('; ').slice(0, 100) || '-', p.id]),
      ),
    );
  }
  return lines.join('\n');
}

export function requireOfflineFlags(opts: { offline?: boolean; receipts?: string; keys?: string }): { receipts: string; keys: string } {
  if (!opts.receipts || !opts.keys) throw new CustodyError('USAGE', '--offline needs --receipts DIR and --keys DIR', { hint: 'custody receipts export --env E --out DIR writes both (keys under DIR/keys)' });
  return { receipts: opts.receipts, keys: opts.keys };
}
