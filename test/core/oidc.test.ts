import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimMatches, mapWorkload, workloadIdentity } from '../../src/core/oidc.ts';
import { throwsWithCode } from '../helpers.ts';

describe('OIDC claim mapping', () => {
  it('builds GitHub identities from repository and job_workflow_ref, keeping a reusable workflow distinct', () => {
    assert.equal(
      workloadIdentity('github', { repository: 'acme/app', job_workflow_ref: 'acme/app/.github/workflows/release.yml@refs/heads/main' }),
      'github:acme/app//.github/workflows/release.yml@refs/heads/main',
    );
    assert.equal(
      workloadIdentity('github', { repository: 'acme/app', job_workflow_ref: 'acme/shared/.github/workflows/build.yml@refs/tags/v1' }),
      'github:acme/app//acme/shared/.github/workflows/build.yml@refs/tags/v1',
    );
    // A repository whose name is a prefix of another's must not borrow its workflows.
    assert.equal(
      workloadIdentity('github', { repository: 'acme/app', job_workflow_ref: 'acme/app-evil/.github/workflows/x.yml@refs/heads/main' }),
      'github:acme/app//acme/app-evil/.github/workflows/x.yml@refs/heads/main',
    );
  });

  it('builds GitLab identities from project_path and ref', () => {
    assert.equal(workloadIdentity('gitlab', { project_path: 'acme/app', ref: 'main', ref_type: 'branch' }), 'gitlab:acme/app@refs/heads/main');
    assert.equal(workloadIdentity('gitlab', { project_path: 'acme/app', ref: 'v1.2.0', ref_type: 'tag' }), 'gitlab:acme/app@refs/tags/v1.2.0');
    assert.equal(workloadIdentity('claim:email', { email: 'ci@acme.example' }), 'ci@acme.example');
  });

  it('refuses missing or non-string claims and identities with odd characters', () => {
    throwsWithCode(() => workloadIdentity('github', { repository: 'acme/app' }), 'AUTH_INVALID');
    throwsWithCode(() => workloadIdentity('github', { repository: 42, job_workflow_ref: 'x' }), 'AUTH_INVALID');
    throwsWithCode(() => workloadIdentity('claim:sub', { sub: 'has space' }), 'AUTH_INVALID');
  });

  it('matches claims exactly, with * as the only wildcard', () => {
    assert.ok(claimMatches('acme/*', 'acme/app'));
    assert.ok(!claimMatches('acme/*', 'acmecorp/app'));
    assert.ok(!claimMatches('acme/app', 'acme/app2'));
    assert.ok(!claimMatches('acme.app', 'acmeXapp'), 'dots are literal');
    assert.ok(claimMatches('refs/heads/*', 'refs/heads/main'));
  });

  it('lets the first matching rule decide, and refuses when none does', () => {
    const issuer = {
      identity: 'github' as const,
      rules: [
        { claims: { repository: 'acme/app', ref: 'refs/heads/main' }, roles: ['builder' as const], environments: ['dev'] },
        { claims: { repository: 'acme/*' }, roles: ['auditor' as const] },
      ],
    };
    const claims = { repository: 'acme/app', job_workflow_ref: 'acme/app/.github/workflows/a.yml@refs/heads/main', ref: 'refs/heads/main' };
    assert.deepEqual(mapWorkload(issuer, claims), { identity: 'github:acme/app//.github/workflows/a.yml@refs/heads/main', roles: ['builder'], environments: ['dev'] });
    assert.deepEqual(mapWorkload(issuer, { ...claims, ref: 'refs/heads/feature' }).roles, ['auditor']);
    throwsWithCode(() => mapWorkload(issuer, { ...claims, repository: 'other/app', job_workflow_ref: 'other/app/.github/workflows/a.yml@refs/heads/main' }), 'AUTH_INVALID');
  });
});
