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

// The tamper-evident log (issue 5). An entry row is the canonical body, its
// leaf hash, the hashes of the complete subtrees that leaf completes, and a
// bucketed subject key: one row written per append. Why: src/adapters/sql/log.ts.
// Entries written under version 2 get their subtree hashes and subject keys from
// the log repository on first use (SQL cannot compute SHA-256), flagged by log_backfill.
const logTreeTables = (blob: string) => `
CREATE INDEX log_entries_subject ON log_entries (subject_bucket, idx, subject_key) WHERE subject_bucket IS NOT NULL;
CREATE TABLE log_checkpoints (
  seq         BIGINT PRIMARY KEY,
  size        BIGINT NOT NULL,
  root        ${blob} NOT NULL,
  note        TEXT NOT NULL,
  keyid       TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE INDEX log_checkpoints_size ON log_checkpoints (size, seq);
CREATE TABLE log_backfill (upto BIGINT NOT NULL);
INSERT INTO log_backfill (upto) SELECT m FROM (SELECT MAX(idx) + 1 AS m FROM log_entries) t WHERE m IS NOT NULL;
`;

const logTreeSqlite = `
CREATE TABLE log_entries_v10 (
  idx             INTEGER PRIMARY KEY,
  body            TEXT NOT NULL,
  leaf_hash       BLOB NOT NULL,
  nodes           BLOB,
  subject_bucket  INTEGER,
  subject_key     INTEGER
);
INSERT INTO log_entries_v10 (idx, body, leaf_hash) SELECT idx, body, leaf_hash FROM log_entries ORDER BY idx;
DROP TABLE log_entries;
ALTER TABLE log_entries_v10 RENAME TO log_entries;
${logTreeTables('BLOB')}`;

const logTreePostgres = `
ALTER TABLE log_entries DROP COLUMN id, DROP COLUMN type, DROP COLUMN actor, DROP COLUMN time, DROP COLUMN subject;
ALTER TABLE log_entries ADD COLUMN nodes BYTEA, ADD COLUMN subject_bucket SMALLINT, ADD COLUMN subject_key BIGINT;
${logTreeTables('BYTEA')}`;

// Salt and hash are hex text: the same column type on both drivers, and never the secret itself.
const apiTokensSql = `
CREATE TABLE api_tokens (
  id           TEXT PRIMARY KEY,
  identity     TEXT NOT NULL,
  roles        TEXT NOT NULL,
  environments TEXT,
  description  TEXT,
  salt         TEXT NOT NULL,
  hash         TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  created_by   TEXT NOT NULL,
  expires_at   TEXT,
  revoked_at   TEXT,
  revoked_by   TEXT
);
CREATE INDEX api_tokens_identity ON api_tokens (identity);
`;

// Evidence (signatures and attestations) as the exact JSON text received or
// produced, bounded by limits.evidenceBytes, and indexed by every digest it is about.
const evidenceSql = (bigint: string) => `
CREATE TABLE evidence (
  digest          TEXT PRIMARY KEY,
  kind            TEXT NOT NULL,
  format          TEXT NOT NULL,
  media_type      TEXT,
  predicate_type  TEXT,
  signers         TEXT NOT NULL,
  signed_at       TEXT NOT NULL,
  stored_at       TEXT NOT NULL,
  stored_by       TEXT NOT NULL,
  source          TEXT NOT NULL,
  expect          TEXT,
  subjects        TEXT NOT NULL,
  size            ${bigint} NOT NULL,
  body            TEXT NOT NULL
);
CREATE TABLE evidence_subjects (
  subject         TEXT NOT NULL,
  evidence        TEXT NOT NULL REFERENCES evidence (digest),
  predicate_type  TEXT,
  PRIMARY KEY (subject, evidence)
);
CREATE INDEX evidence_subjects_type ON evidence_subjects (subject, predicate_type);
`;

// The subject index as one B-tree. Every stored piece of evidence (each
// promotion's receipt among them) writes an entry per subject, at a random
// place (subjects are digests); a second index on (subject, predicate_type)
// and, in SQLite, the rowid table beside the primary key were two more random
// pages per entry for lookups the primary key serves: an artifact has a
// handful of pieces, whose predicate type is filtered in the row. Measured
// with bench/promote's workload: 13.5 WAL pages per promotion, from 16.9.
const evidenceSubjectsLeanSqlite = `
CREATE TABLE evidence_subjects_lean (
  subject         TEXT NOT NULL,
  evidence        TEXT NOT NULL REFERENCES evidence (digest),
  predicate_type  TEXT,
  PRIMARY KEY (subject, evidence)
) WITHOUT ROWID;
INSERT INTO evidence_subjects_lean (subject, evidence, predicate_type) SELECT subject, evidence, predicate_type FROM evidence_subjects;
DROP TABLE evidence_subjects;
ALTER TABLE evidence_subjects_lean RENAME TO evidence_subjects;
`;
const evidenceSubjectsLeanPostgres = 'DROP INDEX IF EXISTS evidence_subjects_type;';

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

