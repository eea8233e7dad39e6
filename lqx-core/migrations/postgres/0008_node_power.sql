-- Each node's power state (on, standby, powering_on, powering_off, unknown) as a column, so
-- HA and DPM find the hosts in standby without reading every node record. Existing nodes
-- were running: on.
ALTER TABLE nodes ADD COLUMN power_state TEXT NOT NULL DEFAULT 'on';
CREATE INDEX nodes_power_state ON nodes (power_state) WHERE power_state <> 'on';
