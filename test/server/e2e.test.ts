/**
 * Real processes over loopback: `custody server` started from bin/custody, the
 * CLI in remote mode against it, and a graceful shutdown under load.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, readdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { addArtifact } from '../../src/app/artifacts.ts';
import { runOperation } from '../../src/app/operations/index.ts';
import { promote, type PromotionView } from '../../src/app/promotion.ts';
import { actingAs } from '../../src/app/workspace.ts';
import type { DigestString } from '../../src/core/digest.ts';
import type { Role } from '../../src/core/identity.ts';
import type { LogEntry } from '../../src/core/ports.ts';
import { REACHED_STATES } from '../../src/core/promotion/index.ts';
import { safeSegment } from '../../src/adapters/target-fs.ts';
import { startServer } from '../../src/server/listen.ts';
import { promoWorld } from '../app/promotion-fixture.ts';
import { BIN, cli, spawnCli, tempWorkspace, type Workspace } from '../helpers.ts';

/** The drain deadline the load tests give the server. */
const SHUTDOWN_SECONDS = 5;

interface ServerProcess {
  child: ChildProcess;
  url: string;
  logs: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>;
}

async function serverProcess(ws: Workspace): Promise<ServerProcess> {
  // The KEK, when the test has one: the server signs receipts and checkpoints with file-backed keys.
  const kek = process.env['CUSTODY_KEK_FILE'];
  const env = { PATH: '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir(), ...(kek === undefined ? {} : { CUSTODY_KEK_FILE: kek }) };
  const child = spawn(BIN, ['server', '--listen', '127.0.0.1:0', '--home', ws.home], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((r) => child.on('close', (code, signal) => r({ code, signal, stdout })));
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stderr?.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        try {
          const j = JSON.parse(line) as { msg?: string; url?: string };
          if (j.msg === 'listening' && j.url) resolve(j.url);
        } catch {
          reject(new Error(`the server wrote a line that is not JSON: ${line}`));
        }
      }
    });
    void exited.then((e) => reject(new Error(`the server exited early (${e.code}): ${logs.join('\n')}`)));
  });
  return { child, url, logs, exited };
}

