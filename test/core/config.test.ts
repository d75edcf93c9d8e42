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
    const c = parseConfig(`${HEAD}environments:\n  dev: {}\n  staging: { from: [dev] }\n  prod-eu: { from: [staging], policy: prod }\n  prod-us: { from: [staging], policy: prod, target: { type: fs, dir: /srv } }\n`, 'custody.yaml');
    const defaults = { target: { type: 'none' }, receiptKey: 'receipts', concurrency: 'supersede' };
    assert.deepEqual(c.environments['dev'], { from: [], ...defaults });
    assert.deepEqual(c.environments['prod-eu'], { from: ['staging'], policy: 'prod', ...defaults });
    assert.deepEqual(c.environments['prod-us']?.target, { type: 'fs', dir: '/srv' });
    assert.equal(c.requireSignedPolicies, true);
    assert.equal(c.policies.dir, 'policies');
  });

  it('reads targets: none, fs and command (argv, timeout, output cap), and refuses unknown ones', () => {
    const c = parseConfig(`${HEAD}environments:\n  dev: { target: { type: command, command: [deploy.sh, --fast] } }\n  prod: { from: [dev], receiptKey: prod-receipts, concurrency: queue, target: { type: command, command: [x], timeout: 30s, maxOutputBytes: 100 } }\n`, 'custody.yaml');
    assert.deepEqual(c.environments['dev']?.target, { type: 'command', command: ['deploy.sh', '--fast'], timeout: '5m', maxOutputBytes: 65536 });
    assert.deepEqual(c.environments['prod']?.target, { type: 'command', command: ['x'], timeout: '30s', maxOutputBytes: 100 });
    assert.equal(c.environments['prod']?.receiptKey, 'prod-receipts');
    assert.equal(c.environments['prod']?.concurrency, 'queue');
    assert.match(problems('  dev: { target: { type: oci } }\n'), /environments\.dev\.target/);
    assert.match(problems('  dev: { target: { type: command, command: [] } }\n'), /environments\.dev\.target\.command/);
    assert.match(problems('  dev: { target: { type: fs } }\n'), /environments\.dev\.target\.dir/);
    assert.match(problems('  dev: { target: { type: command, command: [x], timeout: soon } }\n'), /timeout/);
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
