/** Custody's version: in receipts (verifier.version), the CLI and the API. Kept in step with package.json by a test. */
export const VERSION = '0.1.0';
