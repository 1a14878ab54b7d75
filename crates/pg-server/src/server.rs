//! The server: which one (embedded, a URL, a Docker container), and what every caller does on
//! it (create, migrate, drop databases).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pg_embedded::Cluster;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection, PgPool};
use url::Url;

use crate::docker::{self, DockerServer, DockerStatus, IMAGE_ENV, LOCAL_IMAGE};
use crate::{Error, Migrations, cleanup, redact, runtime, urls};

/// The variable choosing the server: `auto` (default), `url`, `docker` or `local`.
pub const PROVIDER_ENV: &str = "DATASTORAGE_TEST_DB";
/// The variable holding a server URL for the `url` choice (and `auto`, which prefers it).
pub const URL_ENV: &str = "TEST_DATABASE_URL";

const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// The oldest server whose `DROP DATABASE … WITH (FORCE)` every caller relies on.
const MIN_VERSION_NUM: i32 = 130000;

/// The server asked for in [`PROVIDER_ENV`].
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

/// The kind of server that was started.
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

/// A PostgreSQL server whose user may create databases. Cloning shares it; the container or
/// cluster behind it goes when the last clone drops (or at process exit).
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    description: String,
    base_url: Url,
    admin: PgPool,
    version_num: i32,
    startup: Duration,
    _owned: Owned,
}

/// What a server started here owns.
enum Owned {
    Nothing,
    Docker(#[allow(dead_code)] Box<DockerServer>),
    Local(#[allow(dead_code)] LocalCluster),
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("backend", &self.inner.backend)
            .field("description", &self.inner.description)
            .finish()
    }
}

impl Server {
    /// The server [`PROVIDER_ENV`] and [`URL_ENV`] choose (see the crate documentation).
    pub async fn from_env() -> Result<Server, Error> {
        let choice = Choice::from_env()?;
        let url = std::env::var(URL_ENV).ok().filter(|u| !u.trim().is_empty());
        Server::choose(choice, url).await
    }

    /// The server `choice` names; `url` is the server of [`Choice::Url`] (and of
    /// [`Choice::Auto`] when given).
    pub async fn choose(choice: Choice, url: Option<String>) -> Result<Server, Error> {
        match choice {
            Choice::Url => {
                let url = url.ok_or_else(|| {
                    Error::Unavailable(format!(
                        "{PROVIDER_ENV}=url needs {URL_ENV}, the URL of a PostgreSQL server whose user may \
                         create databases (e.g. `export $(cargo xtask pg start)` and \
                         {URL_ENV}=$DATABASE_URL)"
                    ))
                })?;
                from_url_env(&url).await
            }
            Choice::Docker => Server::docker(&docker::configured_image()).await,
            Choice::Local => Server::local().await,
            Choice::Auto => match url {
                Some(url) => from_url_env(&url).await,
                None => {
                    let image = docker::configured_image();
                    match docker::docker_status(&image).await {
                        DockerStatus::Ready => Server::docker(&image).await,
                        status => Server::local().await.map_err(|local| {
                            Error::Unavailable(no_provider_message(&image, &status, &local))
                        }),
                    }
                }
            },
        }
    }

    /// The server at `url`, whose user must be allowed to create databases; administrative
    /// statements use the URL's own database.
    pub async fn at_url(url: &str) -> Result<Server, Error> {
        let url = url.to_owned();
        let started = Instant::now();
        runtime::run(async move {
            let base_url = urls::parse(&url)?;
            let admin = pool(&url).await.map_err(|e| {
                Error::Unavailable(format!(
                    "{e}\n  check that the server runs and the URL (user, password, port) is right"
                ))
            })?;
            let may_create: bool = sqlx::query_scalar(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user",
            )
            .fetch_one(&admin)
            .await
            .map_err(|e| Error::sql(format!("{}: reading the role", redact(&url)), e))?;
            if !may_create {
                return Err(Error::Unavailable(format!(
                    "the user of {} may not create databases; grant it CREATEDB or use another user",
                    redact(&url)
                )));
            }
            let description = format!("server at {}", redact(&url));
            finish(Backend::Url, description, base_url, admin, Owned::Nothing, started).await
        })
        .await
    }

