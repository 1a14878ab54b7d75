-- 001_initial_schema.sql
-- Purpose: base DataStorage schema: Kubernetes resource references, per-resource action
--          histories, the action trace table (range-partitioned by action time), the
--          oscillation pattern/detection tables and the shared update_updated_at() trigger function.
-- Depends on: nothing (first migration).
-- Note: resource_action_traces is created here without a unique key and without partitions;
--       002_fix_partitioning replaces it with the final partition layout.

CREATE OR REPLACE FUNCTION update_updated_at()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE resource_references (
    id            BIGSERIAL PRIMARY KEY,
    resource_uid  VARCHAR(36)  NOT NULL UNIQUE,
    api_version   VARCHAR(100) NOT NULL,
    kind          VARCHAR(100) NOT NULL,
    name          VARCHAR(253) NOT NULL,
    namespace     VARCHAR(63),
    created_at    TIMESTAMPTZ  NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ  NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ,
    CONSTRAINT uq_resource_references_identity UNIQUE (namespace, kind, name)
);

CREATE TABLE action_histories (
    id                          BIGSERIAL PRIMARY KEY,
    resource_id                 BIGINT       NOT NULL UNIQUE
                                REFERENCES resource_references (id) ON DELETE CASCADE,
    max_actions                 INTEGER      NOT NULL DEFAULT 1000,
    max_age_days                INTEGER      NOT NULL DEFAULT 30,
    oscillation_window_minutes  INTEGER      NOT NULL DEFAULT 120,
    effectiveness_threshold     NUMERIC(4,3) NOT NULL DEFAULT 0.700,
    total_actions               INTEGER      NOT NULL DEFAULT 0,
    last_action_at              TIMESTAMPTZ,
    last_analysis_at            TIMESTAMPTZ,
    created_at                  TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at                  TIMESTAMPTZ  NOT NULL DEFAULT now()
);

CREATE TABLE resource_action_traces (
    id                      BIGSERIAL,
    action_history_id       BIGINT       NOT NULL
                            REFERENCES action_histories (id) ON DELETE CASCADE,
    action_id               VARCHAR(64)  NOT NULL,
    correlation_id          VARCHAR(255),
    action_timestamp        TIMESTAMPTZ  NOT NULL,
    execution_start_time    TIMESTAMPTZ,
    execution_end_time      TIMESTAMPTZ,
    execution_duration_ms   INTEGER,
    alert_name              VARCHAR(200) NOT NULL,
    alert_severity          VARCHAR(20)  NOT NULL,
    alert_labels            JSONB        NOT NULL DEFAULT '{}',
    alert_firing_time       TIMESTAMPTZ,
    model_used              VARCHAR(100),
    model_confidence        NUMERIC(4,3),
    model_reasoning         TEXT,
    action_type             VARCHAR(50)  NOT NULL,
    action_parameters       JSONB        NOT NULL DEFAULT '{}',
    resource_state_before   JSONB,
    resource_state_after    JSONB,
    execution_status        VARCHAR(20)  NOT NULL DEFAULT 'pending',
    execution_error         TEXT,
    effectiveness_score     NUMERIC(4,3),
    effectiveness_assessed_at TIMESTAMPTZ,
    created_at              TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT chk_rat_execution_status
        CHECK (execution_status IN ('pending', 'executing', 'completed', 'failed', 'rolled-back'))
) PARTITION BY RANGE (action_timestamp);

CREATE TABLE oscillation_patterns (
    id                   BIGSERIAL PRIMARY KEY,
    pattern_name         VARCHAR(200) NOT NULL UNIQUE,
    pattern_type         VARCHAR(50)  NOT NULL,
    description          TEXT,
    min_occurrences      INTEGER      NOT NULL DEFAULT 3,
    time_window_minutes  INTEGER      NOT NULL DEFAULT 120,
    action_sequence      JSONB        NOT NULL DEFAULT '[]',
    prevention_strategy  VARCHAR(50)  NOT NULL DEFAULT 'block',
    is_active            BOOLEAN      NOT NULL DEFAULT true,
    created_at           TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ  NOT NULL DEFAULT now()
);

CREATE TABLE oscillation_detections (
    id                  BIGSERIAL PRIMARY KEY,
    pattern_id          BIGINT       NOT NULL REFERENCES oscillation_patterns (id) ON DELETE CASCADE,
    resource_id         BIGINT       NOT NULL REFERENCES resource_references (id) ON DELETE CASCADE,
    detected_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    confidence          NUMERIC(4,3) NOT NULL,
    action_count        INTEGER      NOT NULL,
    time_span_minutes   INTEGER      NOT NULL,
    matching_action_ids BIGINT[]     NOT NULL DEFAULT '{}',
    prevention_applied  BOOLEAN      NOT NULL DEFAULT false,
    resolved_at         TIMESTAMPTZ,
    created_at          TIMESTAMPTZ  NOT NULL DEFAULT now()
);

CREATE INDEX idx_oscillation_detections_resource
    ON oscillation_detections (resource_id, detected_at DESC);
CREATE INDEX idx_oscillation_detections_unresolved
    ON oscillation_detections (detected_at DESC)
    WHERE resolved_at IS NULL;

CREATE TRIGGER trg_action_histories_updated_at
    BEFORE UPDATE ON action_histories
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();
CREATE TRIGGER trg_resource_action_traces_updated_at
    BEFORE UPDATE ON resource_action_traces
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();
CREATE TRIGGER trg_oscillation_patterns_updated_at
    BEFORE UPDATE ON oscillation_patterns
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();
