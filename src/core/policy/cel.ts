/**
 * CEL for policies, on @bufbuild/cel (docs/cel.md says why this library).
 *
 * An expression is compiled once per policy version: parsed, checked against
 * static limits (size, nesting, AST nodes, comprehension depth), checked for
 * unknown variables and functions, then planned. Neither CEL library meters
 * evaluation, so Custody does: when a static estimate (AST nodes times the
 * largest input list, to the power of the macro nesting) exceeds the cost
 * limit, the expression runs over metered views of the input that stop it
 * after that many reads. Any runtime error, a stop, or a non-boolean result
 * fails closed with the reason. Regular expressions are RE2: linear time.
 */
import { celEnv, isCelError, parse, plan, unparse, type CelInput } from '@bufbuild/cel';

export interface CelLimits {
  /** Longest expression source, in characters. */
  maxSourceLength: number;
  /** Deepest bracket nesting in the source, and deepest AST. */
  maxNesting: number;
  maxAstNodes: number;
  /** Macros (exists, all, map, filter, exists_one) nested inside each other. */
  maxComprehensionDepth: number;
  /**
   * Evaluation steps allowed for one evaluation. When the static estimate (AST
   * nodes × the largest input list to the power of the macro nesting) stays
   * below it, the expression runs as is; otherwise it runs over metered input
   * and stops, failing closed, after this many element and field reads.
   */
  maxCost: number;
  /** Deepest input value exposed to CEL. */
  maxInputDepth: number;
}

export const DEFAULT_CEL_LIMITS: CelLimits = {
  maxSourceLength: 4096,
  maxNesting: 32,
  maxAstNodes: 500,
  maxComprehensionDepth: 3,
  maxCost: 1_000_000,
  maxInputDepth: 64,
};

/** Variables every policy expression may use. Documented in README (policy language). */
export const INPUT_VARIABLES = ['artifact', 'evidence', 'environment', 'current', 'actor', 'request', 'history', 'approvals', 'params'] as const;
/** Added for a `require` gate's `where`: the statement under test. */
export const WHERE_VARIABLES = [...INPUT_VARIABLES, 'statement', 'predicate', 'signers'] as const;

// Type names are identifiers in CEL (`type(x) == string`).
const TYPE_IDENTS = new Set(['int', 'uint', 'double', 'bool', 'string', 'bytes', 'list', 'map', 'null_type', 'type']);
// Calls the planner handles itself rather than through the function resolver.
const SPECIAL_CALLS = new Set(['_&&_', '_||_', '_?_:_', '_[_]', '@not_strictly_false']);

const env = celEnv();
const KNOWN_FUNCTIONS = new Set<string>([...SPECIAL_CALLS, ...[...env.funcs].map((f) => f.name)]);
const toTimestamp = plan(env, parse('timestamp(s)'));

export type CelBindings = Record<string, unknown>;

export type CelOutcome = { ok: true; value: boolean } | { ok: false; error: string };

export interface CelProgram {
  readonly source: string;
  readonly nodes: number;
  readonly comprehensionDepth: number;
  /** Evaluates to a boolean, or fails closed with a reason. Never throws. */
  run(bindings: CelBindings, input: CelInputStats): CelOutcome;
}

export interface CelCompileError {
  message: string;
  /** 1-based line and column inside the expression, when known. */
  line?: number;
  column?: number;
}

export type CelCompileResult = { ok: true; program: CelProgram } | { ok: false; error: CelCompileError };

interface ExprNode {
  id: bigint;
  exprKind: { case: string | undefined; value?: unknown };
}

