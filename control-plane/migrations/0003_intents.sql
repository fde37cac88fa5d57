-- An application whose FlinkJob may not match the database yet: written in the same
-- transaction as the change, removed once Kubernetes has it. A row left by a crash is
-- finished by the reconciler. `restore_from` carries a first start's savepoint.
CREATE TABLE intents (
    tenant TEXT NOT NULL,
    application TEXT NOT NULL,
    id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    restore_from TEXT,
    PRIMARY KEY (tenant, application)
);
