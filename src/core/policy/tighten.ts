/**
 * Is an override at least as strict as the gate it replaces? Each gate kind has
 * a partial order; anything that cannot be shown stricter (a rewritten CEL
 * expression, a changed time zone) counts as a loosening, so it must be
 * marked as intended and `policy check` lists it.
 */
import { canonicalJson } from '../canonical.ts';
import { parseDuration } from '../time.ts';
import { isConjunctionOf } from './cel.ts';
import type { Gate } from './schema.ts';

/** What the override weakens, in words; empty when it is at least as strict. */
export function loosenings(before: Gate, after: Gate): string[] {
  if (before.kind !== after.kind) return [`kind changed from ${before.kind} to ${after.kind}`];
  const out: string[] = [];
  switch (before.kind) {
    case 'require': {
      const a = (after as typeof before).require;
      const b = before.require;
      if (a.predicateType !== b.predicateType) out.push(`predicate type changed from ${b.predicateType} to ${a.predicateType}`);
      if (a.threshold < b.threshold) out.push(`threshold lowered from ${b.threshold} to ${a.threshold}`);
      const old = new Set(b.signers.map((s) => canonicalJson(s)));
      const added = a.signers.filter((s) => !old.has(canonicalJson(s)));
      if (added.length > 0) out.push(`trusts more signers (${added.map(signerText).join(', ')})`);
      out.push(...whereLoosening('where', b.where, a.where));
      break;
    }
    case 'from': {
      const a = (after as typeof before).from;
      const b = before.from;
      if (b.environments !== undefined) {
        if (a.environments === undefined) out.push('source environments widened to the whole graph');
        else {
          const extra = a.environments.filter((e) => !b.environments?.includes(e));
          if (extra.length > 0) out.push(`allows more source environments (${extra.join(', ')})`);
        }
      }
      const bs = b.soak === undefined ? 0 : parseDuration(b.soak);
      const as = a.soak === undefined ? 0 : parseDuration(a.soak);
      if (as < bs) out.push(`soak shortened from ${b.soak ?? '0'} to ${a.soak ?? '0'}`);
      break;
    }
    case 'approvals': {
      const a = (after as typeof before).approvals;
      const b = before.approvals;
      if (a.count < b.count) out.push(`approvals lowered from ${b.count} to ${a.count}`);
      const old = new Set(b.approvers.map((x) => canonicalJson(x)));
      const added = a.approvers.filter((x) => !old.has(canonicalJson(x)));
      if (added.length > 0) out.push(`more people may approve (${added.map((x) => canonicalJson(x)).join(', ')})`);
      const dropped = b.distinctFrom.filter((x) => !a.distinctFrom.includes(x));
      if (dropped.length > 0) out.push(`separation of duties dropped (${dropped.join(', ')})`);
      break;
    }
    case 'freeze': {
      const a = (after as typeof before).freeze;
      const b = before.freeze;
      if (a.timeZone !== b.timeZone) out.push(`time zone changed from ${b.timeZone} to ${a.timeZone}`);
      const weekly = new Set(a.weekly.map((w) => `${w.from}|${w.to}`));
      const dates = new Set(a.dates.map((d) => `${d.from}|${d.to}`));
      const lostWeekly = b.weekly.filter((w) => !weekly.has(`${w.from}|${w.to}`));
      const lostDates = b.dates.filter((d) => !dates.has(`${d.from}|${d.to}`));
      if (lostWeekly.length + lostDates.length > 0) out.push(`freeze windows removed (${[...lostWeekly, ...lostDates].map((w) => `${w.from} → ${w.to}`).join(', ')})`);
      break;
    }
    case 'versioning': {
      const a = (after as typeof before).versioning;
      const b = before.versioning;
      if (b.semver && !a.semver) out.push('semver no longer required');
      if (b.noDowngrade && !a.noDowngrade) out.push('downgrades allowed');
      if (b.mustBeNewer && !a.mustBeNewer) out.push('no longer must be newer');
      if (!b.allowPrerelease && a.allowPrerelease) out.push('prereleases allowed');
      break;
    }
    case 'rule':
      out.push(...whereLoosening('expr', before.rule.expr, (after as typeof before).rule.expr));
      break;
  }
  return out;
}

function whereLoosening(field: string, before: string | undefined, after: string | undefined): string[] {
  if (before === undefined) return [];
  if (after === undefined) return [`${field} removed`];
  if (isConjunctionOf(after, before)) return [];
  return [`${field} rewritten (only "(old) && more" is provably stricter)`];
}

export function signerText(s: { key?: string | undefined; keyid?: string | undefined; identity?: string | undefined; issuer?: string | undefined }): string {
  if (s.key !== undefined) return s.key;
  if (s.keyid !== undefined) return `keyid ${s.keyid.slice(0, 12)}…`;
  return `keyless ${s.identity ?? ''} (issuer ${s.issuer ?? ''})`;
}
