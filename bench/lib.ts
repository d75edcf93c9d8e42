/** Shared helpers for benchmarks: timing child processes, medians, and printing ratios. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');

/**
 * Benchmarks run `bin/custody` after a fresh build, so it takes the compiled
 * dist/ path that `npm ci` sets up, as users run it.
 */
export const BIN = join(ROOT, 'bin', 'custody');

export function ensureBuilt(): void {
  if (!existsSync(join(ROOT, 'dist', '.buildstamp')) || process.env['BENCH_REBUILD'] !== '0') {
    const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('npm run build failed');
  }
}

export interface Timed {
  seconds: number;
  maxRssKiB: number;
}

/** Runs a command under GNU time: wall seconds and the peak RSS of the process. */
export function timeCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Timed {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const last = r.stderr.trim().split('\n').at(-1) ?? '';
  const [secs, rss] = last.split(' ');
  return { seconds: Number(secs), maxRssKiB: Number(rss) };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

export function report(title: string, rows: [string, string][]): void {
  console.log(`\n## ${title}`);
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
}

export function goal(name: string, ok: boolean, detail: string): string {
  return `${ok ? 'PASS' : 'MISS'} ${name}: ${detail}`;
}
