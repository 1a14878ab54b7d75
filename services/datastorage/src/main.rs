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
