import assert from 'node:assert/strict';
import { readFile, readlink, readdir, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CommandTarget } from '../../src/adapters/target-command.ts';
import { FsTarget, safeSegment } from '../../src/adapters/target-fs.ts';
import type { Artifact } from '../../src/core/artifact.ts';
import type { TargetRequest } from '../../src/core/ports.ts';
import { rejectsWithCode, tempDir } from '../helpers.ts';

function artifact(version: string): Artifact {
  return {
    digest: `sha256:${'a'.repeat(64)}`,
    name: 'pkg:npm/@acme/app',
    version,
    size: 3,
    digests: {},
    labels: {},
    source: null,
    stored: true,
    createdAt: '2026-01-01T00:00:00.000Z',
    createdBy: 'ci',
  };
}

function request(version: string, blobPath: string | null): TargetRequest {
  return { promotionId: 'p1', kind: 'promotion', environment: 'prod', artifact: artifact(version), blobPath, resumed: false };
}

describe('fs target', () => {
  it('publishes the version and swings the current pointer atomically, idempotently', async () => {
    const dir = await tempDir();
    const blob = join(dir, 'blob');
    await writeFile(blob, 'v1!');
    const t = new FsTarget(join(dir, 'channels'));
    const out = await t.apply(request('1.0.0', blob), new AbortController().signal);
    const channel = join(dir, 'channels', 'prod', safeSegment('pkg:npm/@acme/app'));
    assert.equal(out.details['path'], join(channel, '1.0.0'));
    assert.equal(await readFile(join(channel, 'current'), 'utf8'), 'v1!');
    await writeFile(blob, 'v2!');
    await t.apply(request('2.0.0', blob), new AbortController().signal);
    await t.apply(request('2.0.0', blob), new AbortController().signal);
    assert.equal(await readlink(join(channel, 'current')), '2.0.0');
    assert.deepEqual((await readdir(channel)).sort(), ['1.0.0', '2.0.0', 'current']);
  });

  it('refuses an artifact without bytes', async () => {
    const dir = await tempDir();
    await rejectsWithCode(() => new FsTarget(dir).apply(request('1.0.0', null), new AbortController().signal), 'TARGET_FAILED');
  });

  it('keeps hostile names inside the channel directory', () => {
    assert.equal(safeSegment('..'), '%2E%2E');
    assert.equal(safeSegment('a/../../etc'), 'a%2F..%2F..%2Fetc');
  });
});

describe('command target', () => {
  it('runs the command with the artifact in its environment and captures output', async () => {
    const t = new CommandTarget({ command: ['/bin/sh', '-c', 'echo "$CUSTODY_ENV $CUSTODY_ARTIFACT_NAME@$CUSTODY_ARTIFACT_VERSION $CUSTODY_RESUMED"'], timeoutMs: 5000 });
    const out = await t.apply(request('1.2.3', null), new AbortController().signal);
    assert.equal(out.output.trim(), 'prod pkg:npm/@acme/app@1.2.3 0');
  });

  it('never interprets artifact data as shell', async () => {
    const dir = await tempDir();
    const marker = join(dir, 'pwned');
    const t = new CommandTarget({ command: ['/bin/echo', 'deploying'], timeoutMs: 5000 });
    const req = request('1.0.0', null);
    req.artifact = { ...req.artifact, name: `x; touch ${marker}` };
    await t.apply(req, new AbortController().signal);
    await assert.rejects(readFile(marker));
  });

  it('fails with TARGET_FAILED on a non-zero exit, keeping the output', async () => {
    const t = new CommandTarget({ command: ['/bin/sh', '-c', 'echo nope >&2; exit 3'], timeoutMs: 5000 });
    const e = await rejectsWithCode(() => t.apply(request('1.0.0', null), new AbortController().signal), 'TARGET_FAILED');
    assert.equal(e.details?.['exitCode'], 3);
    assert.match(String(e.details?.['output']), /nope/);
  });

  it('kills the whole process group on timeout', async () => {
    const dir = await tempDir();
    const script = join(dir, 'slow.sh');
    await writeFile(script, '#!/bin/sh\nsleep 30 &\nsleep 30\n');
    await chmod(script, 0o755);
    const started = Date.now();
    const e = await rejectsWithCode(() => new CommandTarget({ command: [script], timeoutMs: 200 }).apply(request('1.0.0', null), new AbortController().signal), 'TARGET_FAILED');
    assert.match(e.message, /timed out/);
    assert.ok(Date.now() - started < 5000);
  });

  it('caps captured output', async () => {
    const t = new CommandTarget({ command: ['/bin/sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" x'], timeoutMs: 5000, maxOutputBytes: 1000 });
    const out = await t.apply(request('1.0.0', null), new AbortController().signal);
    assert.ok(out.output.length < 1100);
  });
});
