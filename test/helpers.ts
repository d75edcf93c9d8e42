import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { after } from 'node:test';
import { initWorkspace, openWorkspace, type Context, type OpenOptions } from '../src/app/workspace.ts';
import { main } from '../src/cli/main.ts';
import { CustodyError, type ErrorCode } from '../src/core/errors.ts';

export const ROOT = resolve(import.meta.dirname, '..');
export const BIN = join(ROOT, 'bin', 'custody');

const cleanups: (() => Promise<void>)[] = [];
// Last opened, first closed: a workspace's store is closed before its directory is removed (an open
// store may still write, e.g. a checkpoint signed on a timer, and re-create files rm has just removed).
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fresh directory removed when the test file ends. */
export async function tempDir(prefix = 'custody-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}

/**
 * A fresh key-encryption key for this test process: a 32-byte file (0o600) named by
 * CUSTODY_KEK_FILE, with any passphrase unset, as in-process commands read it. Its path.
 */
export async function useFreshKek(): Promise<string> {
  const kek = join(await tempDir(), 'kek');
  await writeFile(kek, randomBytes(32), { mode: 0o600 });
  process.env['CUSTODY_KEK_FILE'] = kek;
  delete process.env['CUSTODY_KEY_PASSPHRASE'];
  return kek;
}

export interface Workspace {
  dir: string;
  home: string;
  open(options?: OpenOptions): Promise<Context>;
}

export async function tempWorkspace(identity = 'tester@example.com'): Promise<Workspace> {
  const dir = await tempDir();
  const home = join(dir, '.custody');
  await initWorkspace(home, { identity });
  return {
    dir,
    home,
    open: async (options = {}) => {
      const ctx = await openWorkspace(home, options);
      cleanups.push(() => ctx.close());
      return ctx;
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json<T = Record<string, unknown>>(): T;
}

function result(code: number, stdout: string, stderr: string): CliResult {
  return {
    code,
    stdout,
    stderr,
    json<T>() {
      const lines = stdout.trim().split('\n');
      if (lines.length !== 1) throw new CustodyError('INTERNAL', `expected one JSON line on stdout, got ${lines.length}: ${stdout}`);
      return JSON.parse(lines[0] ?? '') as T;
    },
  };
}

/** Runs the CLI in-process (fast); use `spawnCli` where the real process matters. */
export async function cli(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const sink = (onChunk: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        onChunk(chunk.toString());
        cb();
      },
    });
  const code = await main(args, { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) });
  return result(code, stdout, stderr);
}

export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  input?: string;
}

/** Runs `bin/custody` as a real process, with PATH stripped of any other node. */
export function spawnCli(args: string[], options: SpawnOptions = {}): Promise<CliResult & { signal: NodeJS.Signals | null }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(BIN, args, {
      cwd: options.cwd ?? ROOT,
      env: { PATH: '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
    child.on('close', (code, signal) => resolvePromise({ ...result(code ?? -1, stdout, stderr), signal }));
  });
}

/** Asserts that `fn` rejects with a CustodyError carrying exactly `code`. */
export async function rejectsWithCode(fn: () => Promise<unknown>, code: ErrorCode): Promise<CustodyError> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof CustodyError && e.code === code) return e;
    throw new CustodyError('INTERNAL', `expected ${code}, got ${e instanceof CustodyError ? e.code : String(e)}`, { cause: e });
  }
  throw new CustodyError('INTERNAL', `expected ${code}, but it resolved`);
}

export function throwsWithCode(fn: () => unknown, code: ErrorCode): CustodyError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CustodyError && e.code === code) return e;
    throw new CustodyError('INTERNAL', `expected ${code}, got ${e instanceof CustodyError ? e.code : String(e)}`, { cause: e });
  }
  throw new CustodyError('INTERNAL', `expected ${code}, but it returned`);
}
