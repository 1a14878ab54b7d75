//! The PostgreSQL server shared by every test of the process ([`pg_server::Server::from_env`]),
//! with the templates and spare copies the tests take from it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pg_server::{Backend, Choice, PROVIDER_ENV, cleanup, runtime};
use tokio::sync::OnceCell;

use crate::{Error, Profile, template};

/// The variable setting how many copies of each profile's template are kept ready (default 2;
/// 0 makes every test wait for its own `CREATE DATABASE`).
pub const SPARES_ENV: &str = "DATASTORAGE_TEST_SPARES";
const DEFAULT_SPARES: usize = 2;

/// The server shared by all tests of the process, with what they need from it.
pub(crate) struct Server {
    pub(crate) pg: pg_server::Server,
    templates: Mutex<HashMap<Profile, Arc<OnceCell<String>>>>,
    /// Copies of each profile's template created ahead of the tests that will take them.
    spares: Mutex<HashMap<Profile, Vec<String>>>,
    refilling: Mutex<HashSet<Profile>>,
    spare_target: usize,
    closing: AtomicBool,
}

static SERVER: OnceCell<Result<Arc<Server>, String>> = OnceCell::const_new();

/// The shared server, started on first use by the provider chosen in the environment. A
/// failure is remembered: every later test fails at once with the same message.
pub(crate) async fn server() -> Result<Arc<Server>, Error> {
    runtime::run(async {
        SERVER
            .get_or_init(|| async {
                let server = Arc::new(start().await.map_err(|e| e.to_string())?);
                if server.pg.backend() == Backend::Url {
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
        cell.get_or_try_init(|| async move { template::ensure(&server.pg, profile).await })
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
        let strategy = if self.pg.version_num() >= 150000 {
            " STRATEGY WAL_LOG"
        } else {
            ""
        };
        self.pg
            .execute(format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"{strategy}"
            ))
            .await?;
        Ok(name)
    }

    /// Returns once no background top-up of `profile`'s spares runs (for measurements that
    /// must not share the server with it).
    pub(crate) async fn settled(&self, profile: Profile) {
        while self
            .refilling
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&profile)
        {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
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
                        let _ = server.pg.drop_database(&name).await;
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
                    let _ = server.pg.drop_database(&name).await;
                }
            },
            Duration::from_secs(30),
        );
    }
}

async fn start() -> Result<Server, Error> {
    let choice = Choice::from_env()?;
    let started = Instant::now();
    let pg = pg_server::Server::from_env().await?;
    let chosen = match choice {
        Choice::Auto => format!("auto: {}", pg.backend().as_str()),
        _ => pg.backend().as_str().to_owned(),
    };
    eprintln!(
        "test-db: {} ({PROVIDER_ENV}={chosen}), ready in {:.1} s",
        pg.description(),
        started.elapsed().as_secs_f64()
    );
    Ok(Server {
        pg,
        templates: Mutex::new(HashMap::new()),
        spares: Mutex::new(HashMap::new()),
        refilling: Mutex::new(HashSet::new()),
        spare_target: spare_target()?,
        closing: AtomicBool::new(false),
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
