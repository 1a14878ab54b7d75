//! `cargo xtask upgrade --from v1.0 --to full`: upgrade a database migrated with a derived
//! profile to the canonical one, so that it ends exactly as a fresh install of the canonical
//! profile would (the same schema, and the same `_sqlx_migrations` versions and checksums).
//!
//! Steps, all in one transaction on one dedicated connection, under the advisory lock sqlx takes
//! for migrations (a service's `--migrate` started meanwhile waits):
//! 1. for each version the derived profile replaces, in version order: run its bridge, and
//!    record the canonical migration's checksum (and description) for that version;
//! 2. apply the canonical versions the derived profile leaves out, in version order, recorded in
//!    `_sqlx_migrations` by sqlx itself.
//!
//! Any failure rolls everything back: the database is either upgraded or exactly as before.
//! A database that already matches the canonical profile is left alone ("nothing to do", exit
//! 0). Anything that is not a clean database of the derived profile is refused, unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use migration_deps::MigrationSet;
use pg_schema::applied::{self, AppliedMigration, MIGRATIONS_TABLE};
use sqlx::migrate::{Migrate, Migration, Migrator};
use sqlx::{Connection, Executor, PgConnection};

use crate::db::redact;
use crate::profiles::{self, PROFILE_FILE, Profile, Profiles};

const NOTHING_CHANGED: &str = "Nothing was changed.";

#[derive(Debug, clap::Args)]
pub struct Upgrade {
    /// The profile the database was migrated with (e.g. `v1.0`).
    #[arg(long, value_name = "PROFILE")]
    pub from: String,
    /// The profile to upgrade it to: the canonical one (`full`).
    #[arg(long, value_name = "PROFILE")]
    pub to: String,
    /// The database to upgrade.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Inspect the database and print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print only the result.
    #[arg(short, long)]
    pub quiet: bool,
}

impl Upgrade {
    pub fn run(self) -> Result<()> {
        let url = self.database_url.clone().context(
            "no database to upgrade: pass --database-url URL (or set DATABASE_URL), e.g. \
             `cargo xtask upgrade --from v1.0 --to full --database-url postgres://user:password@host:5432/datastorage --dry-run`",
        )?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(self.run_on(&url))
    }

    async fn run_on(&self, url: &str) -> Result<()> {
        let root = crate::project_root();
        let plan = Plan::load(&root, &self.from, &self.to).await?;
        let say = |msg: &str| {
            if !self.quiet {
                println!("{msg}");
            }
        };
        say(&format!(
            "upgrade {} → {}: {}",
            plan.from.name,
            plan.to.name,
            redact(url)
        ));

        // One dedicated connection: sqlx's migration lock is a session lock, released when this
        // connection unlocks it or closes, whatever happens in between.
        let mut conn = PgConnection::connect(url)
            .await
            .with_context(|| format!("cannot connect to {}", redact(url)))?;
        if other_advisory_locks(&mut conn).await.unwrap_or(false) {
            say(
                "  another session holds an advisory lock on this database (a migration may be running); waiting for the migration lock",
            );
        }
        Migrate::lock(&mut conn)
            .await
            .context("cannot take the migration lock")?;
        let result = self.locked(&mut conn, &plan).await;
        let unlocked = Migrate::unlock(&mut conn).await;
        let _ = conn.close().await;
        let message = result?;
        unlocked.context("cannot release the migration lock")?;
        println!("{message}");
        Ok(())
    }

