import type { Target, TargetOutcome } from '../core/ports.ts';

/**
 * A target that moves nothing: the signed receipt and the log entry are the
 * promotion, for deployments that pull (an admission controller or a deploy
 * job asks `custody verify <artifact> --env E`).
 */
export class NoneTarget implements Target {
  readonly type = 'none';

  apply(): Promise<TargetOutcome> {
    return Promise.resolve({ output: '', details: {} });
  }
}
