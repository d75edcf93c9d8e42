import type { Tx } from '../../core/ports.ts';
import { artifactRepository } from './artifacts.ts';
import { TxCache } from './cache.ts';
import { evidenceRepository } from './evidence.ts';
import type { SqlExecutor } from './executor.ts';
import { keyRepository } from './keys.ts';
import { logRepository } from './log.ts';
import { tokenRepository } from './tokens.ts';
import { exceptionRepository, policyRepository } from './policies.ts';
import { approvalRepository, environmentRepository, promotionRepository } from './promotions.ts';

/** Binds every repository to one executor: one transaction, one set of repositories. */
export function bindTx(db: SqlExecutor): Tx {
  const cache = new TxCache(db);
  return {
    artifacts: artifactRepository(db),
    keys: keyRepository(db, cache),
    log: logRepository(db),
    tokens: tokenRepository(db),
    evidence: evidenceRepository(db),
    policies: policyRepository(db, cache),
    exceptions: exceptionRepository(db),
    promotions: promotionRepository(db),
    approvals: approvalRepository(db),
    environments: environmentRepository(db),
  };
}
