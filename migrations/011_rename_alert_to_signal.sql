-- 011_rename_alert_to_signal.sql
-- Purpose: the platform now handles generic signals, not only alerts: rename the alert_*
--          columns (and the indexes named after them) to signal_*.
-- Depends on: 010 (notification_audit.alert_fingerprint; canonical or v1.0 replacement),
--             002 (resource_action_traces with alert_name/alert_severity/alert_labels/alert_firing_time).
-- The functions of 003 and 006 do not read these columns, so none needs to be recreated.

ALTER TABLE notification_audit RENAME COLUMN alert_fingerprint TO signal_fingerprint;
ALTER INDEX idx_notification_audit_alert_fingerprint RENAME TO idx_notification_audit_signal_fingerprint;

ALTER TABLE resource_action_traces RENAME COLUMN alert_name TO signal_name;
ALTER TABLE resource_action_traces RENAME COLUMN alert_severity TO signal_severity;
ALTER TABLE resource_action_traces RENAME COLUMN alert_labels TO signal_labels;
ALTER TABLE resource_action_traces RENAME COLUMN alert_firing_time TO signal_firing_time;
ALTER INDEX idx_rat_alert_name_severity RENAME TO idx_rat_signal_name_severity;
