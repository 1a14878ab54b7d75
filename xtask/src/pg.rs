//! `cargo xtask pg start|stop|status`: one embedded PostgreSQL kept for manual use.

use anyhow::{Result, bail};
use pg_embedded::Cluster;

const NAME: &str = "dev";

#[derive(Debug, clap::Subcommand)]
pub enum Pg {
    /// Start the cluster (or show the running one) and print its DATABASE_URL.
    Start,
    /// Stop the cluster and remove all its files.
    Stop,
    /// Show whether the cluster runs, and its DATABASE_URL.
    Status,
}

impl Pg {
    pub fn run(self) -> Result<()> {
        match self {
            Pg::Start => {
                if let Some(info) = Cluster::persistent_info(NAME, None)? {
                    eprintln!(
                        "already running ({}), in {}",
                        info.version,
                        info.root.display()
                    );
                    println!("DATABASE_URL={}", info.url);
                    return Ok(());
                }
                let c = Cluster::builder().persistent(NAME).start()?;
                eprintln!(
                    "started {} on 127.0.0.1:{} (socket in {}){}",
                    c.binaries().version(),
                    c.port(),
                    c.socket_dir().display(),
                    c.server_user()
                        .map(|u| format!(", server runs as `{u}`"))
                        .unwrap_or_default()
                );
                eprintln!("stop it with `cargo xtask pg stop`");
                println!("DATABASE_URL={}", c.url("postgres"));
                Ok(())
            }
            Pg::Stop => {
                let info = Cluster::stop_persistent(NAME, None)?;
                eprintln!("stopped; removed {}", info.root.display());
                Ok(())
            }
            Pg::Status => match Cluster::persistent_info(NAME, None)? {
                Some(info) => {
                    eprintln!(
                        "running: {} on 127.0.0.1:{}, in {}",
                        info.version,
                        info.port,
                        info.root.display()
                    );
                    println!("DATABASE_URL={}", info.url);
                    Ok(())
                }
                None => bail!("not running; start it with `cargo xtask pg start`"),
            },
        }
    }
}
