//! The one runtime that owns every [`Server`](crate::Server): the docker client, the admin pool
//! and every administrative statement run on it, whatever runtime the caller uses.
//!
//! Each `#[tokio::test]` has its own runtime, which ends with the test, and a tool may build a
//! runtime for one command. Connections and
//! background tasks created on it die with it, so nothing shared may live there. Work on the
//! shared server is spawned here and awaited from the caller's runtime (a `JoinHandle` can be
//! awaited from any runtime), or waited for with a timeout from synchronous code (`Drop`, exit).

use std::cell::Cell;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use tokio::runtime::Runtime;

thread_local! {
    static ON_OWN_RUNTIME: Cell<bool> = const { Cell::new(false) };
}

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pg-server")
        .on_thread_start(|| ON_OWN_RUNTIME.with(|c| c.set(true)))
        .enable_all()
        .build()
        .expect("pg-server: cannot build its tokio runtime")
});

/// Runs `fut` on the shared runtime and waits for it from the caller's runtime.
pub async fn run<F, T>(fut: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    match RUNTIME.spawn(fut).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("pg-server: task on the shared runtime was cancelled: {e}"),
    }
}

/// Runs `fut` on the shared runtime and blocks this thread until it ends or `limit` passes.
///
/// For synchronous callers (`Drop`, the exit hook). Returns `None` on timeout, or when called
/// from the shared runtime itself (then the work still runs, but nobody waits for it).
pub fn block_on<F, T>(fut: F, limit: Duration) -> Option<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    RUNTIME.spawn(async move {
        let _ = tx.send(fut.await);
    });
    if ON_OWN_RUNTIME.with(Cell::get) {
        return None;
    }
    rx.recv_timeout(limit).ok()
}
