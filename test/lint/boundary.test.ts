import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';
import { ROOT } from '../helpers.ts';

// Lints probe source as if it lived at an existing path, so the real config and its layer rules apply.
async function ruleIdsFor(code: string, file: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: ROOT });
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'fatal'}: ${m.message}`);
}

describe('import boundary', () => {
  for (const mod of ['node:fs', 'fs/promises', 'node:net', 'node:sqlite', 'pg', 'pkcs11js', 'node:child_process']) {
    it(`fails the lint when core/ imports ${mod}`, async () => {
      const msgs = await ruleIdsFor(`import * as m from '${mod}';\nexport const x = m;\n`, 'src/core/errors.ts');
      assert.ok(msgs.some((m) => m.startsWith('no-restricted-imports')), msgs.join('\n'));
    });
  }

  it('fails the lint when core/ imports adapters/', async () => {
    const msgs = await ruleIdsFor(`import { SqliteStore } from '../adapters/store-sqlite.ts';\nexport const x = SqliteStore;\n`, 'src/core/errors.ts');
    assert.ok(msgs.some((m) => m.startsWith('no-restricted-imports')), msgs.join('\n'));
  });

  it('fails the lint on a bare throw new Error in src/', async () => {
    const msgs = await ruleIdsFor(`export function f(): never {\n  throw new Error('x');\n}\n`, 'src/app/audit.ts');
    assert.ok(msgs.some((m) => m.startsWith('no-restricted-syntax')), msgs.join('\n'));
  });

  it('lets core/ use pure modules such as node:crypto', async () => {
    const msgs = await ruleIdsFor(`import { createHash } from 'node:crypto';\nexport const h = (s: string): string => createHash('sha256').update(s).digest('hex');\n`, 'src/core/errors.ts');
    assert.deepEqual(msgs, []);
  });
});
