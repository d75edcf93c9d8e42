import type { Registrar } from '../program.ts';

export function registerDemo(r: Registrar): void {
  r.command(r.program, 'demo', 'run a guided tour in a temporary workspace', 'custody demo --keep')
    .option('--keep', 'keep the temporary workspace and print where it is')
    .action((opts: { keep?: boolean }) => {
      r.run(async (g) => {
        // A tour in a temporary workspace on this machine: --server changes nothing.
        const { runDemo } = await import('../demo.ts');
        const run = await runDemo(opts.keep === true, (i, title, output) => {
          if (!g.json) r.streams.stdout.write(`\n== ${i + 1}. ${title}\n${output}\n`);
        });
        const tail = opts.keep ? `\nWorkspace kept at ${run.home}` : '\nDone. Run `custody init` to start your own workspace.';
        return { json: { ok: true, steps: run.steps, ...(opts.keep ? { home: run.home } : {}) }, human: g.json ? '' : tail };
      });
    });
}
