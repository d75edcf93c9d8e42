/**
 * The load client of bench/server: a separate process, so the server's CPU and
 * memory are its own. Runs `concurrency` loops of sequential requests over
 * keep-alive connections for `durationMs` after a warm-up, and prints one JSON
 * line: requests, errors by status, seconds, and latency percentiles.
 */
import { Agent, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { percentile } from './lib.ts';

export interface LoadSpec {
  url: string;
  token: string;
  /** What each request is: a fixed method and a path/body made from the request number. */
  scenario: 'show' | 'list' | 'add' | 'upload';
  digests: string[];
  concurrency: number;
  warmupMs: number;
  durationMs: number;
}

interface Req {
  method: string;
  path: string;
  body?: Buffer;
  type?: string;
}

function make(spec: LoadSpec, i: number, loop: number): Req {
  switch (spec.scenario) {
    case 'show':
      return { method: 'GET', path: `/v1/artifacts/${spec.digests[i % spec.digests.length] ?? ''}` };
    case 'list':
      return { method: 'GET', path: '/v1/artifacts?limit=20' };
    case 'add':
      return {
        method: 'POST',
        path: '/v1/artifacts',
        type: 'application/json',
        body: Buffer.from(JSON.stringify({ digest: `sha256:${randomBytes(32).toString('hex')}`, name: `pkg:npm/bench-${loop}`, version: `1.0.${i}` })),
      };
    case 'upload':
      return { method: 'POST', path: `/v1/artifacts/upload?name=pkg%3Anpm%2Fupload-${loop}&version=1.0.${i}`, type: 'application/octet-stream', body: randomBytes(4096) };
  }
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
const target = new URL(spec.url);
const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });

function send(r: Req): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { authorization: `Bearer ${spec.token}` };
    if (r.body) {
      headers['content-type'] = r.type ?? 'application/json';
      headers['content-length'] = r.body.length;
    }
    const req = request({ host: target.hostname, port: target.port, method: r.method, path: r.path, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

let n = 0;
const latencies: number[] = [];
const statuses: Record<string, number> = {};
const start = performance.now();
const measureFrom = start + spec.warmupMs;
const end = measureFrom + spec.durationMs;

async function loop(id: number): Promise<void> {
  for (;;) {
    const t0 = performance.now();
    if (t0 >= end) return;
    const i = n++;
    let status: number;
    try {
      status = await send(make(spec, i, id));
    } catch {
      status = 0;
    }
    const t1 = performance.now();
    if (t0 >= measureFrom) {
      latencies.push(t1 - t0);
      statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
    }
  }
}

await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => loop(i)));
agent.destroy();
const ok = statuses['200'] ?? 0;
console.log(
  JSON.stringify({
    requests: latencies.length,
    ok,
    statuses,
    seconds: spec.durationMs / 1000,
    throughput: ok / (spec.durationMs / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  }),
);
