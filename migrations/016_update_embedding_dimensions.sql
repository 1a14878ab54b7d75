-- 016_update_embedding_dimensions.sql
-- Purpose: move remediation_workflow_catalog.embedding from 384 to 768 dimensions (new embedding
--          model) and rebuild its HNSW index.
-- Depends on: 015 canonical (embedding column, idx_workflow_catalog_embedding).
-- Not part of the v1.0 profile. A 384-dimension vector cannot be converted to 768 dimensions,
-- so existing embeddings are cleared (USING NULL) and must be regenerated.

DROP INDEX idx_workflow_catalog_embedding;

ALTER TABLE remediation_workflow_catalog
    ALTER COLUMN embedding TYPE vector(768)
    USING NULL::vector(768);

CREATE INDEX idx_workflow_catalog_embedding
    ON remediation_workflow_catalog
    USING hnsw (embedding vector_cosine_ops);
