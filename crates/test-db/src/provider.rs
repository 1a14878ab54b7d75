//! Choosing and starting the PostgreSQL server shared by every test of the process.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pg_embedded::Cluster;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;

use crate::docker::{self, DockerServer, DockerStatus, IMAGE_ENV, LOCAL_IMAGE};
use crate::{Error, Profile, cleanup, runtime, template, with_database};

/// The variable choosing the provider: `auto` (default), `url`, `docker` or `local`.
pub const PROVIDER_ENV: &str = "DATASTORAGE_TEST_DB";
/// The variable holding a server URL for the `url` provider (and `auto`, which prefers it).
pub const URL_ENV: &str = "TEST_DATABASE_URL";
/// The variable setting how many copies of each profile's template are kept ready (default 2;
/// 0 makes every test wait for its own `CREATE DATABASE`).
pub const SPARES_ENV: &str = "DATASTORAGE_TEST_SPARES";
const DEFAULT_SPARES: usize = 2;

const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// The provider asked for in [`PROVIDER_ENV`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// `TEST_DATABASE_URL` if set, else Docker if it answers and has the image, else local.
    Auto,
    /// The server at `TEST_DATABASE_URL`.
    Url,
    /// A container of `DATASTORAGE_TEST_IMAGE`.
    Docker,
    /// A throwaway cluster of the machine's PostgreSQL server binaries (pg-embedded).
    Local,
}

impl Choice {
    /// Reads [`PROVIDER_ENV`]; unset or empty means `auto`.
    pub fn from_env() -> Result<Choice, Error> {
        match std::env::var(PROVIDER_ENV) {
            Ok(v) => Choice::parse(&v),
            Err(std::env::VarError::NotPresent) => Ok(Choice::Auto),
            Err(e) => Err(Error::Unavailable(format!("{PROVIDER_ENV}: {e}"))),
        }
    }

    /// `auto`, `url`, `docker` or `local` (case-insensitive; empty means `auto`).
    pub fn parse(value: &str) -> Result<Choice, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Choice::Auto),
            "url" => Ok(Choice::Url),
            "docker" => Ok(Choice::Docker),
            "local" => Ok(Choice::Local),
            other => Err(Error::Unavailable(format!(
                "{PROVIDER_ENV}={other:?} is not a provider; use auto, url, docker or local"
            ))),
        }
    }
}

/// The provider that was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Url,
    Docker,
    Local,
}

impl Backend {
    /// `url`, `docker` or `local`, as in [`PROVIDER_ENV`].
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Url => "url",
            Backend::Docker => "docker",
            Backend::Local => "local",
        }
    }
}

/// The server shared by all tests of the process, with what they need from it.
pub(crate) struct Server {
    pub(crate) backend: Backend,
    pub(crate) description: String,
    base_url: String,
    pub(crate) admin: PgPool,
    pub(crate) version_num: i32,
    templates: Mutex<HashMap<Profile, Arc<OnceCell<String>>>>,
    /// Copies of each profile's template created ahead of the tests that will take them.
    spares: Mutex<HashMap<Profile, Vec<String>>>,
    refilling: Mutex<HashSet<Profile>>,
    spare_target: usize,
    closing: AtomicBool,
    /// Keeps the container's handle; it is removed by the exit hook (statics never drop).
    _docker: Option<DockerServer>,
}

static SERVER: OnceCell<Result<Arc<Server>, String>> = OnceCell::const_new();

/// The shared server, started on first use by the provider chosen in the environment. A
/// failure is remembered: every later test fails at once with the same message.
pub(crate) async fn server() -> Result<Arc<Server>, Error> {
    runtime::run(async {
        SERVER
            .get_or_init(|| async {
                let server = Arc::new(start().await.map_err(|e| e.to_string())?);
                if server.backend == Backend::Url {
                    // The server outlives the process: do not leave the spares on it.
                    let s = server.clone();
                    cleanup::at_exit(move || s.drop_spares());
                }
                Ok(server)
            })
            .await
            .clone()
    })
    .await
    .map_err(Error::Unavailable)
}

impl Server {
    /// The URL of database `db` on this server.
    pub(crate) fn url(&self, db: &str) -> String {
        with_database(&self.base_url, db)
    }

    /// The template of `profile`, created on first use (see [`template::ensure`]).
    pub(crate) async fn template(self: &Arc<Self>, profile: Profile) -> Result<String, Error> {
        let cell = self
            .templates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(profile)
            .or_default()
            .clone();
        let server = self.clone();
        cell.get_or_try_init(|| async move { template::ensure(&server, profile).await })
            .await
            .cloned()
    }

