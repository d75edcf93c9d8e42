import type { EnvironmentConfig } from '../core/config.ts';
import { CustodyError } from '../core/errors.ts';
import type { Context } from './workspace.ts';

/** One environment's configuration, or ENVIRONMENT_NOT_FOUND naming the ones that exist. */
export function environmentConfig(ctx: Context, environment: string): EnvironmentConfig {
  const env = Object.hasOwn(ctx.config.environments, environment) ? ctx.config.environments[environment] : undefined;
  if (!env) {
    const known = Object.keys(ctx.config.environments);
    throw new CustodyError('ENVIRONMENT_NOT_FOUND', `no environment named ${environment}`, { hint: known.length > 0 ? `environments: ${known.join(', ')}` : 'define environments in custody.yaml' });
  }
  return env;
}
