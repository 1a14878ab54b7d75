-- 015_create_workflow_catalog_table.sql
-- Purpose: remediation_workflow_catalog, the versioned catalog of remediation workflows, with
--          label-based filtering (GIN on labels) and a 384-dimension embedding for semantic
--          search (HNSW, cosine distance).
-- Depends on: 001 (update_updated_at()); the pgvector extension (created here if missing).
-- At this stage a workflow is identified by its text workflow_id plus version
-- (PRIMARY KEY (workflow_id, version)); 019 moves to a UUID key.
-- v1.0 uses migrations/v1.0-replacements/015_create_workflow_catalog_table.sql (no vector).

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE remediation_workflow_catalog (
    workflow_id        VARCHAR(255) NOT NULL,
    version            VARCHAR(50)  NOT NULL,
    name               VARCHAR(255) NOT NULL,
    description        TEXT         NOT NULL,
    content            TEXT         NOT NULL,
    content_hash       CHAR(64)     NOT NULL,
    labels             JSONB        NOT NULL,
    embedding          vector(384),
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
CREATE INDEX idx_workflow_catalog_embedding
    ON remediation_workflow_catalog
    USING hnsw (embedding vector_cosine_ops);

CREATE TRIGGER trg_workflow_catalog_updated_at
    BEFORE UPDATE ON remediation_workflow_catalog
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();