    /// A new copy of `profile`'s template, ready for one test: a spare made earlier if there
    /// is one, else made now. Either way, spares are then topped up in the background.
    pub(crate) async fn copy(self: &Arc<Self>, profile: Profile) -> Result<String, Error> {
        let template = self.template(profile).await?;
        let spare = self
            .spares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&profile)
            .and_then(Vec::pop);
        let name = match spare {
            Some(name) => name,
            None => self.copy_now(profile, &template).await?,
        };
        self.refill(profile, template);
        Ok(name)
    }

    /// `CREATE DATABASE … TEMPLATE`, now.
    pub(crate) async fn copy_now(&self, profile: Profile, template: &str) -> Result<String, Error> {
        let name = crate::unique_name(profile.ident());
        // WAL_LOG (PostgreSQL 15's default) copies through the buffer cache without the
        // checkpoints FILE_COPY needs; older servers know only the file copy.
        let strategy = if self.version_num >= 150000 {
            " STRATEGY WAL_LOG"
        } else {
            ""
        };
        self.execute(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"{strategy}"
        ))
        .await?;
        Ok(name)
    }

    /// Starts topping up `profile`'s spares unless that already runs.
    fn refill(self: &Arc<Self>, profile: Profile, template: String) {
        if self.spare_target == 0
            || !self
                .refilling
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(profile)
        {
            return;
        }
        let server = self.clone();
        tokio::spawn(async move {
            loop {
                let have = server
                    .spares
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&profile)
                    .map_or(0, Vec::len);
                if have >= server.spare_target || server.closing.load(Ordering::SeqCst) {
                    break;
                }
                match server.copy_now(profile, &template).await {
                    Ok(name) if server.closing.load(Ordering::SeqCst) => {
                        let _ = server.drop_database(&name).await;
                    }
                    Ok(name) => server
                        .spares
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(profile)
                        .or_default()
                        .push(name),
                    Err(_) => break, // the next test makes its copy itself and reports the error
                }
            }
            server
                .refilling
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&profile);
        });
    }

    /// Drops the spares (at exit, for a server that outlives the process).
    fn drop_spares(self: Arc<Self>) {
        self.closing.store(true, Ordering::SeqCst);
        let names: Vec<String> =
            std::mem::take(&mut *self.spares.lock().unwrap_or_else(|e| e.into_inner()))
                .into_values()
                .flatten()
                .collect();
        if names.is_empty() {
            return;
        }
        let server = self.clone();
        runtime::block_on(
            async move {
                for name in names {
                    let _ = server.drop_database(&name).await;
                }
            },
            Duration::from_secs(30),
        );
    }

    /// `DROP DATABASE IF EXISTS … WITH (FORCE)`.
    pub(crate) async fn drop_database(&self, name: &str) -> Result<(), Error> {
        self.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
    }

    /// Runs one statement on the admin connection pool.
    pub(crate) async fn execute(&self, sql: String) -> Result<(), Error> {
        sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&self.admin)
            .await
            .map_err(|e| {
                Error::sql(
                    format!("`{sql}` on the {} server", self.backend.as_str()),
                    e,
                )
            })?;
        Ok(())
    }

    /// A new connection to database `db` (for work that needs a session of its own).
    pub(crate) async fn connect(&self, db: &str) -> Result<PgConnection, Error> {
        connect(&self.url(db)).await
    }
}

pub(crate) async fn connect(url: &str) -> Result<PgConnection, Error> {
    match tokio::time::timeout(CONNECT_LIMIT, PgConnection::connect(url)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(Error::sql(format!("cannot connect to {}", redact(url)), e)),
        Err(_) => Err(Error::Unavailable(format!(
            "cannot connect to {}: no answer within {} s",
            redact(url),
            CONNECT_LIMIT.as_secs()
        ))),
    }
}

async fn start() -> Result<Server, Error> {
    let choice = Choice::from_env()?;
    let url = std::env::var(URL_ENV).ok().filter(|u| !u.trim().is_empty());
    let started = Instant::now();
    let server = match choice {
        Choice::Url => {
            let url = url.ok_or_else(|| {
                Error::Unavailable(format!(
                    "{PROVIDER_ENV}=url needs {URL_ENV}, the URL of a PostgreSQL server whose user may \
                     create databases (e.g. `export $(cargo xtask pg start)` and \
                     {URL_ENV}=$DATABASE_URL)"
                ))
            })?;
            start_url(url).await?
        }
        Choice::Docker => start_docker(docker::configured_image()).await?,
        Choice::Local => start_local().await?,
        Choice::Auto => match url {
            Some(url) => start_url(url).await?,
            None => {
                let image = docker::configured_image();
                match docker::docker_status(&image).await {
                    DockerStatus::Ready => start_docker(image).await?,
                    status => start_local().await.map_err(|local| {
                        Error::Unavailable(no_provider_message(&image, &status, &local))
                    })?,
                }
            }
        },
    };
    let chosen = match choice {
        Choice::Auto => format!("auto: {}", server.backend.as_str()),
        _ => server.backend.as_str().to_owned(),
    };
    eprintln!(
        "test-db: {} ({PROVIDER_ENV}={chosen}), ready in {:.1} s",
        server.description,
        started.elapsed().as_secs_f64()
    );
    Ok(server)
}

