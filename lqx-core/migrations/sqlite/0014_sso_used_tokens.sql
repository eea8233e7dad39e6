-- Provider ID tokens already exchanged for a session, by SHA-256, kept until the token
-- expires: a token is good for one login, so one copied from a log or a proxy cannot be
-- replayed within its lifetime (on any replica: the database is shared).
CREATE TABLE sso_used_tokens (
    token_hash  TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sso_used_tokens_expiry ON sso_used_tokens (expires_at);
