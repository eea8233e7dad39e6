-- Users, login sessions, API keys and the audit log. Times are unix milliseconds; NULL
-- means "not yet" (revoked_at, last_used_at).

-- `version` moves on every write (optimistic concurrency); `data` is the whole User as JSON
-- (with its argon2id password hash).
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    username    TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    disabled    BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- One row per login (refresh-token family). Rotation is a compare-and-swap on
-- (id, current_jti, generation, revoked_at IS NULL).
CREATE TABLE auth_sessions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    current_jti     TEXT NOT NULL,
    generation      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    refreshed_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoke_reason   TEXT,
    client_address  TEXT NOT NULL
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
CREATE INDEX auth_sessions_expiry ON auth_sessions (expires_at);

-- API keys: `data` holds the immutable part (with the SHA-256 of the secret, never the
-- secret); the two mutable times are columns.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    prefix        TEXT NOT NULL UNIQUE,
    data          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_owner ON api_keys (owner_id);

-- The audit log, newest first by (time, id).
CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    time         BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    action       TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    result       TEXT NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (time, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, time);
CREATE INDEX audit_log_action ON audit_log (action, time);
CREATE INDEX audit_log_resource ON audit_log (resource_id, time);
