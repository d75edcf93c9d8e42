import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareVersions, parseArtifactRef, parseLabels, parseSource, validateName, validateVersion } from '../../src/core/artifact.ts';
import { throwsWithCode } from '../helpers.ts';

describe('artifact names and versions', () => {
  it('accepts package URLs and plain names', () => {
    for (const n of ['pkg:npm/app', 'pkg:npm/%40acme/app', 'pkg:oci/app', 'pkg:maven/org.acme/app', 'app', 'acme/app', '@acme/app', 'app_1.x']) {
      assert.equal(validateName(n), n);
    }
  });

  for (const n of ['', '   ', 'pkg:', 'pkg:npm', 'pkg:NPM/app', 'pkg:npm/app@1.0.0', '-app', 'a b', 'app/../etc', 'x'.repeat(257), 'ünïcode']) {
    it(`refuses name ${JSON.stringify(n.slice(0, 20))} with NAME_INVALID`, () => {
      throwsWithCode(() => validateName(n), 'NAME_INVALID');
    });
  }

  it('accepts strict semver only', () => {
    for (const v of ['0.0.1', '1.4.2', '2.0.0-rc.1', '1.0.0+build.5']) assert.equal(validateVersion(v), v);
  });

  for (const v of ['', '1', '1.0', 'v1.0.0', '01.0.0', '1.0.0.0', ' 1.0.0', 'latest']) {
    it(`refuses version ${JSON.stringify(v)} with VERSION_INVALID`, () => {
      throwsWithCode(() => validateVersion(v), 'VERSION_INVALID');
    });
  }

  it('orders versions by semver precedence, not text', () => {
    assert.ok(compareVersions('1.10.0', '1.9.0') > 0);
    assert.ok(compareVersions('2.0.0-rc.1', '2.0.0') < 0);
  });

  it('parses labels and refuses duplicates and bad keys', () => {
    assert.deepEqual(parseLabels(['tier=critical', 'team=payments']), { tier: 'critical', team: 'payments' });
    throwsWithCode(() => parseLabels(['tier=a', 'tier=b']), 'INPUT_INVALID');
    throwsWithCode(() => parseLabels(['=x']), 'INPUT_INVALID');
    throwsWithCode(() => parseLabels(['Tier=x']), 'INPUT_INVALID');
    throwsWithCode(() => parseLabels(['novalue']), 'INPUT_INVALID');
  });

  it('parses sources with and without a commit', () => {
    assert.deepEqual(parseSource('https://github.com/acme/app@3f2c1e9'), { repository: 'https://github.com/acme/app', commit: '3f2c1e9' });
    assert.deepEqual(parseSource('https://github.com/acme/app'), { repository: 'https://github.com/acme/app' });
    throwsWithCode(() => parseSource('https://github.com/acme/app@not-a-commit'), 'INPUT_INVALID');
  });

  it('parses references by digest, name@version and scoped names', () => {
    assert.deepEqual(parseArtifactRef(`sha256:${'b'.repeat(64)}`), { kind: 'digest', digest: `sha256:${'b'.repeat(64)}` });
    assert.deepEqual(parseArtifactRef('pkg:npm/app@1.2.3'), { kind: 'name', name: 'pkg:npm/app', version: '1.2.3' });
    assert.deepEqual(parseArtifactRef('@acme/app'), { kind: 'name', name: '@acme/app', version: undefined });
    assert.deepEqual(parseArtifactRef('@acme/app@1.0.0'), { kind: 'name', name: '@acme/app', version: '1.0.0' });
    throwsWithCode(() => parseArtifactRef('sha256:zz'), 'DIGEST_INVALID');
  });
});
