/**
 * Real processes over loopback: `custody server` started from bin/custody, the
 * CLI in remote mode against it, and a graceful shutdown under load.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { startServer } from '../../src/server/listen.ts';
import { BIN, cli, spawnCli, tempWorkspace, type Workspace } from '../helpers.ts';

interface ServerProcess {
  child: ChildProcess;
  url: string;
  logs: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>;
}

async function serverProcess(ws: Workspace): Promise<ServerProcess> {
  const child = spawn(BIN, ['server', '--listen', '127.0.0.1:0', '--home', ws.home], { env: { PATH: '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir() }, stdio: ['ignore', 'pipe', 'pipe'] });
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

async function adminToken(ws: Workspace): Promise<string> {
  const r = await cli(['token', 'create', '--identity', 'ci:e2e', '--role', 'builder', '--home', ws.home, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return r.json<{ token: string }>().token;
}

describe('custody server as a real process', () => {
  it('serves the remote CLI, refuses bad credentials, and stops on SIGTERM with exit 0', async () => {
    const ws = await tempWorkspace();
    const token = await adminToken(ws);
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

  it('shuts down gracefully under load: every acknowledged registration is there afterwards, nothing half-written', async (tc) => {
    const ws = await tempWorkspace();
    await appendFile(join(ws.home, 'custody.yaml'), 'server:\n  rateLimit: { perSecond: 100000, burst: 100000 }\n  timeouts: { shutdownSeconds: 5 }\n');
    const token = await adminToken(ws);
    const srv = await serverProcess(ws);
    const acked = new Map<string, string>();
    const failures = new Map<string, number>();
    let exited = false;
    void srv.exited.then(() => (exited = true));
    let n = 0;

    const client = async (id: number) => {
      while (!exited) {
        const i = n++;
        const upload = i % 2 === 0;
        const bytes = randomBytes(4096);
        const name = `pkg:npm/load-${id}`;
        const version = `1.0.${i}`;
        try {
          const res = upload
            ? await fetch(`${srv.url}/v1/artifacts/upload?name=${encodeURIComponent(name)}&version=${version}`, {
                method: 'POST',
                headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
                body: bytes,
              })
            : await fetch(`${srv.url}/v1/artifacts`, {
                method: 'POST',
                headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
                body: JSON.stringify({ digest: `sha256:${randomBytes(32).toString('hex')}`, name, version }),
              });
          const body = (await res.json()) as { digest?: string; error?: { code: string } };
          if (res.status === 200 && body.digest) acked.set(body.digest, `${name}@${version}`);
          else failures.set(body.error?.code ?? String(res.status), (failures.get(body.error?.code ?? String(res.status)) ?? 0) + 1);
        } catch {
          failures.set('connection', (failures.get('connection') ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    };
    const clients = Array.from({ length: 8 }, (_, i) => client(i));
    await new Promise((r) => setTimeout(r, 800));
    const ackedBeforeSignal = acked.size;
    srv.child.kill('SIGTERM');
    const exit = await srv.exited;
    await Promise.all(clients);
    assert.equal(exit.code, 0, srv.logs.slice(-5).join('\n'));
    assert.ok(ackedBeforeSignal > 10, `the load was real: ${ackedBeforeSignal} acknowledged before SIGTERM`);

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
    tc.diagnostic(`acknowledged ${acked.size} (${ackedBeforeSignal} before SIGTERM); refused or cut: ${JSON.stringify(Object.fromEntries(failures))}`);
    const unexpected = [...failures.keys()].filter((k) => !['connection', 'SHUTTING_DOWN'].includes(k));
    assert.deepEqual(unexpected, [], `only refusals of a stopping server: ${JSON.stringify([...failures])}`);
  });

  it('cuts slow clients: headers that never end, and a body that stalls, leaving no temporary file', async () => {
    const ws = await tempWorkspace();
    await appendFile(join(ws.home, 'custody.yaml'), 'server:\n  timeouts: { headersSeconds: 1, requestSeconds: 2 }\n');
    const token = await adminToken(ws);
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
