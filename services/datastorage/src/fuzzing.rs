//! Requests from arbitrary bytes, shared by the libFuzzer target (`services/datastorage/fuzz`,
//! run by `cargo xtask fuzz`) and the API suite's replay of the target's corpus: the first byte
//! picks an operation, the second a content type, the rest is the body (for a GET, the query
//! string). [`check`] is what every answer must be, whatever the bytes.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, Uri};

/// The operations a fuzz input can reach: every one that parses a body or a query.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("POST", "/api/v1/audit/events"),
    ("POST", "/api/v1/audit/events/batch"),
    ("POST", "/api/v1/audit/notifications"),
    ("POST", "/api/v1/workflows"),
    ("POST", "/api/v1/workflows/search"),
    (
        "PATCH",
        "/api/v1/workflows/6f1c1a2e-8f57-4a39-9a51-0c1f9f0b7c11",
    ),
    ("GET", "/api/v1/audit/events"),
    ("GET", "/api/v1/workflows"),
    ("POST", "/api/v1/action-traces"),
    ("POST", "/api/v1/action-traces/batch"),
    ("GET", "/api/v1/incidents"),
    ("GET", "/api/v1/success-rate/incident-type"),
    ("GET", "/api/v1/success-rate/workflow"),
    ("GET", "/api/v1/success-rate/multi-dimensional"),
];

/// The content types a fuzz input can declare (JSON most often).
const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/problem+json"),
    Some("text/plain"),
    None,
];

/// The request that `data` describes.
pub fn request(data: &[u8]) -> Request<Body> {
    let (op, rest) = data.split_first().unwrap_or((&0, &[]));
    let (ct, rest) = rest.split_first().unwrap_or((&0, &[]));
    let (method, path) = OPERATIONS[usize::from(*op) % OPERATIONS.len()];
    let method = Method::from_bytes(method.as_bytes()).expect("a listed method");
    if method == Method::GET {
        return Request::builder()
            .method(method)
            .uri(query_uri(path, rest))
            .body(Body::empty())
            .expect("a valid request");
    }
    let mut request = Request::builder().method(method).uri(path);
    if let Some(ct) = CONTENT_TYPES[usize::from(*ct) % CONTENT_TYPES.len()] {
        request = request.header("content-type", ct);
    }
    request
        .body(Body::from(rest.to_vec()))
        .expect("a valid request")
}

/// `path?query`, the bytes of the query kept as they are where a URI allows them and
/// percent-encoded elsewhere (so `&`, `=` and `%` keep their meaning).
fn query_uri(path: &str, query: &[u8]) -> Uri {
    let mut uri = format!("{path}?");
    for &b in query {
        if b.is_ascii_alphanumeric() || b"&=%+-._~!$'()*,;:@/?".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.parse()
        .unwrap_or_else(|_| Uri::from_static("/api/v1/audit/events?%"))
}

/// What every answer must be: never a 500 (every refusal is a client error or, while the
/// database is unreachable, a 503), and a problem document for every error.
pub fn check(status: StatusCode, content_type: Option<&str>) -> Result<(), String> {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return Err(format!("{status}"));
    }
    if (status.is_client_error() || status.is_server_error())
        && content_type != Some(crate::http::error::PROBLEM_JSON)
    {
        return Err(format!("{status} with content type {content_type:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_choose_the_operation_and_content_type() {
        let r = request(b"\x00\x00{\"a\":1}");
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri().path(), "/api/v1/audit/events");
        assert_eq!(r.headers()["content-type"], "application/json");
        let r = request(b"\x06\x00limit=5&since=%ZZ\x01\xff");
        assert_eq!(r.method(), Method::GET);
        assert_eq!(r.uri().query(), Some("limit=5&since=%ZZ%01%FF"));
        let r = request(b"");
        assert_eq!(r.uri().path(), "/api/v1/audit/events");
    }
}
