import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cli, tempWorkspace } from '../helpers.ts';

describe('custody token', () => {
  it('prints the token once, stores only a salted hash, lists without secrets and revokes', async () => {
    const ws = await tempWorkspace();
    const created = await cli(['token', 'create', '--identity', 'ci:release', '--role', 'builder', '--role', 'signer', '--env', 'staging', '--expires', '30d', '--home', ws.home]);
    assert.equal(created.code, 0, created.stderr);
    const [token, summary] = created.stdout.split('\n');
    assert.match(token ?? '', /^cst_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.match(summary ?? '', /for ci:release: builder, signer; environments: staging; expires \d{4}-/);
    const secret = token?.split('_').at(-1) ?? '';

    const db = await readFile(join(ws.home, 'custody.db'));
    const wal = await readFile(join(ws.home, 'custody.db-wal')).catch(() => Buffer.alloc(0));
    assert.ok(!db.includes(secret) && !wal.includes(secret), 'the secret is not stored');

    const list = await cli(['token', 'list', '--home', ws.home, '--json']);
    const tokens = list.json<{ tokens: { id: string; status: string; environments: string[] }[] }>().tokens;
    assert.equal(tokens.length, 1);
    assert.equal(tokens[0]?.status, 'active');
    assert.deepEqual(tokens[0]?.environments, ['staging']);
    assert.ok(!list.stdout.includes(secret) && !list.stdout.includes('hash') && !list.stdout.includes('salt'));

    const id = tokens[0]?.id ?? '';
    const revoked = await cli(['token', 'revoke', id, '--home', ws.home]);
    assert.equal(revoked.code, 0);
    assert.match(revoked.stdout, /^revoked API token/);
    const again = await cli(['token', 'revoke', id, '--home', ws.home]);
    assert.match(again.stdout, /was already revoked/);
    const missing = await cli(['token', 'revoke', 'ffffffffffffffff', '--home', ws.home]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /TOKEN_NOT_FOUND/);

    const show = await cli(['token', 'list', '--home', ws.home]);
    assert.match(show.stdout, /revoked/);
    const log = await cli(['artifact', 'list', '--home', ws.home]);
    assert.equal(log.code, 0);
  });

  it('needs key-admin, and grants only roles the creator holds', async () => {
    const ws = await tempWorkspace();
    const nobody = await cli(['token', 'create', '--identity', 'x@example.com', '--as', 'nobody@example.com', '--home', ws.home]);
    assert.equal(nobody.code, 2);
    assert.match(nobody.stderr, /ROLE_REQUIRED/);
    const bad = await cli(['token', 'create', '--identity', 'x@example.com', '--role', 'superuser', '--home', ws.home]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /INPUT_INVALID/);
    const badExpiry = await cli(['token', 'create', '--identity', 'x@example.com', '--expires', 'soon', '--home', ws.home]);
    assert.equal(badExpiry.code, 2);
    const forever = await cli(['token', 'create', '--identity', 'x@example.com', '--expires', 'never', '--home', ws.home, '--json']);
    assert.equal(forever.json<{ expiresAt: string | null }>().expiresAt, null);
  });
});
