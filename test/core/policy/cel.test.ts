import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCel, DEFAULT_CEL_LIMITS, INPUT_VARIABLES, isConjunctionOf, newInputStats, toCel, WHERE_VARIABLES } from '../../../src/core/policy/cel.ts';

function compile(src: string, vars: readonly string[] = INPUT_VARIABLES) {
  return compileCel(src, vars);
}

function run(src: string, data: Record<string, unknown>) {
  const c = compile(src, WHERE_VARIABLES);
  if (!c.ok) throw new TypeError(c.error.message);
  const stats = newInputStats();
  const bindings = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, toCel(v, stats)]));
  return c.program.run(bindings, stats);
}

describe('CEL compile: static limits and checks', () => {
  it('compiles a typical expression once and evaluates it many times', () => {
    const c = compile('artifact.labels.tier == "critical" && size(evidence) >= 1');
    assert.ok(c.ok);
    const stats = newInputStats();
    const b = { artifact: toCel({ labels: { tier: 'critical' } }, stats), evidence: toCel([1], stats) };
    for (let i = 0; i < 3; i++) assert.deepEqual(c.program.run(b, stats), { ok: true, value: true });
  });

  it('refuses an expression longer than the limit', () => {
    const c = compile(`${'a == 1 || '.repeat(500)}true`);
    assert.ok(!c.ok);
    assert.match(c.error.message, /longer than 4096/);
  });

  it('refuses deep bracket nesting before the parser can overflow its stack', () => {
    const c = compile(`${'('.repeat(1500)}1${')'.repeat(1500)} == 1`);
    assert.ok(!c.ok);
    assert.match(c.error.message, /nest deeper than 32/);
  });

  it('refuses too many AST nodes', () => {
    const c = compileCel(`size([${Array(300).fill('1').join(', ')}]) == 1`, INPUT_VARIABLES, { ...DEFAULT_CEL_LIMITS, maxAstNodes: 100 });
    assert.ok(!c.ok);
    assert.match(c.error.message, /more than 100 nodes/);
  });

  it('refuses macros nested deeper than the limit', () => {
    const c = compile('evidence.all(a, evidence.all(b, evidence.all(c, evidence.all(d, true))))');
    assert.ok(!c.ok);
    assert.match(c.error.message, /macros nest deeper than 3/);
  });

  it('names unknown variables and functions at compile time, with a position', () => {
    const v = compile('artifact.name == "x" && bogus.field');
    assert.ok(!v.ok);
    assert.match(v.error.message, /unknown variable "bogus"/);
    assert.equal(v.error.line, 1);
    const f = compile('cel.bind(x, 1, x == 1)');
    assert.ok(!f.ok);
    assert.match(f.error.message, /unknown function "cel.bind"|unknown variable "cel"/);
    const g = compile('exfiltrate(artifact)');
    assert.ok(!g.ok);
    assert.match(g.error.message, /unknown function "exfiltrate"/);
  });

  it('lets `where` use statement, predicate and signers, and rules not', () => {
    assert.ok(compile('predicate.result == "PASSED"', WHERE_VARIABLES).ok);
    assert.ok(!compile('predicate.result == "PASSED"', INPUT_VARIABLES).ok);
  });

  it('accepts comprehension variables only inside their macro', () => {
    assert.ok(compile('evidence.exists(e, e.predicateType == "x")').ok);
    const c = compile('evidence.exists(e, true) && e.predicateType == "x"');
    assert.ok(!c.ok);
    assert.match(c.error.message, /unknown variable "e"/);
  });

  it('refuses protobuf message construction', () => {
    const c = compile('google.protobuf.Int32Value{value: 1} == 1');
    assert.ok(!c.ok);
    assert.match(c.error.message, /message construction/);
  });

  it('reports syntax errors with line and column inside the expression', () => {
    const c = compile('artifact.name ==\n  == "x"');
    assert.ok(!c.ok);
    assert.match(c.error.message, /^syntax error/);
    assert.equal(typeof c.error.line, 'number');
    assert.equal(typeof c.error.column, 'number');
  });
});

