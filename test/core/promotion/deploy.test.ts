import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { revokeKey, toTrustedKeys } from '../../../src/core/key.ts';
import { verifyDeployment, type DeployRequest } from '../../../src/core/promotion/index.ts';
import { testKey } from '../../fixtures/keys.ts';
import { artifactOf, attest, PROVENANCE, provenancePredicate, sha256, world, type World } from './world.ts';

const NOW = new Date('2026-03-12T12:00:00Z');

async function promotedWorld(): Promise<World & { prod: string; staging: string; dev: string }> {
  const w = await world();
  const dev = await w.promote('dev');
  const staging = await w.promote('staging');
  const prod = await w.promote('prod');
  for (const p of [dev, staging, prod]) assert.equal(p.plan.action, 'apply', JSON.stringify(p.plan.reasons));
  return Object.assign(w, { dev: dev.receipt.digest, staging: staging.receipt.digest, prod: prod.receipt.digest });
}

function request(w: World, receipt: string, over: Partial<DeployRequest> = {}): DeployRequest {
  return {
    artifact: w.artifact.digest,
    environment: 'prod',
    now: NOW,
    keys: w.trusted(),
    maxBytes: 1 << 20,
    current: { source: 'store', receipt, artifact: w.artifact.digest, version: w.artifact.version },
    receipts: w.receipts,
    evidence: w.evidenceTexts,
    log: w.log,
    ...over,
  };
}

const codes = (r: { reasons: { code: string }[] }) => r.reasons.map((x) => x.code);

