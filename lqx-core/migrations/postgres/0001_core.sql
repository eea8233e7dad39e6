-- Core resources. Each row keeps the full record as JSON in `data` plus the columns that
-- queries filter, sort or enforce uniqueness on. Times are unix milliseconds.
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE nodes (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    phase            TEXT NOT NULL,
    data             TEXT NOT NULL,
    resource_version BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);

CREATE TABLE vms (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects(id),
    name             TEXT NOT NULL,
    node_id          TEXT REFERENCES nodes(id),
    state            TEXT NOT NULL,
    data             TEXT NOT NULL,
    resource_version BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX vms_name ON vms (name, id);
CREATE INDEX vms_node ON vms (node_id);

CREATE TABLE vm_labels (
    vm_id  TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (vm_id, key)
);
CREATE INDEX vm_labels_kv ON vm_labels (key, value);

-- Results of mutating requests that carried a request_id, so a retry returns the first answer.
CREATE TABLE idempotency (
    key         TEXT PRIMARY KEY,
    response    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Small named values (sequence numbers, DRS config, ...), versioned for compare-and-swap.
CREATE TABLE kv (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    version BIGINT NOT NULL
);
