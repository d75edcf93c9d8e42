import { CustodyError } from './errors.ts';

const DURATION_RE = /^(\d{1,6})(s|m|h|d|w)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** `90d`, `12h`, `30m`, `45s`, `2w` → milliseconds. */
export function parseDuration(input: string): number {
  const m = DURATION_RE.exec(input.trim());
  if (!m) throw new CustodyError('INPUT_INVALID', `"${input}" is not a duration`, { hint: 'e.g. 90d, 12h, 30m, 45s, 2w' });
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

// RFC 3339 with a mandatory offset: an instant without a zone is ambiguous, and ambiguity in a key's validity is a bug.
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export function parseInstant(input: string): Date {
  if (!RFC3339_RE.test(input)) {
    throw new CustodyError('INPUT_INVALID', `"${input}" is not an RFC 3339 timestamp`, { hint: 'e.g. 2026-11-25T14:00:00Z' });
  }
  const ms = Date.parse(input);
  if (Number.isNaN(ms)) throw new CustodyError('INPUT_INVALID', `"${input}" is not a valid instant`);
  return new Date(ms);
}

/** Canonical text form of an instant, stored and compared as text: UTC with milliseconds. */
export function formatInstant(d: Date): string {
  return d.toISOString();
}

export function humanDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${ms}ms`;
  if (abs < 60_000) return `${Math.round(ms / 1000)}s`;
  if (abs < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  if (abs < 86_400_000) return `${(ms / 3_600_000).toFixed(1).replace(/\.0$/, '')}h`;
  return `${(ms / 86_400_000).toFixed(1).replace(/\.0$/, '')}d`;
}
