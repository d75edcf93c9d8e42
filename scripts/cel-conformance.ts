/**
 * Runs the JSON-representable part of the official CEL conformance suite
 * (cel-spec `simple` testdata, as shipped in @bufbuild/cel-spec) against both
 * CEL libraries Custody considered, and prints pass counts per suite. The
 * figures in docs/cel.md come from `node scripts/cel-conformance.ts`.
 *
 * Left out, for both libraries alike: tests that need protobuf messages,
 * (wrapper types included), enums, type values, a container or check-only
 * results, since neither a policy nor its input ever holds those.
 */
import { celList, celMap, celUint, isCelError, isCelList, isCelMap, isCelUint, run, type CelInput } from '@bufbuild/cel';
import { tests as conformance } from '@bufbuild/cel-spec/testdata/conformance.js';
import { strings } from '@bufbuild/cel/ext';
import { Environment } from '@marcbachmann/cel-js';

const SUITES = ['basic', 'bindings_ext', 'comparisons', 'conversions', 'fields', 'fp_math', 'integer_math', 'lists', 'logic', 'macros', 'macros2', 'parse', 'string', 'string_ext', 'timestamps'];

interface JsonValue {
  int64Value?: string;
  uint64Value?: string;
  doubleValue?: number | string;
  stringValue?: string;
  bytesValue?: string;
  boolValue?: boolean;
  nullValue?: unknown;
  listValue?: { values?: JsonValue[] };
  mapValue?: { entries?: { key: JsonValue; value: JsonValue }[] };
  [other: string]: unknown;
}

interface RawTest {
  name: string;
  expr: string;
  value?: JsonValue;
  evalError?: unknown;
  bindings?: Record<string, { value?: JsonValue }>;
  typeEnv?: unknown[];
  container?: string;
  checkOnly?: boolean;
  typedResult?: unknown;
}

interface RawSuite {
  name: string;
  suites?: RawSuite[];
  tests?: { original: RawTest }[];
}

const SIMPLE = new Set(['int64Value', 'uint64Value', 'doubleValue', 'stringValue', 'bytesValue', 'boolValue', 'nullValue', 'listValue', 'mapValue']);

function representable(v: JsonValue): boolean {
  const keys = Object.keys(v);
  if (keys.length !== 1 || !SIMPLE.has(keys[0] ?? '')) return false;
  if (v.listValue) return (v.listValue.values ?? []).every(representable);
  if (v.mapValue) return (v.mapValue.entries ?? []).every((e) => representable(e.key) && representable(e.value));
  return true;
}

/** One canonical text per CEL value, so results from both libraries compare alike. */
function expected(v: JsonValue): string {
  if (v.int64Value !== undefined) return `int:${v.int64Value}`;
  if (v.uint64Value !== undefined) return `uint:${v.uint64Value}`;
  if (v.doubleValue !== undefined) return `double:${String(Number(v.doubleValue))}`;
  if (v.stringValue !== undefined) return `string:${JSON.stringify(v.stringValue)}`;
  if (v.bytesValue !== undefined) return `bytes:${Buffer.from(v.bytesValue, 'base64').toString('hex')}`;
  if (v.boolValue !== undefined) return `bool:${String(v.boolValue)}`;
  if ('nullValue' in v) return 'null';
  if (v.listValue) return `[${(v.listValue.values ?? []).map(expected).join(',')}]`;
  if (v.mapValue) return `{${(v.mapValue.entries ?? []).map((e) => `${expected(e.key)}=>${expected(e.value)}`).sort().join(',')}}`;
  return '?';
}

function canonical(x: unknown, lib: 'buf' | 'marc'): string {
  if (x === null) return 'null';
  if (typeof x === 'boolean') return `bool:${String(x)}`;
  if (typeof x === 'bigint') return `int:${x}`;
  if (typeof x === 'number') return `double:${String(x)}`;
  if (typeof x === 'string') return `string:${JSON.stringify(x)}`;
  if (x instanceof Uint8Array) return `bytes:${Buffer.from(x).toString('hex')}`;
  if (lib === 'buf') {
    if (isCelUint(x)) return `uint:${x.value}`;
    if (isCelList(x)) return `[${[...x.values()].map((e) => canonical(e, lib)).join(',')}]`;
    if (isCelMap(x)) return `{${[...x.entries()].map(([k, v]) => `${canonical(k, lib)}=>${canonical(v, lib)}`).sort().join(',')}}`;
  } else {
    if (Array.isArray(x)) return `[${x.map((e) => canonical(e, lib)).join(',')}]`;
    if (x instanceof Map) return `{${[...x.entries()].map(([k, v]) => `${canonical(k, lib)}=>${canonical(v, lib)}`).sort().join(',')}}`;
    if (typeof x === 'object' && x.constructor.name.startsWith('Unsigned')) return `uint:${String((x as { value: unknown }).value)}`;
    // Plain objects are how this library returns maps; keys come back as strings whatever their CEL type.
    if (typeof x === 'object') return `{${Object.entries(x).map(([k, v]) => `string:${JSON.stringify(k)}=>${canonical(v, lib)}`).sort().join(',')}}`;
  }
  return `?${typeof x}`;
}