async function apiToken(ws: Workspace, identity: string, role: Role): Promise<string> {
  const r = await cli(['token', 'create', '--identity', identity, '--role', role, '--home', ws.home, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return r.json<{ token: string }>().token;
}

interface LoadRun {
  exit: Awaited<ServerProcess['exited']>;
  /** From SIGTERM to the process's exit. */
  stopMs: number;
  ackedBeforeSignal: number;
  /** Answers that were not an acknowledgement, by error code ('connection': refused or cut before a whole answer). */
  failures: Map<string, number>;
}

/**
 * `clients` loops send requests until the server process has exited; after
 * `warmMs` it gets SIGTERM. A 200 whose whole body arrived is an
 * acknowledgement, handed to `ack`; a body cut half-way is not one.
 */
async function sigtermUnderLoad(srv: ServerProcess, clients: number, send: (client: number, i: number) => Promise<Response>, ack: (body: unknown) => void, warmMs = 800): Promise<LoadRun> {
  let exited = false;
  void srv.exited.then(() => (exited = true));
  let n = 0;
  let acked = 0;
  const failures = new Map<string, number>();
  const fail = (code: string) => failures.set(code, (failures.get(code) ?? 0) + 1);
  const loop = async (id: number) => {
    while (!exited) {
      try {
        const res = await send(id, n++);
        const body = (await res.json()) as { error?: { code: string } };
        if (res.status !== 200) fail(body.error?.code ?? String(res.status));
        else {
          ack(body);
          acked++;
        }
      } catch {
        fail('connection');
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  const loops = Array.from({ length: clients }, (_, i) => loop(i));
  await new Promise((r) => setTimeout(r, warmMs));
  const ackedBeforeSignal = acked;
  const signalled = performance.now();
  srv.child.kill('SIGTERM');
  const exit = await srv.exited;
  const stopMs = performance.now() - signalled;
  await Promise.all(loops);
  return { exit, stopMs, ackedBeforeSignal, failures };
}

/** Exit 0 within the drain deadline, every in-flight request finished (not cut), and clients only told the server is stopping. */
function assertCleanStop(srv: ServerProcess, run: LoadRun): void {
  assert.equal(run.exit.code, 0, srv.logs.slice(-5).join('\n'));
  assert.match(run.exit.stdout, /stopped on SIGTERM/);
  assert.ok(run.stopMs < SHUTDOWN_SECONDS * 1000, `stopped in ${run.stopMs.toFixed(0)} ms`);
  const stopped = srv.logs.map((l) => JSON.parse(l) as { msg?: string; cut?: boolean }).find((l) => l.msg === 'stopped');
  assert.equal(stopped?.cut, false, 'in-flight requests finished before the deadline');
  const unexpected = [...run.failures.keys()].filter((k) => !['connection', 'SHUTTING_DOWN'].includes(k));
  assert.deepEqual(unexpected, [], `only refusals of a stopping server: ${JSON.stringify([...run.failures])}`);
}

describe('custody server as a real process', () => {
  it('serves the remote CLI, refuses bad credentials, and stops on SIGTERM with exit 0', async () => {
    const ws = await tempWorkspace();
    const token = await apiToken(ws, 'ci:e2e', 'builder');
    const srv = await serverProcess(ws);
    const file = join(ws.dir, 'e2e.tgz');
    await writeFile(file, 'end to end\n');
    const env = { CUSTODY_SERVER: srv.url, CUSTODY_TOKEN: token };

    const added = await spawnCli(['artifact', 'add', file, '--name', 'pkg:npm/e2e', '--version', '1.0.0', '--json'], { env });
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.json<{ created: boolean; digest: string }>().digest, `sha256:${createHash('sha256').update('end to end\n').digest('hex')}`);
    const shown = await spawnCli(['artifact', 'show', 'pkg:npm/e2e@1.0.0', '--server', srv.url], { env: { CUSTODY_TOKEN: token } });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /added: {4}\S+ by ci:e2e/);

    const anonymous = await spawnCli(['artifact', 'list', '--server', srv.url]);
    assert.equal(anonymous.code, 2);
    assert.match(anonymous.stderr, /^error\[AUTH_REQUIRED\]/);
    const forged = await spawnCli(['artifact', 'list'], { env: { ...env, CUSTODY_TOKEN: `${token.slice(0, -4)}AAAA` } });
    assert.equal(forged.code, 2);
    assert.match(forged.stderr, /^error\[AUTH_INVALID\]/);

    const health = await fetch(`${srv.url}/healthz`);
    assert.equal(health.status, 200);

    srv.child.kill('SIGTERM');
    const exit = await srv.exited;
    assert.equal(exit.code, 0, srv.logs.join('\n'));
    assert.match(exit.stdout, /stopped on SIGTERM/);
    const lines = srv.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.some((l) => l['msg'] === 'request' && l['identity'] === 'ci:e2e' && l['route'] === '/v1/artifacts/upload' && l['status'] === 200));
    assert.ok(lines.some((l) => l['msg'] === 'stopped'));
    assert.ok(!srv.logs.join('\n').includes(token.slice(-20)), 'the token never reaches the log');
  });

  it('shuts down gracefully while clients keep promoting: every acknowledged promotion is there and complete, none half-applied, the log verifies', async (tc) => {
    // dev publishes into a file channel: each apply runs between two transactions, the window a careless shutdown would cut.
    const w = await promoWorld({ realTime: true, environments: { dev: 'target: { type: fs, dir: channels }' } });
    await appendFile(join(w.ws.home, 'custody.yaml'), `server:\n  rateLimit: { perSecond: 100000, burst: 100000 }\n  timeouts: { shutdownSeconds: ${SHUTDOWN_SECONDS} }\n`);
    // Three kinds of request, so every resting state a client can be told is covered: fresh builds into dev
    // (promoted, each replacing the one before, or superseded while another applies), staged builds into prod
    // (awaiting an approval nobody gives), and artifacts with no provenance into dev (rejected by its policy).
    const fresh: string[] = [];
    for (let i = 0; i < 40; i++) fresh.push((await w.build(`1.0.${i}`)).digest);
    const staged: string[] = [];
    for (let i = 0; i < 4; i++) {
      const a = await w.build(`2.0.${i}`);
      for (const to of ['dev', 'staging']) assert.equal((await promote(w.ctx, { artifact: a.digest, to })).state, 'promoted');
      staged.push(a.digest);
    }
    const bare: string[] = [];
    for (let i = 0; i < 4; i++) bare.push((await addArtifact(w.ctx, { digest: `sha256:${randomBytes(32).toString('hex')}`, name: 'pkg:npm/bare', version: `3.0.${i}` })).artifact.digest);
    const seeded = new Set((await w.ctx.store.read((tx) => tx.promotions.list({ limit: 10_000 }))).map((p) => p.id));
    const token = await apiToken(w.ws, 'ci:release', 'deployer');
    const srv = await serverProcess(w.ws);

    const acked = new Map<string, PromotionView>();
    const run = await sigtermUnderLoad(srv, 8, (_, i) => {
      const k = i % 8;
      const [artifact, to] = k < 5 ? [fresh[i % fresh.length], 'dev'] : k < 7 ? [staged[i % staged.length], 'prod'] : [bare[i % bare.length], 'dev'];
      return fetch(`${srv.url}/v1/promotions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ artifact, to }),
      });
    }, (body) => {
      const p = body as PromotionView;
      acked.set(p.id, p);
    });
    assertCleanStop(srv, run);
    assert.ok(run.ackedBeforeSignal > 10, `the load was real: ${run.ackedBeforeSignal} acknowledged before SIGTERM`);
    const ackedStates = new Set([...acked.values()].map((p) => p.state));
    assert.deepEqual([...ackedStates].sort(), ['awaiting-approval', 'promoted', 'rejected'], 'clients were told each resting state');

    const ctx = await w.ws.open();
    const rows = new Map((await ctx.store.read((tx) => tx.promotions.list({ limit: 10_000 }))).map((p) => [p.id, p]));
    const entries = await ctx.store.read(async (tx) => tx.log.range(0, await tx.log.size()));
    const chains = new Map<string, LogEntry[]>();
    for (const e of entries.filter((x) => x.type.startsWith('promotion.'))) {
      const id = String(e.payload['promotion']);
      chains.set(id, [...(chains.get(id) ?? []), e]);
    }
    assert.deepEqual([...chains.keys()].sort(), [...rows.keys()].sort(), 'a log entry for every promotion row and a row for every logged promotion');

    // Nothing half-applied: each promotion rests, and its log entries walk the state machine to exactly that state.
    for (const p of rows.values()) {
      assert.ok(!['requested', 'evaluating', 'applying'].includes(p.state), `${p.id} rests (${p.state})`);
      const chain = chains.get(p.id) ?? [];
      assert.equal(chain[0]?.type, 'promotion.requested', p.id);
      for (let j = 1; j < chain.length; j++) assert.equal(chain[j]?.payload['from'], chain[j - 1]?.type.slice('promotion.'.length), `${p.id}: ${chain.map((e) => e.type).join(' → ')}`);
      assert.equal(chain.at(-1)?.type, `promotion.${p.state}`, p.id);
      if (REACHED_STATES.has(p.state)) {
        assert.ok(p.receipt && (await ctx.store.read((tx) => tx.evidence.byDigest(p.receipt as DigestString))), `${p.id}: its receipt is stored`);
        const promoted = entries[p.logIndex ?? -1];
        assert.deepEqual([promoted?.type, promoted?.payload['promotion'], promoted?.payload['receipt']], ['promotion.promoted', p.id, p.receipt], `${p.id}: its log index names its promoted entry`);
      }
    }
    for (const env of await ctx.store.read((tx) => tx.environments.list())) {
      assert.equal(env.applying, null, `${env.environment} is not held by an apply`);
      const current = [...rows.values()].filter((p) => p.environment === env.environment && p.state === 'promoted');
      assert.deepEqual(current.map((p) => p.id), [env.current], `${env.environment}: one promoted promotion, the current one`);
    }

    // Every acknowledged promotion, as it was acknowledged (a promoted one may since have been replaced by a later one).
    for (const [id, told] of acked) {
      const p = rows.get(id);
      assert.ok(p, `acknowledged ${id} (${told.state}) is stored`);
      assert.ok(p.state === told.state || (told.state === 'promoted' && p.state === 'replaced'), `${id}: told ${told.state}, stored ${p.state}`);
      assert.deepEqual([p.environment, p.artifact.digest, p.receipt, p.logIndex], [told.environment, told.artifact.digest, told.receipt, told.logIndex], id);
    }
    // The channel shows what the store says dev runs, and holds no half-copied file.
    const channel = join(w.ws.home, 'channels', 'dev', safeSegment('pkg:npm/app'));
    const devNow = rows.get((await ctx.store.read((tx) => tx.environments.get('dev')))?.current ?? '');
    assert.equal(await readlink(join(channel, 'current')), devNow?.artifact.version);
    assert.deepEqual((await readdir(channel)).filter((f) => f.startsWith('.')), []);

    const made = [...rows.values()].filter((p) => !seeded.has(p.id));
    const tally: Record<string, number> = {};
    for (const p of acked.values()) {
      const k = p.outcome?.code === 'PROMOTION_SUPERSEDED' ? 'superseded' : p.state;
      tally[k] = (tally[k] ?? 0) + 1;
    }
    tc.diagnostic(`acknowledged ${acked.size} promotions (${run.ackedBeforeSignal} before SIGTERM) of ${made.length} made (${JSON.stringify(tally)}); stopped in ${run.stopMs.toFixed(0)} ms; refused or cut: ${JSON.stringify(Object.fromEntries(run.failures))}`);

    // The whole log recomputes and every checkpoint verifies, and the deploy gate admits what dev runs.
    const audit = await runOperation(actingAs(ctx, { identity: 'auditor@acme.example', roles: ['auditor'] }), 'audit.verify', {});
    assert.deepEqual([audit.ok, audit.entries, audit.finding], [true, entries.length, undefined]);
    const gate = await cli(['verify', devNow?.artifact.digest ?? '', '--env', 'dev', '--home', w.ws.home, '--json']);
    assert.equal(gate.code, 0, gate.stdout);
  });

  it('shuts down gracefully under load: every acknowledged registration and upload is there afterwards, nothing half-written', async (tc) => {
    const ws = await tempWorkspace();
    await appendFile(join(ws.home, 'custody.yaml'), `server:\n  rateLimit: { perSecond: 100000, burst: 100000 }\n  timeouts: { shutdownSeconds: ${SHUTDOWN_SECONDS} }\n`);
    const token = await apiToken(ws, 'ci:e2e', 'builder');
    const srv = await serverProcess(ws);
    const acked = new Map<string, string>();
    const run = await sigtermUnderLoad(srv, 8, (id, i) => {
      const name = `pkg:npm/load-${id}`;
      const version = `1.0.${i}`;
      return i % 2 === 0
        ? fetch(`${srv.url}/v1/artifacts/upload?name=${encodeURIComponent(name)}&version=${version}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
            body: randomBytes(4096),
          })
        : fetch(`${srv.url}/v1/artifacts`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ digest: `sha256:${randomBytes(32).toString('hex')}`, name, version }),
          });
    }, (body) => {
      const a = body as { digest: string; name: string; version: string };
      acked.set(a.digest, `${a.name}@${a.version}`);
    });
    assertCleanStop(srv, run);
    assert.ok(run.ackedBeforeSignal > 10, `the load was real: ${run.ackedBeforeSignal} acknowledged before SIGTERM`);

    const ctx = await ws.open();
    const stored = await ctx.store.read((tx) => tx.artifacts.list({ limit: 10_000 }));
    const byDigest = new Map<string, (typeof stored)[number]>(stored.map((a) => [a.digest, a]));
    for (const [digest, ref] of acked) assert.ok(byDigest.has(digest), `acknowledged ${ref} (${digest}) is stored`);
    const size = await ctx.store.read((tx) => tx.log.size());
    const added = (await ctx.store.read((tx) => tx.log.range(0, size))).filter((e) => e.type === 'artifact.added');
    assert.equal(added.length, stored.length, 'one log entry per artifact, no more and no less');
    for (const a of stored.filter((x) => x.stored)) assert.ok(await ctx.blobs.has(a.digest), `blob of ${a.name}@${a.version}`);
    assert.deepEqual(await readdir(join(ws.home, 'blobs', '.tmp')).catch(() => []), []);
    assert.deepEqual(await readdir(join(ws.home, 'blobs', '.pending')).catch(() => []), []);
    tc.diagnostic(`acknowledged ${acked.size} (${run.ackedBeforeSignal} before SIGTERM); stopped in ${run.stopMs.toFixed(0)} ms; refused or cut: ${JSON.stringify(Object.fromEntries(run.failures))}`);
  });

  it('cuts slow clients: headers that never end, and a body that stalls, leaving no temporary file', async () => {
    const ws = await tempWorkspace();
    await appendFile(join(ws.home, 'custody.yaml'), 'server:\n  timeouts: { headersSeconds: 1, requestSeconds: 2 }\n');
    const token = await apiToken(ws, 'ci:e2e', 'builder');
    const srv = await startServer({ home: ws.home, listen: '127.0.0.1:0', log: () => undefined });
    try {
      const talk = (data: string) =>
        new Promise<{ reply: string; ms: number }>((resolve) => {
          const started = Date.now();
          const socket = connect(srv.port, '127.0.0.1', () => socket.write(data));
          let reply = '';
          socket.on('data', (d: Buffer) => (reply += d.toString()));
          socket.on('close', () => resolve({ reply, ms: Date.now() - started }));
          socket.on('error', () => undefined);
        });
      const headers = await talk('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      assert.match(headers.reply, /^HTTP\/1\.1 408/);
      assert.ok(headers.ms < 5000, `${headers.ms} ms`);
      const body = await talk(
        `POST /v1/artifacts/upload?name=slow&version=1.0.0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`,
      );
      assert.ok(body.ms < 6000, `${body.ms} ms`);
      await srv.state.idle();
      assert.deepEqual(await readdir(join(ws.home, 'blobs', '.tmp')).catch(() => []), []);
      assert.deepEqual(await srv.ctx.store.read((tx) => tx.artifacts.list({ name: 'slow' })), []);
    } finally {
      await srv.close();
    }
  });
});
