//! PostgreSQL URLs, edited through the `url` crate.

use url::Url;

use crate::Error;

/// The same URL with another database name (user, password, host, port and query parameters
/// kept).
pub fn with_database(url: &str, db: &str) -> Result<String, Error> {
    let mut parsed = parse(url)?;
    parsed.set_path(&format!("/{db}"));
    Ok(parsed.into())
}

/// A URL with its password hidden, for messages; one that cannot be parsed is not shown.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.into()
        }
        Err(e) => format!("(a database URL that cannot be parsed: {e})"),
    }
}

/// Parses a `postgres://` / `postgresql://` URL.
pub(crate) fn parse(url: &str) -> Result<Url, Error> {
    let parsed = Url::parse(url).map_err(|e| {
        Error::Url(format!(
            "{}: {e}; expected postgres://user:password@host:port/database",
            redact(url)
        ))
    })?;
    match parsed.scheme() {
        "postgres" | "postgresql" => Ok(parsed),
        other => Err(Error::Url(format!(
            "{}: scheme {other:?} is not postgres:// or postgresql://",
            redact(url)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/app?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:1", "x").unwrap(),
            "postgres://h:1/x"
        );
        assert_eq!(
            with_database("postgresql://h/a/b", "x").unwrap(),
            "postgresql://h/x"
        );
        let err = with_database("mysql://h/db", "x").unwrap_err().to_string();
        assert!(err.contains("not postgres://"), "{err}");
        assert!(with_database("no url", "x").is_err());
    }

    #[test]
    fn hides_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        let hidden = redact("postgres://u:se cret@[::1/db");
        assert!(!hidden.contains("se cret"), "{hidden}");
    }
}
