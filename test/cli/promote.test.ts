/**
 * The promotion commands as users run them: exit codes and JSON in-process,
 * and real processes where it matters: two promoting processes racing on one
 * workspace, a process killed with SIGKILL in the middle of applying, and the
 * offline deploy-time gate run with no workspace at all.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, readlink, writeFile, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { safeSegment } from '../../src/adapters/target-fs.ts';
import type { Context } from '../../src/app/workspace.ts';
import { BIN, cli, spawnCli, tempDir } from '../helpers.ts';
import { audited, CAROL, BUILDER, promoWorld, type PromoWorld } from '../app/promotion-fixture.ts';

interface Out {
  id: string;
  state: string;
  kind: string;
  outcome: { code: string; message: string } | null;
  reasons: { code: string; message: string }[];
  receipt: string | null;
  decision: { outcome: string; gates: { name: string; outcome: string }[] } | null;
  suggestion?: { version: string } | null;
}

function env(): Record<string, string> {
  return { CUSTODY_KEK_FILE: process.env['CUSTODY_KEK_FILE'] ?? '' };
}

async function world(options: Parameters<typeof promoWorld>[0] = {}): Promise<PromoWorld> {
  return promoWorld({ realTime: true, ...options });
}

/** After a crash and its recovery the rows still say what the log says (audit verify, promotion rows included). */
async function auditedIntact(ctx: Context): Promise<void> {
  const audit = await audited(ctx);
  assert.equal(audit.ok, true, JSON.stringify(audit.finding));
  assert.ok(audit.promotions >= 2);
}

