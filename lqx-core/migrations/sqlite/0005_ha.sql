-- Leader election and HA state.
--
-- `leader` holds the one leader lease: holder (a control-plane process), epoch (bumped at
-- every new term) and expiry, in unix milliseconds by the DATABASE's clock, so replicas never
-- compare their own clocks. Leader-only writes are conditional on the row still naming their
-- holder and epoch with an unexpired lease, in the same statement (the epoch is a fencing
-- token).
CREATE TABLE leader (
    id          BIGINT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL
);
INSERT INTO leader (id, holder, epoch, expires_at, acquired_at) VALUES (1, '', 0, 0, 0);

-- HA state the leader keeps for its successor (fenced nodes, restart counts) and for the
-- other replicas (the last status), with the epoch that wrote it.
CREATE TABLE ha_state (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    holder      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Leader-only actions (leadership taken, node fenced, VM restarted elsewhere), each stamped
-- with the epoch and holder that wrote it and the database time.
CREATE TABLE ha_journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    epoch   BIGINT NOT NULL,
    holder  TEXT NOT NULL,
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX ha_journal_at ON ha_journal (at);
