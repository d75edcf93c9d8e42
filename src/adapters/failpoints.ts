/**
 * Crash points for tests: with CUSTODY_FAILPOINT=<name>, the process kills itself
 * with SIGKILL when it reaches that point, exactly as a power cut or OOM kill
 * would. Tests use this to prove that no interruption leaves half a change.
 */
export function failpoint(name: string): void {
  if (process.env['CUSTODY_FAILPOINT'] === name) process.kill(process.pid, 'SIGKILL');
}
