-- 014_create_audit_events_partitions.sql
-- Purpose: audit_events partition maintenance:
--          * audit_events_default, the DEFAULT partition: any event date is always accepted,
--          * create_audit_events_partition(date): creates the monthly partition containing the
--            given date; rows of that month already stored in the DEFAULT partition are moved
--            into the new partition first (PostgreSQL refuses to add a partition whose range
--            overlaps rows held by the DEFAULT partition),
--          * ensure_audit_events_partitions(months_ahead): current month through +months_ahead.
-- Depends on: 013 (audit_events).

CREATE TABLE audit_events_default
    PARTITION OF audit_events DEFAULT;

CREATE OR REPLACE FUNCTION create_audit_events_partition(p_month DATE)
RETURNS TEXT
LANGUAGE plpgsql
AS $$
DECLARE
    v_start DATE := date_trunc('month', p_month::timestamp)::date;
    v_end   DATE := (date_trunc('month', p_month::timestamp) + INTERVAL '1 month')::date;
    v_name  TEXT := 'audit_events_' || to_char(v_start, '"y"YYYY"m"MM');
    v_cols  TEXT;
BEGIN
    -- Serialise concurrent callers and keep the DEFAULT partition stable while rows move.
    LOCK TABLE audit_events_default IN ACCESS EXCLUSIVE MODE;

    IF EXISTS (
        SELECT 1
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_events'::regclass
          AND c.relname = v_name
    ) THEN
        RETURN v_name;
    END IF;

    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
    INTO v_cols
    FROM pg_attribute a
    WHERE a.attrelid = 'audit_events'::regclass
      AND a.attnum > 0
      AND NOT a.attisdropped;

    -- Plain table first (no row triggers fire while the month's rows move in), then attach.
    EXECUTE format(
        'CREATE TABLE %I (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
        v_name);
    EXECUTE format(
        'WITH moved AS (DELETE FROM audit_events_default'
        ' WHERE event_date >= $1 AND event_date < $2 RETURNING %s)'
        ' INSERT INTO %I (%s) SELECT %s FROM moved',
        v_cols, v_name, v_cols, v_cols)
    USING v_start, v_end;
    EXECUTE format(
        'ALTER TABLE audit_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        v_name, v_start, v_end);

    RETURN v_name;
END;
$$;

CREATE OR REPLACE FUNCTION ensure_audit_events_partitions(months_ahead INTEGER DEFAULT 3)
RETURNS SETOF TEXT
LANGUAGE plpgsql
AS $$
DECLARE
    v_month DATE := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
BEGIN
    FOR i IN 0..months_ahead LOOP
        RETURN NEXT create_audit_events_partition((v_month + make_interval(months => i))::date);
    END LOOP;
END;
$$;
