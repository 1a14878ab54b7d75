-- 015_create_workflow_catalog_table.sql (v1.0 replacement)
-- This is the v1.0 (vector-free) replacement of canonical migration 015. It creates the same
-- remediation_workflow_catalog table, constraints and indexes, without the pgvector extension,
-- the embedding column and its HNSW index. A bridge migration will later upgrade it to canonical.
-- Purpose: remediation_workflow_catalog, the versioned catalog of remediation workflows.
-- Depends on: 001 (update_updated_at()).
-- At this stage a workflow is identified by its text workflow_id plus version
-- (PRIMARY KEY (workflow_id, version)); 019 moves to a UUID key.

CREATE TABLE remediation_workflow_catalog (
    workflow_id        VARCHAR(255) NOT NULL,
    version            VARCHAR(50)  NOT NULL,
    name               VARCHAR(255) NOT NULL,
    description        TEXT         NOT NULL,
    content            TEXT         NOT NULL,
    content_hash       CHAR(64)     NOT NULL,
    labels             JSONB        NOT NULL,
    status             VARCHAR(20)  NOT NULL DEFAULT 'active',
    is_latest_version  BOOLEAN      NOT NULL DEFAULT false,
    disabled_at        TIMESTAMPTZ,
    disabled_by        VARCHAR(255),
    disabled_reason    TEXT,
    created_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT remediation_workflow_catalog_pkey PRIMARY KEY (workflow_id, version),
    CONSTRAINT remediation_workflow_catalog_status_check
        CHECK (status IN ('active', 'disabled', 'deprecated', 'archived')),
    CONSTRAINT remediation_workflow_catalog_labels_check
        CHECK (jsonb_typeof(labels) = 'object')
);

-- At most one latest version per workflow (clear the old flag before inserting a new version).
CREATE UNIQUE INDEX uq_workflow_catalog_latest_version
    ON remediation_workflow_catalog (workflow_id)
    WHERE is_latest_version;
CREATE INDEX idx_workflow_catalog_status
    ON remediation_workflow_catalog (status);
CREATE INDEX idx_workflow_catalog_labels
    ON remediation_workflow_catalog
    USING gin (labels);

CREATE TRIGGER trg_workflow_catalog_updated_at
    BEFORE UPDATE ON remediation_workflow_catalog
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();
