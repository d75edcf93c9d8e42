import type { ApprovalRepository, ArtifactRepository, EnvironmentRepository, EvidenceRepository, ExceptionRepository, KeyRepository, LogRepository, PolicyRepository, PromotionRepository, TokenRepository, Tx } from '../../core/ports.ts';
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
  return new BoundTx(db);
}

/**
 * Each repository is made on first use in the transaction, and once: most
 * transactions use three or four of the ten, and a promotion runs several
 * transactions (making all ten cost ~10 KB of closures a promotion).
 */
class BoundTx implements Tx {
  private readonly db: SqlExecutor;
  private cacheOf: TxCache | undefined;
  private a: ArtifactRepository | undefined;
  private k: KeyRepository | undefined;
  private l: LogRepository | undefined;
  private t: TokenRepository | undefined;
  private e: EvidenceRepository | undefined;
  private p: PolicyRepository | undefined;
  private x: ExceptionRepository | undefined;
  private pr: PromotionRepository | undefined;
  private ap: ApprovalRepository | undefined;
  private en: EnvironmentRepository | undefined;

  constructor(db: SqlExecutor) {
    this.db = db;
  }

  private get cache(): TxCache {
    return (this.cacheOf ??= new TxCache(this.db));
  }

  get artifacts(): ArtifactRepository {
    return (this.a ??= artifactRepository(this.db));
  }

  get keys(): KeyRepository {
    return (this.k ??= keyRepository(this.db, this.cache));
  }

  get log(): LogRepository {
    return (this.l ??= logRepository(this.db));
  }

  get tokens(): TokenRepository {
    return (this.t ??= tokenRepository(this.db));
  }

  get evidence(): EvidenceRepository {
    return (this.e ??= evidenceRepository(this.db));
  }

  get policies(): PolicyRepository {
    return (this.p ??= policyRepository(this.db, this.cache));
  }

  get exceptions(): ExceptionRepository {
    return (this.x ??= exceptionRepository(this.db));
  }

  get promotions(): PromotionRepository {
    return (this.pr ??= promotionRepository(this.db));
  }

  get approvals(): ApprovalRepository {
    return (this.ap ??= approvalRepository(this.db));
  }

  get environments(): EnvironmentRepository {
    return (this.en ??= environmentRepository(this.db));
  }
}
