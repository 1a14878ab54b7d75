-- 005_vector_schema.sql
-- Purpose: enable pgvector and create action_patterns, which stores learned remediation
--          patterns with a 384-dimension embedding for similarity search.
-- Depends on: the pgvector extension being installable on the server; 001 (update_updated_at()).
-- Not part of the v1.0 (vector-free) profile.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE action_patterns (
    id                 BIGSERIAL PRIMARY KEY,
    pattern_signature  VARCHAR(64)  NOT NULL UNIQUE,
    action_type        VARCHAR(50)  NOT NULL,
    resource_kind      VARCHAR(100) NOT NULL,
    namespace          VARCHAR(63),
    action_parameters  JSONB        NOT NULL DEFAULT '{}',
    embedding          vector(384),
    occurrence_count   INTEGER      NOT NULL DEFAULT 0,
    success_rate       NUMERIC(4,3),
    last_seen_at       TIMESTAMPTZ,
    created_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ  NOT NULL DEFAULT now()
);

CREATE INDEX idx_action_patterns_action_type
    ON action_patterns (action_type, resource_kind);

CREATE INDEX idx_action_patterns_embedding
    ON action_patterns
    USING hnsw (embedding vector_cosine_ops);

CREATE TRIGGER trg_action_patterns_updated_at
    BEFORE UPDATE ON action_patterns
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();
