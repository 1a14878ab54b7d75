-- 007_add_context_column.sql
-- Purpose: store the situational context (cluster state, signal metadata) a pattern was
--          learned in, and index it for containment queries.
-- Depends on: 005 (action_patterns).

ALTER TABLE action_patterns
    ADD COLUMN context JSONB NOT NULL DEFAULT '{}';

CREATE INDEX idx_action_patterns_context
    ON action_patterns
    USING gin (context);