describe('custody promote / approve / reject / status / history (in-process)', () => {
  it('promotes through the graph with the documented exit codes and JSON', async () => {
    const w = await world();
    await w.build('1.0.0');
    const h = ['--home', w.ws.home];
    const dev = await cli(['promote', 'pkg:npm/app@1.0.0', '--to', 'dev', ...h, '--json']);
    assert.equal(dev.code, 0, dev.stderr);
    assert.equal(dev.json<Out>().state, 'promoted');
    const human = await cli(['promote', 'pkg:npm/app@1.0.0', '--to', 'staging', ...h]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /pkg:npm\/app@1\.0\.0 → staging: PROMOTED/);
    assert.match(human.stdout, /PASS {4}provenance \(require\)/);
    assert.match(human.stdout, /receipt {3}sha256:/);
    const prod = await cli(['promote', 'pkg:npm/app@1.0.0', '--to', 'prod', ...h, '--json']);
    assert.equal(prod.code, 3, 'awaiting approval');
    const p = prod.json<Out>();
    assert.equal(p.state, 'awaiting-approval');
    assert.equal(p.decision?.gates.find((g) => g.name === 'approvals')?.outcome, 'pending');
    const mine = await cli(['approve', p.id, ...h, '--as', BUILDER, '--json']);
    assert.equal(mine.code, 2, 'a signer of the evidence may not approve (forbidden: exit 2)');
    assert.equal(mine.json<{ error: { code: string } }>().error.code, 'APPROVAL_REFUSED');
    const status = await cli(['status', ...h]);
    assert.match(status.stdout, /pending:/);
    assert.match(status.stdout, /awaiting-approval/);
    const ok = await cli(['approve', p.id, '--comment', 'release notes reviewed', ...h, '--as', CAROL]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /approve by carol@acme\.example .*\("release notes reviewed"\): counted/);
    const verify = await cli(['verify', 'pkg:npm/app@1.0.0', '--env', 'prod', ...h]);
    assert.equal(verify.code, 0, verify.stdout);
    assert.match(verify.stdout, /^VERIFIED: .* may run in prod/);
    assert.match(verify.stdout, /chain: prod ok 1\.0\.0 \[log #\d+\] <- staging ok/);
    const board = await cli(['status', '--env', 'prod', ...h, '--json']);
    const b = board.json<{ environments: { current: { artifact: { version: string }; approvedBy: string[] } | null }[] }>();
    assert.equal(b.environments[0]?.current?.artifact.version, '1.0.0');
    assert.deepEqual(b.environments[0]?.current?.approvedBy, [CAROL]);
    const history = await cli(['history', 'prod', ...h]);
    assert.match(history.stdout, /history of prod/);
    assert.match(history.stdout, /promoted/);
    const shown = await cli(['promotion', 'show', p.id, ...h, '--json']);
    assert.equal(shown.json<Out>().state, 'promoted');
  });

  it('exits 1 on a rejection and on a veto prints the reason; unknown ids and bad flags are usage errors', async () => {
    const w = await world();
    await w.build('1.0.0');
    const h = ['--home', w.ws.home];
    const rejected = await cli(['promote', 'pkg:npm/app@1.0.0', '--to', 'staging', ...h]);
    assert.equal(rejected.code, 1);
    assert.match(rejected.stdout, /REJECTED/);
    assert.match(rejected.stdout, /CHAIN_INCOMPLETE/);
    for (const env of ['dev', 'staging']) await cli(['promote', 'pkg:npm/app@1.0.0', '--to', env, ...h]);
    const p = (await cli(['promote', 'pkg:npm/app@1.0.0', '--to', 'prod', ...h, '--json'])).json<Out>();
    const veto = await cli(['reject', p.id, '--reason', 'fails the load test', ...h, '--as', CAROL, '--json']);
    assert.equal(veto.code, 0);
    assert.equal(veto.json<Out>().outcome?.code, 'REJECTED_BY_APPROVER');
    const unknown = await cli(['approve', 'pr_ffffffffffffffff', ...h, '--as', CAROL, '--json']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.json<{ error: { code: string } }>().error.code, 'PROMOTION_NOT_FOUND');
    const missing = await cli(['reject', p.id, ...h]);
    assert.equal(missing.code, 2);
    const offlineAlone = await cli(['verify', 'pkg:npm/app@1.0.0', '--offline', ...h]);
    assert.equal(offlineAlone.code, 2);
    assert.match(offlineAlone.stderr, /USAGE/);
  });

  it('returns the same promotion for a retried request with the same idempotency key', async () => {
    const w = await world();
    await w.build('1.0.0');
    const h = ['--home', w.ws.home, '--json'];
    const a = await spawnCli(['promote', 'pkg:npm/app@1.0.0', '--to', 'dev', '--idempotency-key', 'ci-run-7', ...h], { env: env() });
    const b = await spawnCli(['promote', 'pkg:npm/app@1.0.0', '--to', 'dev', '--idempotency-key', 'ci-run-7', ...h], { env: env() });
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.json<Out>().id, a.json<Out>().id);
    assert.equal(b.json<{ replayed: boolean }>().replayed, true);
  });
});

describe('rollback (CLI)', () => {
  it('rolls back, and after a revocation refuses with the reasons and the next candidate (exit 1)', async () => {
    const w = await world();
    const h = ['--home', w.ws.home];
    const v0 = await w.build('0.9.0');
    await cli(['promote', v0.digest, '--to', 'dev', ...h]);
    await cli(['key', 'rotate', 'build-ci', ...h]);
    const v1 = await w.build('1.0.0');
    await cli(['promote', v1.digest, '--to', 'dev', ...h]);
    const v2 = await w.build('1.1.0');
    await cli(['promote', v2.digest, '--to', 'dev', ...h]);
    const back = await cli(['rollback', 'dev', ...h, '--json']);
    assert.equal(back.code, 0, back.stdout);
    assert.equal(back.json<Out>().kind, 'rollback');
    const forward = await cli(['promote', v2.digest, '--to', 'dev', ...h]);
    assert.equal(forward.code, 0);
    await cli(['key', 'revoke', 'build-ci@2', '--reason', 'compromised', '--compromised-since', new Date(Date.now() - 3_600_000).toISOString(), ...h]);
    const verify = await cli(['verify', v2.digest, '--env', 'dev', ...h]);
    assert.equal(verify.code, 1, 'verification flips to failing');
    assert.match(verify.stdout, /EVIDENCE_INVALIDATED/);
    const refused = await cli(['rollback', 'dev', ...h]);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stdout, /REJECTED/);
    assert.match(refused.stdout, /compromised/);
    assert.match(refused.stdout, /next candidate: pkg:npm\/app@0\.9\.0 \(passes today\): custody rollback dev --to 0\.9\.0/);
    const ok = await cli(['rollback', 'dev', '--to', '0.9.0', ...h, '--json']);
    assert.equal(ok.code, 0);
    assert.equal(ok.json<Out & { artifact: { version: string } }>().artifact.version, '0.9.0');
  });
});

