/**
 * Versioned schema migrations. Each is applied once, in order, in its own
 * transaction, and recorded in `schema_migrations`. Never edit a released one:
 * add the next.
 */
export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

const artifactsSqlite = `
CREATE TABLE artifacts (
  digest      TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  version     TEXT NOT NULL,
  size        INTEGER,
  digests     TEXT NOT NULL,
  labels      TEXT NOT NULL,
  source      TEXT,
  stored      INTEGER NOT NULL,
  created_at  TEXT NOT NULL,
  created_by  TEXT NOT NULL,
  UNIQUE (name, version)
);
CREATE INDEX artifacts_name ON artifacts (name, created_at);
`;

const keysSql = (blob: string) => `
CREATE TABLE keys (
  keyid        TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  version      INTEGER NOT NULL,
  record       TEXT NOT NULL,
  private_ref  TEXT,
  UNIQUE (name, version)
);
CREATE TABLE log_entries (
  idx        BIGINT PRIMARY KEY,
  id         TEXT NOT NULL UNIQUE,
  type       TEXT NOT NULL,
  actor      TEXT NOT NULL,
  time       TEXT NOT NULL,
  subject    TEXT,
  body       TEXT NOT NULL,
  leaf_hash  ${blob} NOT NULL
);
CREATE INDEX log_entries_subject ON log_entries (subject);
`;

// Policy versions and exceptions (versions 40–49 belong to the policy work).
const policiesSql = `
CREATE TABLE policy_versions (
  version       INTEGER PRIMARY KEY,
  set_digest    TEXT NOT NULL,
  bundle        TEXT NOT NULL,
  keyid         TEXT NOT NULL,
  published_at  TEXT NOT NULL,
  published_by  TEXT NOT NULL
);
CREATE TABLE policy_exceptions (
  id           TEXT PRIMARY KEY,
  environment  TEXT NOT NULL,
  record       TEXT NOT NULL,
  expires_at   TEXT NOT NULL,
  created_at   TEXT NOT NULL
);
CREATE INDEX policy_exceptions_env ON policy_exceptions (environment, expires_at);
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'artifacts', sqlite: artifactsSqlite, postgres: artifactsSqlite.replace('size        INTEGER', 'size        BIGINT') },
  { version: 2, name: 'keys-and-log', sqlite: keysSql('BLOB'), postgres: keysSql('BYTEA') },
  { version: 40, name: 'policies', sqlite: policiesSql, postgres: policiesSql },
];
