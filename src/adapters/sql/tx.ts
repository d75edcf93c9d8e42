import type { Tx } from '../../core/ports.ts';
import { artifactRepository } from './artifacts.ts';
import { evidenceRepository } from './evidence.ts';
import type { SqlExecutor } from './executor.ts';
import { keyRepository } from './keys.ts';
import { logRepository } from './log.ts';
import { tokenRepository } from './tokens.ts';
import { exceptionRepository, policyRepository } from './policies.ts';

/** Binds every repository to one executor: one transaction, one set of repositories. */
export function bindTx(db: SqlExecutor): Tx {
  return {
    artifacts: artifactRepository(db),
    keys: keyRepository(db),
    log: logRepository(db),
    tokens: tokenRepository(db),
    evidence: evidenceRepository(db),
    policies: policyRepository(db),
    exceptions: exceptionRepository(db),
  };
}
