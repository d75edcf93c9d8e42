/** Kept in step with package.json by a test. */
export { VERSION } from '../core/version.ts';