describe('verifyDeployment', () => {
  it('admits the current receipt whose chain runs back through the graph', async () => {
    const w = await promotedWorld();
    const r = verifyDeployment(request(w, w.prod));
    assert.deepEqual(r.reasons, []);
    assert.equal(r.ok, true);
    assert.deepEqual(r.chain.map((c) => [c.environment, c.ok]), [['prod', true], ['staging', true], ['dev', true]]);
    assert.equal(r.chain[0]?.version, '1.4.2');
  });

  it('D2: refuses a tampered receipt', async () => {
    const w = await promotedWorld();
    const text = w.receipts.get(w.prod)!;
    const tampered = new Map(w.receipts).set(w.prod, text.replace('"payload":"', '"payload":"e'));
    assert.deepEqual(codes(verifyDeployment(request(w, w.prod, { receipts: tampered }))), ['RECEIPT_TAMPERED']);
  });

  it('D4: refuses a receipt re-signed by a key it does not trust, and one signed by a key revoked since', async () => {
    const w = await promotedWorld();
    const stranger = testKey({ name: 'receipts', purposes: ['promotion-receipt'] });
    const untrusted = toTrustedKeys([w.buildCi.record, stranger.record]);
    const r = verifyDeployment(request(w, w.prod, { keys: untrusted }));
    assert.deepEqual(codes(r), ['RECEIPT_INVALID']);
    assert.match(r.reasons[0]?.message ?? '', /KEY_UNKNOWN/);
    // Revoked today, even with a compromise after the receipt was logged: no longer a currently trusted key.
    w.setKey(revokeKey(w.receiptKey.record, { reason: 'superseded', now: NOW }));
    assert.deepEqual(codes(verifyDeployment(request(w, w.prod))), ['RECEIPT_KEY_REVOKED']);
  });

  it('D5: refuses a receipt for another environment, even when the log is forged to say otherwise', async () => {
    const w = await promotedWorld();
    // The store names the staging receipt as prod's: its log entry is for staging.
    assert.deepEqual(codes(verifyDeployment(request(w, w.staging))), ['NOT_IN_LOG']);
    const forged = new Map(w.log);
    const entry = w.log.get(w.staging)!;
    forged.set(w.staging, { ...entry, body: entry.body.replace('"environment":"staging"', '"environment":"prod"') });
    assert.deepEqual(codes(verifyDeployment(request(w, w.staging, { log: forged }))), ['RECEIPT_WRONG_ENVIRONMENT']);
  });

  it('D1/D5: refuses another digest', async () => {
    const w = await promotedWorld();
    const other = artifactOf('pkg:npm/app', '1.4.3');
    assert.deepEqual(codes(verifyDeployment(request(w, w.prod, { artifact: other.digest }))), ['RECEIPT_NOT_CURRENT']);
    // A store pointing prod at this receipt for another digest: the log and the subject say no.
    const r = verifyDeployment(request(w, w.prod, { artifact: other.digest, current: { source: 'store', receipt: w.prod, artifact: other.digest } }));
    assert.deepEqual(codes(r), ['NOT_IN_LOG']);
    assert.deepEqual(codes(verifyDeployment(request(w, w.prod, { artifact: 'sha256:nothex' }))), ['ARTIFACT_DIGEST_INVALID']);
  });

  it('D3: refuses a receipt no log entry records, or whose inclusion proof fails', async () => {
    const w = await promotedWorld();
    const log = new Map(w.log);
    log.delete(w.prod);
    assert.deepEqual(codes(verifyDeployment(request(w, w.prod, { log }))), ['NOT_IN_LOG']);
    const r = verifyDeployment(request(w, w.prod, { checkInclusion: () => ({ code: 'INCLUSION_INVALID', message: 'proof does not match the checkpoint' }) }));
    assert.deepEqual(codes(r), ['INCLUSION_INVALID']);
  });

  it('D6: flips to failing when a key that signed the evidence is revoked with compromisedSince before the signature', async () => {
    const w = await promotedWorld();
    w.setKey(revokeKey(w.buildCi.record, { reason: 'compromised', compromisedSince: new Date('2026-03-10T08:00:00Z'), now: NOW }));
    const r = verifyDeployment(request(w, w.prod));
    assert.deepEqual(codes(r), ['EVIDENCE_INVALIDATED']);
    assert.match(r.reasons[0]?.message ?? '', /compromised since 2026-03-10T08:00:00.000Z/);
  });

  it('D6: keeps passing when the compromise began after the evidence was recorded', async () => {
    const w = await promotedWorld();
    w.setKey(revokeKey(w.buildCi.record, { reason: 'compromised', compromisedSince: new Date('2026-03-11T00:00:00Z'), now: NOW }));
    assert.equal(verifyDeployment(request(w, w.prod)).ok, true);
  });

  it('D6: refuses evidence that is missing or not the bytes its digest names', async () => {
    const w = await promotedWorld();
    const d = w.evidence[0]!.digest;
    assert.deepEqual(codes(verifyDeployment(request(w, w.prod, { evidence: new Map() }))), ['EVIDENCE_UNAVAILABLE']);
    assert.deepEqual(codes(verifyDeployment(request(w, w.prod, { evidence: new Map([[d, `${w.evidence[0]!.body} `]]) }))), ['EVIDENCE_TAMPERED']);
  });

  it('D6: mix-and-match: a receipt (even one signed by the receipt key) relying on evidence about another artifact fails', async () => {
    const w = await promotedWorld();
    const other = artifactOf('pkg:npm/other', '1.0.0');
    const foreign = await attest(w.buildCi, other, PROVENANCE, provenancePredicate);
    w.evidenceTexts.set(foreign.digest, foreign.body);
    const { plan } = await w.promote('prod', { id: 'pr_mixed' });
    const mixed = { ...plan, relied: { ...plan.relied, evidence: [{ ...plan.relied.evidence[0]!, digest: foreign.digest }] } };
    const { receipt } = await w.issue(mixed, w.artifact, '2026-03-11T11:00:00.000Z');
    const r = verifyDeployment(request(w, receipt.digest));
    assert.deepEqual(codes(r), ['EVIDENCE_INVALIDATED']);
    assert.match(r.reasons[0]?.message ?? '', /subject/i);
  });

  it('D7: refuses a broken chain, and walks the graph it is given', async () => {
    const w = await promotedWorld();
    const receipts = new Map(w.receipts);
    receipts.delete(w.staging);
    const r = verifyDeployment(request(w, w.prod, { receipts }));
    assert.deepEqual(codes(r), ['CHAIN_INCOMPLETE', 'RECEIPT_MISSING']);
    assert.deepEqual(codes(verifyDeployment(request(w, w.prod, { graph: { prod: ['qa'], staging: ['dev'], dev: [] } }))), ['CHAIN_INCOMPLETE']);
  });

  it('never throws on garbage receipts', async () => {
    const w = await promotedWorld();
    for (const junk of ['', 'null', '[]', '{"mediaType":"x"}', 'x'.repeat(10)]) {
      const d = sha256(junk);
      const r = verifyDeployment(request(w, d, { receipts: new Map([[d, junk]]), log: new Map([[d, w.log.get(w.prod)!]]) }));
      assert.equal(r.ok, false);
      assert.ok(r.reasons.length > 0);
    }
  });
});

