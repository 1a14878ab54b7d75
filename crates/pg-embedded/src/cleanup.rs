//! Leaving nothing behind: the process-wide list of live clusters, the Ctrl-C handler that stops
//! them, and the sweep of clusters whose owner died without cleaning up.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The file in a cluster's root naming the process that owns it.
pub(crate) const OWNER_FILE: &str = "owner.pid";

static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();

/// Remembers a cluster root so that Ctrl-C removes it; installs the handler on first use.
pub(crate) fn register(root: &Path) {
    HANDLER.call_once(|| {
        // Another handler (the application's own) wins; the owner file still lets a later
        // start sweep what this process leaves behind.
        if let Err(err) = ctrlc::set_handler(on_signal) {
            tracing::debug!("pg-embedded: no Ctrl-C handler installed: {err}");
        }
    });
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(root.to_path_buf());
}

/// Forgets a cluster root (it was stopped and removed normally).
pub(crate) fn unregister(root: &Path) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|r| r != root);
}

fn on_signal() {
    let roots = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for root in roots {
        destroy(&root);
    }
    std::process::exit(130);
}

/// Stops the server of the cluster at `root` at once (if it runs) and removes the directory.
pub(crate) fn destroy(root: &Path) {
    let data = root.join("data");
    if let Some(pid) = postmaster_pid(&data) {
        // SIGQUIT = immediate shutdown: the postmaster stops its children and exits.
        let _ = kill(pid, Signal::SIGQUIT);
        wait_gone(pid, Duration::from_secs(10));
        if alive(pid) {
            let _ = kill(pid, Signal::SIGKILL);
            wait_gone(pid, Duration::from_secs(5));
        }
    }
    if let Err(err) = std::fs::remove_dir_all(root)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("pg-embedded: could not remove {}: {err}", root.display());
    }
}

/// The postmaster's pid from `postmaster.pid`, if that process still runs this data directory.
pub(crate) fn postmaster_pid(data: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid = Pid::from_raw(text.lines().next()?.trim().parse().ok()?);
    // Guard against pid reuse: the process must be a postgres serving this directory (the
    // server's working directory is its data directory).
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    let data = std::fs::canonicalize(data).ok()?;
    (alive(pid) && cwd == data).then_some(pid)
}

pub(crate) fn alive(pid: Pid) -> bool {
    // A zombie still answers kill(0); treat it as gone.
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        && let Some(state) = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next())
        && state == "Z"
    {
        return false;
    }
    kill(pid, None).is_ok()
}

fn wait_gone(pid: Pid, limit: Duration) {
    let start = Instant::now();
    while alive(pid) && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes clusters under `base` whose owning process no longer exists.
pub(crate) fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let root = entry.path();
        let Ok(owner) = std::fs::read_to_string(root.join(OWNER_FILE)) else {
            continue; // persistent clusters and foreign folders have no owner file
        };
        let Ok(pid) = owner.trim().parse::<i32>() else {
            continue;
        };
        if !alive(Pid::from_raw(pid)) {
            tracing::info!("pg-embedded: removing stale cluster {}", root.display());
            destroy(&root);
        }
    }
}
