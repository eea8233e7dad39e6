-- Alerts, webhook receivers and the webhook delivery log. Times are unix milliseconds;
-- booleans are 0/1 BIGINTs (the same on both engines). `data` is the whole record as JSON.

-- At most one open (unresolved) alert per source and condition: the partial unique index
-- is what makes two concurrent raises of the same condition update one alert instead of
-- creating two (the loser of the insert race retries as an update). `version` moves on every
-- write: updates are compare-and-swap on it.
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    severity      TEXT NOT NULL,
    source_type   TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    condition     TEXT NOT NULL,
    acknowledged  BIGINT NOT NULL,
    resolved      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    resolved_at   BIGINT,
    version       BIGINT NOT NULL,
    data          TEXT NOT NULL
);
CREATE UNIQUE INDEX alerts_open_key ON alerts (source_type, source_id, condition) WHERE resolved = 0;
CREATE INDEX alerts_created ON alerts (created_at, id);
CREATE INDEX alerts_open ON alerts (resolved, severity);

-- The secret is a column of its own so that `data` (what is listed) never holds it.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    secret      TEXT,
    created_at  BIGINT NOT NULL,
    data        TEXT NOT NULL
);

-- One row per delivery attempt; pruned by age.
CREATE TABLE webhook_deliveries (
    delivery_id  TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    webhook_id   TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    alert_id     TEXT,
    status       TEXT NOT NULL,
    time         BIGINT NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, time);
CREATE INDEX webhook_deliveries_time ON webhook_deliveries (time);
