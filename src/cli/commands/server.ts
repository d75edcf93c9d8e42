import type { Registrar } from '../program.ts';

export function registerServer(r: Registrar): void {
  r.command(r.program, 'server', 'serve the HTTP API (OpenAPI at /v1/openapi.json) until SIGTERM or SIGINT', 'custody server --listen 127.0.0.1:8080 --home /var/lib/custody')
    .option('--listen <host:port>', 'where to listen (default: server.listen in custody.yaml, else 127.0.0.1:8080)')
    .action((opts: { listen?: string }) => {
      r.run(async (g) => {
        // It serves the workspace of this machine: --server (a client setting) changes nothing.
        const [{ startServer }, { resolveHome }] = await Promise.all([import('../../server/listen.ts'), import('../../app/workspace.ts')]);
        const server = await startServer({ home: resolveHome(g.home), ...(opts.listen === undefined ? {} : { listen: opts.listen }) });
        const signal = await new Promise<NodeJS.Signals>((resolve) => {
          const on = (s: NodeJS.Signals) => {
            process.off('SIGTERM', on);
            process.off('SIGINT', on);
            resolve(s);
          };
          process.on('SIGTERM', on);
          process.on('SIGINT', on);
        });
        const { drainedMs, cut } = await server.close(signal);
        return {
          json: { stopped: true, signal, url: server.url, drainedMs, cut },
          human: `stopped on ${signal} after draining for ${drainedMs} ms${cut ? ' (the deadline cut some requests)' : ''}`,
        };
      });
    });
}
