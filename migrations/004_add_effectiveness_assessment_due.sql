-- 004_add_effectiveness_assessment_due.sql
-- Purpose: record when a trace's effectiveness should be assessed, and index the pending ones.
-- Depends on: 002 (resource_action_traces, partitioned; the column and index propagate
--             to every partition, including the DEFAULT one).

ALTER TABLE resource_action_traces
    ADD COLUMN effectiveness_assessment_due TIMESTAMPTZ;

-- Traces that already finished but were never assessed become due now.
UPDATE resource_action_traces
SET effectiveness_assessment_due = coalesce(execution_end_time, action_timestamp)
WHERE execution_status IN ('completed', 'failed')
  AND effectiveness_score IS NULL;

CREATE INDEX idx_rat_effectiveness_assessment_due
    ON resource_action_traces (effectiveness_assessment_due)
    WHERE effectiveness_assessment_due IS NOT NULL
      AND effectiveness_score IS NULL;