    /// Everything that happens under the migration lock; returns the final message.
    async fn locked(&self, conn: &mut PgConnection, plan: &Plan) -> Result<String> {
        let database = applied::current_database(conn).await?;
        let rows = applied::read(conn).await?;
        let state = plan
            .classify(rows.as_deref())
            .map_err(|why| anyhow!("database `{database}`: {why} {NOTHING_CHANGED}"))?;
        if state == State::Canonical {
            return Ok(format!(
                "nothing to do: database `{database}` already has every migration of profile {} ({}/) with its checksum",
                plan.to.name,
                plan.to.dir.display()
            ));
        }
        if !self.quiet {
            println!(
                "database `{database}`: a clean {} database ({} migrations, checksums match {}/)",
                plan.from.name,
                plan.from_set.len(),
                plan.from.dir.display()
            );
            print!("{}", plan.describe());
        }
        let missing = missing_extensions(conn, &plan.to).await?;
        if !missing.is_empty() {
            bail!(
                "profile {} needs the PostgreSQL extension{} {}, which the server of database `{database}` does not have: \
                 install it on that server (pgvector: the `postgresql-<major>-pgvector` package, or \
                 `cargo xtask tools install pgvector` for a local Debian server), then retry. {NOTHING_CHANGED}",
                plan.to.name,
                if missing.len() == 1 { "" } else { "s" },
                missing
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if self.dry_run {
            return Ok(
                "dry run: nothing was changed; run the same command without --dry-run to upgrade"
                    .to_owned(),
            );
        }

        let started = Instant::now();
        let w = plan.width();
        let mut tx = conn.begin().await?;
        for b in &plan.bridges {
            let step = Instant::now();
            tx.execute(sqlx::AssertSqlSafe(b.sql.clone()))
                .await
                .map_err(|e| {
                    anyhow!(
                        "{}: {e}\nThe upgrade was rolled back. {NOTHING_CHANGED}",
                        b.source.display()
                    )
                })?;
            let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {MIGRATIONS_TABLE} SET checksum = $1, description = $2 \
                 WHERE version = $3 AND checksum = $4 AND success"
            )))
            .bind(&*b.canonical.checksum)
            .bind(&*b.canonical.description)
            .bind(b.version)
            .bind(&b.from_checksum)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                bail!(
                    "version {} in {MIGRATIONS_TABLE} changed while the upgrade ran; the upgrade was rolled back. {NOTHING_CHANGED}",
                    b.version
                );
            }
            if !self.quiet {
                println!(
                    "  bridged {:<w$}  {:>7.3} s",
                    plan.file_name(b.version),
                    step.elapsed().as_secs_f64()
                );
            }
        }
        for m in &plan.excluded {
            let elapsed = Migrate::apply(&mut *tx, MIGRATIONS_TABLE, m)
                .await
                .map_err(|e| {
                    anyhow!(
                        "{}/{}: {e}\nThe upgrade was rolled back. {NOTHING_CHANGED}",
                        plan.to.dir.display(),
                        plan.file_name(m.version)
                    )
                })?;
            if !self.quiet {
                println!(
                    "  applied {:<w$}  {:>7.3} s",
                    plan.file_name(m.version),
                    elapsed.as_secs_f64()
                );
            }
        }
        // The result must be the canonical profile's bookkeeping, exactly.
        let after = applied::read(&mut tx).await?.unwrap_or_default();
        if plan.classify(Some(&after)) != Ok(State::Canonical) {
            bail!(
                "after the upgrade, {MIGRATIONS_TABLE} does not match {}/; the upgrade was rolled back. {NOTHING_CHANGED}",
                plan.to.dir.display()
            );
        }
        tx.commit().await?;
        Ok(format!(
            "upgraded database `{database}` from {} to {} in {:.2} s: {} bridge{}, {} migration{} applied; {MIGRATIONS_TABLE} now matches {}/ ({} versions)",
            plan.from.name,
            plan.to.name,
            started.elapsed().as_secs_f64(),
            plan.bridges.len(),
            if plan.bridges.len() == 1 { "" } else { "s" },
            plan.excluded.len(),
            if plan.excluded.len() == 1 { "" } else { "s" },
            plan.to.dir.display(),
            plan.to_set.len()
        ))
    }
}

/// What the database is, when it is something the upgrade accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Exactly the derived profile: upgrade it.
    Derived,
    /// Exactly the canonical profile: nothing to do.
    Canonical,
}

