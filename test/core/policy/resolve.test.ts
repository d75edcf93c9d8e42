import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicy } from '../../../src/core/policy/index.ts';
import { policyYaml, resolveFiles } from './helpers.ts';

const TEMPLATE = `apiVersion: custody.dev/v1
kind: Template
name: base
parameters:
  minApprovals: { type: integer, default: 1 }
  repo: { type: string }
  soak: { type: duration, default: 1h }
gates:
  provenance:
    require:
      predicateType: https://slsa.dev/provenance/v1
      signers: [{ key: build-ci }]
      where: predicate.repo == params.repo
  approvals:
    approvals:
      count: \${{ params.minApprovals }}
  soak:
    from:
      soak: \${{ params.soak }}
  versions:
    versioning: { noDowngrade: true }
  freeze:
    freeze:
      timeZone: Europe/Berlin
      weekly: [{ from: "fri 16:00", to: "mon 07:00" }]
  rule:
    rule: { expr: 'artifact.labels.team != ""' }
`;

function extending(body: string, params = 'repo: https://github.com/acme/app'): Record<string, string> {
  return {
    'templates/base.yaml': TEMPLATE,
    'p.yaml': `apiVersion: custody.dev/v1\nkind: Policy\nname: p\nextends:\n  template: base\n  with:\n    ${params}\n${body}`,
  };
}

