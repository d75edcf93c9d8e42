/**
 * The comparison behind docs/cel.md, between the two CEL libraries Custody
 * considered: `node scripts/cel-compare.ts` (add `--failures` for the list).
 *
 * 1. Conformance: the JSON-representable part of the official CEL conformance
 *    suite (cel-spec `simple` testdata, as shipped in @bufbuild/cel-spec),
 *    pass counts per suite.
 * 2. Speed on policy expressions: compile once, evaluate over a 50-statement input.
 * 3. A catastrophic-backtracking regular expression over a short input.
 *
 * Left out, for both libraries alike: tests that need protobuf messages,
 * (wrapper types included), enums, type values, a container or check-only
 * results, since neither a policy nor its input ever holds those.
 */
import { celEnv, celList, celMap, celUint, isCelError, isCelList, isCelMap, isCelUint, parse, plan, run, type CelInput } from '@bufbuild/cel';
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

// ---------------------------------------------------------------- speed

const stmt = {
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: { buildDefinition: { externalParameters: { workflow: { repository: 'https://github.com/acme/app', ref: 'refs/heads/main' } } }, runDetails: { builder: { id: 'https://github.com/actions/runner' } } },
};
const vulns = { predicateType: 'https://in-toto.io/attestation/vulns/v0.1', predicate: { scanner: { result: [{ id: 'CVE-1', severity: [{ score: 'LOW' }] }, { id: 'CVE-2', severity: [{ score: 'MEDIUM' }] }] } } };
const tests = { predicateType: 'https://in-toto.io/attestation/test-result/v0.1', predicate: { result: 'PASSED' } };
const evidence = Array.from({ length: 50 }, (_, i) => [stmt, vulns, tests][i % 3]);
const data = { predicate: stmt.predicate, artifact: { name: 'pkg:npm/app', version: '1.2.3', labels: { tier: 'critical', team: 'payments' } }, evidence, environment: { name: 'prod' }, actor: { identity: 'ci@acme' } };
const EXPRESSIONS = [
  'predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app"',
  'predicate.runDetails.builder.id.startsWith("https://github.com/")',
  'artifact.labels.tier == "critical" && artifact.labels.team == "payments"',
  'evidence.exists(e, e.predicateType == "https://slsa.dev/provenance/v1")',
  'evidence.filter(e, e.predicateType == "https://in-toto.io/attestation/vulns/v0.1").all(e, e.predicate.scanner.result.all(r, r.severity.all(s, s.score != "HIGH")))',
  'evidence.exists(e, e.predicateType == "https://in-toto.io/attestation/test-result/v0.1" && e.predicate.result == "PASSED")',
  'artifact.version.matches("^[0-9]+\\\\.[0-9]+\\\\.[0-9]+$")',
  'actor.identity.endsWith("@acme") && environment.name == "prod" && size(evidence) >= 3',
];

function toMaps(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toMaps);
  if (v !== null && typeof v === 'object') return new Map(Object.entries(v).map(([k, x]) => [k, toMaps(x)]));
  return typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
}

function timeIt(label: string, fns: ((c: Record<string, unknown>) => unknown)[], ctx: Record<string, unknown>): void {
  const n = 5000;
  for (let i = 0; i < 500; i++) for (const f of fns) f(ctx);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) for (const f of fns) if (f(ctx) !== true) throw new TypeError(`${label}: an expression is not true`);
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  console.log(`${label.padEnd(44)} ${us.toFixed(1).padStart(7)} µs per set of ${fns.length}  (${((fns.length * 1e6) / us / 1000).toFixed(0)}k evaluations/s)`);
}

console.log('\nspeed on policy expressions (compiled once, 50-statement input):');
const benv = celEnv();
const bufFns = EXPRESSIONS.map((e) => plan(benv, parse(e)) as (c: Record<string, unknown>) => unknown);
const marcFns = EXPRESSIONS.map((e) => marcEnv.parse(e) as (c: Record<string, unknown>) => unknown);
timeIt('@marcbachmann/cel-js, plain objects', marcFns, data);
timeIt('@bufbuild/cel, plain objects', bufFns, data);
timeIt('@bufbuild/cel, input converted to Maps once', bufFns, Object.fromEntries(Object.entries(data).map(([k, v]) => [k, toMaps(v)])));
for (const [label, compile] of [
  ['@marcbachmann/cel-js parse', (e: string) => marcEnv.parse(e)],
  ['@bufbuild/cel parse + plan', (e: string) => plan(benv, parse(e))],
] as const) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 200; i++) for (const e of EXPRESSIONS) compile(e);
  console.log(`${label.padEnd(44)} ${(Number(process.hrtime.bigint() - t0) / 1000 / 200 / EXPRESSIONS.length).toFixed(1).padStart(7)} µs per expression`);
}

// ---------------------------------------------------------------- regular expressions

console.log('\n"aaaa…ab".matches("^(a+)+$"), 25 characters (the time doubles with every extra "a" on a backtracking engine):');
const hostile = { s: `${'a'.repeat(24)}b` };
for (const [label, f] of [
  ['@bufbuild/cel (RE2)', () => run('s.matches("^(a+)+$")', hostile)],
  ['@marcbachmann/cel-js (JavaScript RegExp)', () => marcEnv.evaluate('s.matches("^(a+)+$")', hostile) as unknown],
] as const) {
  const t0 = performance.now();
  f();
  console.log(`${label.padEnd(44)} ${(performance.now() - t0).toFixed(0).padStart(7)} ms`);
}
