//! Requests generated from the served OpenAPI document: a proptest generator of the values a
//! JSON Schema of the document allows ([`Doc::valid`]), one-field mutations of such values
//! ([`Doc::mutated`]), and the document's verdict on any value ([`Doc::allows`], by the
//! jsonschema crate on the document itself). The rules the schemas cannot state are in the
//! document's descriptions; the generator keeps them ([`Inexpressible`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{Duration, Utc};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

/// Longest string the generator writes, whatever `maxLength` allows (request bodies stay small
/// enough to run thousands of cases; the limits themselves are tried by the mutations).
const LONGEST: usize = 2_000;

/// Characters strings are made of: ASCII, punctuation JSON must escape, and Unicode edge cases
/// (multi-byte, astral, combining, zero-width, BOM, noncharacter). `maxLength` counts
/// characters, as PostgreSQL's `varchar(n)` does.
const CHARS: &[char] = &[
    'a',
    'Z',
    '0',
    ' ',
    '-',
    '_',
    '.',
    '/',
    ':',
    '"',
    '\\',
    '\n',
    '\t',
    '\u{1}',
    'é',
    '€',
    '日',
    '𝄞',
    '😀',
    '\u{301}',
    '\u{200B}',
    '\u{FEFF}',
    '\u{FFFF}',
    '\u{10FFFF}',
];

/// The served document.
#[derive(Debug, Clone)]
pub struct Doc {
    pub json: Value,
    /// Validators built so far, by schema: building one compiles the whole document.
    validators: Arc<Mutex<HashMap<String, Arc<jsonschema::Validator>>>>,
}

/// The document's rules that JSON Schema cannot state (each is in a description), kept by
/// valid requests.
#[derive(Debug, Clone, Copy)]
pub enum Inexpressible {
    /// `event_timestamp` is at most 7 days old and at most 5 minutes ahead.
    RecentTime,
    /// `parent_event_id` names an existing event: left out.
    Absent,
    /// `since` / `until`: an RFC 3339 time or a duration ago.
    TimeOrDuration,
    /// `time_range`: hours or days (its pattern), at most 3650 days.
    TimeRange,
}

/// Whether `value` (a request body) breaks one of the document's inexpressible rules: `Some(true)`
/// if it does, `Some(false)` if it keeps them all, `None` when a timestamp is too close to the
/// edge of its window to tell (the clock moves between the check and the service's).
pub fn breaks_inexpressible(value: &Value) -> Option<bool> {
    match value {
        Value::Array(items) => items.iter().try_fold(false, |broken, item| {
            Some(broken || breaks_inexpressible(item)?)
        }),
        Value::Object(fields) => {
            if fields.get("parent_event_id").is_some_and(|v| !v.is_null()) {
                return Some(true);
            }
            let Some(Value::String(ts)) = fields.get("event_timestamp") else {
                return Some(false);
            };
            let Ok(ts) = chrono::DateTime::parse_from_rfc3339(ts) else {
                return Some(true);
            };
            let now = Utc::now();
            let (oldest, newest) = (now - Duration::days(7), now + Duration::minutes(5));
            let margin = Duration::seconds(30);
            if ts > oldest + margin && ts < newest - margin {
                Some(false)
            } else if ts < oldest - margin || ts > newest + margin {
                Some(true)
            } else {
                None
            }
        }
        _ => Some(false),
    }
}

/// The inexpressible rule of a property or parameter, by name.
pub fn inexpressible(name: &str) -> Option<Inexpressible> {
    match name {
        "event_timestamp" => Some(Inexpressible::RecentTime),
        "parent_event_id" | "cursor" => Some(Inexpressible::Absent),
        "since" | "until" => Some(Inexpressible::TimeOrDuration),
        "time_range" => Some(Inexpressible::TimeRange),
        _ => None,
    }
}

