-- 006_effectiveness_assessment.sql
-- Purpose: effectiveness assessment pipeline:
--          * effectiveness_assessments: one queued assessment per finished action trace,
--          * effectiveness_results: per-metric measurements of an assessment,
--          * action_outcomes: the verdict of an assessment,
--          * queue_effectiveness_assessment(): AFTER trigger on resource_action_traces that
--            queues an assessment when a trace reaches a terminal execution status.
-- Depends on: 002 (resource_action_traces), 004 (effectiveness_assessment_due),
--             001 (update_updated_at()).
-- Assessments reference a trace by (trace_id, trace_action_timestamp) without a foreign key:
-- rows of resource_action_traces are moved between partitions by the partition maintenance
-- function, and a cascading key would delete the assessments during such a move.

CREATE TABLE effectiveness_assessments (
    id                      BIGSERIAL PRIMARY KEY,
    trace_id                BIGINT       NOT NULL,
    trace_action_timestamp  TIMESTAMPTZ  NOT NULL,
    action_type             VARCHAR(50)  NOT NULL,
    status                  VARCHAR(20)  NOT NULL DEFAULT 'pending',
    due_at                  TIMESTAMPTZ  NOT NULL,
    started_at              TIMESTAMPTZ,
    completed_at            TIMESTAMPTZ,
    created_at              TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT uq_effectiveness_assessments_trace UNIQUE (trace_id, trace_action_timestamp),
    CONSTRAINT chk_effectiveness_assessments_status
        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed'))
);

CREATE INDEX idx_effectiveness_assessments_pending
    ON effectiveness_assessments (due_at)
    WHERE status = 'pending';

CREATE TABLE effectiveness_results (
    id             BIGSERIAL PRIMARY KEY,
    assessment_id  BIGINT       NOT NULL REFERENCES effectiveness_assessments (id) ON DELETE CASCADE,
    metric_name    VARCHAR(100) NOT NULL,
    value_before   NUMERIC,
    value_after    NUMERIC,
    score          NUMERIC(4,3),
    details        JSONB        NOT NULL DEFAULT '{}',
    measured_at    TIMESTAMPTZ  NOT NULL DEFAULT now()
);

CREATE INDEX idx_effectiveness_results_assessment
    ON effectiveness_results (assessment_id);

CREATE TABLE action_outcomes (
    id             BIGSERIAL PRIMARY KEY,
    assessment_id  BIGINT       NOT NULL UNIQUE REFERENCES effectiveness_assessments (id) ON DELETE CASCADE,
    outcome        VARCHAR(20)  NOT NULL,
    overall_score  NUMERIC(4,3),
    side_effects   JSONB        NOT NULL DEFAULT '[]',
    recorded_at    TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT chk_action_outcomes_outcome
        CHECK (outcome IN ('improved', 'unchanged', 'degraded', 'unknown'))
);

CREATE TRIGGER trg_effectiveness_assessments_updated_at
    BEFORE UPDATE ON effectiveness_assessments
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();

CREATE OR REPLACE FUNCTION queue_effectiveness_assessment()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.execution_status IN ('completed', 'failed')
       AND (TG_OP = 'INSERT' OR OLD.execution_status IS DISTINCT FROM NEW.execution_status) THEN
        INSERT INTO effectiveness_assessments (trace_id, trace_action_timestamp, action_type, due_at)
        VALUES (
            NEW.id,
            NEW.action_timestamp,
            NEW.action_type,
            coalesce(NEW.effectiveness_assessment_due,
                     coalesce(NEW.execution_end_time, now()) + INTERVAL '5 minutes')
        )
        ON CONFLICT (trace_id, trace_action_timestamp) DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_rat_queue_effectiveness_assessment
    AFTER INSERT OR UPDATE OF execution_status ON resource_action_traces
    FOR EACH ROW EXECUTE FUNCTION queue_effectiveness_assessment();
