import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { compilePolicy, resolvePolicySet, runPolicyTests, type CompiledPolicy } from '../../../src/core/policy/index.ts';
import { ROOT } from '../../helpers.ts';

function load(dir: string) {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(f)) files.push(p);
    }
  };
  walk(dir);
  return resolvePolicySet(files.map((p) => ({ path: relative(dir, p), text: readFileSync(p, 'utf8') })));
}

describe('the example policy set (examples/policies)', () => {
  const r = load(join(ROOT, 'examples', 'policies'));

  it('checks clean, with exactly its two explicit loosenings reported', () => {
    assert.deepEqual(r.problems, []);
    assert.deepEqual(Object.keys(r.policies).sort(), ['dev', 'prod', 'staging']);
    assert.deepEqual(r.warnings.map((w) => `${w.file}:${w.line}`).sort(), ['prod.yaml:54', 'staging.yaml:13']);
  });

  it('passes all of its policy tests, which cover every gate kind, tiers, fast-track and exceptions', () => {
    const compiled = new Map<string, CompiledPolicy>();
    for (const [n, p] of Object.entries(r.policies)) {
      const c = compilePolicy(p, { origins: r.origins });
      assert.ok(c.ok);
      compiled.set(n, c.policy);
    }
    const report = runPolicyTests(compiled, r.tests, () => []);
    const failures = report.files.flatMap((f) => f.cases.filter((c) => !c.ok).map((c) => `${f.file}: ${c.name}: ${c.failures.join('; ')}`));
    assert.deepEqual(failures, []);
    assert.ok(report.passed >= 38);
    const kinds = new Set(Object.values(r.policies).flatMap((p) => [...p.gates, ...Object.values(p.tiers).flatMap((t) => t.gates)].map((g) => g.kind)));
    assert.deepEqual([...kinds].sort(), ['approvals', 'freeze', 'from', 'require', 'rule', 'versioning']);
    const outcomes = new Set(report.files.flatMap((f) => f.cases.flatMap((c) => c.decision?.gates.map((g) => g.outcome) ?? [])));
    assert.deepEqual([...outcomes].sort(), ['fail', 'pass', 'pending', 'waived']);
  });
});