describe('offline deploy-time gate (no workspace)', () => {
  it('verifies an export in a process with no workspace, and refuses a tampered receipt, another environment, another digest and an untrusted key', async () => {
    const w = await world();
    const a = await w.build('1.0.0');
    const h = ['--home', w.ws.home];
    for (const e of ['dev', 'staging']) await cli(['promote', a.digest, '--to', e, ...h]);
    const out = join(await tempDir(), 'staging-receipts');
    const exp = await cli(['receipts', 'export', '--env', 'staging', '--out', out, ...h]);
    assert.equal(exp.code, 0, exp.stderr);
    assert.match(exp.stdout, /--offline --receipts/);
    const nowhere = await tempDir();
    const run = (args: string[]) => spawnCli(['verify', ...args, '--offline', '--receipts', out, '--keys', join(out, 'keys')], { cwd: nowhere, env: { CUSTODY_HOME: join(nowhere, 'none') } });
    const ok = await run([a.digest, '--env', 'staging']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /VERIFIED/);
    // The artifact file itself works as well as its digest.
    const file = join(w.ws.dir, 'artifact-copy');
    await cp(w.ctx.blobs.pathOf(a.digest), file);
    assert.equal((await run([file, '--env', 'staging'])).code, 0);
    const wrongEnv = await run([a.digest, '--env', 'dev']);
    assert.equal(wrongEnv.code, 1);
    assert.match(wrongEnv.stdout, /HEAD_MISSING/);
    const otherDigest = await run([`sha256:${'1'.repeat(64)}`, '--env', 'staging', '--json']);
    assert.equal(otherDigest.code, 1);
    assert.deepEqual(otherDigest.json<{ reasons: { code: string }[] }>().reasons.map((r) => r.code), ['RECEIPT_NOT_CURRENT']);
    const head = JSON.parse(await readFile(join(out, 'heads', 'staging.json'), 'utf8')) as { payload: string };
    const receiptHex = (JSON.parse(Buffer.from(head.payload, 'base64').toString('utf8')) as { receipt: string }).receipt.slice(7);
    const receiptFile = join(out, 'receipts', `${receiptHex}.json`);
    const original = await readFile(receiptFile, 'utf8');
    await writeFile(receiptFile, original.replace(/"sig":"(.)/, (_m, c: string) => `"sig":"${c === 'A' ? 'B' : 'A'}`));
    const tampered = await run([a.digest, '--env', 'staging', '--json']);
    assert.equal(tampered.code, 1);
    assert.deepEqual(tampered.json<{ reasons: { code: string }[] }>().reasons.map((r) => r.code), ['RECEIPT_TAMPERED']);
    await writeFile(receiptFile, original);
    // Keys from another workspace: nothing here is signed by them.
    const stranger = await world();
    const strangerOut = join(await tempDir(), 'x');
    const s = await stranger.build('1.0.0');
    await cli(['promote', s.digest, '--to', 'dev', '--home', stranger.ws.home]);
    await cli(['receipts', 'export', '--env', 'dev', '--out', strangerOut, '--home', stranger.ws.home]);
    const untrusted = await spawnCli(['verify', a.digest, '--env', 'staging', '--offline', '--receipts', out, '--keys', join(strangerOut, 'keys'), '--json'], { cwd: nowhere });
    assert.equal(untrusted.code, 1);
    assert.deepEqual(untrusted.json<{ reasons: { code: string }[] }>().reasons.map((r) => r.code), ['HEAD_SIGNATURE_INVALID']);
  });
});

describe('real processes: concurrency and crashes', () => {
  const slowTarget = (seconds: number) => `target: { type: command, command: [/bin/sh, -c, 'sleep ${seconds}; echo "deployed $CUSTODY_ARTIFACT_VERSION resumed=$CUSTODY_RESUMED"'] }`;

  it('two promoting processes on one workspace: exactly one becomes current, the other is superseded (exit 4)', async () => {
    const w = await world({ environments: { dev: slowTarget(1) } });
    const a = await w.build('1.0.0');
    const b = await w.build('1.1.0');
    const [ra, rb] = await Promise.all([
      spawnCli(['promote', a.digest, '--to', 'dev', '--home', w.ws.home, '--json'], { env: env() }),
      spawnCli(['promote', b.digest, '--to', 'dev', '--home', w.ws.home, '--json'], { env: env() }),
    ]);
    const codes = [ra.code, rb.code].sort();
    assert.deepEqual(codes, [0, 4], `${ra.stdout}${ra.stderr}\n${rb.stdout}${rb.stderr}`);
    const winner = (ra.code === 0 ? ra : rb).json<Out>();
    const loser = (ra.code === 0 ? rb : ra).json<Out>();
    assert.equal(loser.outcome?.code, 'PROMOTION_SUPERSEDED');
    const state = await w.ctx.store.read((tx) => tx.environments.get('dev'));
    assert.equal(state?.current, winner.id);
    assert.equal(state?.applying, null);
  });

  it('two processes with concurrency: queue both become current in turn', async () => {
    const w = await world({ environments: { dev: `${slowTarget(1)}, concurrency: queue` } });
    const a = await w.build('1.0.0');
    const b = await w.build('1.1.0');
    const [ra, rb] = await Promise.all([
      spawnCli(['promote', a.digest, '--to', 'dev', '--home', w.ws.home, '--json'], { env: env() }),
      spawnCli(['promote', b.digest, '--to', 'dev', '--home', w.ws.home, '--json'], { env: env() }),
    ]);
    assert.deepEqual([ra.code, rb.code], [0, 0], `${ra.stderr}${rb.stderr}`);
    const states = await w.ctx.store.read((tx) => tx.promotions.list({ environment: 'dev' }));
    assert.deepEqual(states.map((p) => p.state).sort(), ['promoted', 'replaced']);
  });

  for (const point of ['promotion.apply.before-target', 'promotion.apply.after-target']) {
    it(`SIGKILL at ${point}: the old state or the new one, and the next command resumes and records it`, async () => {
      const w = await world({ environments: { dev: 'target: { type: fs, dir: channels }' } });
      const v1 = await w.build('1.0.0');
      assert.equal((await spawnCli(['promote', v1.digest, '--to', 'dev', '--home', w.ws.home], { env: env() })).code, 0);
      const v2 = await w.build('1.1.0');
      const killed = await spawnCli(['promote', v2.digest, '--to', 'dev', '--home', w.ws.home], { env: { ...env(), CUSTODY_FAILPOINT: point } });
      assert.equal(killed.signal, 'SIGKILL');
      const channel = join(w.ws.home, 'channels', 'dev', safeSegment('pkg:npm/app'), 'current');
      // Either the old version or the new one is live; the store still says applying with a dead owner.
      assert.ok(['1.0.0', '1.1.0'].includes(await readlink(channel)));
      const stuck = await w.ctx.store.read((tx) => tx.promotions.list({ environment: 'dev', states: ['applying'] }));
      assert.equal(stuck.length, 1);
      // A process that cannot sign receipts (no KEK) leaves it for one that can, rather than rolling a good apply back.
      const blind = await spawnCli(['status', '--env', 'dev', '--home', w.ws.home, '--json']);
      assert.equal(blind.code, 0, blind.stderr);
      assert.deepEqual(blind.json<{ recovered: { action: string; state: string }[] }>().recovered.map((r) => [r.action, r.state]), [['deferred', 'applying']]);
      const status = await spawnCli(['status', '--env', 'dev', '--home', w.ws.home, '--json'], { env: env() });
      assert.equal(status.code, 0, status.stderr);
      const board = status.json<{ recovered: { action: string; state: string }[]; environments: { current: { artifact: { version: string } } | null }[] }>();
      assert.deepEqual(board.recovered.map((r) => [r.action, r.state]), [['resumed', 'promoted']]);
      assert.equal(board.environments[0]?.current?.artifact.version, '1.1.0');
      assert.equal(await readlink(channel), '1.1.0');
      const log = await w.ctx.store.read((tx) => tx.log.bySubject(v2.digest));
      assert.equal(log.find((e) => e.type === 'promotion.promoted')?.payload['recovered'], 'resumed');
      // No acknowledged promotion lost: 1.0.0's promotion is still recorded, now replaced.
      const history = await w.ctx.store.read((tx) => tx.promotions.list({ environment: 'dev' }));
      assert.deepEqual(history.map((p) => [p.artifact.version, p.state]), [['1.1.0', 'promoted'], ['1.0.0', 'replaced']]);
      await auditedIntact(w.ctx);
    });
  }

  it('SIGKILL from outside while a command target runs: the next promote recovers first, rerunning the command with CUSTODY_RESUMED=1', async () => {
    const w = await world({ environments: { dev: slowTarget(2) } });
    const v1 = await w.build('1.0.0');
    const child = spawn(BIN, ['promote', v1.digest, '--to', 'dev', '--home', w.ws.home], { env: { PATH: '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/', ...env() }, stdio: 'ignore' });
    for (let i = 0; i < 200; i++) {
      const applying = await w.ctx.store.read((tx) => tx.promotions.list({ environment: 'dev', states: ['applying'] }));
      if (applying.length > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const v2 = await w.build('1.1.0');
    const next = await spawnCli(['promote', v2.digest, '--to', 'dev', '--home', w.ws.home, '--json'], { env: env() });
    assert.equal(next.code, 0, next.stderr + next.stdout);
    const all = await w.ctx.store.read((tx) => tx.promotions.list({ environment: 'dev' }));
    assert.deepEqual(all.map((p) => [p.artifact.version, p.state]), [['1.1.0', 'promoted'], ['1.0.0', 'replaced']]);
    assert.match(all[1]?.targetOutput ?? '', /deployed 1\.0\.0 resumed=1/);
    await auditedIntact(w.ctx);
  });
});
