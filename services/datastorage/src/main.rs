//! The `datastorage` binary: serve the API, or set up the database roles.

use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal as _;

use datastorage::Config;
use datastorage::config::LogFormat;
use datastorage::roles::{self, Roles};
use tracing_subscriber::EnvFilter;

/// mimalloc: the service allocates small, short-lived buffers per request (JSON, SQL arguments,
/// headers) from many threads, which glibc's allocator serves more slowly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "datastorage",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Option<Config>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update the schema-owner and application roles (run as a superuser).
    SetupRoles(SetupRoles),
    /// Inspect or drain a spool file (`--spool`) that no service has open.
    #[command(subcommand)]
    Spool(SpoolCommand),
}

#[derive(Debug, Subcommand)]
enum SpoolCommand {
    /// Print the spool's counts and its failed records (one JSON object per line).
    Status {
        /// The spool file.
        #[arg(long, env = "DATASTORAGE_SPOOL")]
        spool: std::path::PathBuf,
    },
    /// Write every queued record to the database, in order, and exit (for the spool of a
    /// replica that is gone).
    Drain {
        /// The spool file.
        #[arg(long, env = "DATASTORAGE_SPOOL")]
        spool: std::path::PathBuf,
        /// PostgreSQL URL (the application role).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
}

async fn spool_command(command: SpoolCommand) -> anyhow::Result<()> {
    use datastorage::store::Spool;
    match command {
        SpoolCommand::Status { spool } => {
            let spool = Spool::open(&spool, u64::MAX)?;
            let status = spool.status();
            let oldest = spool.oldest()?;
            println!(
                "{}: {} queued (oldest accepted {}), {} failed, {} bytes",
                spool.path().display(),
                status.queued,
                oldest.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
                status.failed,
                status.bytes
            );
            for (key, failed) in spool.failed()? {
                let line = serde_json::json!({ "record": key, "failed": failed });
                println!("{line}");
            }
            Ok(())
        }
        SpoolCommand::Drain {
            spool,
            database_url,
        } => {
            let spool = Spool::open(&spool, u64::MAX)?;
            let options = datastorage::db::connect_options(
                &database_url,
                std::time::Duration::from_secs(60),
            )?;
            let pool = datastorage::db::pool(options, 2, std::time::Duration::from_secs(10));
            let before = spool.status().queued;
            eprintln!("draining {before} records from {}", spool.path().display());
            let drained = spool.drain_all(&pool).await?;
            println!(
                "{} stored, {} refused by the database (kept as failed; `datastorage spool status` lists them)",
                drained.stored, drained.failed
            );
            Ok(())
        }
    }
}

#[derive(Debug, Args)]
struct SetupRoles {
    /// URL of the service's database, as a superuser or a role with CREATEROLE.
    #[arg(long, env = "ADMIN_DATABASE_URL", hide_env_values = true)]
    admin_url: String,
    /// The role that owns the schema and runs `--migrate`.
    #[arg(long, default_value = "datastorage_owner")]
    owner: String,
    #[arg(long, env = "DATASTORAGE_OWNER_PASSWORD", hide_env_values = true)]
    owner_password: String,
    /// The role the service connects as: DML only.
    #[arg(long, default_value = "datastorage_app")]
    app: String,
    #[arg(long, env = "DATASTORAGE_APP_PASSWORD", hide_env_values = true)]
    app_password: String,
}

/// Logs to standard error, as `--log-format` says; escape codes only ever go to a terminal.
fn init_logs(filter: &str, format: LogFormat) {
    let terminal = std::io::stderr().is_terminal();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr);
    match format.resolve(terminal) {
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        _ => logs.with_ansi(terminal).init(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (filter, format) = cli.serve.as_ref().map_or(("info", LogFormat::Auto), |c| {
        (c.log.as_str(), c.log_format)
    });
    init_logs(filter, format);
    let result = match (cli.command, cli.serve) {
        (Some(Command::SetupRoles(r)), _) => {
            let roles = Roles {
                owner: r.owner,
                owner_password: r.owner_password,
                app: r.app,
                app_password: r.app_password,
            };
            roles::setup(&r.admin_url, &roles).await.map(|()| {
                println!(
                    "roles ready: {} (owner: run --migrate as this role), {} (app: DML only; DATABASE_URL)",
                    roles.owner, roles.app
                );
            })
        }
        (Some(Command::Spool(command)), _) => spool_command(command).await,
        (None, Some(config)) => datastorage::run(config).await,
        // No serve arguments given: let clap report what is missing.
        (None, None) => datastorage::run(Config::parse()).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