impl Doc {
    /// `GET /api/v1/openapi.json` of `app`.
    pub async fn served(app: &Router) -> Doc {
        let response = app
            .clone()
            .oneshot(
                Request::get("/api/v1/openapi.json")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Doc {
            json: serde_json::from_slice(&bytes).unwrap(),
            validators: Arc::default(),
        }
    }

    /// The operation `method path`.
    pub fn operation(&self, method: &Method, path: &str) -> &Value {
        let op = &self.json["paths"][path][method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} is not in the document");
        op
    }

    /// The JSON request body schema of an operation.
    pub fn request_schema(&self, method: &Method, path: &str) -> Value {
        self.operation(method, path)["requestBody"]["content"]["application/json"]["schema"].clone()
    }

    /// The query parameters of an operation: name and schema.
    pub fn query_parameters(&self, method: &Method, path: &str) -> Vec<(String, Value)> {
        self.operation(method, path)["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .map(|p| (p["name"].as_str().unwrap().to_owned(), p["schema"].clone()))
            .collect()
    }

    /// Whether the query parameter `name` of an operation is required.
    pub fn required(&self, method: &Method, path: &str, name: &str) -> bool {
        self.operation(method, path)["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["in"] == "query" && p["name"] == name && p["required"] == true)
    }

    /// `schema`, with a `$ref` to the document's components followed.
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("unexpected $ref {r}"));
                self.resolve(&self.json["components"]["schemas"][name])
            }
            None => schema,
        }
    }

    /// A validator of `schema` (which may `$ref` the document's components), formats checked.
    pub fn validator(&self, schema: &Value) -> Arc<jsonschema::Validator> {
        let key = schema.to_string();
        if let Some(v) = self.validators.lock().unwrap().get(&key) {
            return v.clone();
        }
        let mut root = self.json.clone();
        root.as_object_mut().unwrap().remove("paths");
        for (key, value) in schema.as_object().unwrap() {
            root[key] = value.clone();
        }
        let validator = Arc::new(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("schema {schema}: {e}")),
        );
        self.validators
            .lock()
            .unwrap()
            .insert(key, validator.clone());
        validator
    }

    /// Whether the document allows `value` for `schema`: JSON Schema, and the ranges of the
    /// OpenAPI integer formats (`int32`, `int64`), which JSON Schema leaves to the document.
    pub fn allows(&self, validator: &jsonschema::Validator, schema: &Value, value: &Value) -> bool {
        validator.is_valid(value) && self.formats_hold(schema, value)
    }

    fn formats_hold(&self, schema: &Value, value: &Value) -> bool {
        let schema = self.resolve(schema);
        if let Some(branches) = schema["oneOf"].as_array() {
            return branches.iter().any(|b| self.formats_hold(b, value));
        }
        match value {
            Value::Number(n) if schema["format"] == "int32" => {
                n.as_i64().is_some_and(|i| i32::try_from(i).is_ok())
            }
            Value::Number(n) if schema["format"] == "int64" => n.as_i64().is_some(),
            Value::Object(fields) => fields.iter().all(|(k, v)| {
                let property = &schema["properties"][k];
                property.is_null() || self.formats_hold(property, v)
            }),
            Value::Array(items) => items.iter().all(|v| self.formats_hold(&schema["items"], v)),
            _ => true,
        }
    }

    /// The values `schema` allows, keeping the document's inexpressible rules.
    pub fn valid(&self, schema: &Value) -> BoxedStrategy<Value> {
        self.valid_as(schema, None)
    }

    /// The values a parameter named `name` allows.
    pub fn valid_parameter(&self, name: &str, schema: &Value) -> BoxedStrategy<Value> {
        self.valid_as(schema, inexpressible(name))
    }

    fn valid_as(&self, schema: &Value, rule: Option<Inexpressible>) -> BoxedStrategy<Value> {
        let schema = self.resolve(schema).clone();
        if let Some(values) = schema["enum"].as_array() {
            return prop::sample::select(values.clone()).boxed();
        }
        if let Some(branches) = schema["oneOf"].as_array() {
            return Union::new(branches.iter().map(|b| self.valid_as(b, rule))).boxed();
        }
        let types: Vec<String> = match &schema["type"] {
            Value::String(t) => vec![t.clone()],
            Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
            _ => vec!["object".to_owned()],
        };
        Union::new(types.iter().map(|t| self.valid_of_type(&schema, t, rule))).boxed()
    }

    fn valid_of_type(
        &self,
        schema: &Value,
        ty: &str,
        rule: Option<Inexpressible>,
    ) -> BoxedStrategy<Value> {
        match ty {
            "null" => Just(Value::Null).boxed(),
            "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
            "integer" => {
                let (lo, hi) = int_range(schema);
                prop_oneof![Just(lo), Just(hi), lo..=hi]
                    .prop_map(|i| json!(i))
                    .boxed()
            }
            "number" => {
                let lo = schema["minimum"].as_f64().unwrap_or(-1e6);
                let hi = schema["maximum"].as_f64().unwrap_or(1e6);
                prop_oneof![Just(lo), Just(hi), lo..=hi]
                    .prop_map(|f| json!(f))
                    .boxed()
            }
            "string" => string(schema, rule),
            "array" => {
                let min = schema["minItems"].as_u64().unwrap_or(0) as usize;
                let max = schema["maxItems"].as_u64().map_or(min + 4, |m| m as usize);
                prop::collection::vec(self.valid(&schema["items"]), min..=max)
                    .prop_map(Value::Array)
                    .boxed()
            }
            _ => self.object(schema),
        }
    }

    fn object(&self, schema: &Value) -> BoxedStrategy<Value> {
        let Some(properties) = schema["properties"].as_object() else {
            // Any JSON object.
            return prop::collection::btree_map(text(0, 12), scalar(), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
                .boxed();
        };
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = properties
            .iter()
            .map(|(name, property)| {
                let rule = inexpressible(name);
                let name = name.clone();
                let value = self.valid_as(property, rule);
                if matches!(rule, Some(Inexpressible::Absent)) {
                    Just(None).boxed()
                } else if required.contains(&name.as_str()) {
                    value.prop_map(move |v| Some((name.clone(), v))).boxed()
                } else {
                    prop::option::of(value.prop_map(move |v| (name.clone(), v))).boxed()
                }
            })
            .collect();
        let min_properties = schema["minProperties"].as_u64().unwrap_or(0) as usize;
        fields
            .prop_map(|fields| Value::Object(fields.into_iter().flatten().collect::<Map<_, _>>()))
            .prop_filter("fewer properties than minProperties", move |v| {
                v.as_object().unwrap().len() >= min_properties
            })
            .boxed()
    }

    /// One-field mutations of valid values of `schema`: the mutated value, and what was done.
    /// The field is a property at any depth (a nested object's, a batch element's).
    pub fn mutated(&self, schema: &Value) -> BoxedStrategy<(Value, String)> {
        let doc = self.clone();
        let schema = schema.clone();
        (
            self.valid(&schema),
            prop::collection::vec(any::<prop::sample::Index>(), 4),
            mutation(),
        )
            .prop_flat_map(move |(value, path, kind)| doc.mutate(&schema, value, &path, kind))
            .boxed()
    }

    /// `value` with one field mutated: the field is chosen by `path` (one index per level).
    fn mutate(
        &self,
        schema: &Value,
        value: Value,
        path: &[prop::sample::Index],
        kind: Kind,
    ) -> BoxedStrategy<(Value, String)> {
        let schema = self.resolve(schema).clone();
        let (at, deeper) = path.split_first().expect("a path index per level");
        if let Value::Array(items) = &value
            && !items.is_empty()
        {
            // One element of a batch.
            let i = at.index(items.len());
            let items = items.clone();
            return self
                .mutate(&schema["items"], items[i].clone(), deeper, kind)
                .prop_map(move |(bad, what)| {
                    let mut batch = items.clone();
                    batch[i] = bad;
                    (Value::Array(batch), format!("element {i}: {what}"))
                })
                .boxed();
        }
        let properties: Vec<(String, Value)> = schema["properties"]
            .as_object()
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if properties.is_empty() || !value.is_object() {
            return Just((json!([value]), "an array instead of an object".to_owned())).boxed();
        }
        let (field, property) = properties[at.index(properties.len())].clone();
        let property = self.resolve(&property).clone();
        // A nested object's field, half of the time (when there is a deeper level).
        if property["properties"].is_object()
            && value[&field].is_object()
            && !deeper.is_empty()
            && deeper[0].index(2) == 0
        {
            let inner = value[&field].clone();
            return self
                .mutate(&property, inner, &deeper[1..], kind)
                .prop_map(move |(bad, what)| {
                    let mut out = value.clone();
                    out[&field] = bad;
                    (out, format!("{field}.{what}"))
                })
                .boxed();
        }
        let set = {
            let value = value.clone();
            let field = field.clone();
            move |v: Value| {
                let mut out = value.clone();
                out[&field] = v;
                out
            }
        };
        let missing = field.clone();
        let named = move |what: String| format!("{field}: {what}");
        match kind {
            Kind::WrongType => wrong_type(&property)
                .prop_map(move |v| (set(v.clone()), named(format!("wrong type {v}"))))
                .boxed(),
            Kind::OutOfRange => out_of_range(&property)
                .prop_map(move |v| (set(v.clone()), named(format!("out of range {}", short(&v)))))
                .boxed(),
            Kind::Missing => {
                let mut out = value.clone();
                out.as_object_mut().unwrap().remove(&missing);
                Just((out, named("missing".to_owned()))).boxed()
            }
            Kind::Extra => {
                let mut out = value;
                out["no_such_field"] = json!("x");
                Just((out, "an unknown property".to_owned())).boxed()
            }
            Kind::Nul => text(0, 8)
                .prop_map(move |s| {
                    (
                        set(json!(format!("{s}\u{0}{s}"))),
                        named("a NUL".to_owned()),
                    )
                })
                .boxed(),
            Kind::Unicode => text(1, 12)
                .prop_map(move |s| (set(json!(s)), named("Unicode text".to_owned())))
                .boxed(),
        }
    }
}

