import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/core/config.ts';
import { throwsWithCode } from '../helpers.ts';

const HEAD = 'version: 1\nlog:\n  origin: custody.test/x\n';

function problems(envs: string): string {
  return throwsWithCode(() => parseConfig(`${HEAD}environments:\n${envs}`, 'custody.yaml'), 'CONFIG_INVALID').message;
}

describe('environments: the promotion graph', () => {
  it('accepts a DAG with branches, and defaults sources to none', () => {
    const c = parseConfig(`${HEAD}environments:\n  dev: {}\n  staging: { from: [dev] }\n  prod-eu: { from: [staging], policy: prod }\n  prod-us: { from: [staging], policy: prod, target: { kind: fs, dir: /srv } }\n`, 'custody.yaml');
    assert.deepEqual(c.environments['dev'], { from: [] });
    assert.deepEqual(c.environments['prod-eu'], { from: ['staging'], policy: 'prod' });
    assert.deepEqual(c.environments['prod-us']?.target, { kind: 'fs', dir: '/srv' });
    assert.equal(c.requireSignedPolicies, true);
    assert.equal(c.policies.dir, 'policies');
  });

  it('refuses an unknown source and a self-loop, at the line', () => {
    assert.match(problems('  dev: {}\n  prod: { from: [stagin] }\n'), /custody\.yaml:6:18: environments\.prod\.from\.0: unknown source environment "stagin"/);
    assert.match(problems('  dev: { from: [dev] }\n'), /environments\.dev\.from\.0: an environment cannot be promoted from itself/);
    assert.match(problems('  dev: {}\n  prod: { from: [dev, dev] }\n'), /"dev" is listed twice/);
  });

  it('refuses a cycle, naming it', () => {
    assert.match(problems('  a: { from: [c] }\n  b: { from: [a] }\n  c: { from: [b] }\n'), /the promotion graph has a cycle: .*a.*→.*→.*→/);
  });

  it('refuses unknown fields and bad names', () => {
    assert.match(problems('  dev: { form: [x] }\n'), /custody\.yaml:5:10: environments\.dev\.form: unknown field "form"/);
    assert.match(problems('  Prod: {}\n'), /environments\.Prod/);
  });
});
