-- 008_context_api_compatibility.sql
-- Purpose: the Context API looks up similar past action histories by embedding; give
--          action_histories a 384-dimension embedding column and a similarity index.
-- Depends on: 001 (action_histories), 005 (the pgvector extension that provides the vector type;
--             this migration does not create the extension itself).

ALTER TABLE action_histories
    ADD COLUMN embedding vector(384);

CREATE INDEX idx_action_histories_embedding
    ON action_histories
    USING hnsw (embedding vector_cosine_ops);