/// The kinds of one-field mutation.
#[derive(Debug, Clone, Copy)]
enum Kind {
    WrongType,
    OutOfRange,
    Missing,
    Extra,
    Nul,
    Unicode,
}

fn mutation() -> impl Strategy<Value = Kind> {
    prop::sample::select(vec![
        Kind::WrongType,
        Kind::OutOfRange,
        Kind::OutOfRange,
        Kind::Missing,
        Kind::Extra,
        Kind::Nul,
        Kind::Unicode,
    ])
}

/// A value of another JSON type than any `schema` allows.
fn wrong_type(schema: &Value) -> BoxedStrategy<Value> {
    let types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
        // An enum or a $ref'd object.
        _ => vec![
            if schema["enum"].is_array() {
                "string"
            } else {
                "object"
            }
            .to_owned(),
        ],
    };
    let candidates: Vec<Value> = [
        json!("text"),
        json!(7),
        json!(1.5),
        json!(true),
        json!([1]),
        json!({"a": 1}),
        Value::Null,
    ]
    .into_iter()
    .filter(|v| {
        let ty = match v {
            Value::String(_) => "string",
            Value::Number(n) if n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Null => "null",
        };
        !(types.iter().any(|t| t == ty) || (ty == "integer" && types.iter().any(|t| t == "number")))
    })
    .collect();
    prop::sample::select(candidates).boxed()
}

