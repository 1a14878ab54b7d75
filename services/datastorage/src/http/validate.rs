//! Validation of requests. The limits a request type's fields must keep (lengths, ranges) are
//! written once, as `#[schema(min_length, max_length, minimum, maximum)]` / `#[param(…)]`
//! attributes: they are in the OpenAPI document as JSON Schema keywords, and [`Rules`] reads the
//! checks from that same schema, so the document and the handlers cannot disagree.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::{Ref, RefOr, path::ParameterIn};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::error::Error;

/// The limits of one field, as its schema states them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Limits {
    min_length: Option<usize>,
    max_length: Option<usize>,
    minimum: Option<f64>,
    maximum: Option<f64>,
}

/// The field limits of one request type, read from its OpenAPI schema.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Prefix of field names in messages (`labels.` for a nested object).
    prefix: &'static str,
    fields: BTreeMap<String, Limits>,
}

impl Rules {
    /// The rules of a request body type (its `ToSchema` object).
    pub fn of<T: PartialSchema>() -> Self {
        Self::nested::<T>("")
    }

    /// The rules of a type nested in a request body, named `prefix` + field in messages.
    pub fn nested<T: PartialSchema>(prefix: &'static str) -> Self {
        let mut fields = BTreeMap::new();
        if let RefOr::T(Schema::Object(object)) = T::schema() {
            for (name, property) in object.properties {
                if let RefOr::T(schema) = property {
                    fields.insert(name, limits(&schema));
                }
            }
        }
        Self { prefix, fields }
    }

    /// The rules of a query-parameter type (its `IntoParams` parameters).
    pub fn of_params<T: IntoParams>() -> Self {
        let fields = T::into_params(|| Some(ParameterIn::Query))
            .into_iter()
            .filter_map(|p| match p.schema {
                Some(RefOr::T(schema)) => Some((p.name, limits(&schema))),
                _ => None,
            })
            .collect();
        Self { prefix: "", fields }
    }

    fn limits(&self, field: &str) -> Limits {
        match self.fields.get(field) {
            Some(limits) => *limits,
            // A check of a field the schema does not have is a programming error; the
            // document-driven API tests reach every check.
            None => panic!("validation of {field:?}, which the schema does not describe"),
        }
    }

    /// A string field: its length in characters (as PostgreSQL's `varchar(n)` counts).
    pub fn text(&self, field: &str, value: &str) -> Result<(), Error> {
        let Limits {
            min_length,
            max_length,
            ..
        } = self.limits(field);
        let n = value.chars().count();
        let min = min_length.unwrap_or(0);
        let max = max_length.unwrap_or(usize::MAX);
        if n < min || n > max {
            let prefix = self.prefix;
            return Err(Error::validation(if min == 0 {
                format!("{prefix}{field}: must be at most {max} characters (got {n})")
            } else if max == usize::MAX {
                format!("{prefix}{field}: must be at least {min} characters (got {n})")
            } else {
                format!("{prefix}{field}: must be {min} to {max} characters (got {n})")
            }));
        }
        Ok(())
    }

    /// An optional (nullable) string field.
    pub fn opt_text(&self, field: &str, value: Option<&str>) -> Result<(), Error> {
        match value {
            Some(v) => self.text(field, v),
            None => Ok(()),
        }
    }

    /// A number field: its range.
    pub fn number(&self, field: &str, value: f64) -> Result<(), Error> {
        let Limits {
            minimum, maximum, ..
        } = self.limits(field);
        let below = minimum.is_some_and(|min| value < min);
        let above = maximum.is_some_and(|max| value > max);
        if below || above {
            let prefix = self.prefix;
            return Err(Error::validation(match (minimum, maximum) {
                (Some(min), Some(max)) => {
                    format!("{prefix}{field}: must be {min} to {max} (got {value})")
                }
                (Some(0.0), None) => {
                    format!("{prefix}{field}: must not be negative (got {value})")
                }
                (Some(min), None) => {
                    format!("{prefix}{field}: must be at least {min} (got {value})")
                }
                (None, _) => format!(
                    "{prefix}{field}: must be at most {} (got {value})",
                    maximum.unwrap_or_default()
                ),
            }));
        }
        Ok(())
    }