    /// A container of `image` (testcontainers; pulled when missing — ask [`docker_status`]
    /// (crate::docker_status) first to avoid that).
    pub async fn docker(image: &str) -> Result<Server, Error> {
        let image = image.to_owned();
        let started = Instant::now();
        let container = DockerServer::start(&image).await?;
        runtime::run(async move {
            let url = container.url("postgres");
            let admin = pool(&url).await?;
            let description = format!(
                "Docker container {} of {image} (testcontainers) on port {}",
                &container.id()[..container.id().len().min(12)],
                container.port()
            );
            finish(
                Backend::Docker,
                description,
                urls::parse(&url)?,
                admin,
                Owned::Docker(Box::new(container)),
                started,
            )
            .await
        })
        .await
    }

    /// A throwaway cluster of the machine's PostgreSQL server binaries ([`pg_embedded`]).
    pub async fn local() -> Result<Server, Error> {
        runtime::run(async {
            let started = Instant::now();
            let cluster = tokio::task::spawn_blocking(|| Cluster::builder().start())
                .await
                .map_err(|e| Error::Unavailable(format!("starting the embedded PostgreSQL: {e}")))?
                .map_err(|e| Error::Unavailable(format!("cannot start a local PostgreSQL: {e}")))?;
            let url = cluster.url("postgres");
            let description = format!(
                "local {} (pg-embedded) on 127.0.0.1:{}",
                cluster.binaries().version(),
                cluster.port(),
            );
            let owned = LocalCluster::new(cluster);
            let admin = pool(&url).await?;
            let base_url = urls::parse(&url)?;
            finish(
                Backend::Local,
                description,
                base_url,
                admin,
                Owned::Local(owned),
                started,
            )
            .await
        })
        .await
    }

    /// Which kind of server this is.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// A description for messages, e.g. "local PostgreSQL 15.14 (pg-embedded) on
    /// 127.0.0.1:40123".
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    /// How long starting (or reaching) the server took, up to its first answer.
    pub fn startup(&self) -> Duration {
        self.inner.startup
    }

    /// `server_version_num`, e.g. 150014.
    pub fn version_num(&self) -> i32 {
        self.inner.version_num
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        let mut u = self.inner.base_url.clone();
        u.set_path(&format!("/{db}"));
        u.into()
    }

    /// The pool of administrative connections (on [`runtime`]'s runtime: use it inside
    /// [`runtime::run`]).
    pub fn admin(&self) -> &PgPool {
        &self.inner.admin
    }

    /// Runs one statement on an administrative connection.
    pub async fn execute(&self, sql: String) -> Result<(), Error> {
        let inner = self.inner.clone();
        runtime::run(async move {
            sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(&inner.admin)
                .await
                .map_err(|e| {
                    Error::sql(
                        format!("`{sql}` on the {} server", inner.backend.as_str()),
                        e,
                    )
                })?;
            Ok(())
        })
        .await
    }

    /// `CREATE DATABASE name`; returns its URL.
    pub async fn create_database(&self, name: &str) -> Result<String, Error> {
        check_name(name)?;
        self.execute(format!("CREATE DATABASE \"{name}\"")).await?;
        Ok(self.url(name))
    }

    /// `DROP DATABASE IF EXISTS name WITH (FORCE)`.
    pub async fn drop_database(&self, name: &str) -> Result<(), Error> {
        check_name(name)?;
        self.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
    }

    /// Whether database `name` exists.
    pub async fn database_exists(&self, name: &str) -> Result<bool, Error> {
        self.scalar_bool(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            name,
            format!("looking up database {name}"),
        )
        .await
    }

    /// Whether the server can `CREATE EXTENSION name` (it is in `pg_available_extensions`,
    /// which reads the server's extension folder at each call).
    pub async fn has_extension(&self, name: &str) -> Result<bool, Error> {
        self.scalar_bool(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)",
            name,
            format!("looking up the {name} extension"),
        )
        .await
    }