function toInput(v: JsonValue, lib: 'buf' | 'marc'): unknown {
  if (v.int64Value !== undefined) return BigInt(v.int64Value);
  if (v.uint64Value !== undefined) return lib === 'buf' ? celUint(BigInt(v.uint64Value)) : undefined;
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.bytesValue !== undefined) return new Uint8Array(Buffer.from(v.bytesValue, 'base64'));
  if (v.boolValue !== undefined) return v.boolValue;
  if ('nullValue' in v) return null;
  if (v.listValue) {
    const items = (v.listValue.values ?? []).map((e) => toInput(e, lib));
    return lib === 'buf' ? celList(items as CelInput[]) : items;
  }
  const m = new Map((v.mapValue?.entries ?? []).map((e) => [toInput(e.key, lib), toInput(e.value, lib)] as const));
  return lib === 'buf' ? celMap(m as Map<never, CelInput>) : m;
}

type Outcome = { ok: true; value: unknown } | { ok: false };

function runBuf(t: RawTest, bindings: Record<string, unknown>): Outcome {
  try {
    const r = run(t.expr, bindings as Record<string, CelInput>, { funcs: strings });
    return isCelError(r) ? { ok: false } : { ok: true, value: r };
  } catch {
    return { ok: false };
  }
}

const marcEnv = new Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false });
function runMarc(t: RawTest, bindings: Record<string, unknown>): Outcome {
  try {
    return { ok: true, value: marcEnv.evaluate(t.expr, bindings) as unknown };
  } catch {
    return { ok: false };
  }
}

function selected(t: RawTest): boolean {
  if (t.container !== undefined || t.checkOnly || t.typedResult !== undefined) return false;
  if (/google\.protobuf\.|TestAllTypes|NestedTestAllTypes/.test(t.expr)) return false;
  if (t.value === undefined && t.evalError === undefined) return false;
  if (t.value !== undefined && !representable(t.value)) return false;
  for (const b of Object.values(t.bindings ?? {})) if (!b.value || !representable(b.value)) return false;
  return true;
}

function collect(s: RawSuite, out: RawTest[]): RawTest[] {
  for (const t of s.tests ?? []) if (selected(t.original)) out.push(t.original);
  for (const c of s.suites ?? []) collect(c, out);
  return out;
}

const root = conformance as unknown as RawSuite;
const rows: [string, number, number, number][] = [];
const failures: Record<'buf' | 'marc', string[]> = { buf: [], marc: [] };
for (const suite of root.suites ?? []) {
  if (!SUITES.includes(suite.name)) continue;
  const list = collect(suite, []);
  const passed = { buf: 0, marc: 0 };
  for (const t of list) {
    for (const lib of ['buf', 'marc'] as const) {
      const bindings = Object.fromEntries(Object.entries(t.bindings ?? {}).map(([k, b]) => [k, b.value ? toInput(b.value, lib) : undefined]));
      const out = lib === 'buf' ? runBuf(t, bindings) : runMarc(t, bindings);
      const pass = t.value !== undefined ? out.ok && canonical(out.value, lib) === expected(t.value) : !out.ok;
      if (pass) passed[lib]++;
      else failures[lib].push(`${suite.name}/${t.name}: ${t.expr}`);
    }
  }
  rows.push([suite.name, list.length, passed.buf, passed.marc]);
}
const total = rows.reduce<[number, number, number]>((a, r) => [a[0] + r[1], a[1] + r[2], a[2] + r[3]], [0, 0, 0]);
console.log('suite'.padEnd(16), 'tests'.padStart(6), '@bufbuild/cel'.padStart(14), '@marcbachmann/cel-js'.padStart(21));
for (const [name, n, b, m] of [...rows, ['total', ...total] as [string, number, number, number]]) {
  console.log(name.padEnd(16), String(n).padStart(6), String(b).padStart(14), String(m).padStart(21));
}
if (process.argv.includes('--failures')) {
  for (const lib of ['buf', 'marc'] as const) console.log(`\n${lib} failures:\n${failures[lib].join('\n')}`);
}
