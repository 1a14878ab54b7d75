//! Real clusters from the machine's PostgreSQL binaries: start, use, stop, clean up.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use pg_embedded::{Cluster, Error, Search};

fn postmaster_pid(data: &Path) -> i32 {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).expect("postmaster.pid");
    text.lines().next().unwrap().trim().parse().unwrap()
}

fn process_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
}

fn process_uid(pid: i32) -> u32 {
    std::fs::metadata(format!("/proc/{pid}")).unwrap().uid()
}

/// Runs the cluster's own psql against a URL, as a user would.
fn psql_url(cluster: &Cluster, url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(cluster.binaries().program("psql"))
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn start_use_stop_leaves_nothing_behind() {
    let cluster = Cluster::start().expect("start");
    let root: PathBuf = cluster.root().to_path_buf();
    let pid = postmaster_pid(cluster.data_dir());
    assert!(process_alive(pid));

    let url = cluster.create_database("app").expect("create database");
    assert!(url.starts_with("postgres://postgres:"), "{url}");
    assert_eq!(
        psql_url(&cluster, &url, "SELECT current_database()").unwrap(),
        "app"
    );
    assert_eq!(cluster.psql("app", "SHOW fsync").unwrap(), "off");

    cluster.stop();
    assert!(!root.exists(), "{} removed", root.display());
    assert!(!process_alive(pid), "postmaster {pid} stopped");
}

#[test]
fn drop_stops_and_removes() {
    let (root, pid) = {
        let cluster = Cluster::start().expect("start");
        (
            cluster.root().to_path_buf(),
            postmaster_pid(cluster.data_dir()),
        )
    };
    assert!(!root.exists());
    assert!(!process_alive(pid));
}

#[test]
fn two_clusters_run_at_once() {
    let a = Cluster::start().expect("first");
    let b = Cluster::start().expect("second");
    assert_ne!(a.port(), b.port());
    assert_ne!(a.root(), b.root());
    a.create_database("only_in_a").unwrap();
    let in_b = b
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'only_in_a'",
        )
        .unwrap();
    assert_eq!(in_b, "0");
    let url_b = b.url("postgres");
    drop(a);
    assert_eq!(
        psql_url(&b, &url_b, "SELECT 1").unwrap(),
        "1",
        "b survives a's shutdown"
    );
}

#[test]
fn server_never_runs_as_root() {
    let cluster = Cluster::start().expect("start");
    let pid = postmaster_pid(cluster.data_dir());
    let uid = process_uid(pid);
    let me = nix_uid();
    if me == 0 {
        assert_ne!(uid, 0, "postmaster must not run as root");
        assert!(cluster.server_user().is_some());
        assert_eq!(
            std::fs::metadata(cluster.data_dir()).unwrap().uid(),
            uid,
            "data dir owned by the server user"
        );
    } else {
        assert_eq!(uid, me, "without root the server runs as the caller");
        assert!(cluster.server_user().is_none());
    }
}

fn nix_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

#[test]
fn missing_binaries_error_says_what_to_install() {
    let empty = tempfile::tempdir().unwrap();
    let search = Search {
        explicit: None,
        path: Some(empty.path().as_os_str().to_owned()),
        versioned_roots: vec![empty.path().to_path_buf()],
    };
    let err = Cluster::builder()
        .search(search)
        .start()
        .expect_err("no binaries");
    assert!(matches!(err, Error::BinariesNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("initdb"), "{msg}");
    assert!(msg.contains("apt-get install postgresql"), "{msg}");
    assert!(msg.contains("PG_BINDIR"), "{msg}");

    let explicit = Search {
        explicit: Some(empty.path().join("nowhere")),
        path: None,
        versioned_roots: vec![],
    };
    let msg = Cluster::builder()
        .search(explicit)
        .start()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("PG_BINDIR=") && msg.contains("missing initdb"),
        "{msg}"
    );
}

