/**
 * SQLite schema migrations, applied in order; PRAGMA user_version records how many ran.
 * PostgreSQL's 0001 is the schema of the last one (design §2.3–2.4); change both together.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    site_name TEXT NOT NULL,
    credential_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_seen_at INTEGER,
    agent_version TEXT NOT NULL DEFAULT '',
    training_backend TEXT NOT NULL DEFAULT ''
  );
  CREATE TABLE join_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    site_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    used_by_node TEXT REFERENCES nodes(id),
    created_by TEXT NOT NULL
  );
  CREATE TABLE studies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    manifest_json TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('RUNNING','COMPLETED','STOPPED','FAILED')),
    reason TEXT,
    last_committed_round INTEGER NOT NULL DEFAULT 0,
    strategy_state TEXT,
    parameters TEXT,
    created_at INTEGER NOT NULL,
    ended_at INTEGER
  );
  CREATE TABLE rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id TEXT NOT NULL REFERENCES studies(id),
    round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    participants INTEGER NOT NULL DEFAULT 0,
    checkpoint_path TEXT,
    checkpoint_sha256 TEXT,
    UNIQUE (study_id, round, attempt)
  );
  CREATE UNIQUE INDEX rounds_one_commit ON rounds(study_id, round) WHERE state = 'COMMITTED';
  CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    node_id TEXT NOT NULL REFERENCES nodes(id),
    kind TEXT NOT NULL CHECK (kind IN ('TRAIN','EVALUATE','STATISTICS')),
    state TEXT NOT NULL,
    detail TEXT,
    model_sha256 TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX tasks_by_node ON tasks(node_id, state);
  CREATE TABLE contributions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    study_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    num_examples INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    reason_code TEXT,
    reason TEXT,
    received_at INTEGER NOT NULL,
    delta_norm REAL
  );
  CREATE UNIQUE INDEX contributions_one_accepted ON contributions(task_id) WHERE accepted = 1;
  CREATE INDEX contributions_by_sha ON contributions(sha256) WHERE accepted = 1;
  CREATE TABLE metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    node_id TEXT,
    phase TEXT NOT NULL,
    num_examples INTEGER NOT NULL,
    loss REAL NOT NULL,
    accuracy REAL NOT NULL,
    auc REAL
  );
  CREATE TABLE statistics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id TEXT NOT NULL REFERENCES studies(id),
    task_id TEXT NOT NULL UNIQUE REFERENCES tasks(id),
    node_id TEXT NOT NULL,
    report TEXT NOT NULL,
    received_at INTEGER NOT NULL
  );
  `,
  `
  CREATE TABLE operators (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('viewer','admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
  );
  CREATE TABLE admin_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
  );
  `,
  // When each task ended, so a node's last failure can be shown with its time.
  `
  ALTER TABLE tasks ADD COLUMN ended_at INTEGER;
  CREATE INDEX tasks_by_node_ended ON tasks(node_id, state, ended_at);
  `,
  // Indexes for the reads whose cost must not grow with the number of clinics (design §2.3, §5).
  // tasks_by_node_ended (node_id, state, ended_at) already serves (node_id, state).
  `
  DROP INDEX tasks_by_node;
  DROP INDEX contributions_by_sha;
  CREATE INDEX nodes_by_created ON nodes(created_at, id);
  CREATE INDEX tasks_by_round ON tasks(round_id, state);
  CREATE INDEX contributions_by_node ON contributions(node_id, id);
  CREATE INDEX contributions_by_round ON contributions(study_id, round, attempt);
  CREATE INDEX contributions_by_study_sha ON contributions(study_id, sha256) WHERE accepted = 1;
  CREATE INDEX metrics_by_round ON metrics(round_id);
  CREATE INDEX statistics_by_study ON statistics(study_id);
  `,
  // The model's tensor list lives with its study (it was studies/<id>/model-spec.json in the data
  // directory, which a standby on the same PostgreSQL database cannot see). NULL on older rows:
  // their file stays the fallback.
  `
  ALTER TABLE studies ADD COLUMN model_spec TEXT;
  `,
  // Which nodes approved (declared READY for) each study: they may fetch its committed models,
  // selected or not (issue 11 ties downloads to what a node may fetch).
  `
  CREATE TABLE study_approvals (
    study_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    approved_at INTEGER NOT NULL,
    PRIMARY KEY (study_id, node_id)
  );
  `,
  // Signed model releases (issue 12): the figures behind a release (metrics.performance, core
  // Performance JSON, also for the new phase 'test'), the releases of each study name, the
  // operators' aliases for them and the sites' live performance reports. A release's files are
  // blobs referenced from releases.files (JSON), which blob collection keeps forever.
  `
  ALTER TABLE metrics ADD COLUMN performance TEXT;
  CREATE TABLE releases (
    study_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    study_id TEXT NOT NULL UNIQUE REFERENCES studies(id),
    round INTEGER NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    envelope TEXT NOT NULL,
    files TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    parent_version INTEGER,
    PRIMARY KEY (study_name, version)
  );
  CREATE TABLE release_aliases (
    study_name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    set_by TEXT NOT NULL,
    set_at INTEGER NOT NULL,
    PRIMARY KEY (study_name, alias),
    FOREIGN KEY (study_name, version) REFERENCES releases(study_name, version)
  );
  CREATE TABLE release_performance (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    export_fingerprint TEXT NOT NULL,
    performance TEXT NOT NULL,
    measured_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (study_name, version, node_id, export_fingerprint)
  );
  `,
  // Study series (issue 13): the templates, their runs (each an ordinary study, with the template
  // it was derived from) and the champion decisions. metrics.phase has no CHECK, so the new phase
  // 'comparison' needs no change. studies_by_name serves nodeTookPartInName (all runs share a name).
  `
  CREATE TABLE series (
    name TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    template_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active','paused')),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE series_runs (
    series_name TEXT NOT NULL REFERENCES series(name),
    run INTEGER NOT NULL,
    study_id TEXT NOT NULL UNIQUE REFERENCES studies(id),
    scheduled_at INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    champion_version INTEGER,
    template TEXT NOT NULL,
    PRIMARY KEY (series_name, run)
  );
  CREATE TABLE promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    series_name TEXT NOT NULL REFERENCES series(name),
    run INTEGER,
    from_version INTEGER,
    to_version INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('promote','keep','rollback')),
    decided_by TEXT NOT NULL,
    evidence TEXT NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE INDEX promotions_by_series ON promotions(series_name, at, id);
  CREATE INDEX studies_by_name ON studies(name);
  `,
  // Secure-aggregation stage tasks (issue 14). SQLite cannot alter a CHECK: the table is rebuilt
  // (SQLite's documented procedure; sqlite-store.ts runs migrations with foreign keys off and
  // checks them before committing, since statistics.task_id references tasks).
  `
  CREATE TABLE tasks_new (
    id TEXT PRIMARY KEY,
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    node_id TEXT NOT NULL REFERENCES nodes(id),
    kind TEXT NOT NULL CHECK (kind IN ('TRAIN','EVALUATE','STATISTICS','SECAGG_KEYS','SECAGG_SHARES','SECAGG_MASKED_INPUT','SECAGG_UNMASK')),
    state TEXT NOT NULL,
    detail TEXT,
    model_sha256 TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    ended_at INTEGER
  );
  INSERT INTO tasks_new (rowid, id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at)
    SELECT rowid, id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at FROM tasks;
  DROP TABLE tasks;
  ALTER TABLE tasks_new RENAME TO tasks;
  CREATE INDEX tasks_by_node_ended ON tasks(node_id, state, ended_at);
  CREATE INDEX tasks_by_round ON tasks(round_id, state);
  `,
  // 10: the consistency stage of secure aggregation v2 (TASK_KIND_SECAGG_CONSISTENCY). The table is
  // rebuilt as in 9 (SQLite cannot alter a CHECK); rowids are kept, so task order is too.
  `
  CREATE TABLE tasks_new (
    id TEXT PRIMARY KEY,
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    node_id TEXT NOT NULL REFERENCES nodes(id),
    kind TEXT NOT NULL CHECK (kind IN ('TRAIN','EVALUATE','STATISTICS','SECAGG_KEYS','SECAGG_SHARES','SECAGG_MASKED_INPUT','SECAGG_CONSISTENCY','SECAGG_UNMASK')),
    state TEXT NOT NULL,
    detail TEXT,
    model_sha256 TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    ended_at INTEGER
  );
  INSERT INTO tasks_new (rowid, id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at)
    SELECT rowid, id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at FROM tasks;
  DROP TABLE tasks;
  ALTER TABLE tasks_new RENAME TO tasks;
  CREATE INDEX tasks_by_node_ended ON tasks(node_id, state, ended_at);
  CREATE INDEX tasks_by_round ON tasks(round_id, state);
  `,
  // 11: the audit chain (issue 15; PostgreSQL migration 9): one entry per audited row (admin
  // actions, contributions, releases, node revocations) or alias move, hash-linked (audit/chain.ts),
  // and the head it must end at. Rows older than the chain are chained right after this
  // migration, in code (store/sqlite/audit-chain.ts backfillSqliteAuditChain: SQL has no SHA-256).
  `
  CREATE TABLE audit_chain (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    digest TEXT NOT NULL,
    content TEXT,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE INDEX audit_chain_by_ref ON audit_chain(kind, ref);
  CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    backfilled INTEGER NOT NULL
  );
  INSERT INTO audit_head (id, seq, hash, backfilled) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);
  `,
  // 12: node certificates (issue 15; PostgreSQL migration 10): every serial the node CA issued, so that
  // either coordinator of an active/standby pair refuses a superseded or revoked one; and the CA
  // certificate of the pair (public: the key stays in each coordinator's <dataDir>/ca, mode 0600).
  `
  CREATE TABLE node_certificates (
    serial TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes(id),
    issued_at INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    superseded_at INTEGER,
    revoked_at INTEGER
  );
  CREATE INDEX node_certificates_by_node ON node_certificates(node_id, issued_at);
  CREATE TABLE node_ca (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
  );
  `,
];

/** The schema version this code writes (PRAGMA user_version after migrating). */
export const SCHEMA_VERSION = MIGRATIONS.length;
