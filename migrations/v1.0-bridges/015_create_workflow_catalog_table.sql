-- 015_create_workflow_catalog_table.sql (bridge: v1.0 → full)
-- Run by `cargo xtask upgrade --from v1.0 --to full`, never by sqlx (this folder is not a
-- migration directory). It turns what the v1.0 replacement of 015
-- (migrations/v1.0-replacements/015_create_workflow_catalog_table.sql) created into what
-- canonical migrations/015_create_workflow_catalog_table.sql creates: the pgvector extension,
-- the remediation_workflow_catalog.embedding column and its HNSW index. In the same transaction
-- the upgrade records canonical 015's checksum for version 15 in _sqlx_migrations.
-- 384 dimensions, as canonical 015 creates them, not the 768 the full history ends with: 016
-- (left out of v1.0) is applied by the upgrade after the bridges and rebuilds the column and
-- index as vector(768), exactly as on a fresh full install.
-- Runs on a database at the end of the v1.0 history (017-020 have changed the table; 019 made
-- workflow_id a UUID); it touches only what 015's two variants do not share.
-- Canonical 015 declares embedding before status; here it becomes the table's last column.

CREATE EXTENSION IF NOT EXISTS vector;

ALTER TABLE remediation_workflow_catalog
    ADD COLUMN embedding vector(384);

CREATE INDEX idx_workflow_catalog_embedding
    ON remediation_workflow_catalog
    USING hnsw (embedding vector_cosine_ops);
