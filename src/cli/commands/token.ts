import { Option } from 'commander';
import type { OutputOf } from '../../app/operations/index.ts';
import { ROLES, type Role } from '../../core/identity.ts';
import { invoke } from '../invoke.ts';
import { table } from '../output.ts';
import type { Registrar } from '../program.ts';

const collect = (v: string, prev: string[] = []) => [...prev, v];

type TokenInfo = OutputOf<'token.list'>['tokens'][number];

export function registerToken(r: Registrar): void {
  const token = r.group('token', 'API tokens for the server (needs key-admin)');

  r.command(token, 'create', 'create an API token and print it once; only a salted hash is kept', 'custody token create --identity ci:release --role builder --role signer --env staging --expires 30d')
    .requiredOption('--identity <id>', 'who the token acts as, e.g. ci:release')
    .addOption(new Option('--role <role>', `role it carries (repeatable): ${ROLES.join(', ')}`).argParser(collect))
    .option('--env <environment>', 'limit it to this environment (repeatable; default: every environment)', collect)
    .option('--expires <duration>', 'lifetime, e.g. 30d, 12h, or never', '90d')
    .option('--description <text>', 'what the token is for')
    .action((opts: { identity: string; role?: string[]; env?: string[]; expires: string; description?: string }) => {
      r.run(async (g) => {
        const out = await invoke(g, 'token.create', {
          identity: opts.identity,
          roles: (opts.role ?? []) as Role[],
          ...(opts.env === undefined ? {} : { environments: opts.env }),
          expires: opts.expires,
          ...(opts.description === undefined ? {} : { description: opts.description }),
        });
        return {
          json: out,
          human: [
            out.token,
            `created API token ${out.id} for ${out.identity}: ${rolesText(out)}; ${envText(out)}; ${out.expiresAt ? `expires ${out.expiresAt}` : 'never expires'}`,
            'This is the only time the token is shown: keep it in a secret store and pass it as CUSTODY_TOKEN.',
          ].join('\n'),
        };
      });
    });

  r.command(token, 'list', 'list API tokens (never their secrets)', 'custody token list --json').action(() => {
    r.run(async (g) => {
      const out = await invoke(g, 'token.list', {});
      return {
        json: out,
        human:
          out.tokens.length === 0
            ? 'no API tokens yet: custody token create --identity <id> --role <role>'
            : table(
                ['ID', 'IDENTITY', 'ROLES', 'ENVIRONMENTS', 'STATUS', 'EXPIRES', 'CREATED BY'],
                out.tokens.map((t) => [t.id, t.identity, t.roles.join(',') || '-', t.environments?.join(',') ?? 'all', t.status, t.expiresAt ?? 'never', t.createdBy]),
              ),
      };
    });
  });

  r.command(token, 'revoke <id>', 'revoke an API token at once (idempotent)', 'custody token revoke 3f2c1e9a7b6d5c4e').action((id: string) => {
    r.run(async (g) => {
      const out = await invoke(g, 'token.revoke', { id });
      return { json: out, human: out.revoked ? `revoked API token ${id} (${out.token.identity})` : `API token ${id} was already revoked at ${out.token.revokedAt ?? '?'}` };
    });
  });
}

function rolesText(t: Pick<TokenInfo, 'roles'>): string {
  return t.roles.length ? t.roles.join(', ') : 'no roles (read-only)';
}

function envText(t: Pick<TokenInfo, 'environments'>): string {
  return t.environments === null ? 'every environment' : `environments: ${t.environments.join(', ')}`;
}