describe('CEL evaluation fails closed', () => {
  it('turns a runtime error into a failed outcome carrying the error, never a throw', () => {
    const missing = run('predicate.nope == 1', { predicate: { a: 1 } });
    assert.equal(missing.ok, false);
    assert.match(!missing.ok ? missing.error : '', /evaluation error: .*nope/);
    const div = run('1 / (size(evidence) - size(evidence)) == 1', { evidence: [] });
    assert.equal(div.ok, false);
    assert.match(!div.ok ? div.error : '', /divide by zero/);
    const conv = run('int(predicate.s) > 1', { predicate: { s: 'not a number' } });
    assert.equal(conv.ok, false);
  });

  it('refuses a non-boolean result', () => {
    const r = run('size(evidence)', { evidence: [1, 2] });
    assert.deepEqual(r, { ok: false, error: 'the expression returned the int 2, not a bool' });
  });

  it('meters an expression whose estimate exceeds the cost limit, and stops it when the reads run out', () => {
    const limits = { ...DEFAULT_CEL_LIMITS, maxCost: 10_000 };
    const c = compileCel('evidence.all(a, evidence.all(b, evidence.all(x, a >= 0 && b >= 0 && x >= 0)))', INPUT_VARIABLES, limits);
    assert.ok(c.ok);
    const stats = newInputStats();
    const big = toCel(Array.from({ length: 2000 }, (_, i) => i), stats);
    const t0 = performance.now();
    const r = c.program.run({ evidence: big }, stats);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.error : '', /evaluation stopped after 10000 reads/);
    assert.ok(performance.now() - t0 < 1000, `stopped quickly (${performance.now() - t0} ms)`);
  });

  it('gives the right answer on the metered path when the real work is small', () => {
    const limits = { ...DEFAULT_CEL_LIMITS, maxCost: 100_000 };
    const c = compileCel('predicate.result.all(v, v.severity.all(s, s.score != "CRITICAL"))', WHERE_VARIABLES, limits);
    assert.ok(c.ok);
    const stats = newInputStats();
    const predicate = toCel({ result: Array.from({ length: 3000 }, (_, i) => ({ id: `CVE-${i}`, severity: [{ score: i === 2999 ? 'CRITICAL' : 'LOW' }] })) }, stats);
    assert.ok(nodesTimesSquare(c.program.nodes, 3000) > limits.maxCost, 'the estimate takes the metered path');
    assert.deepEqual(c.program.run({ predicate }, stats), { ok: true, value: false });
  });

  it('bounds macros over list literals at compile time, since they read no input', () => {
    const lit = `[${Array.from({ length: 150 }, (_, i) => i).join(',')}]`;
    const c = compile(`${lit}.all(a, ${lit}.all(b, true))`);
    assert.ok(!c.ok);
    assert.match(c.error.message, /list literals/);
  });

  it('refuses input nested deeper than the limit', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const r = run('has(predicate.d)', { predicate: deep });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.error : '', /nests deeper than 64/);
  });

  it('matches regular expressions in linear time (RE2), so hostile input cannot stall a decision', () => {
    const t0 = performance.now();
    const r = run('predicate.s.matches("^(a+)+$")', { predicate: { s: `${'a'.repeat(5000)}b` } });
    assert.deepEqual(r, { ok: true, value: false });
    assert.ok(performance.now() - t0 < 500, `took ${performance.now() - t0} ms`);
  });

  it('reads JSON integers as CEL ints and other numbers as doubles', () => {
    assert.deepEqual(run('predicate.failed + 1 == 1 && predicate.score > 7.0', { predicate: { failed: 0, score: 9.8 } }), { ok: true, value: true });
  });
});

function nodesTimesSquare(nodes: number, n: number): number {
  return nodes * n * n;
}

describe('CEL conjunctions, for the loosening check', () => {
  it('recognises "(old) && more" as stricter, and nothing else', () => {
    assert.ok(isConjunctionOf('predicate.result == "PASSED"', 'predicate.result  ==  "PASSED"'));
    assert.ok(isConjunctionOf('a.b == 1 && (predicate.result == "PASSED")', 'predicate.result == "PASSED"'));
    assert.ok(isConjunctionOf('x && (y && predicate.result == "PASSED")', 'predicate.result == "PASSED"'));
    assert.ok(!isConjunctionOf('predicate.result in ["PASSED", "WARNED"]', 'predicate.result == "PASSED"'));
    assert.ok(!isConjunctionOf('predicate.result == "PASSED" || true', 'predicate.result == "PASSED"'));
    assert.ok(!isConjunctionOf('((', 'x'));
  });
});

describe('metering covers maps too', () => {
  it('stops a nested macro over the keys of a large map', () => {
    const limits = { ...DEFAULT_CEL_LIMITS, maxCost: 10_000 };
    const c = compileCel('predicate.all(a, predicate.all(b, true))', WHERE_VARIABLES, limits);
    assert.ok(c.ok);
    const stats = newInputStats();
    const predicate = toCel(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i])), stats);
    const r = c.program.run({ predicate }, stats);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.error : '', /evaluation stopped/);
  });
});
