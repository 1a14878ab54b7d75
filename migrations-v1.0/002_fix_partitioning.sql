-- 002_fix_partitioning.sql
-- Purpose: rebuild resource_action_traces with a usable partition layout:
--          * a unique key that includes the partition column (PRIMARY KEY (id, action_timestamp)),
--          * a DEFAULT partition so that an insert never fails because of its timestamp,
--          * create_resource_action_traces_partition(date): creates one monthly partition on demand
--            and first moves the matching rows out of the DEFAULT partition (otherwise PostgreSQL
--            refuses a partition whose range overlaps rows already stored in the DEFAULT partition),
--          * the query indexes, and partitions for the current month and the next three.
-- Depends on: 001 (resource_action_traces, action_histories, update_updated_at()).
-- Monthly partition bounds are UTC month boundaries.

ALTER TABLE resource_action_traces RENAME TO resource_action_traces_legacy;

CREATE TABLE resource_action_traces (
    LIKE resource_action_traces_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    CONSTRAINT resource_action_traces_pkey PRIMARY KEY (id, action_timestamp),
    CONSTRAINT uq_resource_action_traces_action_id UNIQUE (action_id, action_timestamp),
    CONSTRAINT fk_resource_action_traces_history
        FOREIGN KEY (action_history_id) REFERENCES action_histories (id) ON DELETE CASCADE
) PARTITION BY RANGE (action_timestamp);

-- Keep the id sequence (and its position) when the legacy table goes away.
ALTER SEQUENCE resource_action_traces_id_seq OWNED BY resource_action_traces.id;

CREATE TABLE resource_action_traces_default
    PARTITION OF resource_action_traces DEFAULT;

INSERT INTO resource_action_traces
SELECT *
FROM resource_action_traces_legacy;

DROP TABLE resource_action_traces_legacy;

CREATE TRIGGER trg_resource_action_traces_updated_at
    BEFORE UPDATE ON resource_action_traces
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();

CREATE INDEX idx_rat_history_time
    ON resource_action_traces (action_history_id, action_timestamp DESC);
CREATE INDEX idx_rat_action_type_time
    ON resource_action_traces (action_type, action_timestamp DESC);
CREATE INDEX idx_rat_alert_name_severity
    ON resource_action_traces (alert_name, alert_severity);
CREATE INDEX idx_rat_execution_status
    ON resource_action_traces (execution_status);
CREATE INDEX idx_rat_correlation_id
    ON resource_action_traces (correlation_id);

CREATE OR REPLACE FUNCTION create_resource_action_traces_partition(p_month DATE)
RETURNS TEXT
LANGUAGE plpgsql
AS $$
DECLARE
    v_start DATE        := date_trunc('month', p_month::timestamp)::date;
    v_from  TIMESTAMPTZ := v_start::timestamp AT TIME ZONE 'UTC';
    v_to    TIMESTAMPTZ := (v_start + INTERVAL '1 month')::timestamp AT TIME ZONE 'UTC';
    v_name  TEXT        := 'resource_action_traces_' || to_char(v_start, '"y"YYYY"m"MM');
    v_cols  TEXT;
BEGIN
    -- Serialise concurrent callers and keep the DEFAULT partition stable while rows move.
    LOCK TABLE resource_action_traces_default IN ACCESS EXCLUSIVE MODE;

    IF EXISTS (
        SELECT 1
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'resource_action_traces'::regclass
          AND c.relname = v_name
    ) THEN
        RETURN v_name;
    END IF;

    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
    INTO v_cols
    FROM pg_attribute a
    WHERE a.attrelid = 'resource_action_traces'::regclass
      AND a.attnum > 0
      AND NOT a.attisdropped;

    -- Build the partition as a plain table, move the DEFAULT partition's rows of that month
    -- into it (no row triggers fire on the plain table), then attach it.
    EXECUTE format(
        'CREATE TABLE %I (LIKE resource_action_traces INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
        v_name);
    EXECUTE format(
        'WITH moved AS (DELETE FROM resource_action_traces_default'
        ' WHERE action_timestamp >= $1 AND action_timestamp < $2 RETURNING %s)'
        ' INSERT INTO %I (%s) SELECT %s FROM moved',
        v_cols, v_name, v_cols, v_cols)
    USING v_from, v_to;
    EXECUTE format(
        'ALTER TABLE resource_action_traces ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        v_name, v_from, v_to);

    RETURN v_name;
END;
$$;

SELECT create_resource_action_traces_partition(
           (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => m))::date)
FROM generate_series(0, 3) AS m;
