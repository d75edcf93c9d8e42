import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { frozenAt, localTime } from '../../../src/core/policy/freeze.ts';

const ZONES = ['UTC', 'Pacific/Kiritimati', 'Etc/GMT+12', 'Asia/Tokyo', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'Asia/Kathmandu'];

/** The definition: the local wall clock in the zone, inside [from midnight, the day after `to`). */
function frozenByDefinition(dates: { from: string; to: string }[], timeZone: string, at: Date): boolean {
  const wall = localTime(at, timeZone).wall;
  return dates.some((d) => {
    const next = new Date(Date.parse(`${d.to}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    return wall >= `${d.from}T00:00:00` && wall < `${next}T00:00:00`;
  });
}

const day = fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 11, 31) }).map((t) => new Date(t).toISOString().slice(0, 10));

describe('freeze date ranges', () => {
  it('decide the same with and without the shortcut for instants a day or more away from every range', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.array(fc.tuple(day, fc.integer({ min: 0, max: 5 })), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 11, 31) }),
        (timeZone, ranges, t) => {
          const dates = ranges.map(([from, len]) => ({ from, to: new Date(Date.parse(`${from}T00:00:00Z`) + len * 86_400_000).toISOString().slice(0, 10) }));
          const at = new Date(t);
          assert.equal(frozenAt({ timeZone, weekly: [], dates }, at) !== undefined, frozenByDefinition(dates, timeZone, at));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('decide the same at the edges of a range, in the zones furthest from UTC', () => {
    const dates = [{ from: '2026-12-28', to: '2027-01-03' }];
    for (const timeZone of ['Pacific/Kiritimati', 'Etc/GMT+12', 'UTC']) {
      for (const edge of [Date.UTC(2026, 11, 28), Date.UTC(2027, 0, 4)]) {
        for (let dt = -40 * 3_600_000; dt <= 40 * 3_600_000; dt += 15 * 60_000) {
          const at = new Date(edge + dt);
          assert.equal(frozenAt({ timeZone, weekly: [], dates }, at) !== undefined, frozenByDefinition(dates, timeZone, at), `${timeZone} ${at.toISOString()}`);
        }
      }
    }
  });
});
