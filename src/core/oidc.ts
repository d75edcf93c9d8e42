/**
 * OIDC workload identity: from a verified token's claims to an Actor. Pure; the
 * signature, issuer, audience and times are checked before this runs
 * (src/app/auth.ts). Anyone on GitHub or GitLab can obtain a token for any
 * audience, so a valid signature proves only *which* workload is calling: the
 * rules decide whether that workload gets anything at all, and a token that
 * matches no rule is refused.
 */
import type { OidcIssuerConfig } from './config.ts';
import { CustodyError } from './errors.ts';
import { validateIdentity, type Actor } from './identity.ts';

export type Claims = Record<string, unknown>;

function claimText(claims: Claims, name: string): string | undefined {
  const v = claims[name];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function requireClaim(claims: Claims, name: string): string {
  const v = claims[name];
  if (typeof v !== 'string' || v === '') throw new CustodyError('AUTH_INVALID', `the token has no "${name}" claim`);
  return v;
}

/**
 * GitHub Actions: `repository` + `job_workflow_ref` give
 * `github:acme/app//.github/workflows/release.yml@refs/heads/main`. A reusable
 * workflow from another repository keeps its full reference after the `//`, so
 * it never looks like one of the caller's own workflows.
 * GitLab CI: `project_path` + `ref` (+ `ref_type`) give `gitlab:acme/app@refs/heads/main`.
 */
export function workloadIdentity(mode: OidcIssuerConfig['identity'], claims: Claims): string {
  let identity: string;
  if (mode === 'github') {
    const repository = requireClaim(claims, 'repository');
    const workflow = requireClaim(claims, 'job_workflow_ref');
    const own = `${repository}/`;
    identity = `github:${repository}//${workflow.startsWith(own) ? workflow.slice(own.length) : workflow}`;
  } else if (mode === 'gitlab') {
    const project = requireClaim(claims, 'project_path');
    const ref = requireClaim(claims, 'ref');
    const kind = claims['ref_type'] === 'tag' ? 'tags' : 'heads';
    identity = `gitlab:${project}@${ref.startsWith('refs/') ? ref : `refs/${kind}/${ref}`}`;
  } else {
    identity = requireClaim(claims, mode.slice('claim:'.length));
  }
  try {
    return validateIdentity(identity);
  } catch (e) {
    throw new CustodyError('AUTH_INVALID', 'the token claims do not form a valid identity', { cause: e });
  }
}

/** `*` matches any run of characters; everything else is literal. */
export function claimMatches(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`, 's');
  return re.test(value);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The first rule whose claims all match decides the roles and the environment scope. */
export function mapWorkload(issuer: Pick<OidcIssuerConfig, 'identity' | 'rules'>, claims: Claims): Actor {
  const identity = workloadIdentity(issuer.identity, claims);
  for (const rule of issuer.rules) {
    const ok = Object.entries(rule.claims).every(([name, pattern]) => {
      const v = claimText(claims, name);
      return v !== undefined && claimMatches(pattern, v);
    });
    if (ok) return { identity, roles: [...new Set(rule.roles)], ...(rule.environments === undefined ? {} : { environments: [...rule.environments] }) };
  }
  throw new CustodyError('AUTH_INVALID', `no rule of this issuer grants ${identity} any role`, {
    hint: 'add a rule under server.oidc.issuers[].rules matching this workload',
  });
}
