/**
 * Freeze windows, written in local wall-clock time of a stated IANA time zone.
 *
 * The reference instant is converted to that zone's wall clock with `Intl`
 * (the tz database Node ships), and windows are compared in wall-clock terms:
 * "fri 16:00 → mon 07:00 Europe/Berlin" stays 16:00 local on both sides of a
 * DST change, which a fixed UTC offset would get wrong by an hour. On the
 * spring-forward day, wall-clock times that do not exist are never inside a
 * window that starts in the gap; on the fall-back day, the repeated hour is
 * inside a window each time it occurs.
 */
import type { FreezeGate, ResolvedFreeze } from './schema.ts';

export interface LocalTime {
  /** 0 = Monday … 6 = Sunday. */
  weekday: number;
  /** `YYYY-MM-DDTHH:MM:SS`, local. */
  wall: string;
  /** Minutes since Monday 00:00, local. */
  minuteOfWeek: number;
  /** The zone's offset at that instant, e.g. GMT+2. */
  offset: string;
}

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** Throws a RangeError for an unknown zone: callers validate with `isTimeZone` first. */
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'shortOffset',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

export function localTime(at: Date, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(at)) parts[p.type] = p.value;
  const weekday = DAYS.indexOf((parts['weekday'] ?? '').toLowerCase().slice(0, 3) as (typeof DAYS)[number]);
  const hour = Number(parts['hour']);
  const minute = Number(parts['minute']);
  return {
    weekday,
    wall: `${parts['year']}-${parts['month']}-${parts['day']}T${parts['hour']}:${parts['minute']}:${parts['second']}`,
    minuteOfWeek: weekday * 1440 + hour * 60 + minute,
    offset: parts['timeZoneName'] ?? '',
  };
}

/** `fri 16:00` → minutes since Monday 00:00. */
export function weekMinute(spec: string): number {
  const [day = '', time = ''] = spec.split(' ');
  const [h = '0', m = '0'] = time.split(':');
  return DAYS.indexOf(day as (typeof DAYS)[number]) * 1440 + Number(h) * 60 + Number(m);
}

/** Local `from` as a wall-clock string; a date means its midnight. */
function wallStart(s: string): string {
  return s.length === 10 ? `${s}T00:00:00` : `${s}:00`;
}

/** Local `to`: a date is inclusive (ends at the next midnight), a date-time is exclusive. */
function wallEnd(s: string): string {
  if (s.length !== 10) return `${s}:00`;
  const [y, m, d] = s.split('-').map(Number);
  const next = new Date(Date.UTC(y ?? 0, (m ?? 1) - 1, (d ?? 1) + 1));
  return `${next.toISOString().slice(0, 10)}T00:00:00`;
}

export interface FreezeHit {
  window: string;
  reason: string | undefined;
  local: LocalTime;
}

// Every zone's offset lies between UTC−12 and UTC+14, so an instant's wall clock anywhere is within a day of its UTC one.
const DAY_MS = 86_400_000;

/**
 * Whether no date range can contain `at` in any zone: then the wall clock is not
 * needed (converting with Intl costs more than the rest of a decision, and the
 * first conversion in a process loads the zone data).
 */
function clearOfDates(gate: ResolvedFreeze, at: Date): boolean {
  if (gate.weekly.length > 0) return false;
  const t = at.getTime();
  if (!Number.isFinite(t)) return false;
  const earliest = new Date(t - DAY_MS).toISOString();
  const latest = new Date(t + DAY_MS).toISOString();
  // Wall-clock strings compare as dates only in the four-digit years a freeze date is written with.
  if (earliest.length !== 24 || latest.length !== 24) return false;
  const lo = earliest.slice(0, 19);
  const hi = latest.slice(0, 19);
  return gate.dates.every((d) => wallEnd(d.to) <= lo || wallStart(d.from) > hi);
}

/** The first window `at` falls in, or undefined when promotion is allowed. */
export function frozenAt(gate: ResolvedFreeze, at: Date): FreezeHit | undefined {
  if (clearOfDates(gate, at)) return undefined;
  const local = localTime(at, gate.timeZone);
  for (const w of gate.weekly) {
    const from = weekMinute(w.from);
    const to = weekMinute(w.to);
    const t = local.minuteOfWeek;
    const inside = from < to ? t >= from && t < to : t >= from || t < to;
    if (inside) return { window: `${w.from} → ${w.to}`, reason: w.reason, local };
  }
  for (const d of gate.dates) {
    if (local.wall >= wallStart(d.from) && local.wall < wallEnd(d.to)) return { window: `${d.from} → ${d.to}`, reason: d.reason, local };
  }
  return undefined;
}

/** Problems with windows that the schema cannot see: empty or inverted ranges, an unknown zone. */
export function freezeProblems(gate: FreezeGate): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  if (!isTimeZone(gate.timeZone)) problems.push({ path: ['timeZone'], message: `unknown time zone "${gate.timeZone}" (use an IANA name such as Europe/Berlin)` });
  for (const [i, w] of (gate.weekly ?? []).entries()) {
    if (weekMinute(w.from) === weekMinute(w.to)) problems.push({ path: ['weekly', i], message: 'a weekly window must not start where it ends' });
  }
  for (const [i, d] of (gate.dates ?? []).entries()) {
    if (wallStart(d.from) >= wallEnd(d.to)) problems.push({ path: ['dates', i], message: `the range ends (${d.to}) before it starts (${d.from})` });
  }
  if ((gate.weekly ?? []).length === 0 && (gate.dates ?? []).length === 0) problems.push({ path: [], message: 'a freeze gate needs at least one weekly window or date range' });
  return problems;
}

export function describeLocal(l: LocalTime): string {
  const day = DAYS[l.weekday] ?? '?';
  return `${day} ${l.wall.slice(0, 16).replace('T', ' ')} (${l.offset})`;
}
