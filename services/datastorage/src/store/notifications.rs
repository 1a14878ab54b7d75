//! The SQL of the notification audit store that the spool's drain runs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A validated notification audit record with defaults applied, ready to insert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRow {
    pub remediation_id: String,
    pub notification_id: String,
    pub recipient: String,
    pub channel: String,
    pub message_summary: String,
    pub status: String,
    pub sent_at: DateTime<Utc>,
    pub delivery_status: Option<String>,
    pub error_message: Option<String>,
    pub escalation_level: i32,
    pub signal_fingerprint: Option<String>,
}

/// What writing a record again found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// Stored now.
    Stored,
    /// Stored before, with the same content (a write whose commit was not seen).
    AlreadyStored,
    /// Another record holds its `notification_id`.
    Conflict,
}

/// Store `row` unless its `notification_id` is taken; tells which it was.
pub async fn insert_replayed(tx: &mut sqlx::PgConnection, row: &NewRow) -> sqlx::Result<Replayed> {
    // One statement: the CTE's insert is not visible to the outer SELECT (one snapshot), so
    // `same` compares with the record that held the notification_id before, if any.
    let outcome = sqlx::query!(
        r#"WITH stored AS (
               INSERT INTO notification_audit (
                   remediation_id, notification_id, recipient, channel, message_summary,
                   status, sent_at, delivery_status, error_message, escalation_level,
                   signal_fingerprint)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
               ON CONFLICT (notification_id) DO NOTHING
               RETURNING id)
           SELECT EXISTS (SELECT 1 FROM stored) AS "stored!",
                  (SELECT remediation_id = $1 AND recipient = $3 AND channel = $4
                          AND message_summary = $5 AND status = $6 AND sent_at = $7
                          AND delivery_status IS NOT DISTINCT FROM $8::text
                          AND error_message IS NOT DISTINCT FROM $9::text
                          AND escalation_level = $10
                          AND signal_fingerprint IS NOT DISTINCT FROM $11::text
                   FROM notification_audit
                   WHERE notification_id = $2) AS same"#,
        row.remediation_id,
        row.notification_id,
        row.recipient,
        row.channel,
        row.message_summary,
        row.status,
        row.sent_at,
        row.delivery_status,
        row.error_message,
        row.escalation_level,
        row.signal_fingerprint,
    )
    .fetch_one(&mut *tx)
    .await?;
    if outcome.stored {
        return Ok(Replayed::Stored);
    }
    let same = outcome.same;
    Ok(match same {
        Some(true) => Replayed::AlreadyStored,
        _ => Replayed::Conflict,
    })
}