/// A value just outside (or far outside) the limits `schema` states; any value when it states
/// none (then the mutation may well be valid, and the document's verdict says so).
fn out_of_range(schema: &Value) -> BoxedStrategy<Value> {
    let mut options: Vec<BoxedStrategy<Value>> = Vec::new();
    if let Some(max) = schema["maxLength"].as_u64() {
        let max = max as usize;
        options.push(
            prop_oneof![Just(max + 1), (max + 1)..=(max + 40)]
                .prop_map(|n| json!("x".repeat(n)))
                .no_shrink()
                .boxed(),
        );
    }
    if let Some(min) = schema["minLength"].as_u64().filter(|&m| m > 0) {
        options.push(Just(json!("y".repeat(min as usize - 1))).boxed());
    }
    if let Some(enumerated) = schema["enum"].as_array() {
        let enumerated = enumerated.clone();
        options.push(
            text(0, 10)
                .prop_filter("an enum value", move |s| !enumerated.contains(&json!(s)))
                .prop_map(Value::String)
                .boxed(),
        );
    }
    let is_integer = schema["type"] == "integer"
        || schema["type"]
            .as_array()
            .is_some_and(|ts| ts.contains(&json!("integer")));
    if let Some(min) = schema["minimum"].as_f64() {
        let below = if is_integer {
            prop_oneof![Just(min as i64 - 1), (i64::MIN / 2)..(min as i64)]
                .prop_map(|i| json!(i))
                .boxed()
        } else {
            prop_oneof![Just(min - 0.001), -1e9..min]
                .prop_map(|f| json!(f))
                .boxed()
        };
        options.push(below);
    }
    if let Some(max) = schema["maximum"].as_f64() {
        let above = if is_integer {
            prop_oneof![Just(max as i64 + 1), (max as i64 + 1)..(i64::MAX / 2)]
                .prop_map(|i| json!(i))
                .boxed()
        } else {
            prop_oneof![Just(max + 0.001), (max + 0.001)..1e9]
                .prop_map(|f| json!(f))
                .boxed()
        };
        options.push(above);
    }
    if is_integer {
        // Beyond the integer format's range.
        options.push(
            prop_oneof![
                Just(json!(i64::from(i32::MAX) + 1)),
                Just(json!(u64::MAX)),
                Just(json!(-1e30))
            ]
            .boxed(),
        );
    }
    match schema["format"].as_str() {
        Some("date-time") => options.push(
            prop::sample::select(vec!["2026-13-45T99:00:00Z", "noon", "2026-11-25", ""])
                .prop_map(|s| json!(s))
                .boxed(),
        ),
        Some("uuid") => options.push(Just(json!("not-a-uuid")).boxed()),
        _ => {}
    }
    if options.is_empty() {
        return scalar();
    }
    Union::new(options).boxed()
}

