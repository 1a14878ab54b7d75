-- 010_audit_write_api_phase1.sql
-- Purpose: notification_audit, the audit trail of every notification sent for a remediation
--          (Audit Write API phase 1), with a 384-dimension embedding of the message summary.
-- Depends on: 001 (update_updated_at()); the pgvector extension (created here if missing).
-- v1.0 uses migrations/v1.0-replacements/010_audit_write_api_phase1.sql instead (no vector).

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE notification_audit (
    id                 BIGSERIAL    PRIMARY KEY,
    remediation_id     VARCHAR(255) NOT NULL,
    notification_id    VARCHAR(255) NOT NULL,
    recipient          VARCHAR(255) NOT NULL,
    channel            VARCHAR(50)  NOT NULL,
    message_summary    TEXT         NOT NULL,
    status             VARCHAR(20)  NOT NULL,
    sent_at            TIMESTAMPTZ  NOT NULL,
    delivery_status    TEXT,
    error_message      TEXT,
    escalation_level   INTEGER      NOT NULL DEFAULT 0,
    alert_fingerprint  TEXT,
    embedding          vector(384),
    created_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT notification_audit_notification_id_key UNIQUE (notification_id),
    CONSTRAINT notification_audit_status_check
        CHECK (status IN ('sent', 'failed', 'acknowledged', 'escalated')),
    CONSTRAINT notification_audit_escalation_level_check
        CHECK (escalation_level >= 0)
);

CREATE INDEX idx_notification_audit_remediation_id
    ON notification_audit (remediation_id);
CREATE INDEX idx_notification_audit_status
    ON notification_audit (status);
CREATE INDEX idx_notification_audit_sent_at
    ON notification_audit (sent_at DESC);
CREATE INDEX idx_notification_audit_alert_fingerprint
    ON notification_audit (alert_fingerprint)
    WHERE alert_fingerprint IS NOT NULL;
CREATE INDEX idx_notification_audit_embedding
    ON notification_audit
    USING hnsw (embedding vector_cosine_ops);

CREATE TRIGGER trg_notification_audit_updated_at
    BEFORE UPDATE ON notification_audit
    FOR EACH ROW EXECUTE FUNCTION update_updated_at();