fn no_provider_message(image: &str, docker: &DockerStatus, local: &Error) -> String {
    format!(
        "no PostgreSQL for the tests ({PROVIDER_ENV}=auto tried all three providers):\n  \
         url:    {URL_ENV} is not set\n  \
         docker: {}\n  \
         local:  {}\n\
         Do one of:\n  \
         - set {URL_ENV} to a server whose user may create databases (`cargo xtask pg start` prints one);\n  \
         - start Docker and make the image available: `cargo xtask pg-image` builds {LOCAL_IMAGE} \
           (then set {IMAGE_ENV}={LOCAL_IMAGE}), or `docker pull {image}`;\n  \
         - install the PostgreSQL server binaries (Debian/Ubuntu: `apt-get install postgresql`; \
           for the full profile also `cargo xtask tools install pgvector`).",
        docker.describe(image),
        local.to_string().replace('\n', "\n          ")
    )
}

async fn start_url(url: String) -> Result<Server, Error> {
    let admin = pool(&url).await.map_err(|e| {
        Error::Unavailable(format!(
            "{URL_ENV}: {e}\n  check that the server runs and the URL (user, password, port) is right"
        ))
    })?;
    let may_create: bool = sqlx::query_scalar(
        "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&admin)
    .await
    .map_err(|e| Error::sql(format!("{URL_ENV}: reading the role"), e))?;
    if !may_create {
        return Err(Error::Unavailable(format!(
            "{URL_ENV}: the user of {} may not create databases; grant it CREATEDB or use another user",
            redact(&url)
        )));
    }
    finish(
        Backend::Url,
        format!("server at {}", redact(&url)),
        url,
        admin,
        None,
    )
    .await
}

async fn start_docker(image: String) -> Result<Server, Error> {
    let container = DockerServer::start(&image).await?;
    let url = container.url("postgres");
    let admin = pool(&url).await?;
    let description = format!(
        "Docker container {} of {} on port {}",
        &container.id()[..container.id().len().min(12)],
        image,
        container.port()
    );
    finish(Backend::Docker, description, url, admin, Some(container)).await
}

async fn start_local() -> Result<Server, Error> {
    let cluster = tokio::task::spawn_blocking(|| Cluster::builder().start())
        .await
        .map_err(|e| Error::Unavailable(format!("starting the embedded PostgreSQL: {e}")))?
        .map_err(|e| Error::Unavailable(format!("cannot start a local PostgreSQL: {e}")))?;
    let url = cluster.url("postgres");
    let description = format!(
        "local {} (pg-embedded) on 127.0.0.1:{}",
        cluster.binaries().version(),
        cluster.port()
    );
    // Stopped and removed at exit; pg-embedded's Ctrl-C handler also knows it.
    cleanup::at_exit(move || drop(cluster));
    let admin = pool(&url).await?;
    finish(Backend::Local, description, url, admin, None).await
}

async fn finish(
    backend: Backend,
    description: String,
    base_url: String,
    admin: PgPool,
    docker: Option<DockerServer>,
) -> Result<Server, Error> {
    let version: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
        .fetch_one(&admin)
        .await
        .map_err(|e| Error::sql("reading server_version_num", e))?;
    let version_num = version.trim().parse().unwrap_or(0);
    if version_num < 130000 {
        return Err(Error::Unavailable(format!(
            "{description}: PostgreSQL {version} is too old; test-db needs 13 or newer \
             (DROP DATABASE … WITH (FORCE))"
        )));
    }
    Ok(Server {
        backend,
        description,
        base_url,
        admin,
        version_num,
        templates: Mutex::new(HashMap::new()),
        spares: Mutex::new(HashMap::new()),
        refilling: Mutex::new(HashSet::new()),
        spare_target: spare_target()?,
        closing: AtomicBool::new(false),
        _docker: docker,
    })
}

fn spare_target() -> Result<usize, Error> {
    match std::env::var(SPARES_ENV) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
            Error::Unavailable(format!(
                "{SPARES_ENV}={v:?} is not a number (spare copies per profile)"
            ))
        }),
        _ => Ok(DEFAULT_SPARES),
    }
}

async fn pool(url: &str) -> Result<PgPool, Error> {
    PgPoolOptions::new()
        .max_connections(8)
        .min_connections(0)
        .acquire_timeout(CONNECT_LIMIT)
        .connect(url)
        .await
        .map_err(|e| Error::sql(format!("cannot connect to {}", redact(url)), e))
}

/// A URL with its password hidden.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices() {
        assert_eq!(Choice::parse("").unwrap(), Choice::Auto);
        assert_eq!(Choice::parse(" Docker ").unwrap(), Choice::Docker);
        assert_eq!(Choice::parse("local").unwrap(), Choice::Local);
        assert_eq!(Choice::parse("url").unwrap(), Choice::Url);
        let err = Choice::parse("podman").unwrap_err().to_string();
        assert!(err.contains("auto, url, docker or local"), "{err}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