    async fn scalar_bool(&self, sql: &'static str, arg: &str, what: String) -> Result<bool, Error> {
        let inner = self.inner.clone();
        let arg = arg.to_owned();
        runtime::run(async move {
            sqlx::query_scalar(sql)
                .bind(arg)
                .fetch_one(&inner.admin)
                .await
                .map_err(|e| Error::sql(what, e))
        })
        .await
    }

    /// A new connection to database `db`, on the caller's runtime.
    pub async fn connect(&self, db: &str) -> Result<PgConnection, Error> {
        connect(&self.url(db)).await
    }

    /// A new database `name` with `migrations` applied (as `sqlx migrate run` applies them);
    /// returns its URL. On failure the half-migrated database is dropped.
    pub async fn migrated_database(
        &self,
        name: &str,
        migrations: &Migrations,
    ) -> Result<String, Error> {
        let url = self.create_database(name).await?;
        let applied = {
            let (url, migrations) = (url.clone(), migrations.clone());
            runtime::run(async move { migrations.apply_to(&url).await }).await
        };
        if let Err(e) = applied {
            let _ = self.drop_database(name).await;
            return Err(e);
        }
        Ok(url)
    }
}

/// [`Server::at_url`] for the URL of [`URL_ENV`], whose name starts any error.
async fn from_url_env(url: &str) -> Result<Server, Error> {
    Server::at_url(url)
        .await
        .map_err(|e| Error::Unavailable(format!("{URL_ENV}: {e}")))
}

/// A connection to `url` within [`CONNECT_LIMIT`], on the caller's runtime.
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

/// Names are quoted identifiers in the statements above.
fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 63 || name.contains(['"', '\0']) {
        return Err(Error::Unavailable(format!(
            "{name:?} is not a usable database name (1 to 63 bytes, no double quote)"
        )));
    }
    Ok(())
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

async fn finish(
    backend: Backend,
    description: String,
    base_url: Url,
    admin: PgPool,
    owned: Owned,
    started: Instant,
) -> Result<Server, Error> {
    let version: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
        .fetch_one(&admin)
        .await
        .map_err(|e| Error::sql("reading server_version_num", e))?;
    let version_num = version.trim().parse().unwrap_or(0);
    if version_num < MIN_VERSION_NUM {
        return Err(Error::Unavailable(format!(
            "{description}: PostgreSQL {version} is too old; 13 or newer is needed \
             (DROP DATABASE … WITH (FORCE))"
        )));
    }
    Ok(Server {
        inner: Arc::new(Inner {
            backend,
            description,
            base_url,
            admin,
            version_num,
            startup: started.elapsed(),
            _owned: owned,
        }),
    })
}

async fn pool(url: &str) -> Result<PgPool, Error> {
    // One connection first: a refused one fails now, where the pool would retry it until its
    // acquire timeout.
    connect(url).await?.close().await.ok();
    PgPoolOptions::new()
        .max_connections(8)
        .min_connections(0)
        .acquire_timeout(CONNECT_LIMIT)
        .connect(url)
        .await
        .map_err(|e| Error::sql(format!("cannot connect to {}", redact(url)), e))
}

/// An embedded cluster, stopped when dropped or, for one kept in a `static`, at exit.
struct LocalCluster {
    cluster: Arc<Mutex<Option<Cluster>>>,
    exit_key: u64,
}

impl LocalCluster {
    fn new(cluster: Cluster) -> LocalCluster {
        let cluster = Arc::new(Mutex::new(Some(cluster)));
        let at_exit = cluster.clone();
        let exit_key = cleanup::at_exit(move || {
            drop(at_exit.lock().unwrap_or_else(|e| e.into_inner()).take());
        });
        LocalCluster { cluster, exit_key }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        cleanup::cancel(self.exit_key);
        drop(
            self.cluster
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
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
    fn refuses_unquotable_names() {
        assert!(check_name("ok_name").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a\"b").is_err());
        assert!(check_name(&"x".repeat(64)).is_err());
    }
}
