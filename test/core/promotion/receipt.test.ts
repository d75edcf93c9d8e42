import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildReceiptStatement, environmentLevel, resourceUri, slsaBuildLevel, VSA_PREDICATE_TYPE, type ReceiptPredicate } from '../../../src/core/promotion/index.ts';
import { world } from './world.ts';

describe('receipts (SLSA VSA v1)', () => {
  it('carries the VSA fields: verifier, time, resource, policy digest, inputs by digest, result and levels', async () => {
    const w = await world();
    await w.promote('dev');
    await w.promote('staging');
    const { plan } = await w.promote('prod');
    const statement = buildReceiptStatement({ plan, artifact: w.artifact, verifierId: 'https://custody.example/acme', verifierVersion: '0.1.0', time: plan.time });
    assert.equal(statement.predicateType, VSA_PREDICATE_TYPE);
    assert.deepEqual(statement.subject, [{ name: 'pkg:npm/app@1.4.2', digest: { sha256: w.artifact.digests.sha256 } }]);
    const p = statement.predicate as unknown as ReceiptPredicate;
    assert.equal(p.verifier.id, 'https://custody.example/acme');
    assert.equal(p.timeVerified, plan.time);
    assert.equal(p.resourceUri, 'pkg:npm/app@1.4.2');
    assert.equal(`sha256:${p.policy.digest['sha256'] ?? ''}`, plan.decision.policy.digest, 'policy.digest is the decision policy digest');
    assert.match(p.policy.uri, /^custody:policy\/p/);
    assert.deepEqual(p.inputAttestations.map((i) => `sha256:${i.digest['sha256'] ?? ''}`), [w.evidence[0]!.digest, plan.relied.sources[0]!.receipt]);
    assert.equal(p.verificationResult, 'PASSED');
    assert.deepEqual(p.verifiedLevels, ['SLSA_BUILD_LEVEL_2', 'CUSTODY_ENV_PROD']);
    assert.equal(p.slsaVersion, '1.0');
    assert.deepEqual(p.custody.from, ['staging']);
    assert.equal(p.custody.sources[0]?.environment, 'staging');
  });

  it('names environment levels and resources predictably', () => {
    assert.equal(environmentLevel('prod-eu'), 'CUSTODY_ENV_PROD_EU');
    assert.equal(resourceUri('pkg:oci/app', '1.0.0'), 'pkg:oci/app@1.0.0');
    assert.equal(resourceUri('acme app', '1.0.0+b'), 'pkg:generic/acme%20app@1.0.0%2Bb');
  });

  it('reads the build level from the provenance: L1 unsigned builder, L2 hosted, L3 known hardened builders', () => {
    const prov = (id: string, signers = 1) => ({ digest: `sha256:${id.length.toString(16).padStart(64, '0')}` as const, predicateType: 'https://slsa.dev/provenance/v1', signedAt: '', gates: [], signers: Array.from({ length: signers }, () => ({ keyid: 'k' })) });
    const st = (id: string) => ({ _type: 'https://in-toto.io/Statement/v1' as const, subject: [], predicateType: 'https://slsa.dev/provenance/v1', predicate: { runDetails: { builder: { id } } } });
    const level = (id: string) => {
      const e = prov(id);
      return slsaBuildLevel([e], new Map([[e.digest, st(id)]]));
    };
    assert.equal(level('local-laptop'), 1);
    assert.equal(level('https://github.com/actions/runner/github-hosted'), 2);
    assert.equal(level('https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0'), 3);
    assert.equal(slsaBuildLevel([], new Map()), null);
  });
});