/** Compiles once; the program is reused for every evaluation of this policy version. */
export function compileCel(source: string, variables: readonly string[], limits: CelLimits = DEFAULT_CEL_LIMITS): CelCompileResult {
  if (source.length > limits.maxSourceLength) return fail(`expression is longer than ${limits.maxSourceLength} characters`);
  const nesting = bracketNesting(source);
  if (nesting.depth > limits.maxNesting) return fail(`brackets nest deeper than ${limits.maxNesting} levels`, offsetPos(source, nesting.at));
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (e) {
    return fail(syntaxMessage(e), syntaxPos(e));
  }
  const positions = parsed.sourceInfo?.positions ?? {};
  const at = (node: ExprNode) => {
    const offset = positions[String(node.id)];
    return offset === undefined ? {} : offsetPos(source, offset);
  };
  const declared = new Set(variables);
  let nodes = 0;
  let comprehensionDepth = 0;
  let longestLiteral = 1;
  let problem: CelCompileError | undefined;
  const visit = (node: ExprNode, scope: ReadonlySet<string>, depth: number, comprehensions: number): void => {
    if (problem) return;
    nodes++;
    if (nodes > limits.maxAstNodes) return void (problem = { message: `expression has more than ${limits.maxAstNodes} nodes`, ...at(node) });
    if (depth > limits.maxNesting) return void (problem = { message: `expression nests deeper than ${limits.maxNesting} levels`, ...at(node) });
    const k = node.exprKind;
    switch (k.case) {
      case 'identExpr': {
        const name = (k.value as { name: string }).name;
        if (!scope.has(name) && !declared.has(name) && !TYPE_IDENTS.has(name)) {
          problem = { message: `unknown variable "${name}"; the input has ${[...declared].join(', ')}`, ...at(node) };
        }
        return;
      }
      case 'selectExpr': {
        const v = k.value as { operand?: ExprNode };
        if (v.operand) visit(v.operand, scope, depth + 1, comprehensions);
        return;
      }
      case 'callExpr': {
        const v = k.value as { function: string; target?: ExprNode; args: ExprNode[] };
        if (!KNOWN_FUNCTIONS.has(v.function)) {
          const name = v.target?.exprKind.case === 'identExpr' ? `${(v.target.exprKind.value as { name: string }).name}.${v.function}` : v.function;
          problem = { message: `unknown function "${name}"`, ...at(node) };
          return;
        }
        if (v.target) visit(v.target, scope, depth + 1, comprehensions);
        for (const a of v.args) visit(a, scope, depth + 1, comprehensions);
        return;
      }
      case 'listExpr': {
        const elements = (k.value as { elements: ExprNode[] }).elements;
        longestLiteral = Math.max(longestLiteral, elements.length);
        for (const e of elements) visit(e, scope, depth + 1, comprehensions);
        return;
      }
      case 'structExpr': {
        const v = k.value as { messageName: string; entries: { keyKind: { case: string | undefined; value?: unknown }; value?: ExprNode }[] };
        if (v.messageName !== '') return void (problem = { message: `message construction (${v.messageName}) is not available in policies`, ...at(node) });
        for (const e of v.entries) {
          if (e.keyKind.case === 'mapKey') visit(e.keyKind.value as ExprNode, scope, depth + 1, comprehensions);
          if (e.value) visit(e.value, scope, depth + 1, comprehensions);
        }
        return;
      }
      case 'comprehensionExpr': {
        const v = k.value as { iterVar: string; iterVar2: string; accuVar: string; iterRange?: ExprNode; accuInit?: ExprNode; loopCondition?: ExprNode; loopStep?: ExprNode; result?: ExprNode };
        const level = comprehensions + 1;
        if (level > limits.maxComprehensionDepth) return void (problem = { message: `macros nest deeper than ${limits.maxComprehensionDepth} levels`, ...at(node) });
        comprehensionDepth = Math.max(comprehensionDepth, level);
        if (v.iterRange) visit(v.iterRange, scope, depth + 1, comprehensions);
        if (v.accuInit) visit(v.accuInit, scope, depth + 1, comprehensions);
        const inner = new Set([...scope, v.iterVar, v.accuVar, ...(v.iterVar2 ? [v.iterVar2] : [])]);
        for (const part of [v.loopCondition, v.loopStep, v.result]) if (part) visit(part, inner, depth + 1, level);
        return;
      }
      default:
        return;
    }
  };
  visit(parsed.expr, new Set(), 0, 0);
  if (problem) return { ok: false, error: problem };
  // Macros over list literals are not metered (they read no input): bound them here.
  if (estimateCost(nodes, comprehensionDepth, longestLiteral) > limits.maxCost) {
    return fail(`macros nested ${comprehensionDepth} deep over list literals of ${longestLiteral} elements could take more than ${limits.maxCost} steps`);
  }
  let planned: ReturnType<typeof plan>;
  try {
    planned = plan(env, parsed);
  } catch (e) {
    return fail(`cannot plan the expression: ${errorText(e)}`);
  }
  const program: CelProgram = {
    source,
    nodes,
    comprehensionDepth,
    run(bindings, input) {
      if (input.tooDeep) return { ok: false, error: `the input nests deeper than ${limits.maxInputDepth} levels; not evaluated` };
      const estimate = estimateCost(nodes, comprehensionDepth, input.largest);
      const meter = estimate > limits.maxCost ? { left: limits.maxCost } : undefined;
      let r: unknown;
      try {
        r = planned((meter ? metered(bindings, meter) : bindings) as Record<string, CelInput>);
      } catch (e) {
        if (meter && meter.left < 0) return stopped(limits.maxCost);
        return { ok: false, error: `evaluation error: ${errorText(e)}` };
      }
      if (meter && meter.left < 0) return stopped(limits.maxCost);
      if (isCelError(r)) return { ok: false, error: `evaluation error: ${r.message}` };
      if (typeof r !== 'boolean') return { ok: false, error: `the expression returned ${describe(r)}, not a bool` };
      return { ok: true, value: r };
    },
  };
  return { ok: true, program };
}

