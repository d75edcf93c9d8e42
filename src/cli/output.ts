import { CustodyError, toCustodyError } from '../core/errors.ts';

export interface GlobalOptions {
  home?: string;
  as?: string;
  json?: boolean;
  debug?: boolean;
  server?: string;
  /** Side notes for humans (stderr, never with --json), e.g. entries waiting for a checkpoint. */
  notices?: string[];
}

/** What a command hands back: the object `--json` prints, the text humans read, and the exit code. */
export interface CommandOutput {
  json: unknown;
  human: string;
  exitCode?: number;
}

export interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export function emit(out: CommandOutput, g: GlobalOptions, s: Streams): number {
  if (g.json) s.stdout.write(`${JSON.stringify(out.json)}\n`);
  else if (out.human !== '') s.stdout.write(out.human.endsWith('\n') ? out.human : `${out.human}\n`);
  emitNotices(g, s);
  return out.exitCode ?? 0;
}

function emitNotices(g: GlobalOptions, s: Streams): void {
  if (!g.json) for (const n of g.notices ?? []) s.stderr.write(`${n}\n`);
}

/**
 * One clear line and a hint; never a stack trace unless --debug. With --json the
 * error is the one object on stdout, and the line still goes to stderr for humans.
 */
export function emitError(e: unknown, g: GlobalOptions, s: Streams): number {
  const err = toCustodyError(e);
  if (g.json) s.stdout.write(`${JSON.stringify({ error: err.toJSON() })}\n`);
  s.stderr.write(`error[${err.code}]: ${err.message}\n`);
  if (err.hint) s.stderr.write(`  hint: ${err.hint}\n`);
  if (g.debug) s.stderr.write(`${debugTrace(err)}\n`);
  emitNotices(g, s);
  return err.exitCode;
}

function debugTrace(err: CustodyError): string {
  const parts = [err.stack ?? String(err)];
  let cause: unknown = err.cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    parts.push(`caused by: ${cause instanceof Error ? (cause.stack ?? cause.message) : JSON.stringify(cause)}`);
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return parts.join('\n');
}

/** Fixed-width table for human output. */
export function table(headers: string[], rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function shortDigest(d: string): string {
  const colon = d.indexOf(':');
  return colon < 0 ? d.slice(0, 12) : `${d.slice(0, colon + 1)}${d.slice(colon + 1, colon + 13)}`;
}

/** A progress bar on a TTY; nothing at all otherwise (pipes, CI logs, --json). */
export function progressBar(s: Streams, enabled: boolean, label: string): { update(done: number, total: number): void; done(): void } {
  const tty = enabled && s.stderr.isTTY === true;
  let last = 0;
  let drawn = false;
  return {
    update(done, total) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const pct = total > 0 ? Math.min(1, done / total) : 1;
      const width = 30;
      const fill = Math.round(pct * width);
      s.stderr.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(pct * 100).toFixed(0).padStart(3)}% ${mib(done)}/${mib(total)} MiB`);
      drawn = true;
    },
    done() {
      if (tty && drawn) s.stderr.write('\r\x1b[2K');
    },
  };
}

function mib(n: number): string {
  return (n / 1048576).toFixed(0);
}

export { CustodyError };
