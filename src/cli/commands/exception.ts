import { invoke } from '../invoke.ts';
import { shortDigest, table } from '../output.ts';
import type { Registrar } from '../program.ts';

export function registerException(r: Registrar): void {
  const exception = r.group('exception', 'exceptions (waivers) as data: request, approve, list, revoke');
  const collect = (v: string, prev: string[] = []) => [...prev, v];

  r.command(exception, 'request', 'request a time-limited waiver of named gates for one artifact in one environment', 'custody exception request --env prod --gate change-freeze --artifact pkg:npm/app@1.4.2 --expires 24h --justification "incident 4711: payment outage fix"')
    .requiredOption('--env <environment>', 'the environment')
    .requiredOption('--gate <name>', 'a gate to waive (repeatable)', collect)
    .requiredOption('--artifact <ref>', 'name@version, a digest, or a glob such as pkg:npm/app@1.4.*')
    .requiredOption('--expires <when>', 'a duration from now (24h, 3d) or an RFC 3339 time')
    .requiredOption('--justification <text>', 'why, with the ticket')
    .action((opts: { env: string; gate: string[]; artifact: string; expires: string; justification: string }) => {
      r.run(async (g) => {
        const e = await invoke(g, 'exception.request', { environment: opts.env, gates: opts.gate, artifact: opts.artifact, expires: opts.expires, justification: opts.justification });
        return { json: e, human: `${e.id} requested: waive ${e.gates.join(', ')} for ${e.artifact} in ${e.environment} until ${e.expiresAt}\nNext: another approver runs custody exception approve ${e.id}` };
      });
    });

  r.command(exception, 'approve <id>', 'approve an exception someone else requested (approver role)', 'custody exception approve ex-3f2a9c1b0d4e')
    .action((id: string) => {
      r.run(async (g) => {
        const e = await invoke(g, 'exception.approve', { id });
        return { json: e, human: `${e.id} approved by ${e.approvedBy ?? '?'}: active until ${e.expiresAt}` };
      });
    });

  r.command(exception, 'revoke <id>', 'revoke an exception before it expires', 'custody exception revoke ex-3f2a9c1b0d4e --reason "fix is out"')
    .option('--reason <text>', 'why')
    .action((id: string, opts: { reason?: string }) => {
      r.run(async (g) => {
        const e = await invoke(g, 'exception.revoke', { id, ...(opts.reason === undefined ? {} : { reason: opts.reason }) });
        return { json: e, human: `${e.id} revoked by ${e.revokedBy ?? '?'} at ${e.revokedAt ?? '?'}` };
      });
    });

  r.command(exception, 'list', 'list requested and active exceptions (--all: expired and revoked too)', 'custody exception list --env prod')
    .option('--env <environment>', 'only this environment')
    .option('--all', 'include expired and revoked ones')
    .action((opts: { env?: string; all?: boolean }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'exception.list', { ...(opts.env === undefined ? {} : { environment: opts.env }), ...(opts.all ? { all: true } : {}) });
        const list = out.exceptions;
        return {
          json: out,
          human:
            list.length === 0
              ? 'no exceptions'
              : table(
                  ['ID', 'ENV', 'STATUS', 'GATES', 'ARTIFACT', 'EXPIRES', 'REQUESTED BY', 'APPROVED BY'],
                  list.map((e) => [e.id, e.environment, e.status, e.gates.join(','), e.artifact.length > 40 ? shortDigest(e.artifact) : e.artifact, e.expiresAt, e.requestedBy, e.approvedBy ?? '-']),
                ),
        };
      });
    });
}
