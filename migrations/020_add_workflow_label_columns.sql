-- 020_add_workflow_label_columns.sql
-- Purpose: separate label sets used by workflow search scoring: custom_labels (set by the
--          operator) and detected_labels (discovered from the cluster), each GIN-indexed.
-- Depends on: 015 (remediation_workflow_catalog; canonical or v1.0 replacement).

ALTER TABLE remediation_workflow_catalog
    ADD COLUMN custom_labels   JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN detected_labels JSONB NOT NULL DEFAULT '{}';

CREATE INDEX idx_workflow_catalog_custom_labels
    ON remediation_workflow_catalog
    USING gin (custom_labels);
CREATE INDEX idx_workflow_catalog_detected_labels
    ON remediation_workflow_catalog
    USING gin (detected_labels);
