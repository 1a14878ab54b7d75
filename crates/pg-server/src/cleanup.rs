//! Leaving nothing behind: work registered here runs when the process exits.
//!
//! A server shared by all tests of a process lives in a `static`, and statics are never
//! dropped. So whoever starts something that must not outlive the process (an embedded
//! cluster, a container) registers its removal here. It runs from a C `atexit` hook: after the
//! test harness returns, when it exits with a failure code, and on Ctrl-C/SIGTERM (the handler
//! installed here, or pg-embedded's, ends the process with `exit`). A killed process (SIGKILL)
//! runs nothing; the next start sweeps what it left (pg-embedded's stale clusters, containers
//! labelled with a dead owner in [`crate::docker`]).

use std::sync::{Mutex, Once};

type Task = Box<dyn FnOnce() + Send>;

static TASKS: Mutex<Vec<(u64, Task)>> = Mutex::new(Vec::new());
static NEXT: Mutex<u64> = Mutex::new(0);
static HOOK: Once = Once::new();

/// Runs `task` when the process exits, unless [`cancel`] is called with the returned key first.
pub fn at_exit(task: impl FnOnce() + Send + 'static) -> u64 {
    install();
    let key = {
        let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        *next
    };
    TASKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((key, Box::new(task)));
    key
}

/// Forgets a task registered with [`at_exit`] (its work was done normally).
pub fn cancel(key: u64) {
    TASKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(k, _)| *k != key);
}

/// Runs every registered task now, newest first.
pub fn run_all() {
    let tasks = std::mem::take(&mut *TASKS.lock().unwrap_or_else(|e| e.into_inner()));
    for (_, task) in tasks.into_iter().rev() {
        task();
    }
}

fn install() {
    HOOK.call_once(|| {
        // pg-embedded installs the same kind of handler when it starts a cluster; the first
        // one wins and both end the process with `exit`, which runs the hook below.
        let _ = ctrlc::set_handler(|| std::process::exit(130));
        register_atexit();
    });
}

extern "C" fn on_exit() {
    // Unwinding out of an `extern "C"` function aborts; a failed cleanup must not.
    let _ = std::panic::catch_unwind(run_all);
}

#[allow(unsafe_code)]
fn register_atexit() {
    // SAFETY: `on_exit` is a plain `extern "C" fn()` with no arguments that never unwinds
    // (it catches panics); `atexit` only stores the pointer, which is valid for the whole
    // program. A non-zero return means the hook could not be registered, reported below.
    let rc = unsafe { libc::atexit(on_exit) };
    if rc != 0 {
        eprintln!("pg-server: could not register the exit hook; servers may outlive this process");
    }
}
