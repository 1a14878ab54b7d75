//! Small validation helpers shared by the resource modules.

use chrono::{DateTime, Utc};

use super::error::Error;

/// `value` must have `min..=max` characters.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<(), Error> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(Error::validation(if min == 0 {
            format!("{field}: must be at most {max} characters (got {n})")
        } else {
            format!("{field}: must be {min} to {max} characters (got {n})")
        }));
    }
    Ok(())
}

/// An optional `value` must have at most `max` characters.
pub fn opt_text(field: &str, value: Option<&str>, max: usize) -> Result<(), Error> {
    match value {
        Some(v) => text(field, v, 0, max),
        None => Ok(()),
    }
}

/// A point in time given as RFC 3339 (`2026-11-25T10:00:00Z`) or relative to `now`
/// (`24h`, `30m`, `7d`: that long ago).
pub fn time_or_relative(
    field: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Error> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(value).map_err(|_| {
        Error::validation(format!(
            "{field}: expected an RFC 3339 time (2026-11-25T10:00:00Z) or a duration such as 24h, 30m or 7d; got {value:?}"
        ))
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| Error::validation(format!("{field}: duration {value:?} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_characters() {
        assert!(text("f", "é", 1, 1).is_ok());
        let err = text("event_type", "", 1, 100).unwrap_err().to_string();
        assert_eq!(err, "event_type: must be 1 to 100 characters (got 0)");
        assert!(opt_text("f", Some("abc"), 2).is_err());
        assert!(opt_text("f", None, 2).is_ok());
    }

    #[test]
    fn times_absolute_and_relative() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t = time_or_relative("since", "24h", now).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-24T12:00:00+00:00");
        let t = time_or_relative("since", "2026-11-25T10:00:00+02:00", now).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T08:00:00+00:00");
        let err = time_or_relative("since", "yesterday", now)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("since: expected an RFC 3339 time"), "{err}");
    }
}