describe('verifyDeployment offline: signed environment heads', () => {
  const offline = (w: World, head: string | undefined, over: Partial<DeployRequest> = {}) => verifyDeployment(request(w, '', { current: { source: 'head', head }, ...over }));

  it('admits the artifact a fresh head names', async () => {
    const w = await promotedWorld();
    const r = offline(w, await w.head('prod', w.prod));
    assert.deepEqual(r.reasons, []);
    assert.equal(r.head?.receipt, w.prod);
  });

  it('freeze attack: refuses a head past its expiry (a stale status served)', async () => {
    const w = await promotedWorld();
    const r = offline(w, await w.head('prod', w.prod, { issuedAt: '2026-03-11T00:00:00.000Z', expiresAt: '2026-03-12T00:00:00.000Z' }));
    assert.deepEqual(codes(r), ['HEAD_EXPIRED']);
  });

  it('rollback attack: an old receipt replayed to claim the environment fails; so does an old head once expired', async () => {
    const w = await promotedWorld();
    const old = w.prod;
    const next = artifactOf('pkg:npm/app', '1.4.3');
    const ev = [await attest(w.buildCi, next, PROVENANCE, provenancePredicate)];
    for (const env of ['dev', 'staging']) await w.promote(env, { artifact: next, evidence: ev });
    const now = await w.promote('prod', { artifact: next, evidence: ev });
    const head = await w.head('prod', now.receipt.digest, { artifact: next });
    // The old receipt is still a validly signed receipt for prod; it is just not current.
    assert.deepEqual(codes(offline(w, head)), ['RECEIPT_NOT_CURRENT']);
    assert.equal((offline(w, head, { artifact: next.digest })).ok, true);
    assert.deepEqual(codes(verifyDeployment(request(w, now.receipt.digest, { current: { source: 'store', receipt: now.receipt.digest, artifact: next.digest, version: '1.4.3' } }))), ['RECEIPT_NOT_CURRENT'], 'online too: the store names 1.4.3 current');
    const oldHead = await w.head('prod', old, { issuedAt: '2026-03-11T12:00:00.000Z', expiresAt: '2026-03-12T00:00:00.000Z' });
    assert.deepEqual(codes(offline(w, oldHead)), ['HEAD_EXPIRED']);
  });

  it('refuses a head for another environment, an unsigned or tampered head, and no head', async () => {
    const w = await promotedWorld();
    assert.deepEqual(codes(offline(w, await w.head('staging', w.staging))), ['HEAD_WRONG_ENVIRONMENT']);
    const stranger = testKey({ name: 'x', purposes: ['promotion-receipt'] });
    assert.deepEqual(codes(offline(w, await w.head('prod', w.prod, { key: stranger }))), ['HEAD_SIGNATURE_INVALID']);
    const good = JSON.parse(await w.head('prod', w.prod)) as { payload: string };
    const payload = JSON.parse(Buffer.from(good.payload, 'base64').toString('utf8')) as { expiresAt: string };
    payload.expiresAt = '2099-01-01T00:00:00.000Z';
    const tampered = JSON.stringify({ ...good, payload: Buffer.from(JSON.stringify(payload)).toString('base64') });
    assert.deepEqual(codes(offline(w, tampered)), ['HEAD_SIGNATURE_INVALID']);
    assert.deepEqual(codes(offline(w, undefined)), ['HEAD_MISSING']);
    assert.deepEqual(codes(offline(w, '{not json')), ['HEAD_INVALID']);
  });
});

describe('D3: inclusion in the log', async () => {
  const { inclusionChecker } = await import('../../../src/core/promotion/index.ts');
  const { entryLeaf, nodeHash, signCheckpoint } = await import('../../../src/core/tlog/index.ts');
  const logKey = testKey({ name: 'log', purposes: ['log-checkpoint'] });
  const bodies = ['{"index":0,"payload":{},"type":"a"}', '{"index":1,"payload":{},"type":"b"}'];
  const [l0, l1] = bodies.map(entryLeaf) as [Uint8Array, Uint8Array];
  const root = nodeHash(l0, l1);
  const checkpoint = await signCheckpoint({ origin: 'custody.test/log', size: 2, root }, logKey.signer, logKey.record);
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const record = (over: Partial<{ index: number; body: string; hashes: string[]; size: number; note: string }> = {}) => ({
    index: over.index ?? 1,
    body: over.body ?? bodies[1]!,
    inclusion: { index: over.index ?? 1, size: over.size ?? 2, hashes: over.hashes ?? [hex(l0)], checkpoint: over.note ?? checkpoint },
  });
  const check = inclusionChecker([logKey.record], { required: true });

  it('accepts an entry that proves into a checkpoint signed by a trusted log key', () => {
    assert.equal(check(record()), undefined);
    assert.equal(check({ index: 0, body: bodies[0]!, inclusion: { index: 0, size: 2, hashes: [hex(l1)], checkpoint } }), undefined);
  });

  it('refuses an edited entry, a proof for another position, a foreign checkpoint and a missing proof when one is required', () => {
    assert.equal(check(record({ body: bodies[1]!.replace('"b"', '"c"') }))?.code, 'INCLUSION_INVALID');
    assert.equal(check(record({ hashes: [hex(l1)] }))?.code, 'INCLUSION_INVALID');
    assert.equal(check(record({ size: 3 }))?.code, 'INCLUSION_INVALID');
    assert.equal(check(record({ hashes: ['zz'] }))?.code, 'INCLUSION_INVALID');
    assert.equal(inclusionChecker([testKey({ name: 'other', purposes: ['log-checkpoint'] }).record], { required: true })(record())?.code, 'CHECKPOINT_INVALID');
    assert.equal(check(record({ note: 'not a note' }))?.code, 'CHECKPOINT_INVALID');
    assert.equal(check({ index: 1, body: bodies[1]! })?.code, 'NOT_IN_LOG');
    assert.equal(inclusionChecker([logKey.record], { required: false })({ index: 1, body: bodies[1]! }), undefined, 'online, the store vouches until a checkpoint covers it');
  });
});