/**
 * Is `after` provably at least as strict as `before`: the same expression, or
 * a conjunction one of whose operands is `before` (compared as canonical CEL)?
 */
export function isConjunctionOf(after: string, before: string): boolean {
  try {
    const target = unparse(parse(before));
    const stack: ExprNode[] = [parse(after).expr];
    while (stack.length > 0) {
      const node = stack.pop() as ExprNode;
      if (unparse(node as never) === target) return true;
      const k = node.exprKind;
      if (k.case === 'callExpr' && (k.value as { function: string }).function === '_&&_') stack.push(...(k.value as { args: ExprNode[] }).args);
    }
    return false;
  } catch {
    return false;
  }
}

/** Facts about the converted input that the cost estimate needs. */
export interface CelInputStats {
  /** The size of the largest list or map in the input. */
  largest: number;
  tooDeep: boolean;
}

export function newInputStats(): CelInputStats {
  return { largest: 0, tooDeep: false };
}

function estimateCost(nodes: number, depth: number, largest: number): number {
  return nodes * Math.max(1, largest) ** depth;
}

function stopped(max: number): CelOutcome {
  return { ok: false, error: `evaluation stopped after ${max} reads of the input: the cost limit (macros over large lists); not evaluated to the end` };
}

class MeterExhausted extends RangeError {}

interface Meter {
  left: number;
}

/**
 * Views of converted input that count every element and field read, and stop
 * the evaluation (by throwing out of the CEL evaluator) when the budget is
 * spent. Wrapping is lazy: only what the expression touches is wrapped.
 */
function metered(bindings: CelBindings, meter: Meter): CelBindings {
  const out: CelBindings = {};
  for (const k of Object.keys(bindings)) out[k] = meterValue(bindings[k], meter);
  return out;
}

function spend(meter: Meter): void {
  if (--meter.left < 0) throw new MeterExhausted('cost limit');
}

function meterValue(v: unknown, meter: Meter): unknown {
  if (Array.isArray(v)) {
    return new Proxy(v, {
      get(target, p, receiver) {
        if (typeof p === 'string' && p !== '' && p.charCodeAt(0) >= 48 && p.charCodeAt(0) <= 57) {
          spend(meter);
          return meterValue(Reflect.get(target, p, receiver), meter);
        }
        return Reflect.get(target, p, receiver) as unknown;
      },
    });
  }
  if (v instanceof Map) return new MeteredMap(v as Map<unknown, unknown>, meter);
  return v;
}