    /// An optional number field.
    pub fn opt_number(&self, field: &str, value: Option<f64>) -> Result<(), Error> {
        match value {
            Some(v) => self.number(field, v),
            None => Ok(()),
        }
    }
}

/// The schema of a batch body: a JSON array of at least `min` `T`s (by reference).
pub fn batch_schema<T: ToSchema>(min: usize, description: &str) -> RefOr<Schema> {
    RefOr::T(Schema::Array(
        ArrayBuilder::new()
            .items(Ref::from_schema_name(T::name()))
            .min_items(Some(min))
            .description(Some(description))
            .build(),
    ))
}

/// The component schemas a batch of `T`s refers to.
pub fn batch_item_schemas<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into(), T::schema()));
    T::schemas(schemas);
}

/// The limits a property's schema states (nullable types included: `["string", "null"]`).
fn limits(schema: &Schema) -> Limits {
    match schema {
        Schema::Object(o) => Limits {
            min_length: o.min_length,
            max_length: o.max_length,
            minimum: o.minimum.as_ref().map(number),
            maximum: o.maximum.as_ref().map(number),
        },
        _ => Limits::default(),
    }
}

fn number(n: &utoipa::Number) -> f64 {
    match *n {
        utoipa::Number::Int(i) => i as f64,
        utoipa::Number::UInt(u) => u as f64,
        utoipa::Number::Float(f) => f,
    }
}

/// RFC 3339 date-times as JSON Schema's `date-time` format reads them, for request fields
/// (`#[serde(deserialize_with = "rfc3339::required")]`): chrono's own deserializer also takes
/// spaces anywhere in the text, which the document does not allow.
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, de::Error as _};

    pub fn parse(text: &str) -> Result<DateTime<Utc>, String> {
        // RFC 3339 lets applications write a space for the `T`; JSON Schema's date-time does not.
        if text.as_bytes().get(10) == Some(&b' ') {
            return Err(format!(
                "not an RFC 3339 date-time (a space for the T): {text:?}"
            ));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("not an RFC 3339 date-time ({e}): {text:?}"))
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| parse(&t))
            .transpose()
            .map_err(D::Error::custom)
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

    #[allow(dead_code)]
    #[derive(utoipa::ToSchema)]
    struct Sample {
        #[schema(min_length = 1, max_length = 3)]
        name: String,
        #[schema(max_length = 2)]
        note: Option<String>,
        #[schema(minimum = 0)]
        count: Option<i32>,
        #[schema(minimum = 1, maximum = 1000)]
        limit: i64,
    }

    #[test]
    fn limits_come_from_the_schema() {
        let rules = Rules::of::<Sample>();
        assert!(rules.text("name", "éé").is_ok());
        let err = rules.text("name", "").unwrap_err().to_string();
        assert_eq!(err, "name: must be 1 to 3 characters (got 0)");
        assert!(rules.text("name", "abcd").is_err());
        assert!(rules.opt_text("note", Some("abc")).is_err());
        assert!(rules.opt_text("note", None).is_ok());
        let err = rules.number("count", -5.0).unwrap_err().to_string();
        assert_eq!(err, "count: must not be negative (got -5)");
        let err = rules.number("limit", 0.0).unwrap_err().to_string();
        assert_eq!(err, "limit: must be 1 to 1000 (got 0)");
        assert!(rules.number("limit", 1000.0).is_ok());
        let err = Rules::nested::<Sample>("labels.")
            .text("name", "")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("labels.name: "), "{err}");
    }

    #[test]
    #[should_panic(expected = "which the schema does not describe")]
    fn a_check_of_an_undescribed_field_is_a_bug() {
        let _ = Rules::of::<Sample>().text("nope", "x");
    }

    #[test]
    fn request_times_are_strict_rfc3339() {
        assert!(rfc3339::parse("2026-11-25T10:00:00Z").is_ok());
        assert!(rfc3339::parse("2026-11-25t10:00:00.5+02:00").is_ok());
        for bad in [
            "2026-11-25 10:00:00Z",
            "2026-11-25T10:00:00 Z",
            " 2026-11-25T10:00:00Z",
            "2026-11-25T10: 00:00Z",
            "2026-11-25",
        ] {
            assert!(rfc3339::parse(bad).is_err(), "{bad}");
        }
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
