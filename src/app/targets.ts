/**
 * The composition root for targets: custody.yaml's `target:` of an environment
 * becomes one adapter behind the Target port, the only thing the promotion
 * engine knows. A new kind of target is a schema member and a case here.
 */
import { isAbsolute, resolve } from 'node:path';
import { CommandTarget } from '../adapters/target-command.ts';
import { FsTarget } from '../adapters/target-fs.ts';
import { NoneTarget } from '../adapters/target-none.ts';
import type { TargetConfig } from '../core/config.ts';
import type { Target } from '../core/ports.ts';
import { parseDuration } from '../core/time.ts';
import type { Context } from './workspace.ts';

export function targetFrom(config: TargetConfig, home: string): Target {
  switch (config.type) {
    case 'none':
      return new NoneTarget();
    case 'fs':
      return new FsTarget(isAbsolute(config.dir) ? config.dir : resolve(home, config.dir));
    case 'command':
      return new CommandTarget({ command: config.command, timeoutMs: parseDuration(config.timeout), maxOutputBytes: config.maxOutputBytes, cwd: home });
  }
}

/** How long an apply may take before anyone may presume its process dead and recover it. */
export function applyBudgetMs(config: TargetConfig): number {
  return config.type === 'command' ? parseDuration(config.timeout) : 60_000;
}

export function targetForEnvironment(ctx: Context, environment: string): Target {
  const env = ctx.config.environments[environment];
  return targetFrom(env?.target ?? { type: 'none' }, ctx.home);
}
