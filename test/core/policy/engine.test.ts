import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluate, type PolicyException } from '../../../src/core/policy/index.ts';
import { compileGates, DIGEST, evidence, gate, input, keyid, PROVENANCE } from './helpers.ts';

const REQUIRE = `  provenance:
    require:
      predicateType: ${PROVENANCE}
      signers: [{ key: build-ci }]
      where: predicate.repo == "acme/app"`;

describe('require gates', () => {
  const policy = compileGates(REQUIRE);

  it('passes on verified evidence of the type, from a trusted signer, whose where holds', () => {
    const d = evaluate(policy, input({ evidence: [evidence(PROVENANCE, { repo: 'acme/app' }, [{ key: 'build-ci' }], { digest: 'sha256:e1' })] }));
    assert.equal(d.outcome, 'pass');
    assert.deepEqual(d.gates[0]?.evidence, ['sha256:e1']);
  });

  it('explains a revoked key in words: which key, and since when', () => {
    const d = evaluate(policy, input({ evidence: [evidence(PROVENANCE, { repo: 'acme/app' }, [{ key: 'build-ci', ok: false, reason: 'key build-ci@1 compromised since 2026-03-01T00:00:00.000Z (compromised)' }])] }));
    const g = gate(d, 'provenance');
    assert.equal(g.outcome, 'fail');
    assert.deepEqual(g.codes, ['SIGNATURE_INVALID']);
    assert.equal(g.text, `provenance: ${PROVENANCE} signed by build-ci required; found none valid: key build-ci@1 compromised since 2026-03-01T00:00:00.000Z (compromised)`);
  });

  it('does not count signers the gate does not trust, evidence of other types, or statements about another digest', () => {
    const cases = [
      [evidence(PROVENANCE, { repo: 'acme/app' }, [{ key: 'laptop' }])],
      [evidence('https://example.com/unknown-predicate/v9', { repo: 'acme/app' }, [{ key: 'build-ci' }])],
      [evidence(PROVENANCE, { repo: 'acme/app' }, [{ key: 'build-ci' }], { subject: `sha256:${'cd'.repeat(32)}` })],
    ];
    const codes = cases.map((ev) => gate(evaluate(policy, input({ evidence: ev })), 'provenance').codes[0]);
    assert.deepEqual(codes, ['SIGNER_UNTRUSTED', 'EVIDENCE_MISSING', 'SIGNATURE_INVALID']);
  });

  it('fails closed with the CEL error as the reason when where errors at runtime', () => {
    const p = compileGates(`  provenance:\n    require:\n      predicateType: ${PROVENANCE}\n      signers: [{ key: build-ci }]\n      where: int(predicate.count) / int(predicate.zero) > 1`);
    const d = evaluate(p, input({ evidence: [evidence(PROVENANCE, { count: '4', zero: '0' }, [{ key: 'build-ci' }])] }));
    const g = gate(d, 'provenance');
    assert.equal(g.outcome, 'fail');
    assert.deepEqual(g.codes, ['CEL_ERROR']);
    assert.match(g.text, /where failed on sha256:[0-9a-f]{12}: evaluation error: .*divide by zero/);
  });

  it('counts a threshold in distinct keys: one key twice is one', () => {
    const p = compileGates(`  two:\n    require:\n      predicateType: ${PROVENANCE}\n      signers: [{ key: build-ci }, { key: rebuilder }]\n      threshold: 2`);
    const same = evaluate(p, input({ evidence: [evidence(PROVENANCE, { a: 1 }, [{ key: 'build-ci' }]), evidence(PROVENANCE, { a: 2 }, [{ key: 'build-ci' }])] }));
    assert.deepEqual(gate(same, 'two').codes, ['THRESHOLD']);
    assert.match(gate(same, 'two').text, /2 distinct trusted keys needed, found 1 \(build-ci@1\)/);
    const two = evaluate(p, input({ evidence: [evidence(PROVENANCE, { a: 1 }, [{ key: 'build-ci' }]), evidence(PROVENANCE, { a: 2 }, [{ key: 'rebuilder' }])] }));
    assert.equal(gate(two, 'two').outcome, 'pass');
  });

  it('matches signers by name@version, keyid, and keyless identity and issuer globs', () => {
    const id = keyid('pinned');
    const p = compileGates(
      `  pinned:\n    require: { predicateType: ${PROVENANCE}, signers: [{ keyid: "${id}" }] }\n  versioned:\n    require: { predicateType: ${PROVENANCE}, signers: [{ key: build-ci@2 }] }\n  keyless:\n    require:\n      predicateType: ${PROVENANCE}\n      signers: [{ identity: "https://github.com/acme/*/.github/workflows/release.yml@refs/heads/main", issuer: "https://token.actions.githubusercontent.com" }]`,
    );
    const ok = evaluate(
      p,
      input({
        evidence: [
          evidence(PROVENANCE, {}, [{ keyid: id }]),
          evidence(PROVENANCE, {}, [{ key: 'build-ci', version: 2 }]),
          evidence(PROVENANCE, {}, [{ identity: 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main', issuer: 'https://token.actions.githubusercontent.com' }]),
        ],
      }),
    );
    assert.deepEqual(ok.gates.map((g) => g.outcome), ['pass', 'pass', 'pass']);
    const bad = evaluate(
      p,
      input({
        evidence: [
          evidence(PROVENANCE, {}, [{ key: 'build-ci', version: 1 }]),
          evidence(PROVENANCE, {}, [{ identity: 'https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main', issuer: 'https://token.actions.githubusercontent.com' }]),
          evidence(PROVENANCE, {}, [{ identity: 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main', issuer: 'https://evil.example' }]),
        ],
      }),
    );
    assert.deepEqual(bad.gates.map((g) => g.outcome), ['fail', 'fail', 'fail']);
  });

  it('says when a named key does not exist in the workspace', () => {
    const d = evaluate(policy, input({ keys: [{ keyid: 'x', name: 'other', version: 1, status: 'active', revokedAt: null, compromisedSince: null }] }));
    assert.ok(gate(d, 'provenance').codes.includes('KEY_UNKNOWN'));
    assert.match(gate(d, 'provenance').text, /no key named build-ci is known to this workspace/);
  });
});

describe('the CEL input', () => {
  it('exposes only verified statements to rules', () => {
    const p = compileGates('  count:\n    rule: { expr: "size(evidence) == 1 && evidence[0].predicate.v == 1 && evidence[0].signers[0].key == \\"build-ci@1\\"" }');
    const d = evaluate(p, input({ evidence: [evidence(PROVENANCE, { v: 1 }, [{ key: 'build-ci' }]), evidence(PROVENANCE, { v: 2 }, [{ key: 'build-ci', ok: false }])] }));
    assert.equal(gate(d, 'count').outcome, 'pass');
  });

  it('documents artifact, environment, current, actor, request, history and approvals as it says', () => {
    const expr = [
      'artifact.name == "pkg:npm/app" && artifact.version == "1.4.2" && artifact.digest.startsWith("sha256:") && artifact.labels.team == "payments"',
      'environment.name == "prod" && "staging" in environment.from',
      'current.version == "1.4.1"',
      'actor.identity == "ci:deployer" && "deployer" in actor.roles',
      'request.kind == "promotion" && request.time > timestamp("2026-01-01T00:00:00Z")',
      'history.exists(h, h.environment == "staging" && h.event == "promoted" && request.time - h.time > duration("24h"))',
      'approvals.size() == 1 && approvals[0].identity == "bob"',
    ].join(' && ');
    const p = compileGates(`  all:\n    rule:\n      expr: '${expr.replace(/'/g, "''")}'`);
    const d = evaluate(
      p,
      input({
        artifact: { digest: DIGEST, name: 'pkg:npm/app', version: '1.4.2', labels: { team: 'payments' }, source: null },
        current: { version: '1.4.1' },
        history: [{ environment: 'staging', event: 'promoted', time: '2026-03-09T10:00:00Z' }],
        approvals: [{ identity: 'bob', roles: ['approver'] }],
      }),
    );
    assert.equal(gate(d, 'all').outcome, 'pass', gate(d, 'all').text);
  });

  it('fails a rule closed with the error, and a false rule with its message', () => {
    const p = compileGates('  err:\n    rule: { expr: "artifact.labels.missing == \\"x\\"" }\n  no:\n    rule: { expr: "false", message: "never on Fridays" }');
    const d = evaluate(p, input());
    assert.deepEqual(gate(d, 'err').codes, ['CEL_ERROR']);
    assert.match(gate(d, 'err').text, /rule err: evaluation error/);
    assert.equal(gate(d, 'no').text, 'never on Fridays');
  });
});

describe('from and soak', () => {
  const policy = compileGates('  soak:\n    from: { soak: 24h }');
  const at = (time: string, event: 'promoted' | 'rolled-back' | 'replaced' = 'promoted', environment = 'staging') => ({ environment, event, time });

  it('passes after the soak in a source environment of the graph', () => {
    assert.equal(evaluate(policy, input({ history: [at('2026-03-10T09:00:00Z')] })).outcome, 'pass');
  });

  it('fails before the soak, saying when it would pass', () => {
    const g = gate(evaluate(policy, input({ history: [at('2026-03-11T04:00:00Z')] })), 'soak');
    assert.deepEqual(g.codes, ['SOAK']);
    assert.match(g.text, /in staging for 6h since 2026-03-11T04:00:00Z; 24h soak required \(passes at 2026-03-12T04:00:00.000Z\)/);
  });

  it('counts only the time before a replacement, refuses a rollback, and ignores other environments and the future', () => {
    assert.match(gate(evaluate(policy, input({ history: [at('2026-03-09T00:00:00Z'), at('2026-03-09T01:00:00Z', 'replaced')] })), 'soak').text, /spent 1h in staging before it was replaced/);
    assert.deepEqual(gate(evaluate(policy, input({ history: [at('2026-03-01T00:00:00Z'), at('2026-03-02T00:00:00Z', 'rolled-back')] })), 'soak').codes, ['ROLLED_BACK']);
    assert.deepEqual(gate(evaluate(policy, input({ history: [at('2026-03-01T00:00:00Z', 'promoted', 'dev')] })), 'soak').codes, ['NOT_PROMOTED']);
    assert.deepEqual(gate(evaluate(policy, input({ history: [at('2026-04-01T00:00:00Z')] })), 'soak').codes, ['NOT_PROMOTED']);
  });

  it('fails in a root environment, which has nowhere to come from', () => {
    assert.deepEqual(gate(evaluate(policy, input({ environment: { name: 'dev', from: [] } })), 'soak').codes, ['FROM_NONE']);
  });
});

describe('approvals and separation of duties', () => {
  const policy = compileGates('  approvals:\n    approvals:\n      count: 2\n      approvers: [{ role: approver }, { group: release }, { identity: "*@sre.example" }]\n      distinctFrom: [requester, signers, creator]');
  const signed = [evidence(PROVENANCE, {}, [{ key: 'build-ci', owner: 'carol@acme.example' }])];

  it('is pending, not failed, until the quorum is in', () => {
    const d = evaluate(policy, input({ approvals: [{ identity: 'bob', roles: ['approver'] }] }));
    assert.equal(d.outcome, 'pending');
    assert.match(gate(d, 'approvals').text, /have 1 \(bob\)/);
  });

  it('counts one vote per identity, by role, group or identity pattern', () => {
    assert.equal(evaluate(policy, input({ approvals: [{ identity: 'bob', roles: ['approver'] }, { identity: 'bob', roles: ['approver'] }] })).outcome, 'pending');
    assert.equal(evaluate(policy, input({ approvals: [{ identity: 'dan', roles: [], groups: ['release'] }, { identity: 'eve@sre.example', roles: [] }] })).outcome, 'pass');
  });

  it('refuses the requester, a signer of the evidence, the creator and non-approvers, saying why', () => {
    const d = evaluate(
      policy,
      input({
        actor: { identity: 'alice', roles: ['approver'] },
        evidence: signed,
        approvals: [
          { identity: 'alice', roles: ['approver'] },
          { identity: 'carol@acme.example', roles: ['approver'] },
          { identity: 'ci:builder', roles: ['approver'] },
          { identity: 'mallory', roles: ['deployer'] },
        ],
      }),
    );
    const g = gate(d, 'approvals');
    assert.equal(g.outcome, 'pending');
    assert.match(g.text, /alice is the requester/);
    assert.match(g.text, /carol@acme\.example signed the artifact's evidence/);
    assert.match(g.text, /ci:builder created the artifact/);
    assert.match(g.text, /mallory is not role approver or group release or identity \*@sre\.example/);
  });
});

describe('freeze windows in a time zone, across DST', () => {
  const weekend = compileGates('  freeze:\n    freeze:\n      timeZone: Europe/Berlin\n      weekly: [{ from: "fri 16:00", to: "mon 07:00", reason: weekend }]');
  const outcome = (p: typeof weekend, t: string) => gate(evaluate(p, input({ time: new Date(t) })), 'freeze').outcome;

  it('uses the wall clock of the zone on both sides of the spring change (Berlin, 29 March 2026)', () => {
    // Winter (UTC+1): Monday 06:30 local is 05:30Z, 07:30 local is 06:30Z.
    assert.equal(outcome(weekend, '2026-03-23T05:30:00Z'), 'fail');
    assert.equal(outcome(weekend, '2026-03-23T06:30:00Z'), 'pass');
    // Summer (UTC+2): the same wall-clock times are an hour earlier in UTC.
    assert.equal(outcome(weekend, '2026-03-30T04:30:00Z'), 'fail');
    assert.equal(outcome(weekend, '2026-03-30T05:30:00Z'), 'pass', 'a fixed UTC+1 offset would call this 06:30 and freeze it');
    assert.match(gate(evaluate(weekend, input({ time: new Date('2026-03-30T04:30:00Z') })), 'freeze').text, /local time is mon 2026-03-30 06:30 \(GMT\+2\)/);
  });

  it('handles a window inside the skipped and the repeated hour (New York, 8 March and 1 November 2026)', () => {
    const p = compileGates('  freeze:\n    freeze:\n      timeZone: America/New_York\n      weekly: [{ from: "sun 01:30", to: "sun 02:30" }]');
    // Spring forward: 02:00 EST becomes 03:00 EDT, so 01:30–02:00 exists and 02:00–02:30 does not.
    assert.equal(outcome(p, '2026-03-08T06:45:00Z'), 'fail', '01:45 EST');
    assert.equal(outcome(p, '2026-03-08T07:15:00Z'), 'pass', '03:15 EDT, past the window');
    // Fall back: 01:00–02:00 happens twice; 01:45 is frozen both times.
    assert.equal(outcome(p, '2026-11-01T05:45:00Z'), 'fail', '01:45 EDT');
    assert.equal(outcome(p, '2026-11-01T06:45:00Z'), 'fail', '01:45 EST');
    assert.equal(outcome(p, '2026-11-01T07:45:00Z'), 'pass', '02:45 EST, past the window');
  });

  it('treats a date range as local days, the end date inclusive', () => {
    const p = compileGates('  freeze:\n    freeze:\n      timeZone: Asia/Tokyo\n      dates: [{ from: "2026-12-28", to: "2027-01-03", reason: "year end" }]');
    assert.equal(outcome(p, '2026-12-27T14:59:00Z'), 'pass', '23:59 on the 27th in Tokyo');
    assert.equal(outcome(p, '2026-12-27T15:00:00Z'), 'fail', '00:00 on the 28th in Tokyo');
    assert.equal(outcome(p, '2027-01-03T14:59:00Z'), 'fail', '23:59 on the 3rd');
    assert.equal(outcome(p, '2027-01-03T15:00:00Z'), 'pass', '00:00 on the 4th');
  });
});

describe('versioning', () => {
  const policy = compileGates('  v:\n    versioning: { semver: true, noDowngrade: true, mustBeNewer: true, allowPrerelease: false }');
  const withVersion = (version: string, current: string | null, kind: 'promotion' | 'rollback' = 'promotion') =>
    gate(evaluate(policy, input({ kind, artifact: { digest: DIGEST, name: 'a', version, labels: {}, source: null }, current: current === null ? null : { version: current } })), 'v');

  it('refuses downgrades except by rollback, equal versions, prereleases and non-semver', () => {
    assert.equal(withVersion('1.4.2', '1.4.1').outcome, 'pass');
    assert.equal(withVersion('1.4.2', null).outcome, 'pass');
    assert.deepEqual(withVersion('1.4.0', '1.4.1').codes, ['DOWNGRADE', 'NOT_NEWER']);
    assert.deepEqual(withVersion('1.4.1', '1.4.1').codes, ['NOT_NEWER']);
    assert.deepEqual(withVersion('2.0.0-rc.1', '1.4.1').codes, ['VERSION_PRERELEASE']);
    assert.deepEqual(withVersion('v2', null).codes, ['VERSION_NOT_SEMVER']);
    const rollback = withVersion('1.4.0', '1.4.1', 'rollback');
    assert.equal(rollback.outcome, 'waived');
    assert.ok(rollback.codes.includes('WAIVED'));
  });
});

describe('tiers, fast-tracks and exceptions', () => {
  const policy = compileGates(
    '  approvals:\n    approvals: { count: 1 }\n  soak:\n    from: { soak: 24h }\n  freeze:\n    freeze: { timeZone: UTC, weekly: [{ from: "sat 00:00", to: "mon 00:00" }] }',
    'tiers:\n  standard: { gates: {} }\n  critical:\n    gates:\n      approvals: { approvals: { count: 2 } }\nfastTrack:\n  hotfix:\n    identities: ["ci:platform/*"]\n    teams: [platform]\n    relax: [soak, approvals]\nexceptions:\n  maxDuration: 2d\n',
  );
  const base = (labels: Record<string, string>, over: Parameters<typeof input>[0] = {}) =>
    evaluate(policy, input({ artifact: { digest: DIGEST, name: 'pkg:npm/app', version: '1.4.2', labels, source: null }, history: [{ environment: 'staging', event: 'promoted', time: '2026-03-01T00:00:00Z' }], approvals: [{ identity: 'bob', roles: ['approver'] }], ...over }));

  it('picks the gate set from the tier label, and denies an unknown tier', () => {
    assert.equal(base({ tier: 'standard' }).outcome, 'pass');
    assert.equal(base({}).outcome, 'pass', 'no tier label: the base gates');
    const critical = base({ tier: 'critical' });
    assert.equal(critical.tier, 'critical');
    assert.equal(critical.outcome, 'pending');
    const unknown = base({ tier: 'critcal' });
    assert.deepEqual(gate(unknown, 'tier').codes, ['TIER_UNKNOWN']);
    assert.equal(unknown.outcome, 'fail');
  });

  it('applies a fast-track only to its team and identities, and records what it waived', () => {
    const hot = base({ team: 'platform' }, { actor: { identity: 'ci:platform/gateway', roles: [] }, history: [], approvals: [] });
    assert.equal(hot.outcome, 'pass');
    assert.deepEqual(hot.fastTrack, [{ name: 'hotfix', waived: ['approvals', 'soak'] }]);
    assert.deepEqual(hot.gates.find((g) => g.name === 'soak')?.waivedBy, { kind: 'fast-track', id: 'hotfix' });
    assert.equal(base({ team: 'payments' }, { actor: { identity: 'ci:platform/gateway', roles: [] }, history: [] }).outcome, 'fail');
    assert.equal(base({ team: 'platform' }, { actor: { identity: 'ci:payments/app', roles: [] }, history: [] }).outcome, 'fail');
  });

  const SATURDAY = new Date('2026-03-14T12:00:00Z');
  const exception = (over: Partial<PolicyException> = {}): PolicyException => ({
    id: 'ex-1',
    environment: 'prod',
    gates: ['freeze'],
    artifact: DIGEST,
    justification: 'incident 4711',
    requestedBy: 'alice',
    createdAt: '2026-03-14T10:00:00Z',
    expiresAt: '2026-03-15T10:00:00Z',
    approvedBy: 'bob',
    approverRoles: ['approver'],
    approvedAt: '2026-03-14T11:00:00Z',
    revokedAt: null,
    revokedBy: null,
    ...over,
  });
  const withException = (e: PolicyException) => base({}, { time: SATURDAY, exceptions: [e] });

  it('lets an approved exception override a freeze, and records it', () => {
    const d = withException(exception());
    assert.equal(d.outcome, 'pass');
    assert.deepEqual(d.exceptions, [{ id: 'ex-1', gates: ['freeze'], applied: true, reason: 'waived freeze' }]);
    assert.deepEqual(d.gates.find((g) => g.name === 'freeze')?.waivedBy, { kind: 'exception', id: 'ex-1' });
    assert.equal(withException(exception({ artifact: 'pkg:npm/app@1.4.*' })).outcome, 'pass', 'a glob over name@version');
  });

  const refused: [string, Partial<PolicyException>, RegExp | undefined][] = [
    ['expired', { expiresAt: '2026-03-14T11:30:00Z' }, /expired at 2026-03-14T11:30:00Z/],
    ['approved by its requester', { approvedBy: 'alice' }, /approved by its own requester \(alice\)/],
    ['not approved', { approvedBy: null, approvedAt: null }, /not approved yet/],
    ['revoked', { revokedAt: '2026-03-14T11:45:00Z', revokedBy: 'carol' }, /revoked at .* by carol/],
    ['for another environment', { environment: 'staging' }, undefined],
    ['for another digest', { artifact: `sha256:${'00'.repeat(32)}` }, undefined],
    ['longer than the policy allows', { createdAt: '2026-03-01T00:00:00Z', approvedAt: '2026-03-01T00:00:00Z', expiresAt: '2026-03-20T00:00:00Z' }, /lasts longer than the policy allows \(2d\)/],
    ['approved by someone who is not an approver', { approverRoles: ['deployer'] }, /who is not role approver/],
  ];
  for (const [what, over, why] of refused) {
    it(`does not apply an exception ${what}`, () => {
      const d = withException(exception(over));
      assert.equal(d.outcome, 'fail');
      assert.equal(gate(d, 'freeze').outcome, 'fail');
      if (why) assert.match(d.exceptions[0]?.reason ?? '', why);
      else assert.deepEqual(d.exceptions, []);
    });
  }
});

describe('the decision', () => {
  it('is deterministic, uses only the given reference time, and lists the policy digest and inputs', () => {
    const p = compileGates(REQUIRE + '\n  soak:\n    from: { soak: 1h }');
    const i = input({ evidence: [evidence(PROVENANCE, { repo: 'acme/app' }, [{ key: 'build-ci' }], { digest: 'sha256:e1' })], history: [{ environment: 'staging', event: 'promoted', time: '2026-03-11T09:30:00Z' }] });
    const a = evaluate(p, i);
    const b = evaluate(p, i);
    assert.deepEqual(a, b);
    assert.equal(a.time, '2026-03-11T10:00:00.000Z');
    assert.match(a.policy.digest, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(a.inputs, { actor: 'ci:deployer', evidence: [{ digest: 'sha256:e1', predicateType: PROVENANCE, verified: true }], approvals: [], current: null, history: 1, exceptions: [] });
    assert.equal(gate(a, 'soak').outcome, 'fail');
    assert.equal(gate(evaluate(p, { ...i, time: new Date('2026-03-11T11:00:00Z') }), 'soak').outcome, 'pass');
  });
});
