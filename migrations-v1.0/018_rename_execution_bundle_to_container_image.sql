-- 018_rename_execution_bundle_to_container_image.sql
-- Purpose: a workflow is shipped as an OCI image: rename execution_bundle to container_image
--          and add container_digest to pin the exact image (e.g. 'sha256:<hex>').
-- Depends on: 017 (execution_bundle).

ALTER TABLE remediation_workflow_catalog
    RENAME COLUMN execution_bundle TO container_image;

ALTER TABLE remediation_workflow_catalog
    ADD COLUMN container_digest TEXT;