#[test]
fn stale_cluster_of_a_dead_process_is_swept() {
    let base = tempfile::Builder::new()
        .prefix("pgemb-sweep")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let base_path = base.path().to_path_buf();
    // Make the base reachable for the unprivileged server user when running as root.
    std::fs::set_permissions(
        &base_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let orphan = Cluster::builder()
        .base_dir(&base_path)
        .start()
        .expect("start");
    let root = orphan.root().to_path_buf();
    let pid = postmaster_pid(orphan.data_dir());
    // Pretend its owner died without cleaning up: point owner.pid at a finished process.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(root.join("owner.pid"), dead.to_string()).unwrap();
    std::mem::forget(orphan);

    let fresh = Cluster::builder()
        .base_dir(&base_path)
        .start()
        .expect("second start sweeps");
    assert!(!root.exists(), "stale cluster removed");
    assert!(!process_alive(pid), "stale postmaster stopped");
    drop(fresh);
}

#[test]
fn persistent_cluster_outlives_its_handle_until_stopped() {
    let base = tempfile::Builder::new()
        .prefix("pgemb-persist")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    std::fs::set_permissions(
        base.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let base_path = base.path().to_path_buf();
    let url = {
        let c = Cluster::builder()
            .base_dir(&base_path)
            .persistent("manual")
            .start()
            .expect("start");
        c.url("postgres")
    };
    let info = Cluster::persistent_info("manual", Some(base_path.clone()))
        .unwrap()
        .expect("still running");
    assert_eq!(info.url, url);
    let pid = postmaster_pid(&info.root.join("data"));
    assert!(process_alive(pid));

    let stopped = Cluster::stop_persistent("manual", Some(base_path.clone())).unwrap();
    assert!(!stopped.root.exists());
    assert!(!process_alive(pid));
    assert!(
        Cluster::persistent_info("manual", Some(base_path.clone()))
            .unwrap()
            .is_none()
    );
    let err = Cluster::stop_persistent("manual", Some(base_path)).unwrap_err();
    assert!(err.to_string().contains("cargo xtask pg start"), "{err}");
}

#[test]
fn invalid_database_names_are_refused() {
    let cluster = Cluster::start().expect("start");
    for bad in ["", "Robert'); DROP", "a-b", "1abc"] {
        assert!(
            matches!(cluster.create_database(bad), Err(Error::InvalidName(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn pgvector_is_installed() {
    let cluster = Cluster::start().expect("start");
    // A machine without pgvector must say so (the full profile needs it); it is never a silent pass.
    if std::env::var_os("PG_EMBEDDED_NO_PGVECTOR").is_some() {
        assert!(
            !cluster.has_extension("vector").unwrap(),
            "PG_EMBEDDED_NO_PGVECTOR is set, but this server has pgvector"
        );
        return;
    }
    assert!(
        cluster.has_extension("vector").unwrap(),
        "pgvector is not installed for {}: run `cargo xtask tools install pgvector` (or set PG_EMBEDDED_NO_PGVECTOR=1 on a machine meant to lack it)",
        cluster.binaries().version()
    );
    let url = cluster.create_database("vec").unwrap();
    psql_url(&cluster, &url, "CREATE EXTENSION vector").unwrap();
    assert_eq!(
        psql_url(
            &cluster,
            &url,
            "SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector"
        )
        .unwrap(),
        "1"
    );
}

/// Not a test of its own: the child process of `ctrl_c_stops_and_removes`.
#[test]
#[ignore = "helper process for ctrl_c_stops_and_removes"]
fn hold_cluster_until_signalled() {
    if std::env::var_os("PG_EMBEDDED_HOLD").is_none() {
        return;
    }
    let cluster = Cluster::start().expect("start");
    println!("ROOT {}", cluster.root().display());
    println!("PID {}", postmaster_pid(cluster.data_dir()));
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn ctrl_c_stops_and_removes() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hold_cluster_until_signalled",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PG_EMBEDDED_HOLD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut root = None;
    let mut pid = None;
    while let Some(Ok(line)) = lines.next() {
        // libtest prints the test's name on the same line as its first output.
        if let Some((_, r)) = line.split_once("ROOT ") {
            root = Some(PathBuf::from(r));
        } else if let Some(p) = line.strip_prefix("PID ") {
            pid = Some(p.parse::<i32>().unwrap());
            break;
        }
    }
    let (root, pid) = (root.expect("child printed its cluster"), pid.unwrap());
    assert!(root.exists() && process_alive(pid));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(130), "the handler exits with 130");
    assert!(!root.exists(), "{} removed on Ctrl-C", root.display());
    assert!(!process_alive(pid), "postmaster stopped on Ctrl-C");
}
