-- 003_stored_procedures.sql
-- Purpose: PL/pgSQL analysis functions over the action traces:
--          * detect_action_oscillation(): repeated actions on one resource inside a time window,
--          * action_effectiveness_summary(): success rate and mean effectiveness per action type,
--          * record_oscillation_detection(): stores a detection for a resource and a pattern.
-- Depends on: 001 (resource_references, action_histories, oscillation tables),
--             002 (resource_action_traces in its final form).
-- The functions deliberately do not read the alert_* columns (renamed to signal_* by 011),
-- so they stay valid across that rename.

CREATE OR REPLACE FUNCTION detect_action_oscillation(
    p_namespace       VARCHAR,
    p_kind            VARCHAR,
    p_name            VARCHAR,
    p_window          INTERVAL DEFAULT INTERVAL '2 hours',
    p_min_occurrences INTEGER  DEFAULT 3
)
RETURNS TABLE (
    action_type       VARCHAR,
    occurrences       BIGINT,
    first_seen        TIMESTAMPTZ,
    last_seen         TIMESTAMPTZ,
    avg_effectiveness NUMERIC
)
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    RETURN QUERY
    SELECT rat.action_type,
           count(*),
           min(rat.action_timestamp),
           max(rat.action_timestamp),
           avg(rat.effectiveness_score)
    FROM resource_action_traces AS rat
    JOIN action_histories AS ah ON ah.id = rat.action_history_id
    JOIN resource_references AS rr ON rr.id = ah.resource_id
    WHERE rr.namespace IS NOT DISTINCT FROM p_namespace
      AND rr.kind = p_kind
      AND rr.name = p_name
      AND rat.action_timestamp >= now() - p_window
      AND rat.action_timestamp <= now()
    GROUP BY rat.action_type
    HAVING count(*) >= p_min_occurrences
    ORDER BY count(*) DESC;
END;
$$;

CREATE OR REPLACE FUNCTION action_effectiveness_summary(
    p_action_type VARCHAR     DEFAULT NULL,
    p_since       TIMESTAMPTZ DEFAULT now() - INTERVAL '30 days'
)
RETURNS TABLE (
    action_type       VARCHAR,
    total_actions     BIGINT,
    succeeded         BIGINT,
    failed            BIGINT,
    success_rate      NUMERIC,
    avg_effectiveness NUMERIC
)
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    RETURN QUERY
    SELECT rat.action_type,
           count(*),
           count(*) FILTER (WHERE rat.execution_status = 'completed'),
           count(*) FILTER (WHERE rat.execution_status = 'failed'),
           round(count(*) FILTER (WHERE rat.execution_status = 'completed')::numeric
                 / count(*), 3),
           round(avg(rat.effectiveness_score), 3)
    FROM resource_action_traces AS rat
    WHERE rat.action_timestamp >= p_since
      AND (p_action_type IS NULL OR rat.action_type = p_action_type)
    GROUP BY rat.action_type
    ORDER BY rat.action_type;
END;
$$;

CREATE OR REPLACE FUNCTION record_oscillation_detection(
    p_pattern_id  BIGINT,
    p_resource_id BIGINT,
    p_window      INTERVAL DEFAULT INTERVAL '2 hours'
)
RETURNS BIGINT
LANGUAGE plpgsql
AS $$
DECLARE
    v_ids   BIGINT[];
    v_first TIMESTAMPTZ;
    v_last  TIMESTAMPTZ;
    v_id    BIGINT;
BEGIN
    SELECT array_agg(rat.id ORDER BY rat.action_timestamp),
           min(rat.action_timestamp),
           max(rat.action_timestamp)
    INTO v_ids, v_first, v_last
    FROM resource_action_traces AS rat
    JOIN action_histories AS ah ON ah.id = rat.action_history_id
    WHERE ah.resource_id = p_resource_id
      AND rat.action_timestamp >= now() - p_window;

    IF v_ids IS NULL THEN
        RETURN NULL;
    END IF;

    INSERT INTO oscillation_detections (
        pattern_id, resource_id, confidence, action_count, time_span_minutes, matching_action_ids
    )
    VALUES (
        p_pattern_id,
        p_resource_id,
        least(1.0, cardinality(v_ids) / 10.0),
        cardinality(v_ids),
        ceil(extract(EPOCH FROM v_last - v_first) / 60)::integer,
        v_ids
    )
    RETURNING id INTO v_id;

    RETURN v_id;
END;
$$;
