-- Portable between SQLite and PostgreSQL: TEXT and BIGINT only, ids made by the server,
-- times in epoch milliseconds.
CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    max_parallelism BIGINT NOT NULL,
    max_jobs BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    tenant TEXT,
    role TEXT NOT NULL,
    hash TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX tokens_tenant ON tokens (tenant);

CREATE TABLE applications (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    desired TEXT NOT NULL,
    snapshot_nonce BIGINT NOT NULL,
    -- 1 after a stop without a savepoint: the next start resumes the latest checkpoint.
    at_checkpoint BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE versions (
    tenant TEXT NOT NULL,
    application TEXT NOT NULL,
    version BIGINT NOT NULL,
    spec TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    generation BIGINT,
    PRIMARY KEY (tenant, application, version)
);

CREATE TABLE operations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    application TEXT NOT NULL,
    kind TEXT NOT NULL,
    version BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX operations_application ON operations (tenant, application, created_at);

CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    tenant TEXT,
    token_id TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX audit_tenant ON audit (tenant, at);

CREATE TABLE idempotency (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    request TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, key)
);

CREATE TABLE disposed_snapshots (
    tenant TEXT NOT NULL,
    application TEXT NOT NULL,
    location TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (tenant, application, location)
);