/// One replaced version's bridge.
#[derive(Debug)]
struct BridgeStep {
    version: i64,
    source: PathBuf,
    sql: String,
    /// The derived profile's checksum of this version (its replacement's).
    from_checksum: Vec<u8>,
    /// The canonical migration of this version, as sqlx reads it.
    canonical: Migration,
}

/// Both profiles as sqlx reads them, and the steps between them.
#[derive(Debug)]
struct Plan {
    from: Profile,
    to: Profile,
    from_set: BTreeMap<i64, Migration>,
    to_set: BTreeMap<i64, Migration>,
    file_names: BTreeMap<i64, String>,
    bridges: Vec<BridgeStep>,
    /// Canonical versions the derived profile leaves out, in version order.
    excluded: Vec<Migration>,
}

impl Plan {
    async fn load(root: &std::path::Path, from: &str, to: &str) -> Result<Self> {
        let profiles = Profiles::load(root)?;
        let known = || {
            profiles
                .profiles
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let from = profiles
            .get(from)
            .with_context(|| {
                format!(
                    "--from {from}: no such profile in {PROFILE_FILE} (known: {})",
                    known()
                )
            })?
            .clone();
        let to = profiles
            .get(to)
            .with_context(|| {
                format!(
                    "--to {to}: no such profile in {PROFILE_FILE} (known: {})",
                    known()
                )
            })?
            .clone();
        if !to.is_canonical() {
            bail!(
                "--to {}: upgrades go to the canonical profile ({}), the one with the whole history",
                to.name,
                profiles.canonical().name
            );
        }
        if from.is_canonical() {
            bail!(
                "--from {}: the canonical profile is the upgrade's target; --from names a derived profile (e.g. {})",
                from.name,
                profiles
                    .derived()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let canonical = MigrationSet::read(&root.join(&to.dir))
            .map_err(|e| anyhow!("{}", crate::workspace::relative(root, &e.to_string())))?;
        let bridges = profiles::resolve_bridges(root, &from, &canonical, &to.dir)?;
        let resolved = profiles::resolve(root, &from, &canonical, &to.dir)?;

        let from_set = read_dir(root, &from).await?;
        let to_set = read_dir(root, &to).await?;
        let stale = || {
            format!(
                "{}/ does not match {PROFILE_FILE}; run `cargo xtask sync-migrations` and commit the result, then retry",
                from.dir.display()
            )
        };
        let expected: BTreeMap<i64, [u8; 48]> = resolved
            .iter()
            .map(|r| (r.migration.int_version(), r.migration.checksum))
            .collect();
        if expected.keys().ne(from_set.keys())
            || expected
                .iter()
                .any(|(v, sum)| &*from_set[v].checksum != sum.as_slice())
        {
            bail!("{}", stale());
        }
        for (v, m) in &from_set {
            let replaced = from.replace.contains_key(v);
            let same = to_set.get(v).is_some_and(|c| c.checksum == m.checksum);
            if !replaced && !same {
                bail!("{}", stale());
            }
        }

        let mut steps = Vec::new();
        for b in bridges {
            steps.push(BridgeStep {
                version: b.version,
                source: b.source,
                sql: b.migration.up.source,
                from_checksum: from_set[&b.version].checksum.to_vec(),
                canonical: to_set[&b.version].clone(),
            });
        }
        let excluded: Vec<Migration> = to_set
            .values()
            .filter(|m| !from_set.contains_key(&m.version))
            .cloned()
            .collect();
        let file_names = canonical
            .migrations
            .iter()
            .map(|m| (m.int_version(), m.file_name().to_owned()))
            .collect();
        if let Some(m) = excluded.iter().find(|m| m.no_tx) {
            bail!(
                "{}/{}: starts with `-- no-transaction`, but the upgrade applies every step in one transaction; \
                 this upgrade cannot include it",
                to.dir.display(),
                canonical
                    .get(m.version)
                    .map(|c| c.file_name())
                    .unwrap_or_default()
            );
        }
        Ok(Self {
            from,
            to,
            from_set,
            to_set,
            file_names,
            bridges: steps,
            excluded,
        })
    }

    /// The width of the file-name column in the plan and the progress lines.
    fn width(&self) -> usize {
        self.bridges
            .iter()
            .map(|b| b.version)
            .chain(self.excluded.iter().map(|m| m.version))
            .map(|v| self.file_name(v).len())
            .max()
            .unwrap_or(0)
    }

    fn file_name(&self, version: i64) -> &str {
        self.file_names
            .get(&version)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The steps, one per line.
    fn describe(&self) -> String {
        let mut out = format!(
            "plan ({} steps, one transaction; any failure leaves the database as it is):\n",
            self.bridges.len() + self.excluded.len()
        );
        let mut n = 0;
        let w = self.width();
        for b in &self.bridges {
            n += 1;
            let _ = writeln!(
                out,
                "  {n}. bridge {:<w$}  run {}; version {} records the checksum of {}/{}",
                self.file_name(b.version),
                b.source.display(),
                b.version,
                self.to.dir.display(),
                self.file_name(b.version)
            );
        }
        for m in &self.excluded {
            n += 1;
            let _ = writeln!(
                out,
                "  {n}. apply  {:<w$}  from {}/",
                self.file_name(m.version),
                self.to.dir.display()
            );
        }
        out
    }

    /// Decides from the rows of `_sqlx_migrations` (`None`: no such table) whether the database
    /// is a clean database of the derived profile, already one of the canonical profile, or
    /// something to refuse (the error says what and what to do).
    fn classify(&self, rows: Option<&[AppliedMigration]>) -> Result<State, String> {
        let (from, to) = (&self.from, &self.to);
        let (fdir, tdir) = (from.dir.display(), to.dir.display());
        let Some(rows) = rows else {
            return Err(format!(
                "no {MIGRATIONS_TABLE} table: the database was never migrated with sqlx, so it is not a {} database. \
                 A new database needs no upgrade: migrate it with profile {} (`sqlx migrate run --source {tdir}`).",
                from.name, to.name
            ));
        };
        let failed: Vec<i64> = rows
            .iter()
            .filter(|r| !r.success)
            .map(|r| r.version)
            .collect();
        if !failed.is_empty() {
            return Err(format!(
                "{MIGRATIONS_TABLE} records failed migration{} {} (success = false): the database is in an unknown state. \
                 Find out what the migration did, repair it by hand or restore a backup, then retry.",
                plural(&failed),
                versions(&failed)
            ));
        }
        let unknown: Vec<i64> = rows
            .iter()
            .filter(|r| !self.to_set.contains_key(&r.version))
            .map(|r| r.version)
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "{MIGRATIONS_TABLE} records version{} {} that neither profile {} ({fdir}/) nor {} ({tdir}/) has: \
                 it was migrated by another release or by hand. Only a clean {} database can be upgraded.",
                plural(&unknown),
                versions(&unknown),
                from.name,
                to.name,
                from.name
            ));
        }
        let matches = |r: &AppliedMigration, set: &BTreeMap<i64, Migration>| {
            set.get(&r.version)
                .is_some_and(|m| *m.checksum == *r.checksum)
        };
        let mismatched: Vec<&AppliedMigration> = rows
            .iter()
            .filter(|r| !matches(r, &self.from_set) && !matches(r, &self.to_set))
            .collect();
        if !mismatched.is_empty() {
            let detail: Vec<String> = mismatched
                .iter()
                .map(|r| {
                    format!(
                        "version {} (checksum {}…) matches neither {fdir}/{} nor {tdir}/{}",
                        r.version,
                        &r.checksum_hex()[..12],
                        self.file_name(r.version),
                        self.file_name(r.version)
                    )
                })
                .collect();
            return Err(format!(
                "checksum mismatch: {}. The database was migrated with files that differ from this repository's \
                 (edited, or from another branch). Find the files it was migrated with; only a clean {} database can be upgraded.",
                detail.join("; "),
                from.name
            ));
        }
        let applied: BTreeSet<i64> = rows.iter().map(|r| r.version).collect();
        let replaced = |v: i64| {
            self.from_set
                .get(&v)
                .zip(self.to_set.get(&v))
                .is_some_and(|(f, t)| f.checksum != t.checksum)
        };
        // Versions that show which profile the database was migrated with.
        let of_from: Vec<i64> = rows
            .iter()
            .filter(|r| replaced(r.version) && matches(r, &self.from_set))
            .map(|r| r.version)
            .collect();
        let of_to: Vec<i64> = rows
            .iter()
            .filter(|r| {
                !self.from_set.contains_key(&r.version)
                    || (replaced(r.version) && matches(r, &self.to_set))
            })
            .map(|r| r.version)
            .collect();
        let all_to: BTreeSet<i64> = self.to_set.keys().copied().collect();
        let all_from: BTreeSet<i64> = self.from_set.keys().copied().collect();
        if applied == all_to && of_from.is_empty() {
            return Ok(State::Canonical);
        }
        if applied == all_from && of_to.is_empty() {
            return Ok(State::Derived);
        }
        if !of_to.is_empty() {
            let missing: Vec<i64> = all_to.difference(&applied).copied().collect();
            let mut why = format!(
                "partial upgrade state: version{} {} {} already profile {}'s migration{}",
                plural(&of_to),
                versions(&of_to),
                if of_to.len() == 1 { "is" } else { "are" },
                to.name,
                plural(&of_to),
            );
            if !of_from.is_empty() {
                let _ = write!(
                    why,
                    ", while {} still {} profile {}'s",
                    versions(&of_from),
                    if of_from.len() == 1 { "is" } else { "are" },
                    from.name
                );
            }
            if !missing.is_empty() {
                let _ = write!(
                    why,
                    ", and {} {} not applied",
                    versions(&missing),
                    if missing.len() == 1 { "is" } else { "are" }
                );
            }
            let _ = write!(
                why,
                ". The upgrade runs in one transaction and never leaves this state: it comes from running profile {}'s \
                 migrations on a {} database without the upgrade (e.g. `sqlx migrate run --source {tdir}`, which applies the \
                 left-out versions and then stops with a checksum mismatch) or from changes by hand. Restore the backup \
                 taken before, then upgrade; or, if this is a {} database of an older release, apply the rest with \
                 `sqlx migrate run --source {tdir}`.",
                to.name, from.name, to.name
            );
            return Err(why);
        }
        let missing: Vec<i64> = all_from.difference(&applied).copied().collect();
        Err(format!(
            "not fully migrated to profile {}: version{} {} {} not applied. Apply {} first (start the {} service with its \
             migrations, or `sqlx migrate run --source {fdir}`), then upgrade.",
            from.name,
            plural(&missing),
            versions(&missing),
            if missing.len() == 1 { "is" } else { "are" },
            if missing.len() == 1 { "it" } else { "them" },
            from.name
        ))
    }
}

/// A profile's directory as sqlx reads it, by version.
async fn read_dir(root: &std::path::Path, profile: &Profile) -> Result<BTreeMap<i64, Migration>> {
    let migrator = Migrator::new(root.join(&profile.dir))
        .await
        .with_context(|| {
            format!(
                "cannot read the migrations of profile {} in {}/",
                profile.name,
                profile.dir.display()
            )
        })?;
    Ok(migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.clone()))
        .collect())
}

/// The extensions the profile needs that the server cannot install.
async fn missing_extensions(conn: &mut PgConnection, profile: &Profile) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for ext in &profile.requires_extensions {
        let available: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)",
        )
        .bind(ext)
        .fetch_one(&mut *conn)
        .await?;
        if !available {
            missing.push(ext.clone());
        }
    }
    Ok(missing)
}

/// Whether another session holds an advisory lock in this database (then taking the migration
/// lock may wait).
async fn other_advisory_locks(conn: &mut PgConnection) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
    )
    .fetch_one(conn)
    .await?)
}

fn versions(v: &[i64]) -> String {
    v.iter()
        .map(|v| format!("{v:03}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(v: &[i64]) -> &'static str {
    if v.len() == 1 { "" } else { "s" }
}
