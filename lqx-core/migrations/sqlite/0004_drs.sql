-- DRS recommendations. `data` is the whole DrsRecommendation as JSON; `status` is the
-- compare-and-swap column (PENDING/APPROVED -> APPLYING happens once); `updated_at` is the
-- time of the last change, which the 24 h clean-up of finished recommendations reads.
-- Times are unix milliseconds. No foreign key on vm_id: a recommendation outlives its VM
-- (it is then FAILED on apply).
CREATE TABLE drs_recommendations (
    id          TEXT PRIMARY KEY,
    vm_id       TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX drs_recommendations_status ON drs_recommendations (status, created_at);
CREATE INDEX drs_recommendations_created ON drs_recommendations (created_at, id);
