//! Starting, using and stopping one cluster.

use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::unistd::{Gid, Uid, User, chown, geteuid};
use serde::{Deserialize, Serialize};

use crate::cleanup::{self, OWNER_FILE};
use crate::{Error, PgBinaries, Search};

/// The superuser every cluster is initialised with.
pub const SUPERUSER: &str = "postgres";
/// Set (to anything but `0`) to run `initdb` for every cluster instead of copying the
/// initialised cluster cached per set of server binaries.
pub const NO_CACHE_ENV: &str = "PG_EMBEDDED_NO_INITDB_CACHE";
/// Every cluster's `initdb` options (the password comes from a file).
const INITDB_OPTIONS: &[&str] = &[
    "--username",
    SUPERUSER,
    "--encoding",
    "UTF8",
    "--no-locale",
    "--no-sync",
    "--auth-local",
    "trust",
    "--auth-host",
    "scram-sha-256",
];
/// A unix socket path must fit in `sun_path` (108 bytes on Linux) with `.s.PGSQL.NNNNN` appended.
const MAX_SOCKET_DIR_LEN: usize = 90;
const START_ATTEMPTS: usize = 5;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The account the server runs as when this process is root.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

/// Options for [`Cluster`]; [`Cluster::start`] uses the defaults.
#[derive(Debug, Default, Clone)]
pub struct Builder {
    base_dir: Option<PathBuf>,
    search: Option<Search>,
    user: Option<String>,
    name: Option<String>,
    settings: Vec<(String, String)>,
}

impl Builder {
    /// The folder holding cluster directories. Default: `PG_EMBEDDED_DIR`, else the workspace's
    /// `target/pg-embedded`.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Where to look for the server binaries (default: [`Search::from_env`]).
    pub fn search(mut self, search: Search) -> Self {
        self.search = Some(search);
        self
    }

    /// The unprivileged account to run the server as when this process is root.
    /// Default: `PG_EMBEDDED_USER`, else `postgres`, else `nobody`.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Makes a named cluster that outlives this process (for `cargo xtask pg start`); stop it
    /// with [`Cluster::stop_persistent`].
    pub fn persistent(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// An extra `postgresql.conf` setting, e.g. `("max_connections", "300")`.
    pub fn setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }

    /// Creates and starts the cluster.
    pub fn start(self) -> Result<Cluster, Error> {
        let bin = match &self.search {
            Some(search) => PgBinaries::discover_in(search)?,
            None => PgBinaries::discover()?,
        };
        let run_as = if geteuid().is_root() {
            Some(resolve_user(self.user.as_deref())?)
        } else {
            None
        };
        let base = choose_base(self.base_dir.clone(), run_as.as_ref())?;
        cleanup::sweep_stale(&base);

        let (root, persistent) = match &self.name {
            Some(name) => {
                validate_name(name)?;
                let root = base.join(name);
                if root.exists() {
                    if running_info(&root).is_some() {
                        return Err(Error::Command {
                            program: "start".into(),
                            status: "already running".into(),
                            output: format!("cluster `{name}` already runs in {}", root.display()),
                        });
                    }
                    cleanup::destroy(&root); // left over from a crash: start afresh
                }
                (root, true)
            }
            None => {
                let n = COUNTER.fetch_add(1, Ordering::Relaxed);
                (base.join(format!("c{}-{n}", std::process::id())), false)
            }
        };
        fs::create_dir_all(&root).map_err(Error::io("create", &root))?;
        if !persistent {
            fs::write(root.join(OWNER_FILE), std::process::id().to_string())
                .map_err(Error::io("write", root.join(OWNER_FILE)))?;
            cleanup::register(&root);
        }
        // From here on, a failure must remove the directory again.
        let mut cluster = Cluster {
            root: root.clone(),
            data: root.join("data"),
            socket_dir: PathBuf::new(),
            port: 0,
            password: random_password()?,
            bin,
            run_as,
            persistent,
            gone: false,
        };
        match cluster.init_and_start(&self.settings) {
            Ok(()) => Ok(cluster),
            Err(err) => {
                cluster.persistent = false; // make Drop remove it
                Err(err)
            }
        }
    }
}

/// A running throwaway PostgreSQL cluster; dropping it stops the server and removes its files.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    password: String,
    bin: PgBinaries,
    run_as: Option<RunAs>,
    persistent: bool,
    gone: bool,
}

