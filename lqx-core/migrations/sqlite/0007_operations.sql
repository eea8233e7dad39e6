-- Multi-step operations in progress (create, delete, migrate, HA restart of a VM): the steps
-- done so far, so a control plane that stops half-way can finish or undo them at start-up.
-- A row lives from an operation's first write to its end; none are kept after.
CREATE TABLE operations (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    vm_id       TEXT NOT NULL,
    -- The process that runs it (the leader lease's holder id); another takes over only when
    -- the row has not moved for a while.
    owner       TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX operations_vm ON operations (vm_id);