function problems(files: Record<string, string>): string[] {
  return resolveFiles(files).problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`);
}

describe('templates and parameters', () => {
  it('substitutes typed parameters and defaults, and exposes them to CEL as params', () => {
    const r = resolveFiles(extending('gates: {}', 'repo: https://github.com/acme/app\n    minApprovals: 3'));
    assert.deepEqual(r.problems, []);
    const p = r.policies['p'];
    assert.ok(p);
    const approvals = p.gates.find((g) => g.name === 'approvals');
    assert.equal(approvals?.kind === 'approvals' ? approvals.approvals.count : undefined, 3);
    const soak = p.gates.find((g) => g.name === 'soak');
    assert.equal(soak?.kind === 'from' ? soak.from.soak : undefined, '1h');
    assert.deepEqual(p.params, { repo: 'https://github.com/acme/app', minApprovals: 3, soak: '1h' });
    assert.deepEqual(p.extends, [{ template: 'base', with: { repo: 'https://github.com/acme/app', minApprovals: 3, soak: '1h' } }]);
    assert.deepEqual(p.gates.map((g) => g.name), ['provenance', 'approvals', 'soak', 'versions', 'freeze', 'rule'], 'in the order written');
  });

  it('refuses a missing parameter, an unknown one and one of the wrong type, at the line that gives it', () => {
    assert.match(problems(extending('gates: {}', 'minApprovals: 2')).join('\n'), /p\.yaml:\d+:\d+: extends\.with: template "base" needs parameter "repo"/);
    assert.match(problems(extending('gates: {}', 'repo: x\n    bogus: 1')).join('\n'), /p\.yaml:8:\d+: extends\.with\.bogus: template "base" has no parameter "bogus"/);
    assert.match(problems(extending('gates: {}', 'repo: x\n    minApprovals: two')).join('\n'), /p\.yaml:8:\d+: extends\.with\.minApprovals: expected an integer/);
  });

  it('refuses placeholders in CEL, undeclared placeholders, and placeholders in a policy', () => {
    const cel = TEMPLATE.replace('where: predicate.repo == params.repo', 'where: predicate.repo == "${{ params.repo }}"');
    assert.match(problems({ 't.yaml': cel }).join('\n'), /use params\.NAME inside CEL/);
    const undeclared = TEMPLATE.replace('count: ${{ params.minApprovals }}', 'count: ${{ params.nope }}');
    assert.match(problems({ 't.yaml': undeclared }).join('\n'), /t\.yaml:\d+:\d+: gates\.approvals\.approvals\.count: parameter "nope" is not declared/);
    assert.match(problems({ 'p.yaml': policyYaml('  a:\n    approvals: { count: "${{ params.x }}" }') }).join('\n'), /only templates take parameters/);
  });

  it('refuses an unknown template and a cycle of templates', () => {
    assert.match(problems({ 'p.yaml': 'apiVersion: custody.dev/v1\nkind: Policy\nname: p\nextends: { template: nope }\n' }).join('\n'), /no template named "nope"/);
    const a = 'apiVersion: custody.dev/v1\nkind: Template\nname: a\nextends: { template: b }\n';
    const b = 'apiVersion: custody.dev/v1\nkind: Template\nname: b\nextends: { template: a }\n';
    const p = 'apiVersion: custody.dev/v1\nkind: Policy\nname: p\nextends: { template: a }\n';
    assert.match(problems({ 'a.yaml': a, 'b.yaml': b, 'p.yaml': p }).join('\n'), /cycle/);
  });
});

describe('overrides only tighten, unless marked', () => {
  const tighter: [string, string][] = [
    ['approvals count up', '  approvals:\n    approvals: { count: 2 }'],
    ['soak longer', '  soak:\n    from: { soak: 2h }'],
    ['where conjoined', '  provenance:\n    require: { where: "predicate.repo == params.repo && predicate.ok == true" }'],
    ['threshold up', '  provenance:\n    require: { threshold: 2 }'],
    ['versioning stricter', '  versions:\n    versioning: { mustBeNewer: true }'],
    ['freeze window added', '  freeze:\n    freeze: { weekly: [{ from: "fri 16:00", to: "mon 07:00" }, { from: "wed 12:00", to: "wed 13:00" }] }'],
    ['a new gate', '  extra:\n    rule: { expr: "true" }'],
  ];
  for (const [what, gates] of tighter) {
    it(`accepts a tightening: ${what}`, () => {
      const r = resolveFiles(extending(`gates:\n${gates}`));
      assert.deepEqual(r.problems, []);
      assert.deepEqual(r.warnings, []);
    });
  }

  const looser: [string, string, RegExp][] = [
    ['approvals count down', '  approvals:\n    approvals: { count: 0 }', /approvals/],
    ['soak shorter', '  soak:\n    from: { soak: 30m }', /soak shortened from 1h to 30m/],
    ['where rewritten', '  provenance:\n    require: { where: "true" }', /where rewritten/],
    ['more signers', '  provenance:\n    require: { signers: [{ key: build-ci }, { key: laptop }] }', /trusts more signers \(laptop\)/],
    ['downgrades allowed', '  versions:\n    versioning: { noDowngrade: false }', /downgrades allowed/],
    ['freeze window removed', '  freeze:\n    freeze: { weekly: [{ from: "sat 00:00", to: "sun 00:00" }] }', /freeze windows removed/],
    ['time zone changed', '  freeze:\n    freeze: { timeZone: America/New_York }', /time zone changed/],
    ['rule rewritten', '  rule:\n    rule: { expr: "true" }', /expr rewritten/],
    ['kind changed', '  rule:\n    versioning: { semver: true }', /kind changed from rule to versioning/],
    ['separation of duties dropped', '  approvals:\n    approvals: { distinctFrom: [requester] }', /separation of duties dropped \(signers\)/],
    ['gate removed', '  freeze:\n    remove: true', /removing an inherited gate/],
  ];
  for (const [what, gates, why] of looser) {
    it(`refuses an unmarked loosening, at its line: ${what}`, () => {
      const ps = problems(extending(`gates:\n${gates}`));
      assert.ok(ps.length > 0, 'refused');
      assert.match(ps.join('\n'), /^p\.yaml:\d+:\d+: /);
      assert.match(ps.join('\n'), why);
    });
  }

  it('accepts a loosening marked with a reason, warns about it and records it in the resolved policy', () => {
    const r = resolveFiles(extending('gates:\n  soak:\n    from: { soak: 30m }\n    loosen: { reason: "hotfix lane, ACME-42" }'));
    assert.deepEqual(r.problems, []);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]?.message ?? '', /loosened: soak shortened from 1h to 30m \(hotfix lane, ACME-42\)/);
    assert.equal(r.warnings[0]?.line, 9, 'at the gate name');
    assert.deepEqual(r.policies['p']?.loosened, [{ scope: 'gates', gate: 'soak', changes: ['soak shortened from 1h to 30m'], reason: 'hotfix lane, ACME-42' }]);
  });
});

describe('tiers and fast-tracks', () => {
  it('resolves each tier to its full gate set: base gates, tightened and added', () => {
    const r = resolveFiles(extending('tiers:\n  critical:\n    gates:\n      approvals: { approvals: { count: 2 } }\n      second:\n        require: { predicateType: "https://slsa.dev/provenance/v1", signers: [{ key: release }] }'));
    assert.deepEqual(r.problems, []);
    const tier = r.policies['p']?.tiers['critical'];
    assert.ok(tier);
    assert.deepEqual(tier.gates.map((g) => g.name), ['provenance', 'approvals', 'soak', 'versions', 'freeze', 'rule', 'second']);
    const a = tier.gates.find((g) => g.name === 'approvals');
    assert.equal(a?.kind === 'approvals' ? a.approvals.count : 0, 2);
  });

  it('refuses a tier that loosens a base gate, at the tier line', () => {
    const ps = problems(extending('gates:\n  approvals:\n    approvals: { count: 3 }\ntiers:\n  critical:\n    gates:\n      approvals: { approvals: { count: 2 } }'));
    assert.match(ps.join('\n'), /p\.yaml:14:7: tiers\.critical\.gates\.approvals: loosens inherited gate "approvals": approvals lowered from 3 to 2/);
  });

  it('refuses a fast-track that relaxes a freeze or an unknown gate, and an unmarked one over inherited gates', () => {
    const freeze = problems(extending('fastTrack:\n  hot:\n    identities: ["ci:*"]\n    relax: [freeze]\n    loosen: { reason: x }'));
    assert.match(freeze.join('\n'), /cannot relax the freeze gate "freeze": only an exception overrides a freeze/);
    const unknown = problems(extending('fastTrack:\n  hot:\n    identities: ["ci:*"]\n    relax: [nope]'));
    assert.match(unknown.join('\n'), /relaxes "nope", which is not a gate/);
    const unmarked = problems(extending('fastTrack:\n  hot:\n    teams: [platform]\n    relax: [soak]'));
    assert.match(unmarked.join('\n'), /fast-track hot relaxes inherited gates soak; mark it/);
  });
});

describe('hostile and malformed documents', () => {
  it('names unknown fields at their own line and column', () => {
    const ps = problems({ 'p.yaml': policyYaml('  a:\n    rule: { expr: "true", bogus: 1 }\n    extra: 2') });
    assert.ok(ps.includes('p.yaml:7:5: gates.a.extra: unknown field "extra"'), ps.join('\n'));
    assert.ok(ps.includes('p.yaml:6:27: gates.a.rule.bogus: unknown field "bogus"'), ps.join('\n'));
  });

  it('refuses malformed YAML, duplicate keys, deep nesting and an alias bomb, without expanding it', () => {
    assert.match(problems({ 'p.yaml': 'apiVersion: custody.dev/v1\nkind: [Policy\n' }).join('\n'), /^p\.yaml:\d+:\d+: /);
    assert.match(problems({ 'p.yaml': 'apiVersion: custody.dev/v1\nkind: Policy\nkind: Policy\nname: p\n' }).join('\n'), /p\.yaml:3:1: .*unique/i);
    let deep = 'x';
    for (let i = 0; i < 100; i++) deep = `[${deep}]`;
    assert.match(problems({ 'p.yaml': `apiVersion: custody.dev/v1\nkind: Policy\nname: p\ndescription: ${deep}\n` }).join('\n'), /nesting deeper than 64/);
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const t0 = performance.now();
    assert.match(problems({ 'p.yaml': `apiVersion: custody.dev/v1\nkind: Policy\nname: p\n${bomb.join('\n')}\n` }).join('\n'), /refused: Excessive alias count/);
    assert.ok(performance.now() - t0 < 1000);
  });

  it('refuses a wrong apiVersion or kind, a reserved gate name and a gate with two kinds', () => {
    assert.match(problems({ 'p.yaml': 'apiVersion: custody.dev/v2\nkind: Policy\nname: p\n' }).join('\n'), /p\.yaml:1:\d+: apiVersion/);
    assert.match(problems({ 'p.yaml': 'apiVersion: custody.dev/v1\nkind: Polcy\nname: p\n' }).join('\n'), /p\.yaml:2:\d+: kind/);
    assert.match(problems({ 'p.yaml': policyYaml('  tier:\n    rule: { expr: "true" }') }).join('\n'), /"tier" is reserved/);
    assert.match(problems({ 'p.yaml': policyYaml('  a:\n    rule: { expr: "true" }\n    versioning: {}') }).join('\n'), /exactly one kind/);
  });

  it('refuses an unknown time zone and an inverted date range', () => {
    const ps = problems({ 'p.yaml': policyYaml('  f:\n    freeze:\n      timeZone: Mars/Olympus\n      dates: [{ from: "2026-12-24", to: "2026-12-20" }]') });
    assert.match(ps.join('\n'), /p\.yaml:7:17: gates\.f\.freeze\.timeZone: unknown time zone "Mars\/Olympus"/);
    assert.match(ps.join('\n'), /ends \(2026-12-20\) before it starts/);
  });

  it('locates a CEL compile error in the file that wrote the expression', () => {
    const files = extending('gates: {}');
    files['templates/base.yaml'] = TEMPLATE.replace('where: predicate.repo == params.repo', 'where: predicate.repo == nope');
    const r = resolveFiles(files);
    assert.deepEqual(r.problems, []);
    const c = compilePolicy(r.policies['p'] ?? assert.fail('resolved'), { origins: r.origins });
    assert.ok(!c.ok);
    assert.match(c.problems[0]?.message ?? '', /CEL: unknown variable "nope"/);
    assert.equal(c.problems[0]?.file, 'templates/base.yaml');
    assert.equal(c.problems[0]?.line, 13);
  });

  it('gives the same digest for the same content, whatever the file order', () => {
    const a = resolveFiles(extending('gates: {}'));
    const files = extending('gates: {}');
    const b = resolveFiles(Object.fromEntries(Object.entries(files).reverse()));
    assert.deepEqual(a.policies, b.policies);
  });
});
