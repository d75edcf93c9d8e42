/**
 * Log entries: what a leaf of the tree commits to. An entry body is RFC 8785
 * canonical JSON of { index, type, actor, time, subject?, payload }, and the
 * leaf is the RFC 6962 leaf hash of its UTF-8 bytes. The body names its own
 * index, so an entry moved to another position never hashes to the leaf there.
 */
import { CustodyError } from '../errors.ts';
import { leafHashOfText } from './hash.ts';

export interface EntryFields {
  type: string;
  actor: string;
  time: string;
  subject?: string;
  payload: Record<string, unknown>;
}

export interface EntryBody extends EntryFields {
  index: number;
}

const TYPE_RE = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/;

/**
 * The canonical body. The envelope's keys are fixed and already in RFC 8785
 * order (actor < index < payload < subject < time < type), and JCS serialises
 * strings and integers exactly as JSON.stringify does, so the envelope is
 * written directly and only the payload is canonicalised: every state change
 * pays for this, inside its transaction.
 */
export function entryBody(index: number, e: EntryFields): string {
  if (!Number.isSafeInteger(index) || index < 0) throw new CustodyError('INTERNAL', `bad entry index ${String(index)}`);
  if (!TYPE_RE.test(e.type)) throw new CustodyError('INPUT_INVALID', `log entry type "${e.type}" is not dotted lowercase (e.g. artifact.added)`);
  if (e.payload === null || typeof e.payload !== 'object' || Array.isArray(e.payload)) {
    throw new CustodyError('INPUT_INVALID', 'a log entry payload must be an object');
  }
  const subject = e.subject === undefined ? '' : `,"subject":${jcsString(e.subject)}`;
  return `{"actor":${jcsString(e.actor)},"index":${index},"payload":${jcs(e.payload, 0)}${subject},"time":${jcsString(e.time)},"type":${jcsString(e.type)}}`;
}

const MAX_DEPTH = 64;

function notCanonical(why: string): CustodyError {
  return new CustodyError('INPUT_INVALID', `a log entry cannot hold ${why} (RFC 8785 canonical JSON)`);
}

/** Printable ASCII other than `"` and `\`: serialised as is (most of what entries hold: digests, names, times). */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function jcsString(s: string): string {
  if (PLAIN.test(s)) return `"${s}"`;
  if (!s.isWellFormed()) throw notCanonical('a string with a lone surrogate');
  return JSON.stringify(s);
}

/**
 * RFC 8785 (JCS) serialisation of a payload, with exactly the semantics of the
 * `canonicalize` library behind core/canonical.ts (the tests hold the two
 * equal on arbitrary JSON): keys sorted by UTF-16 code units, ECMAScript number
 * and string serialisation, toJSON honoured, undefined members dropped and
 * undefined array items as null. Written out here because it runs on every
 * append, at a third of the library's cost.
 */
function jcs(v: unknown, depth: number): string {
  if (depth > MAX_DEPTH) throw notCanonical(`values nested deeper than ${MAX_DEPTH}`);
  switch (typeof v) {
    case 'string':
      return jcsString(v);
    case 'number':
      if (!Number.isFinite(v)) throw notCanonical(String(v));
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (v === null) return 'null';
      const o = v as { toJSON?: unknown };
      if (typeof o.toJSON === 'function') return jcs((o.toJSON as () => unknown)(), depth + 1);
      if (Array.isArray(v)) {
        let out = '[';
        for (let i = 0; i < v.length; i++) {
          const item: unknown = v[i];
          out += (i === 0 ? '' : ',') + (item === undefined || typeof item === 'symbol' ? 'null' : jcs(item, depth + 1));
        }
        return `${out}]`;
      }
      const rec = v as Record<string, unknown>;
      const keys = Object.keys(rec).sort();
      let out = '{';
      let first = true;
      for (const k of keys) {
        const item = rec[k];
        if (item === undefined || typeof item === 'symbol') continue;
        out += `${first ? '' : ','}${jcsString(k)}:${jcs(item, depth + 1)}`;
        first = false;
      }
      return `${out}}`;
    }
    default:
      throw notCanonical(`a ${typeof v}`);
  }
}

export function entryLeaf(body: string): Uint8Array {
  return leafHashOfText(body);
}

/**
 * An entry id names the position and commits to the content:
 * `<index>-<first 16 bytes of the leaf hash, hex>`. Resolving one is a
 * primary-key read plus a hash comparison, so ids need no index of their own
 * (a random-keyed index costs a random page write per append), and a stale or
 * forged id never resolves to another entry.
 */
export function entryId(index: number, leaf: Uint8Array): string {
  return `${index}-${Buffer.from(leaf.subarray(0, 16)).toString('hex')}`;
}

const ID_RE = /^(0|[1-9][0-9]{0,15})-([0-9a-f]{32})$/;

export function parseEntryId(id: string): { index: number; leafPrefix: Uint8Array } | undefined {
  const m = ID_RE.exec(id);
  if (!m) return undefined;
  const index = Number(m[1]);
  if (!Number.isSafeInteger(index)) return undefined;
  return { index, leafPrefix: new Uint8Array(Buffer.from(m[2] ?? '', 'hex')) };
}

/** Reads a stored body back, refusing anything that is not an entry (bodies are untrusted on the way out too). */
export function parseEntryBody(body: string): EntryBody {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch (e) {
    throw new CustodyError('LOG_TAMPERED', 'a log entry body is not JSON', { cause: e });
  }
  const o = v as Record<string, unknown> | null;
  if (
    o === null ||
    typeof o !== 'object' ||
    Array.isArray(o) ||
    !Number.isSafeInteger(o['index']) ||
    typeof o['type'] !== 'string' ||
    typeof o['actor'] !== 'string' ||
    typeof o['time'] !== 'string' ||
    (o['subject'] !== undefined && typeof o['subject'] !== 'string') ||
    o['payload'] === null ||
    typeof o['payload'] !== 'object' ||
    Array.isArray(o['payload'])
  ) {
    throw new CustodyError('LOG_TAMPERED', 'a log entry body does not have the entry fields');
  }
  return {
    index: o['index'] as number,
    type: o['type'],
    actor: o['actor'],
    time: o['time'],
    ...(o['subject'] === undefined ? {} : { subject: o['subject'] }),
    payload: o['payload'] as Record<string, unknown>,
  };
}
