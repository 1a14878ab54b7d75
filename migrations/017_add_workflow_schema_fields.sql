-- 017_add_workflow_schema_fields.sql
-- Purpose: describe how a workflow runs: its parameter schema, the execution engine
--          (Tekton by default) and the bundle that contains it.
-- Depends on: 015 (remediation_workflow_catalog; canonical or v1.0 replacement).

ALTER TABLE remediation_workflow_catalog
    ADD COLUMN parameters       JSONB,
    ADD COLUMN execution_engine TEXT NOT NULL DEFAULT 'tekton',
    ADD COLUMN execution_bundle TEXT;
