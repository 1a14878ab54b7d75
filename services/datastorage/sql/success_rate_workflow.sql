WITH t AS (
    SELECT execution_status = 'completed' AS ok, incident_type,
           coalesce(ai_selected_workflow, false) AS selected,
           coalesce(ai_chained_workflows, false) AS chained,
           coalesce(ai_manual_escalation, false) AS escalated
    FROM resource_action_traces
    WHERE workflow_id = $1
      AND ($2::text IS NULL OR workflow_version = $2)
      AND action_timestamp >= now() - make_interval(hours => $3)
      AND execution_status IN ('completed', 'failed'))
SELECT count(*) AS "total!",
       count(*) FILTER (WHERE ok) AS "successful!",
       count(*) FILTER (WHERE selected) AS "catalog_selected!",
       count(*) FILTER (WHERE chained) AS "chained!",
       count(*) FILTER (WHERE escalated) AS "manual_escalation!",
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'incident_type', incident_type, 'executions', n,
                   'success_rate', rate)
               ORDER BY n DESC, incident_type), '[]')
        FROM (SELECT incident_type, count(*) AS n,
                     round(100.0 * count(*) FILTER (WHERE ok) / count(*), 2)::float8
                         AS rate
              FROM t WHERE incident_type IS NOT NULL
              GROUP BY incident_type) b) AS "breakdown!"
FROM t
