import { CustodyError } from './errors.ts';

export const ROLES = ['builder', 'signer', 'approver', 'deployer', 'policy-admin', 'key-admin', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Who acts. Locally the identity comes from config or `--as`; over the network it
 * comes from an authenticated token or an OIDC workload identity, never from a body.
 */
export interface Actor {
  identity: string;
  roles: readonly Role[];
  /** Environments a token is scoped to; undefined means every environment. */
  environments?: readonly string[];
}

const IDENTITY_RE = /^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,255}$/;

export function validateIdentity(identity: string): string {
  if (!IDENTITY_RE.test(identity)) {
    throw new CustodyError('IDENTITY_INVALID', `"${identity}" is not a valid identity`, {
      hint: 'e.g. alice@example.com, ci:release or github:acme/app//.github/workflows/release.yml@refs/heads/main',
    });
  }
  return identity;
}

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

export function parseRoles(input: readonly string[]): Role[] {
  const roles: Role[] = [];
  for (const r of input) {
    if (!isRole(r)) throw new CustodyError('INPUT_INVALID', `unknown role "${r}"`, { hint: `roles: ${ROLES.join(', ')}` });
    if (!roles.includes(r)) roles.push(r);
  }
  return roles;
}

export function hasRole(actor: Actor, role: Role): boolean {
  return actor.roles.includes(role);
}

export function requireRole(actor: Actor, role: Role, action: string): void {
  if (!hasRole(actor, role)) {
    throw new CustodyError('ROLE_REQUIRED', `${action} requires the ${role} role; ${actor.identity} does not hold it`, {
      hint: `${role} comes from custody.yaml (roles:) locally, and from the token or OIDC rule against a server`,
    });
  }
}