/** A read-only Map view that meters reads; CEL reads maps only through these methods. */
class MeteredMap extends Map<unknown, unknown> {
  readonly #inner: Map<unknown, unknown>;
  readonly #meter: Meter;
  constructor(inner: Map<unknown, unknown>, meter: Meter) {
    super();
    this.#inner = inner;
    this.#meter = meter;
  }
  override get size(): number {
    return this.#inner.size;
  }
  override get(key: unknown): unknown {
    spend(this.#meter);
    return meterValue(this.#inner.get(key), this.#meter);
  }
  override has(key: unknown): boolean {
    spend(this.#meter);
    return this.#inner.has(key);
  }
  override *keys(): MapIterator<unknown> {
    for (const k of this.#inner.keys()) {
      spend(this.#meter);
      yield k;
    }
    return undefined;
  }
  override *entries(): MapIterator<[unknown, unknown]> {
    for (const [k, v] of this.#inner) {
      spend(this.#meter);
      yield [k, meterValue(v, this.#meter)];
    }
  }
  override *values(): MapIterator<unknown> {
    for (const [, v] of this.entries()) yield v;
    return undefined;
  }
  override forEach(cb: (value: unknown, key: unknown, map: Map<unknown, unknown>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) cb.call(thisArg, v, k, this);
  }
  override [Symbol.iterator](): MapIterator<[unknown, unknown]> {
    return this.entries();
  }
}

/**
 * Converts plain data (JSON-like, plus Dates) into values CEL reads without
 * further copying: objects become Maps, safe integers become CEL ints, Dates
 * become timestamps. Done once per decision, shared by every expression.
 */
export function toCel(v: unknown, stats: CelInputStats, maxDepth: number = DEFAULT_CEL_LIMITS.maxInputDepth, depth = 0): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'bigint':
      return v;
    case 'number':
      return Number.isSafeInteger(v) ? BigInt(v) : v;
    case 'object':
      break;
    default:
      return null;
  }
  if (depth >= maxDepth) {
    stats.tooDeep = true;
    return null;
  }
  if (Array.isArray(v)) {
    const n = v.length;
    if (n > stats.largest) stats.largest = n;
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = toCel(v[i], stats, maxDepth, depth + 1);
    return out;
  }
  if (v instanceof Date) return celTimestamp(v);
  if (v instanceof Uint8Array || v instanceof Map) return v;
  const keys = Object.keys(v);
  if (keys.length > stats.largest) stats.largest = keys.length;
  const m = new Map<string, unknown>();
  for (const key of keys) {
    const x = (v as Record<string, unknown>)[key];
    if (x !== undefined) m.set(key, toCel(x, stats, maxDepth, depth + 1));
  }
  return m;
}

// Timestamps are immutable messages, and building one costs more than most
// expressions: the same instant (an evidence item's storedAt, say) is built once.
const timestamps = new Map<number, unknown>();
const MAX_CACHED_TIMESTAMPS = 4096;

/** A CEL timestamp for an instant. */
export function celTimestamp(d: Date): unknown {
  const ms = d.getTime();
  let t = timestamps.get(ms);
  if (t === undefined) {
    if (timestamps.size >= MAX_CACHED_TIMESTAMPS) timestamps.clear();
    t = toTimestamp({ s: d.toISOString() });
    timestamps.set(ms, t);
  }
  return t;
}

/** Deepest bracket nesting, ignoring brackets inside string literals; guards the recursive parser. */
function bracketNesting(s: string): { depth: number; at: number } {
  let depth = 0;
  let max = 0;
  let at = 0;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote !== undefined) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(' || c === '[' || c === '{') {
      depth++;
      if (depth > max) {
        max = depth;
        at = i;
      }
    } else if (c === ')' || c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return { depth: max, at };
}

function offsetPos(source: string, offset: number): { line: number; column: number } {
  let line = 1;
  let column = 1;
  for (let i = 0; i < offset && i < source.length; i++) {
    if (source[i] === '\n') {
      line++;
      column = 1;
    } else column++;
  }
  return { line, column };
}

function syntaxMessage(e: unknown): string {
  const text = errorText(e).replace(/^<input>:\d+:\d+:\s*/, '');
  return `syntax error: ${text}`;
}

function syntaxPos(e: unknown): { line?: number; column?: number } {
  const loc = (e as { location?: { start?: { line?: number; column?: number } } } | undefined)?.location?.start;
  return loc?.line !== undefined && loc.column !== undefined ? { line: loc.line, column: loc.column } : {};
}

function fail(message: string, pos: { line?: number; column?: number } = {}): CelCompileResult {
  return { ok: false, error: { message, ...pos } };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return `the int ${v}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number') return `the double ${v}`;
  return `a ${typeof v === 'object' ? 'list, map or message' : typeof v}`;
}