/// What `cargo xtask pg status` shows about a persistent cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersistentInfo {
    pub name: String,
    pub root: PathBuf,
    pub port: u16,
    pub socket_dir: PathBuf,
    pub password: String,
    pub version: String,
    /// `postgres://postgres:…@127.0.0.1:PORT/postgres`
    pub url: String,
}

impl Cluster {
    /// Starts a cluster with the default [`Builder`].
    pub fn start() -> Result<Cluster, Error> {
        Builder::default().start()
    }

    /// Options for a cluster.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn init_and_start(&mut self, settings: &[(String, String)]) -> Result<(), Error> {
        if let Some(u) = &self.run_as {
            chown_to(&self.root, u)?;
        }
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o755))
            .map_err(Error::io("chmod", &self.root))?;

        let password_pending = self.init_data()?;
        self.data_ready_to_start()?;

        self.socket_dir = self.root.join("sock");
        if self.socket_dir.as_os_str().len() > MAX_SOCKET_DIR_LEN {
            // A deep checkout: keep the socket in a short private folder beside the system's temp.
            self.socket_dir = std::env::temp_dir().join(format!(
                "pgemb-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
        }
        fs::create_dir_all(&self.socket_dir).map_err(Error::io("create", &self.socket_dir))?;
        if let Some(u) = &self.run_as {
            chown_to(&self.socket_dir, u)?;
        }

        let mut conf =
            String::from("\n# pg-embedded: a throwaway cluster; durability is off on purpose\n");
        let mut all: Vec<(String, String)> = [
            ("listen_addresses", "'127.0.0.1'".to_owned()),
            ("unix_socket_directories", quote_conf(&self.socket_dir)),
            ("fsync", "off".to_owned()),
            ("synchronous_commit", "off".to_owned()),
            ("full_page_writes", "off".to_owned()),
            ("max_connections", "200".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        all.extend(settings.iter().cloned());
        for (k, v) in &all {
            let _ = writeln!(conf, "{k} = {v}");
        }
        let conf_path = self.data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf_path).map_err(Error::io("read", &conf_path))?;
        text.push_str(&conf);
        fs::write(&conf_path, text).map_err(Error::io("write", &conf_path))?;

        let log = self.root.join("postgres.log");
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            self.port = free_port()?;
            let mut pg_ctl = self.server_command("pg_ctl");
            pg_ctl
                .arg("--pgdata")
                .arg(&self.data)
                .arg("--log")
                .arg(&log)
                .args(["--wait", "--timeout", "60", "--silent", "-o"])
                .arg(format!("-p {}", self.port))
                .arg("start");
            match run(&mut pg_ctl, "pg_ctl start") {
                Ok(_) => {
                    if password_pending {
                        // A copy of the cached cluster: this cluster's own password.
                        self.psql(
                            "postgres",
                            &format!("ALTER ROLE {SUPERUSER} PASSWORD '{}'", self.password),
                        )?;
                    }
                    if self.persistent {
                        self.write_info()?;
                    }
                    return Ok(());
                }
                Err(err) => {
                    let log_text = fs::read_to_string(&log).unwrap_or_default();
                    let port_taken = log_text.contains("could not bind")
                        || log_text.contains("Address already in use");
                    last_err = Some(match err {
                        Error::Command {
                            program, status, ..
                        } => Error::Command {
                            program,
                            status,
                            output: log_text,
                        },
                        other => other,
                    });
                    if !port_taken {
                        break;
                    }
                    let _ = fs::remove_file(&log);
                }
            }
        }
        Err(last_err.expect("at least one attempt"))
    }

    /// Fills the data directory: a copy of the initialised cluster cached for these server
    /// binaries (made by `initdb` on first use), or `initdb` itself when the cache is off
    /// ([`NO_CACHE_ENV`]) or cannot be made. Returns whether the superuser's password must still
    /// be set (a copy has the cache's).
    fn init_data(&self) -> Result<bool, Error> {
        if std::env::var_os(NO_CACHE_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
            self.initdb(&self.root, &self.data, &self.password)?;
            return Ok(false);
        }
        let base = self.root.parent().unwrap_or(Path::new("."));
        let cache = base.join(format!("initdb-{}", self.cache_key()));
        if !cache.join("data").join("PG_VERSION").is_file() {
            self.build_cache(base, &cache)?;
        }
        copy_tree(&cache.join("data"), &self.data, self.run_as.as_ref())?;
        Ok(true)
    }

    /// What the cached cluster depends on: the server binaries (their folder, version, and the
    /// size and time of `postgres`), the account they run as, and the `initdb` options.
    fn cache_key(&self) -> String {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::hash::DefaultHasher::new();
        INITDB_OPTIONS.hash(&mut h);
        self.bin.bindir().hash(&mut h);
        self.bin.version().hash(&mut h);
        if let Ok(meta) = fs::metadata(self.bin.program("postgres")) {
            meta.len().hash(&mut h);
            meta.modified().ok().hash(&mut h);
        }
        self.run_as.as_ref().map(|u| u.uid).hash(&mut h);
        format!("{:016x}", h.finish())
    }

    /// `initdb` into a private folder (swept like a cluster if this process dies), then renamed
    /// into place; a process that loses the race to another one drops its own.
    fn build_cache(&self, base: &Path, cache: &Path) -> Result<(), Error> {
        let name = cache
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("initdb");
        let tmp = base.join(format!(
            "{name}.tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&tmp).map_err(Error::io("create", &tmp))?;
        fs::write(tmp.join(OWNER_FILE), std::process::id().to_string())
            .map_err(Error::io("write", tmp.join(OWNER_FILE)))?;
        let built = (|| {
            if let Some(u) = &self.run_as {
                chown_to(&tmp, u)?;
            }
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
                .map_err(Error::io("chmod", &tmp))?;
            self.initdb(&tmp, &tmp.join("data"), &random_password()?)?;
            fs::remove_file(tmp.join(OWNER_FILE)).map_err(Error::io("remove", tmp.join(OWNER_FILE)))
        })();
        if let Err(e) = built {
            cleanup::destroy(&tmp);
            return Err(e);
        }
        if fs::rename(&tmp, cache).is_err() {
            // Another process put its cache in place first.
            cleanup::destroy(&tmp);
            if !cache.join("data").join("PG_VERSION").is_file() {
                return Err(Error::Command {
                    program: "initdb cache".into(),
                    status: "cannot be put in place".into(),
                    output: format!("{} could not be created", cache.display()),
                });
            }
        }
        Ok(())
    }

    /// `initdb` of `data` (in `dir`, which holds the password file for a moment).
    fn initdb(&self, dir: &Path, data: &Path, password: &str) -> Result<(), Error> {
        // initdb reads the superuser password from a file; it is removed right after.
        let pwfile = dir.join("pwfile");
        fs::write(&pwfile, password).map_err(Error::io("write", &pwfile))?;
        if let Some(u) = &self.run_as {
            chown_to(&pwfile, u)?;
        }
        let mut initdb = self.server_command("initdb");
        initdb
            .current_dir(dir)
            .arg("--pgdata")
            .arg(data)
            .args(INITDB_OPTIONS)
            .arg(format!("--pwfile={}", pwfile.display()));
        let result = run(&mut initdb, "initdb");
        let _ = fs::remove_file(&pwfile);
        result.map(drop)
    }

    /// The data directory as PostgreSQL wants it before a start.
    fn data_ready_to_start(&self) -> Result<(), Error> {
        fs::set_permissions(&self.data, fs::Permissions::from_mode(0o700))
            .map_err(Error::io("chmod", &self.data))
    }

    /// A command running one of the server's programs, as the unprivileged user when root.
    fn server_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.program(program));
        cmd.current_dir(&self.root)
            .env("LC_ALL", "C")
            .env_remove("PGDATA");
        if let Some(u) = &self.run_as {
            cmd.uid(u.uid)
                .gid(u.gid)
                .env("HOME", &self.root)
                .env("USER", &u.name);
        }
        cmd
    }

    /// A `psql` connected through the unix socket as the superuser.
    fn psql_command(&self, db: &str) -> Command {
        let mut cmd = Command::new(self.bin.program("psql"));
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", SUPERUSER, "-d", db])
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE");
        cmd
    }

    /// Stops the server (fast shutdown: sessions are cut, committed data is kept) without
    /// removing the cluster; [`Cluster::resume`] starts it again on the same port. For tests
    /// of how clients live through a database outage.
    pub fn pause(&self) -> Result<(), Error> {
        let mut pg_ctl = self.server_command("pg_ctl");
        pg_ctl.arg("--pgdata").arg(&self.data).args([
            "--wait",
            "--timeout",
            "60",
            "--silent",
            "-m",
            "fast",
            "stop",
        ]);
        run(&mut pg_ctl, "pg_ctl stop").map(drop)
    }

    /// Starts a server stopped by [`Cluster::pause`] again, on the same port.
    pub fn resume(&self) -> Result<(), Error> {
        let mut pg_ctl = self.server_command("pg_ctl");
        pg_ctl
            .arg("--pgdata")
            .arg(&self.data)
            .arg("--log")
            .arg(self.root.join("postgres.log"))
            .args(["--wait", "--timeout", "60", "--silent", "-o"])
            .arg(format!("-p {}", self.port))
            .arg("start");
        run(&mut pg_ctl, "pg_ctl start").map(drop)
    }

    /// Runs SQL through `psql` and returns its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, Error> {
        let mut cmd = self.psql_command(db);
        cmd.arg("-c").arg(sql);
        let out = run(&mut cmd, "psql")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, Error> {
        validate_name(name)?;
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }

    /// Creates a database as a copy of `template` (which must have no open connections).
    pub fn create_database_from_template(
        &self,
        name: &str,
        template: &str,
    ) -> Result<String, Error> {
        validate_name(name)?;
        validate_name(template)?;
        self.psql(
            "postgres",
            &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\" STRATEGY FILE_COPY"),
        )?;
        Ok(self.url(name))
    }

    /// Drops a database, closing its open connections first.
    pub fn drop_database(&self, name: &str) -> Result<(), Error> {
        validate_name(name)?;
        self.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )?;
        Ok(())
    }

    /// Whether the server can `CREATE EXTENSION name` (its control file is installed).
    pub fn has_extension(&self, name: &str) -> Result<bool, Error> {
        let quoted = name.replace('\'', "''");
        let out = self.psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_available_extensions WHERE name = '{quoted}'"),
        )?;
        Ok(out.trim() == "1")
    }

    /// The URL of database `db` over TCP, usable by `psql`, sqlx and libpq.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// The loopback TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding the unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The cluster's own folder (data, socket, log); gone after stop.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The binaries the cluster runs.
    pub fn binaries(&self) -> &PgBinaries {
        &self.bin
    }

    /// The account the server runs as, when this process is root.
    pub fn server_user(&self) -> Option<&str> {
        self.run_as.as_ref().map(|u| u.name.as_str())
    }

    /// The server's log so far (for error reports).
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default()
    }

    /// Stops the server and removes every file of the cluster.
    pub fn stop(mut self) {
        self.destroy();
    }

    fn destroy(&mut self) {
        if self.gone {
            return;
        }
        self.gone = true;
        cleanup::destroy(&self.root);
        if !self.socket_dir.starts_with(&self.root) {
            let _ = fs::remove_dir_all(&self.socket_dir);
        }
        cleanup::unregister(&self.root);
    }

    fn write_info(&self) -> Result<(), Error> {
        let info = PersistentInfo {
            name: self
                .root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            root: self.root.clone(),
            port: self.port,
            socket_dir: self.socket_dir.clone(),
            password: self.password.clone(),
            version: self.bin.version().to_owned(),
            url: self.url("postgres"),
        };
        let path = self.root.join("cluster.json");
        let json = serde_json::to_string_pretty(&info).expect("serializable");
        fs::write(&path, json).map_err(Error::io("write", &path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(Error::io("chmod", &path))
    }

    /// Information about a persistent cluster, if it exists and its server runs.
    pub fn persistent_info(
        name: &str,
        base_dir: Option<PathBuf>,
    ) -> Result<Option<PersistentInfo>, Error> {
        validate_name(name)?;
        let base = choose_base(base_dir, current_run_as().as_ref())?;
        Ok(running_info(&base.join(name)))
    }

    /// Stops a persistent cluster and removes its files; errors when there is none.
    pub fn stop_persistent(name: &str, base_dir: Option<PathBuf>) -> Result<PersistentInfo, Error> {
        validate_name(name)?;
        let base = choose_base(base_dir, current_run_as().as_ref())?;
        let root = base.join(name);
        let info: Option<PersistentInfo> = fs::read_to_string(root.join("cluster.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        match info {
            Some(info) => {
                cleanup::destroy(&root);
                if !info.socket_dir.starts_with(&root) {
                    let _ = fs::remove_dir_all(&info.socket_dir);
                }
                Ok(info)
            }
            None => {
                if root.exists() {
                    cleanup::destroy(&root);
                }
                Err(Error::NotRunning {
                    name: name.to_owned(),
                    dir: base,
                })
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.persistent {
            self.destroy();
        }
    }
}

fn running_info(root: &Path) -> Option<PersistentInfo> {
    let info: PersistentInfo =
        serde_json::from_str(&fs::read_to_string(root.join("cluster.json")).ok()?).ok()?;
    cleanup::postmaster_pid(&root.join("data"))?;
    Some(info)
}

fn current_run_as() -> Option<RunAs> {
    if geteuid().is_root() {
        resolve_user(None).ok()
    } else {
        None
    }
}

fn resolve_user(wanted: Option<&str>) -> Result<RunAs, Error> {
    let env_user = std::env::var("PG_EMBEDDED_USER").ok();
    let candidates: Vec<&str> = match wanted.or(env_user.as_deref()) {
        Some(name) => vec![name],
        None => vec!["postgres", "nobody"],
    };
    for name in &candidates {
        if let Ok(Some(user)) = User::from_name(name)
            && !user.uid.is_root()
        {
            return Ok(RunAs {
                name: user.name,
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            });
        }
    }
    Err(Error::NoUnprivilegedUser(candidates.join("` or `")))
}

/// The folder for cluster directories: the one asked for, `PG_EMBEDDED_DIR`, or the workspace's
/// `target/pg-embedded`. When the server must run as another user who cannot reach it (a
/// checkout under a private home folder), a folder under the system's temp dir is used instead.
fn choose_base(wanted: Option<PathBuf>, run_as: Option<&RunAs>) -> Result<PathBuf, Error> {
    let explicit = wanted.or_else(|| std::env::var_os("PG_EMBEDDED_DIR").map(PathBuf::from));
    let base = explicit
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pg-embedded"));
    let mut base = std::path::absolute(&base).map_err(Error::io("resolve", &base))?;
    if let Some(u) = run_as
        && explicit.is_none()
        && !reachable_by(&base, u)
    {
        base = std::env::temp_dir().join(format!("pg-embedded-{}", Uid::current()));
    }
    fs::create_dir_all(&base).map_err(Error::io("create", &base))?;
    // The server reports its data directory canonicalized; compare like with like.
    fs::canonicalize(&base).map_err(Error::io("resolve", &base))
}

/// Whether every existing ancestor of `dir` can be traversed by `user` (world or owner `x`).
fn reachable_by(dir: &Path, user: &RunAs) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    dir.ancestors().skip(1).all(|a| match fs::metadata(a) {
        Ok(m) => m.mode() & 0o001 != 0 || (m.uid() == user.uid && m.mode() & 0o100 != 0),
        Err(_) => true, // will be created by us
    })
}

fn chown_to(path: &Path, u: &RunAs) -> Result<(), Error> {
    chown(path, Some(Uid::from_raw(u.uid)), Some(Gid::from_raw(u.gid)))
        .map_err(|e| Error::io("chown", path)(std::io::Error::from(e)))
}

fn validate_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

/// Copies a data directory (files with their permission bits), owned by `owner` when given.
fn copy_tree(from: &Path, to: &Path, owner: Option<&RunAs>) -> Result<(), Error> {
    fs::create_dir(to).map_err(Error::io("create", to))?;
    let mode = fs::metadata(from)
        .map_err(Error::io("read", from))?
        .permissions();
    fs::set_permissions(to, mode).map_err(Error::io("chmod", to))?;
    if let Some(u) = owner {
        chown_to(to, u)?;
    }
    for entry in fs::read_dir(from).map_err(Error::io("read", from))? {
        let entry = entry.map_err(Error::io("read", from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(Error::io("read", &src))?;
        if kind.is_dir() {
            copy_tree(&src, &dst, owner)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst).map_err(Error::io("copy", &src))?;
            if let Some(u) = owner {
                chown_to(&dst, u)?;
            }
        } else {
            let target = fs::read_link(&src).map_err(Error::io("read", &src))?;
            std::os::unix::fs::symlink(target, &dst).map_err(Error::io("link", &dst))?;
        }
    }
    Ok(())
}

/// A `postgresql.conf` string literal.
fn quote_conf(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "''"))
}

fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(Error::io("bind", "127.0.0.1:0"))?;
    let port = listener
        .local_addr()
        .map_err(Error::io("bind", "127.0.0.1:0"))?
        .port();
    Ok(port)
}

fn random_password() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(Error::io("read", "/dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, Error> {
    let out = cmd.output().map_err(|e| Error::Command {
        program: what.to_owned(),
        status: "could not start".to_owned(),
        output: e.to_string(),
    })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Command {
            program: what.to_owned(),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}
