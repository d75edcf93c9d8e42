import type { Registrar } from '../program.ts';

export function registerInit(r: Registrar): void {
  r.command(r.program, 'init', 'create a workspace: custody.yaml, the database and the blob store', 'custody init --dir .custody --identity alice@example.com')
    .option('--dir <path>', 'where to create the workspace (default: --home, $CUSTODY_HOME or ./.custody)')
    .option('--identity <id>', 'the identity that acts locally (written to custody.yaml)')
    .action((opts: { dir?: string; identity?: string }) => {
      r.run(async (g) => {
        // It makes a workspace on this machine: --server changes nothing.
        const { initWorkspace, resolveHome } = await import('../../app/workspace.ts');
        const result = await initWorkspace(opts.dir ?? resolveHome(g.home), opts.identity === undefined ? {} : { identity: opts.identity });
        return {
          json: result,
          human: `Created a Custody workspace in ${result.home}\n  config:   ${result.config}\n  identity: ${result.identity}\n\nNext: custody artifact add <file> --name <name> --version <semver>`,
        };
      });
    });
}
