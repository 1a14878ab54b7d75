-- 1000_create_audit_events_partitions.sql
-- Purpose: create the audit_events monthly partitions for a rolling window: the current
--          (UTC) month and the next three. Rows of those months already held by the DEFAULT
--          partition are moved into the new partitions. Later months keep landing in
--          audit_events_default until ensure_audit_events_partitions() is run again
--          (e.g. by a scheduled job).
-- Depends on: 013 (audit_events), 014 (ensure_audit_events_partitions(), audit_events_default).

SELECT ensure_audit_events_partitions(3);
