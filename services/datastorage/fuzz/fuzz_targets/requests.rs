//! Arbitrary bytes as a request to the service ([`datastorage::fuzzing::request`]): it must
//! answer as [`datastorage::fuzzing::check`] says, and never panic. The database is unreachable,
//! so what passes parsing ends in a fast 503; the API suite replays the corpus on a real
//! PostgreSQL.

#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use axum::Router;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Target {
    runtime: tokio::runtime::Runtime,
    app: Router,
}

static TARGET: LazyLock<Target> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Port 1 on loopback refuses at once: nothing listens there.
    let pool = runtime.block_on(async {
        sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(200))
            .connect_lazy("postgres://fuzz@127.0.0.1:1/fuzz")
            .unwrap()
    });
    let app = runtime.block_on(async { datastorage::app(datastorage::AppState::new(pool)) });
    Target { runtime, app }
});

fuzz_target!(|data: &[u8]| {
    let target = &*TARGET;
    let request = datastorage::fuzzing::request(data);
    let response = target
        .runtime
        .block_on(target.app.clone().oneshot(request))
        .unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    if let Err(wrong) = datastorage::fuzzing::check(response.status(), content_type) {
        panic!("{wrong}");
    }
});
