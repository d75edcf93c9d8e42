import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CustodyError, ERROR_CODES, exitCodeFor, httpStatusFor, toCustodyError } from '../../src/core/errors.ts';

describe('coded errors', () => {
  it('maps categories to the exit codes of the design', () => {
    assert.equal(exitCodeFor('VERIFY_FAILED'), 1);
    assert.equal(exitCodeFor('INPUT_INVALID'), 2);
    assert.equal(exitCodeFor('INPUT_NOT_FOUND'), 2);
    assert.equal(exitCodeFor('PROMOTION_PENDING'), 3);
    assert.equal(exitCodeFor('ARTIFACT_CONFLICT'), 4);
    assert.equal(exitCodeFor('INTERNAL'), 5);
    assert.equal(exitCodeFor('KEK_MISSING'), 2);
  });

  it('maps categories to HTTP statuses', () => {
    assert.equal(httpStatusFor('INPUT_INVALID'), 400);
    assert.equal(httpStatusFor('AUTH_REQUIRED'), 401);
    assert.equal(httpStatusFor('FORBIDDEN'), 403);
    assert.equal(httpStatusFor('ARTIFACT_NOT_FOUND'), 404);
    assert.equal(httpStatusFor('ARTIFACT_CONFLICT'), 409);
    assert.equal(httpStatusFor('INTERNAL'), 500);
  });

  it('codes are SCREAMING_SNAKE and stable', () => {
    for (const code of Object.keys(ERROR_CODES)) assert.match(code, /^[A-Z][A-Z0-9_]+$/);
  });

  it('wraps foreign errors without losing the cause', () => {
    const inner = new TypeError('boom');
    const e = toCustodyError(inner);
    assert.equal(e.code, 'INTERNAL');
    assert.equal(e.cause, inner);
    const same = new CustodyError('INPUT_INVALID', 'x');
    assert.equal(toCustodyError(same), same);
  });

  it('serialises without the stack', () => {
    const json = JSON.stringify(new CustodyError('INPUT_INVALID', 'bad', { hint: 'fix it' }));
    assert.deepEqual(JSON.parse(json), { code: 'INPUT_INVALID', message: 'bad', hint: 'fix it' });
  });
});