/// The integer range a schema allows: its `minimum`/`maximum`, within its format's range.
fn int_range(schema: &Value) -> (i64, i64) {
    let (lo, hi) = match schema["format"].as_str() {
        Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN / 2, i64::MAX / 2),
    };
    (
        schema["minimum"].as_f64().map_or(lo, |m| m as i64),
        schema["maximum"].as_f64().map_or(hi, |m| m as i64),
    )
}

/// A string `schema` allows, under `rule`.
fn string(schema: &Value, rule: Option<Inexpressible>) -> BoxedStrategy<Value> {
    match (rule, schema["format"].as_str()) {
        (Some(Inexpressible::TimeOrDuration), _) => prop_oneof![
            recent_time(),
            prop::sample::select(vec!["24h", "30m", "7d", "1s", "2h 5m"]).prop_map(String::from),
        ]
        .prop_map(Value::String)
        .boxed(),
        (Some(Inexpressible::TimeRange), _) => (1u32..=3650, any::<bool>())
            .prop_map(|(n, days)| {
                json!(if days {
                    format!("{n}d")
                } else {
                    format!("{}h", n * 24)
                })
            })
            .boxed(),
        (_, Some("date-time")) => recent_time().prop_map(Value::String).boxed(),
        (_, Some("date")) => Just(json!(Utc::now().date_naive().to_string())).boxed(),
        (_, Some("uuid")) => any::<u128>()
            .prop_map(|n| json!(uuid::Uuid::from_u128(n).to_string()))
            .boxed(),
        _ => {
            let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
            let max = schema["maxLength"].as_u64().map_or(40, |m| m as usize);
            let cap = max.min(LONGEST).max(min);
            prop_oneof![
                1 => Just(min),
                1 => Just(cap),
                4 => min..=cap.min(min + 24),
            ]
            .prop_flat_map(move |n| text(n, n))
            .prop_map(Value::String)
            .boxed()
        }
    }
}

/// Text of `min..=max` characters from [`CHARS`] (a random head, then one repeated character).
pub fn text(min: usize, max: usize) -> BoxedStrategy<String> {
    (min..=max)
        .prop_flat_map(|n| {
            (
                prop::collection::vec(prop::sample::select(CHARS), n.min(16)),
                prop::sample::select(CHARS),
                Just(n),
            )
        })
        .prop_map(|(head, fill, n)| {
            let mut s: String = head.into_iter().collect();
            s.extend(std::iter::repeat_n(fill, n - n.min(16)));
            s
        })
        .boxed()
}

/// An RFC 3339 time within the last three days, in UTC or with an offset.
fn recent_time() -> BoxedStrategy<String> {
    (0i64..3 * 86_400, prop::sample::select(vec![0i32, 2, -5]))
        .prop_map(|(ago, hours)| {
            let offset = chrono::FixedOffset::east_opt(hours * 3600).unwrap();
            (Utc::now() - Duration::seconds(ago))
                .with_timezone(&offset)
                .to_rfc3339()
        })
        .boxed()
}

/// A JSON scalar or a small nested value.
fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        text(0, 20).prop_map(Value::String),
        any::<i32>().prop_map(|i| json!(i)),
        (-1e9..1e9f64).prop_map(|f| json!(f)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(json!({"nested": [1, "two", {"three": null}]})),
    ]
    .boxed()
}

/// A value, shortened for messages.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!(
            "{}… ({} bytes)",
            s.chars().take(40).collect::<String>(),
            s.len()
        )
    } else {
        s
    }
}
