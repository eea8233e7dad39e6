-- Projects hold members, quotas, and the project of every alert, audit entry and API key.
-- Quotas live in projects.data (JSON). Everything present before lands in the default
-- project (id 00000000-0000-7000-8000-000000000001), and every user keeps its role there
-- as well as globally (users.role is the global role).
CREATE TABLE project_members (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (user_id);

INSERT INTO projects (id, name, data, created_at)
SELECT '00000000-0000-7000-8000-000000000001', 'default',
       '{"id":"00000000-0000-7000-8000-000000000001","name":"default","description":"The default project","created_at":"1970-01-01T00:00:00Z"}', 0
WHERE NOT EXISTS (SELECT 1 FROM projects WHERE id = '00000000-0000-7000-8000-000000000001');

INSERT INTO project_members (project_id, user_id, role)
SELECT '00000000-0000-7000-8000-000000000001', id, role FROM users;

ALTER TABLE alerts ADD COLUMN project_id TEXT NOT NULL DEFAULT '00000000-0000-7000-8000-000000000001';
CREATE INDEX alerts_project ON alerts (project_id, created_at);
ALTER TABLE audit_log ADD COLUMN project_id TEXT;
UPDATE audit_log SET project_id = '00000000-0000-7000-8000-000000000001';
CREATE INDEX audit_log_project ON audit_log (project_id, time);
ALTER TABLE api_keys ADD COLUMN project_id TEXT NOT NULL DEFAULT '00000000-0000-7000-8000-000000000001';
