-- 010_audit_write_api_phase1.sql (bridge: v1.0 → full)
-- Run by `cargo xtask upgrade --from v1.0 --to full`, never by sqlx (this folder is not a
-- migration directory). It turns what the v1.0 replacement of 010
-- (migrations/v1.0-replacements/010_audit_write_api_phase1.sql) created into what canonical
-- migrations/010_audit_write_api_phase1.sql creates: the pgvector extension, the 384-dimension
-- notification_audit.embedding column and its HNSW index. In the same transaction the upgrade
-- records canonical 010's checksum for version 10 in _sqlx_migrations.
-- Runs on a database at the end of the v1.0 history (011 has renamed alert_fingerprint to
-- signal_fingerprint); it touches only what 010's two variants do not share.
-- Canonical 010 declares embedding before created_at; here it becomes the table's last column.
-- Existing rows get NULL embeddings, as rows inserted without one do.

CREATE EXTENSION IF NOT EXISTS vector;

ALTER TABLE notification_audit
    ADD COLUMN embedding vector(384);

CREATE INDEX idx_notification_audit_embedding
    ON notification_audit
    USING hnsw (embedding vector_cosine_ops);
