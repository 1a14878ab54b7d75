WITH t AS (
    SELECT execution_status = 'completed' AS ok, workflow_id, workflow_version,
           coalesce(ai_selected_workflow, false) AS selected,
           coalesce(ai_chained_workflows, false) AS chained,
           coalesce(ai_manual_escalation, false) AS escalated
    FROM resource_action_traces
    WHERE incident_type = $1
      AND action_timestamp >= now() - make_interval(hours => $2)
      AND execution_status IN ('completed', 'failed'))
SELECT count(*) AS "total!",
       count(*) FILTER (WHERE ok) AS "successful!",
       count(*) FILTER (WHERE selected) AS "catalog_selected!",
       count(*) FILTER (WHERE chained) AS "chained!",
       count(*) FILTER (WHERE escalated) AS "manual_escalation!",
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'workflow_id', workflow_id, 'workflow_version', workflow_version,
                   'executions', n, 'success_rate', rate)
               ORDER BY n DESC, workflow_id, workflow_version), '[]')
        FROM (SELECT workflow_id, workflow_version, count(*) AS n,
                     round(100.0 * count(*) FILTER (WHERE ok) / count(*), 2)::float8
                         AS rate
              FROM t WHERE workflow_id IS NOT NULL
              GROUP BY workflow_id, workflow_version) b) AS "breakdown!"
FROM t
