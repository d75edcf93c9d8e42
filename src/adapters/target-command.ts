import { spawn } from 'node:child_process';
import { CustodyError } from '../core/errors.ts';
import type { Target, TargetOutcome, TargetRequest } from '../core/ports.ts';

export interface CommandTargetOptions {
  /** argv: no shell, so artifact names can never inject commands. */
  command: readonly string[];
  timeoutMs: number;
  /** Output beyond this is cut (and says so) before it reaches the promotion record. */
  maxOutputBytes?: number;
  cwd?: string;
}

/**
 * Runs a user-given command with the artifact and environment in environment
 * variables. Exit 0 means applied; anything else, a timeout or a signal means the
 * target failed. The command must be idempotent: Custody reruns it with
 * CUSTODY_RESUMED=1 after an interrupted apply.
 */
export class CommandTarget implements Target {
  readonly type = 'command';
  private readonly options: CommandTargetOptions;

  constructor(options: CommandTargetOptions) {
    if (options.command.length === 0) throw new CustodyError('CONFIG_INVALID', 'command target needs a command');
    this.options = options;
  }

  apply(req: TargetRequest, signal: AbortSignal): Promise<TargetOutcome> {
    const [file, ...args] = this.options.command as [string, ...string[]];
    const max = this.options.maxOutputBytes ?? 64 * 1024;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: process.env['HOME'] ?? '/',
      CUSTODY_PROMOTION_ID: req.promotionId,
      CUSTODY_KIND: req.kind,
      CUSTODY_ENV: req.environment,
      CUSTODY_ARTIFACT_NAME: req.artifact.name,
      CUSTODY_ARTIFACT_VERSION: req.artifact.version,
      CUSTODY_ARTIFACT_DIGEST: req.artifact.digest,
      CUSTODY_RESUMED: req.resumed ? '1' : '0',
      ...(req.blobPath === null ? {} : { CUSTODY_ARTIFACT_PATH: req.blobPath }),
    };
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { env, cwd: this.options.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let output = '';
      let truncated = false;
      const take = (chunk: Buffer) => {
        if (output.length >= max) {
          truncated = true;
          return;
        }
        output += chunk.toString('utf8').slice(0, max - output.length);
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      let why: string | undefined;
      // Kill the whole process group: a shell script's children must not outlive the timeout.
      const kill = (reason: string) => {
        why ??= reason;
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const timer = setTimeout(() => kill(`timed out after ${this.options.timeoutMs} ms`), this.options.timeoutMs);
      const onAbort = () => kill('cancelled');
      signal.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        reject(new CustodyError('TARGET_FAILED', `command target could not start ${file}: ${e.message}`, { cause: e }));
      });
      child.on('close', (code, sig) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const text = truncated ? `${output}\n[output truncated at ${max} bytes]` : output;
        if (code === 0 && why === undefined) {
          resolve({ output: text, details: { exitCode: 0 } });
          return;
        }
        const reason = why ?? (sig !== null ? `killed by ${sig}` : `exited with code ${code ?? 'unknown'}`);
        reject(new CustodyError('TARGET_FAILED', `command target ${file} ${reason}`, { details: { exitCode: code, signal: sig, output: text } }));
      });
    });
  }
}
