//! Service configuration: command-line flags with environment fallbacks.
//!
//! This is the only place that reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clap::builder::TypedValueParser as _;

/// DataStorage: audit events, notification audit and the remediation-workflow catalog.
#[derive(Debug, Clone, Parser)]
#[command(name = "datastorage", version, about)]
pub struct Config {
    /// PostgreSQL URL the service uses for its queries (the application role).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Address to listen on.
    #[arg(long, env = "DATASTORAGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Maximum number of pooled database connections for writes and lookups by id.
    #[arg(long, env = "DATASTORAGE_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,

    /// Maximum number of pooled database connections for the filtered queries (event and
    /// workflow listings, workflow search), which are planned for their values on every call.
    #[arg(long, env = "DATASTORAGE_QUERY_POOL_SIZE", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub query_pool_size: u32,

    /// How long a request may wait for a database connection before it gets a 503.
    #[arg(long, env = "DATASTORAGE_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub acquire_timeout: Duration,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "DATASTORAGE_BODY_LIMIT", default_value_t = 8 * 1024 * 1024)]
    pub body_limit: usize,

    /// Time limit for one request (e.g. `30s`, `1m`).
    #[arg(long, env = "DATASTORAGE_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// File holding the bearer token that write endpoints require. Without it, writes are open.
    #[arg(long, env = "DATASTORAGE_WRITE_TOKEN_FILE")]
    pub write_token_file: Option<PathBuf>,

    /// File holding the bearer token that read endpoints require (the write token works for
    /// them too; give both flags the same file for one token). Without it, reads are open.
    #[arg(long, env = "DATASTORAGE_READ_TOKEN_FILE")]
    pub read_token_file: Option<PathBuf>,

    /// Serve `/metrics` and `/health/*` on this address instead of `--listen`, so that they
    /// need not be public.
    #[arg(long, env = "DATASTORAGE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// Tasks writing single audit events. Events posted while a write is under way are stored
    /// together by the next one (up to 64 per INSERT), each acknowledged after its commit.
    #[arg(long, env = "DATASTORAGE_EVENT_WRITERS", default_value_t = crate::AppState::EVENT_WRITERS,
          value_parser = clap::value_parser!(u16).range(1..=256).map(usize::from))]
    pub event_writers: usize,

    /// Keep audit writes (events, batches, notification records) that the database cannot take
    /// in this file, answer them 202 Accepted once they are on disk, and store them when the
    /// database is back. Without it, such writes get 503. One file per replica, on storage that
    /// outlives the process (see README, "Audit writes during a database outage").
    #[arg(long, env = "DATASTORAGE_SPOOL")]
    pub spool: Option<PathBuf>,

    /// Most MiB the spool keeps (queued and failed records); beyond it, writes the database
    /// cannot take get 503 with Retry-After.
    #[arg(long, env = "DATASTORAGE_SPOOL_MAX_MIB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=1024 * 1024))]
    pub spool_max_mib: u64,

    /// How often the spool's drain tries again while the database is unavailable.
    #[arg(long, env = "DATASTORAGE_SPOOL_RETRY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub spool_retry: Duration,

    /// Apply the embedded v1.0 migrations before serving (under sqlx's advisory lock).
    #[arg(long, env = "DATASTORAGE_MIGRATE")]
    pub migrate: bool,

    /// PostgreSQL URL used for `--migrate` (the schema owner role). Defaults to `--database-url`.
    #[arg(long, env = "DATASTORAGE_MIGRATE_DATABASE_URL", hide_env_values = true)]
    pub migrate_database_url: Option<String>,

    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "DATASTORAGE_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,

    /// Log format: `auto` (pretty on a terminal, one JSON object per line otherwise), `json` or
    /// `pretty`. Colours only ever go to a terminal.
    #[arg(long, env = "DATASTORAGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `pretty` when standard error is a terminal, `json` otherwise.
    Auto,
    /// One JSON object per line, with the request's span (method, URI, request id).
    Json,
    /// Human-readable lines; coloured only on a terminal.
    Pretty,
}

impl LogFormat {
    /// `json` or `pretty`, given whether the logs go to a terminal.
    pub fn resolve(self, terminal: bool) -> LogFormat {
        match self {
            LogFormat::Auto if terminal => LogFormat::Pretty,
            LogFormat::Auto => LogFormat::Json,
            other => other,
        }
    }
}

impl Config {
    /// The write token, read from `write_token_file` (surrounding whitespace trimmed).
    pub fn write_token(&self) -> anyhow::Result<Option<String>> {
        token_file("write", self.write_token_file.as_deref())
    }

    /// The read token, read from `read_token_file` (surrounding whitespace trimmed).
    pub fn read_token(&self) -> anyhow::Result<Option<String>> {
        token_file("read", self.read_token_file.as_deref())
    }
}

/// The token in the `kind`-token file at `path`, if one is given.
fn token_file(kind: &str, path: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!("cannot read the {kind}-token file {}: {e}", path.display())
    })?;
    let token = text.trim();
    if token.is_empty() {
        anyhow::bail!("the {kind}-token file {} is empty", path.display());
    }
    Ok(Some(token.to_owned()))
}
