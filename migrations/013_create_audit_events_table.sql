-- 013_create_audit_events_table.sql
-- Purpose: audit_events, the unified audit trail, range-partitioned by event_date (UTC day of
--          event_timestamp), plus its query indexes and a BEFORE INSERT trigger that derives
--          event_date from event_timestamp when the writer omits it.
-- Depends on: nothing (gen_random_uuid() is built in since PostgreSQL 13).
--             Partitions (and the DEFAULT partition) are created by 014 and 1000.
--
-- How the event_date trigger copes with tuple routing: PostgreSQL routes a row to its partition
-- BEFORE row triggers run, and a BEFORE trigger may not change the key so that the row belongs
-- to another partition. A row inserted without event_date has a NULL key and is routed to the
-- DEFAULT partition. The trigger derives the date; if that date belongs in the DEFAULT partition
-- the row stays there, otherwise the trigger re-inserts the row through audit_events (which
-- routes it to the right partition) and skips the original row. Such a redirected insert
-- reports 0 rows and returns nothing from RETURNING, so writers that need RETURNING or an exact
-- row count (the DataStorage API) pass event_date explicitly.

CREATE TABLE audit_events (
    event_id           UUID         NOT NULL DEFAULT gen_random_uuid(),
    event_version      VARCHAR(20)  NOT NULL DEFAULT '1.0',
    event_type         VARCHAR(100) NOT NULL,
    event_timestamp    TIMESTAMPTZ  NOT NULL,
    event_date         DATE         NOT NULL,
    event_category     VARCHAR(50)  NOT NULL,
    event_action       VARCHAR(50)  NOT NULL,
    event_outcome      VARCHAR(20)  NOT NULL,
    actor_type         VARCHAR(50),
    actor_id           VARCHAR(255),
    resource_type      VARCHAR(100),
    resource_id        VARCHAR(255),
    correlation_id     VARCHAR(255) NOT NULL,
    parent_event_id    UUID,
    parent_event_date  DATE,
    trace_id           VARCHAR(64),
    span_id            VARCHAR(32),
    namespace          VARCHAR(253),
    cluster_name       VARCHAR(255),
    event_data         JSONB        NOT NULL,
    severity           VARCHAR(20)  DEFAULT 'info',
    duration_ms        INTEGER,
    error_code         VARCHAR(50),
    error_message      TEXT,
    retention_days     INTEGER      NOT NULL DEFAULT 2555,
    is_sensitive       BOOLEAN      NOT NULL DEFAULT false,
    created_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT audit_events_pkey PRIMARY KEY (event_id, event_date),
    CONSTRAINT audit_events_event_outcome_check
        CHECK (event_outcome IN ('success', 'failure', 'pending')),
    CONSTRAINT audit_events_event_category_check
        CHECK (event_category IN ('gateway', 'notification', 'analysis', 'signalprocessing',
                                  'workflow', 'execution', 'orchestration')),
    CONSTRAINT audit_events_event_data_check
        CHECK (jsonb_typeof(event_data) = 'object'),
    CONSTRAINT audit_events_parent_check
        CHECK (parent_event_date IS NULL OR parent_event_id IS NOT NULL)
) PARTITION BY RANGE (event_date);

CREATE INDEX idx_audit_events_correlation_id
    ON audit_events (correlation_id, event_timestamp DESC);
CREATE INDEX idx_audit_events_event_type
    ON audit_events (event_type, event_timestamp DESC);
CREATE INDEX idx_audit_events_event_timestamp
    ON audit_events (event_timestamp DESC);
CREATE INDEX idx_audit_events_event_data
    ON audit_events
    USING gin (event_data jsonb_path_ops);
CREATE INDEX idx_audit_events_parent
    ON audit_events (parent_event_id, parent_event_date)
    WHERE parent_event_id IS NOT NULL;

CREATE OR REPLACE FUNCTION audit_events_set_event_date()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
DECLARE
    v_bound TEXT;
    v_fits  BOOLEAN;
BEGIN
    IF NEW.event_date IS NOT NULL OR NEW.event_timestamp IS NULL THEN
        RETURN NEW;
    END IF;

    NEW.event_date := (NEW.event_timestamp AT TIME ZONE 'UTC')::date;

    -- TG_RELID is the partition the NULL key was routed to (the DEFAULT partition).
    v_bound := pg_get_partition_constraintdef(TG_RELID);
    IF v_bound IS NULL THEN
        RETURN NEW;
    END IF;
    EXECUTE format('SELECT %s FROM (SELECT $1::date AS event_date) AS k', v_bound)
    INTO v_fits
    USING NEW.event_date;
    IF v_fits THEN
        RETURN NEW;
    END IF;

    EXECUTE format(
        'INSERT INTO %I.audit_events SELECT * FROM jsonb_populate_record(NULL::%I.audit_events, $1)',
        TG_TABLE_SCHEMA, TG_TABLE_SCHEMA)
    USING to_jsonb(NEW);
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_audit_events_set_event_date
    BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_set_event_date();