// Promotions, votes and each environment's pointer (versions 60–69 belong to the promotion work).
// The plan (with its decision) and the inclusion proof are JSON; the target's
// output is capped by the use case before it is written.
const promotionsSql = (bigint: string) => `
CREATE TABLE promotions (
  id                TEXT PRIMARY KEY,
  seq               ${bigint} NOT NULL UNIQUE,
  environment       TEXT NOT NULL,
  artifact          TEXT NOT NULL,
  name              TEXT NOT NULL,
  version           TEXT NOT NULL,
  kind              TEXT NOT NULL CHECK (kind IN ('promotion', 'rollback')),
  state             TEXT NOT NULL CHECK (state IN ('requested', 'evaluating', 'awaiting-approval', 'applying', 'promoted', 'rejected', 'failed', 'cancelled', 'replaced', 'rolled-back')),
  requested_by      TEXT NOT NULL,
  requested_at      TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  finished_at       TEXT,
  idempotency_key   TEXT,
  plan              TEXT,
  outcome           TEXT,
  target_output     TEXT,
  receipt           TEXT,
  log_index         ${bigint},
  proof             TEXT,
  owner             TEXT,
  lease_expires_at  TEXT,
  UNIQUE (requested_by, environment, idempotency_key)
);
CREATE INDEX promotions_environment ON promotions (environment, seq);
CREATE INDEX promotions_artifact ON promotions (artifact, seq);
CREATE INDEX promotions_open ON promotions (environment, seq) WHERE state IN ('requested', 'evaluating', 'awaiting-approval', 'applying');
CREATE TABLE approvals (
  promotion           TEXT NOT NULL REFERENCES promotions (id),
  identity            TEXT NOT NULL,
  vote                TEXT NOT NULL CHECK (vote IN ('approve', 'reject')),
  comment             TEXT,
  roles               TEXT NOT NULL,
  member_of           TEXT NOT NULL,
  time                TEXT NOT NULL,
  fingerprint         TEXT NOT NULL,
  seen                TEXT NOT NULL,
  invalidated_at      TEXT,
  invalidated_reason  TEXT,
  PRIMARY KEY (promotion, identity)
);
CREATE TABLE environment_state (
  environment         TEXT PRIMARY KEY,
  current_promotion   TEXT REFERENCES promotions (id),
  applying_promotion  TEXT REFERENCES promotions (id),
  seq                 ${bigint} NOT NULL,
  updated_at          TEXT NOT NULL
);
`;

const ARTIFACTS_CREATED = 'CREATE INDEX artifacts_created ON artifacts (created_at DESC, name, version);';

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'artifacts', sqlite: artifactsSqlite, postgres: artifactsSqlite.replace('size        INTEGER', 'size        BIGINT') },
  { version: 2, name: 'keys-and-log', sqlite: keysSql('BLOB'), postgres: keysSql('BYTEA') },
  // `artifact list` (newest first) read and sorted every artifact to return 20: 447 → 144 req/s as a bench workspace grew from 5k to 13k.
  { version: 3, name: 'artifacts-newest-first', sqlite: ARTIFACTS_CREATED, postgres: ARTIFACTS_CREATED },
  // 10–19: the tamper-evident log.
  { version: 10, name: 'log-tree-and-checkpoints', sqlite: logTreeSqlite, postgres: logTreePostgres },
  // 30–39: evidence.
  { version: 30, name: 'evidence', sqlite: evidenceSql('INTEGER'), postgres: evidenceSql('BIGINT') },
  { version: 31, name: 'evidence-subjects-lean', sqlite: evidenceSubjectsLeanSqlite, postgres: evidenceSubjectsLeanPostgres },
  // 50–59: the server (API tokens).
  { version: 50, name: 'api-tokens', sqlite: apiTokensSql, postgres: apiTokensSql },
  // 40–49: policies and exceptions.
  { version: 40, name: 'policies', sqlite: policiesSql, postgres: policiesSql },
  // 60–69: promotions.
  { version: 60, name: 'promotions', sqlite: promotionsSql('INTEGER'), postgres: promotionsSql('BIGINT') },
].sort((a, b) => a.version - b.version);
