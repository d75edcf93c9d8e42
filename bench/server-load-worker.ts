/**
 * The load client of bench/server: a separate process, so the server's CPU and
 * memory are its own. Runs `concurrency` loops of sequential requests over
 * keep-alive connections for `durationMs` after a warm-up (or until a promote
 * scenario has promoted each artifact it was given once), and prints one JSON
 * line: requests, errors by status, seconds, latency percentiles, and for the
 * verify and promote routes what the answers said.
 */
import { Agent, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { text } from 'node:stream/consumers';
import { percentile } from './lib.ts';

export interface LoadSpec {
  url: string;
  token: string;
  /** What each request is: a fixed method and a path/body made from the request number. */
  scenario: 'show' | 'list' | 'add' | 'upload' | 'verify' | 'promote';
  /** show: artifacts read round-robin; verify: the promoted artifact(s); promote: artifacts promoted one request each, never twice. */
  digests: string[];
  /** verify and promote: the environment. */
  environment?: string;
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

/** The request numbered `i`, or undefined when the scenario has nothing left to send. */
function make(spec: LoadSpec, i: number, loop: number): Req | undefined {
  const env = encodeURIComponent(spec.environment ?? '');
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
    case 'verify':
      return { method: 'GET', path: `/v1/artifacts/${spec.digests[i % spec.digests.length] ?? ''}/environments/${env}/verify` };
    case 'promote': {
      // Each artifact once: a promotion of what already runs would measure nothing new.
      const artifact = spec.digests[i];
      return artifact === undefined ? undefined : { method: 'POST', path: '/v1/promotions', type: 'application/json', body: Buffer.from(JSON.stringify({ artifact, to: spec.environment })) };
    }
  }
}

/** What an answer of the verify or promote route said: admitted or not; the state a promotion rests in (superseded apart). */
function outcomeOf(scenario: LoadSpec['scenario'], body: string): string | undefined {
  try {
    if (scenario === 'verify') return (JSON.parse(body) as { ok?: boolean }).ok === true ? 'admitted' : 'refused';
    if (scenario === 'promote') {
      const p = JSON.parse(body) as { state?: string; outcome?: { code?: string } | null };
      return p.outcome?.code === 'PROMOTION_SUPERSEDED' ? 'superseded' : (p.state ?? 'unknown');
    }
  } catch {
    return 'unparsable';
  }
  return undefined;
}

// On stdin: a promote scenario's artifact list is larger than one command-line argument may be.
const spec = JSON.parse(await text(process.stdin)) as LoadSpec;
const target = new URL(spec.url);
const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });

/** Reads the answer only where what it says is reported (verify, promote); the others are drained unread. */
const reads = spec.scenario === 'verify' || spec.scenario === 'promote';

function send(r: Req): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { authorization: `Bearer ${spec.token}` };
    if (r.body) {
      headers['content-type'] = r.type ?? 'application/json';
      headers['content-length'] = r.body.length;
    }
    const req = request({ host: target.hostname, port: target.port, method: r.method, path: r.path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      if (reads) res.on('data', (d: Buffer) => chunks.push(d));
      else res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

let n = 0;
const latencies: number[] = [];
const statuses: Record<string, number> = {};
const outcomes: Record<string, number> = {};
const start = performance.now();
const measureFrom = start + spec.warmupMs;
const end = measureFrom + spec.durationMs;

async function loop(id: number): Promise<void> {
  for (;;) {
    const t0 = performance.now();
    if (t0 >= end) return;
    const r = make(spec, n++, id);
    if (!r) return;
    let answer: { status: number; body: string };
    try {
      answer = await send(r);
    } catch {
      answer = { status: 0, body: '' };
    }
    const t1 = performance.now();
    if (t0 >= measureFrom) {
      latencies.push(t1 - t0);
      statuses[String(answer.status)] = (statuses[String(answer.status)] ?? 0) + 1;
      const said = answer.status === 200 ? outcomeOf(spec.scenario, answer.body) : undefined;
      if (said !== undefined) outcomes[said] = (outcomes[said] ?? 0) + 1;
    }
  }
}

await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => loop(i)));
// A promote scenario that ran out of artifacts stopped early: its window is what it measured.
const seconds = (Math.min(performance.now(), end) - measureFrom) / 1000;
agent.destroy();
const ok = statuses['200'] ?? 0;
console.log(
  JSON.stringify({
    requests: latencies.length,
    ok,
    statuses,
    outcomes,
    seconds,
    throughput: seconds > 0 ? ok / seconds : 0,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  }),
);
