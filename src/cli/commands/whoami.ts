import { invoke } from '../invoke.ts';
import type { Registrar } from '../program.ts';

export function registerWhoami(r: Registrar): void {
  r.command(r.program, 'whoami', 'who you act as, with which roles: from custody.yaml locally, from your token against a server', 'custody whoami --server https://custody.example.com --json').action(() => {
    r.run(async (g) => {
      const out = await invoke(g, 'whoami', {});
      return {
        json: out,
        human: `${out.identity}\n  roles:        ${out.roles.join(', ') || '-'}\n  environments: ${out.environments === null ? 'all' : out.environments.join(', ')}`,
      };
    });
  });
}
