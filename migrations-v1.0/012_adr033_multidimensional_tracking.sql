-- 012_adr033_multidimensional_tracking.sql
-- Purpose: ADR-033 multi-dimensional success tracking: record, per action trace, the incident
--          type, the workflow (id, version, step, execution) that ran it and how the AI chose it.
--          All columns are nullable so existing traces stay valid; partial indexes cover only
--          the traces that carry the dimension.
-- Depends on: 002 (resource_action_traces).

ALTER TABLE resource_action_traces
    ADD COLUMN incident_type             VARCHAR(100),
    ADD COLUMN workflow_id               VARCHAR(255),
    ADD COLUMN workflow_version          VARCHAR(50),
    ADD COLUMN workflow_step_number      INTEGER,
    ADD COLUMN workflow_execution_id     VARCHAR(255),
    ADD COLUMN ai_selected_workflow      BOOLEAN,
    ADD COLUMN ai_chained_workflows      BOOLEAN,
    ADD COLUMN ai_manual_escalation      BOOLEAN,
    ADD COLUMN ai_workflow_customization JSONB;

CREATE INDEX idx_rat_incident_type
    ON resource_action_traces (incident_type, action_timestamp DESC)
    WHERE incident_type IS NOT NULL;
CREATE INDEX idx_rat_workflow
    ON resource_action_traces (workflow_id, workflow_version)
    WHERE workflow_id IS NOT NULL;
CREATE INDEX idx_rat_workflow_execution
    ON resource_action_traces (workflow_execution_id)
    WHERE workflow_execution_id IS NOT NULL;
CREATE INDEX idx_rat_ai_selected
    ON resource_action_traces (incident_type, workflow_id)
    WHERE ai_selected_workflow;
