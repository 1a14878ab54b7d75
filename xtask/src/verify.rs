//! `cargo xtask migrations verify`: the static analysis beside PostgreSQL itself.
//!
//! On a throwaway embedded PostgreSQL, the history (minus `--exclude`) is applied as its tool
//! applies it: each migration's up part sent as the tool sends it (sqlx, diesel, dbmate,
//! golang-migrate: one simple-protocol query per file; goose, Flyway: one per statement), in
//! its own transaction unless the tool runs it without one, on one connection, continuing
//! after a migration PostgreSQL refuses. For each migration the database's verdict is printed
//! beside the analysis's:
//!
//! - **agree**: both accept it, or both refuse it;
//! - **database only**: PostgreSQL refuses what the analysis accepts: an analysis gap, shown
//!   with PostgreSQL's message;
//! - **static only, deferred**: the analysis reports a function body that PostgreSQL checks
//!   only when the function runs;
//! - **false error**: the analysis refuses what PostgreSQL applies.
//!
//! The analysis's verdict on a migration is taken with the migrations PostgreSQL refused
//! before it left out (they created nothing), so each migration is judged on the state the
//! database really had. Separately, the analysis's own prediction of the *first* migration
//! that fails (nothing known from the database) is compared with the database's.
//!
//! `--exclude-each` repeats this for every single exclusion. The database state before each
//! migration is kept as a template database, so each exclusion starts from a copy of the
//! common prefix and applies only the rest; exclusions run in parallel (`--jobs`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use migration_deps::{
    Analyzed, Finding, LayoutKind, Member, Membership, MigrationSet, Part, Severity,
    analyze_lenient, check_profile, hazard_findings, transaction_findings, version_findings,
};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

#[derive(Debug, clap::Args)]
pub struct Verify {
    /// The folder of migrations.
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// How the folder is laid out: auto, sqlx, goose, diesel, golang-migrate, dbmate, flyway.
    #[arg(long, default_value = "auto")]
    pub layout: String,
    /// Versions left out, comma-separated, as the layout writes them (`5,10`).
    #[arg(long, value_name = "V,V,...", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Run every single exclusion in turn (on top of `--exclude`) and end with a summary.
    #[arg(long)]
    pub exclude_each: bool,
    /// SQL run first, for what the history expects from outside (roles, schemas, extensions).
    #[arg(long, value_name = "FILE")]
    pub prelude: Option<PathBuf>,
    /// Output: human, json, github (workflow-command annotations).
    #[arg(long, default_value = "human")]
    pub format: crate::report::Format,
    /// Exclusions applied at once (default: the number of cores).
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Also revert: after the full run, apply every down part in reverse order (as the tool's
    /// revert does, stopping at the first it refuses), then the up parts again; and check
    /// that each down part parses.
    #[arg(long)]
    pub check_down: bool,
    /// Print every migration, not only those where something was reported.
    #[arg(short, long)]
    pub verbose: bool,
}

/// What PostgreSQL said when it refused a migration.
#[derive(Debug, Clone, Serialize)]
pub struct DbError {
    pub code: String,
    pub message: String,
    /// The line of the file the error position points at, when PostgreSQL gave one.
    pub line: Option<u32>,
}

/// A run's outcome for one migration: `None` applied, `Some` refused; and how long it took.
type Outcome = (Option<DbError>, Duration);

/// The verdict on one migration of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Agree,
    DatabaseOnly,
    StaticOnlyDeferred,
    FalseError,
}

/// One migration of one run, compared.
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    pub file: String,
    pub database: Option<DbError>,
    #[serde(serialize_with = "findings_json")]
    pub findings: Vec<Finding>,
    pub verdict: Verdict,
}

fn findings_json<S: serde::Serializer>(f: &[Finding], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(f.iter().map(crate::report::JsonFinding::from))
}

/// One run: the set minus some exclusions.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub excluded: Vec<String>,
    /// Compared migrations (for single exclusions, only those after the excluded one).
    pub files: Vec<FileResult>,
    /// The first migration PostgreSQL refuses that it applies without this exclusion.
    pub first_failure: Option<String>,
    /// Whether the analysis, with nothing known from the database, reports an error there.
    pub first_failure_named: Option<bool>,
}

/// One down part of the revert run (`--check-down`).
#[derive(Debug, Clone, Serialize)]
pub struct DownResult {
    /// The down part's file.
    pub file: String,
    /// Whether the revert reached it (it stops at the first down part PostgreSQL refuses).
    pub reached: bool,
    /// What PostgreSQL said when the down part was applied (null: it was).
    pub database: Option<DbError>,
    /// What it said when the up part ran again after the revert (null: applied; absent when
    /// it was not run again because the revert stopped before).
    pub up_again: Option<Option<DbError>>,
    /// The analysis's findings on the down part (it must parse).
    #[serde(serialize_with = "findings_json")]
    pub findings: Vec<Finding>,
}

/// The totals of one verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub exclusions: usize,
    pub breaking: usize,
    pub first_failure_named: usize,
    pub files: usize,
    pub agree: usize,
    pub database_only: usize,
    pub static_only_deferred: usize,
    pub false_errors: usize,
    /// `--check-down`: down parts applied, and refused (by PostgreSQL or the analysis), and
    /// up parts that failed when run again after the revert.
    pub downs_applied: usize,
    pub downs_refused: usize,
    pub ups_again_refused: usize,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    source: String,
    layout: &'a str,
    server: String,
    migrations: usize,
    runs: &'a [Run],
    #[serde(skip_serializing_if = "Option::is_none")]
    downs: Option<&'a [DownResult]>,
    summary: &'a Summary,
}

impl Verify {
    pub fn run(self) -> Result<()> {
        let started = Instant::now();
        let (set, how) = read(&self.source, &self.layout)?;
        if self.format == crate::report::Format::Human {
            eprintln!("{}: {how}", self.source.display());
        }
        let analyzed: Vec<Analyzed> = set.migrations.iter().map(analyze_lenient).collect();
        let base: Vec<usize> = self
            .exclude
            .iter()
            .map(|v| {
                let m = set.lookup(v).map_err(|e| anyhow!("--exclude {v}: {e}"))?;
                Ok(set
                    .migrations
                    .iter()
                    .position(|x| x.version == m.version)
                    .expect("found"))
            })
            .collect::<Result<_>>()?;
        let prelude = match &self.prelude {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("--prelude {}: cannot read", p.display()))?,
            ),
            None => None,
        };
        let jobs = self.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let cluster =
            pg_embedded::Cluster::start().context("cannot start the embedded PostgreSQL")?;
        let server = format!("embedded {}", cluster.binaries().version());
        let major = crate::deps::server_major(cluster.binaries().version());
        let db = Databases::new(&cluster);
        let parts: Arc<Vec<Part>> = Arc::new(set.migrations.iter().map(|m| m.up.clone()).collect());
        let downs: Option<Arc<Vec<Option<Part>>>> = self
            .check_down
            .then(|| Arc::new(set.migrations.iter().map(|m| m.down.clone()).collect()));
        // What cannot run under a savepoint in one shared transaction.
        let needs_own: Arc<Vec<bool>> = Arc::new(
            analyzed
                .iter()
                .map(|a| {
                    a.migration.up.no_transaction
                        || !a.analysis.tx_only.is_empty()
                        || !a.analysis.tx_control.is_empty()
                        || a.analysis.facts.events.iter().any(|e| {
                            matches!(
                                e.action,
                                migration_deps::Action::EnumLabel { old: None, .. }
                            )
                        })
                })
                .collect(),
        );
        let (outcomes, reverted) = rt.block_on(run_all(
            &db,
            parts,
            downs,
            needs_own,
            &base,
            self.exclude_each,
            prelude.as_deref(),
            bookkeeping(set.layout),
            jobs,
        ))?;
        drop(cluster);

        let files: Vec<&str> = set.migrations.iter().map(|m| m.file_name()).collect();
        let mut runs = Vec::new();
        let full = &outcomes[&None];
        runs.push(compare(&analyzed, &files, major, &base, None, full, full));
        if self.exclude_each {
            for k in 0..set.migrations.len() {
                if base.contains(&k) {
                    continue;
                }
                runs.push(compare(
                    &analyzed,
                    &files,
                    major,
                    &base,
                    Some(k),
                    &outcomes[&Some(k)],
                    full,
                ));
            }
        }
        let mut summary = Summary::default();
        for (i, r) in runs.iter().enumerate() {
            if i > 0 {
                summary.exclusions += 1;
                if r.first_failure.is_some() {
                    summary.breaking += 1;
                }
                if r.first_failure_named == Some(true) {
                    summary.first_failure_named += 1;
                }
            }
            for f in &r.files {
                summary.files += 1;
                match f.verdict {
                    Verdict::Agree => summary.agree += 1,
                    Verdict::DatabaseOnly => summary.database_only += 1,
                    Verdict::StaticOnlyDeferred => summary.static_only_deferred += 1,
                    Verdict::FalseError => summary.false_errors += 1,
                }
            }
        }
        let downs: Option<Vec<DownResult>> = self.check_down.then(|| {
            let mut out = Vec::new();
            for (k, m) in set.migrations.iter().enumerate() {
                let Some(down) = &m.down else { continue };
                let findings = migration_deps::down_findings(m);
                let (database, up_again) = match reverted.iter().find(|r| r.0 == k) {
                    Some((_, db, again)) => (db.clone(), again.clone()),
                    None => (None, None),
                };
                let applied = reverted.iter().any(|r| r.0 == k);
                if applied && database.is_none() {
                    summary.downs_applied += 1;
                }
                if database.is_some() || findings.iter().any(|f| f.severity == Severity::Error) {
                    summary.downs_refused += 1;
                }
                if matches!(up_again, Some(Some(_))) {
                    summary.ups_again_refused += 1;
                }
                if applied || !findings.is_empty() {
                    out.push(DownResult {
                        file: down.file_name.clone(),
                        reached: applied,
                        database,
                        up_again,
                        findings,
                    });
                }
            }
            out
        });
        summary.seconds = started.elapsed().as_secs_f64();
        let base_names: Vec<String> = base.iter().map(|&i| files[i].to_owned()).collect();
        match self.format {
            crate::report::Format::Json => {
                let report = Report {
                    source: self.source.display().to_string(),
                    layout: set.layout.name(),
                    server,
                    migrations: set.migrations.len(),
                    runs: &runs,
                    downs: downs.as_deref(),
                    summary: &summary,
                };
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            crate::report::Format::Github => {
                for r in &runs {
                    for f in &r.files {
                        if let Some(text) = github_line(&self.source, r, f) {
                            println!("{text}");
                        }
                    }
                }
                for d in downs.iter().flatten() {
                    for text in down_github_lines(&self.source, d) {
                        println!("{text}");
                    }
                }
            }
            crate::report::Format::Human => {
                print!(
                    "{}",
                    human(
                        &runs,
                        &summary,
                        &server,
                        &base_names,
                        self.verbose,
                        self.exclude_each
                    )
                );
                if let Some(d) = &downs {
                    print!("{}", human_downs(d, &summary, self.verbose));
                }
            }
        }
        if summary.database_only > 0
            || summary.false_errors > 0
            || summary.downs_refused > 0
            || summary.ups_again_refused > 0
        {
            std::process::exit(1);
        }
        Ok(())
    }
}

/// The analysis beside the database for one run.
fn compare(
    analyzed: &[Analyzed],
    files: &[&str],
    major: u32,
    base: &[usize],
    excluded: Option<usize>,
    outcomes: &[Option<Outcome>],
    full: &[Option<Outcome>],
) -> Run {
    let left_out = |i: usize| base.contains(&i) || Some(i) == excluded;
    let refused = |o: &Option<Outcome>| matches!(o, Some((Some(_), _)));
    // The analysis alone: which migrations it says fail.
    let predicted = static_findings(analyzed, files, major, |i| {
        (!left_out(i)).then_some(Membership::Included)
    });
    // The analysis on the state the database really had.
    let informed = static_findings(analyzed, files, major, |i| {
        if left_out(i) {
            None
        } else if refused(&outcomes[i]) {
            Some(Membership::NotApplied)
        } else {
            Some(Membership::Included)
        }
    });
    let from = excluded.map_or(0, |k| k + 1);
    let mut result = Vec::new();
    for i in from..analyzed.len() {
        if left_out(i) {
            continue;
        }
        let Some((db, _)) = &outcomes[i] else {
            continue;
        };
        let findings = informed.get(&i).cloned().unwrap_or_default();
        let errors: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        let verdict = match (db.is_some(), errors.is_empty()) {
            (true, false) | (false, true) => Verdict::Agree,
            (true, true) => Verdict::DatabaseOnly,
            (false, false) if errors.iter().all(|f| f.deferred) => Verdict::StaticOnlyDeferred,
            (false, false) => Verdict::FalseError,
        };
        result.push(FileResult {
            file: files[i].to_owned(),
            database: db.clone(),
            findings,
            verdict,
        });
    }
    let (first_failure, first_failure_named) = match excluded {
        None => (None, None),
        Some(k) => {
            let first = (k + 1..analyzed.len())
                .find(|&i| !left_out(i) && refused(&outcomes[i]) && !refused(&full[i]));
            match first {
                Some(i) => {
                    let named = predicted.get(&i).is_some_and(|fs| {
                        fs.iter()
                            .any(|f| f.severity == Severity::Error && !f.deferred)
                    });
                    (Some(files[i].to_owned()), Some(named))
                }
                None => (None, None),
            }
        }
    };
    Run {
        excluded: excluded.map(|k| files[k].to_owned()).into_iter().collect(),
        files: result,
        first_failure,
        first_failure_named,
    }
}

/// Every finding of a walk, by migration index.
fn static_findings(
    analyzed: &[Analyzed],
    files: &[&str],
    major: u32,
    membership: impl Fn(usize) -> Option<Membership>,
) -> HashMap<usize, Vec<Finding>> {
    let members: Vec<Member<'_>> = analyzed
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            membership(i).map(|membership| Member {
                analyzed: a,
                membership,
            })
        })
        .collect();
    let index: HashMap<&str, usize> = files.iter().enumerate().map(|(i, f)| (*f, i)).collect();
    let mut out: HashMap<usize, Vec<Finding>> = HashMap::new();
    let mut all = check_profile(analyzed, &members, &[]);
    for m in &members {
        all.extend(transaction_findings(m.analyzed));
        all.extend(version_findings(m.analyzed, major));
        all.extend(hazard_findings(m.analyzed));
    }
    for f in all {
        if let Some(&i) = index.get(f.file.as_str()) {
            out.entry(i).or_default().push(f);
        }
    }
    for fs in out.values_mut() {
        fs.sort_by_key(|f| f.line);
    }
    out
}

/// Creating, copying and dropping the databases of one verification.
struct Databases {
    admin_url: String,
    url: Box<dyn Fn(&str) -> String + Send + Sync>,
}

impl Databases {
    fn new(cluster: &pg_embedded::Cluster) -> Self {
        let base = cluster.url("postgres");
        let prefix = base.trim_end_matches("postgres").to_owned();
        Databases {
            admin_url: base,
            url: Box::new(move |db| format!("{prefix}{db}")),
        }
    }

    async fn admin(&self, sql: String) -> Result<()> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .with_context(|| format!("`{sql}`"))?;
        conn.close().await?;
        Ok(())
    }

    async fn connect(&self, db: &str) -> Result<PgConnection> {
        PgConnection::connect(&(self.url)(db))
            .await
            .with_context(|| format!("cannot connect to database {db}"))
    }
}

/// Applies one migration part as its tool does, on `conn`.
pub(crate) async fn apply(conn: &mut PgConnection, part: &Part) -> Option<DbError> {
    let queries = part.queries();
    let tx = !part.no_transaction;
    if tx && let Err(e) = sqlx::raw_sql("BEGIN").execute(&mut *conn).await {
        return Some(db_error(part, 0, "", &e));
    }
    let mut failed = None;
    for (offset, text) in queries {
        if text.trim().is_empty() {
            continue;
        }
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(text.to_owned()))
            .execute(&mut *conn)
            .await
        {
            failed = Some(db_error(part, offset, text, &e));
            break;
        }
    }
    if tx {
        let end = if failed.is_some() {
            "ROLLBACK"
        } else {
            "COMMIT"
        };
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(end.to_owned()))
            .execute(&mut *conn)
            .await
            && failed.is_none()
        {
            failed = Some(db_error(part, 0, "", &e));
        }
    } else if failed.is_some() {
        // A failed multi-statement query leaves no transaction open; be sure of it.
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    }
    failed
}

fn db_error(part: &Part, offset: usize, text: &str, e: &sqlx::Error) -> DbError {
    match e {
        sqlx::Error::Database(d) => {
            let line = d
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| match pg.position() {
                    Some(sqlx::postgres::PgErrorPosition::Original(chars)) => {
                        let byte = text
                            .char_indices()
                            .nth(chars.saturating_sub(1))
                            .map_or(text.len(), |(b, _)| b);
                        Some(part.line_of(offset + byte))
                    }
                    _ => None,
                });
            DbError {
                code: d.code().map(|c| c.into_owned()).unwrap_or_default(),
                message: d.message().to_owned(),
                line,
            }
        }
        other => DbError {
            code: String::new(),
            message: other.to_string(),
            line: None,
        },
    }
}

/// SQLSTATEs that mean a migration behaved differently because it ran inside the one
/// transaction of a savepoint run (a new enum label used, a statement that needs its own
/// transaction): such a run is done again on a copy, each migration in its own transaction.
const TRANSACTION_SENSITIVE: &[&str] = &[
    "55P04", "25001", "25P01", "25P02", "0A000", "2D000", "3B001",
];

/// The outcomes of every run: `None` = nothing more excluded, `Some(k)` = migration `k` also
/// excluded. Each run's vector has an entry per migration it applied.
///
/// With `each`, `jobs` workers split the exclusions. Each keeps its own database at the state
/// before its next exclusion and applies the rest of the history *after* the excluded
/// migration inside one transaction, each migration under a savepoint (rolled back to when it
/// fails, and with deferred constraints checked at its end as a commit would), then rolls all
/// of it back. Where one transaction cannot stand for separate ones (`needs_own`: migrations
/// run outside a transaction, transaction control, new enum labels; or a failure of
/// [`TRANSACTION_SENSITIVE`]), that run is made on a copy of the database instead.
#[allow(clippy::too_many_arguments)]
async fn run_all(
    db: &Databases,
    parts: Arc<Vec<Part>>,
    downs: Option<Arc<Vec<Option<Part>>>>,
    needs_own: Arc<Vec<bool>>,
    base: &[usize],
    each: bool,
    prelude: Option<&str>,
    bookkeeping: &str,
    jobs: usize,
) -> Result<(BTreeMap<Option<usize>, Vec<Option<Outcome>>>, Vec<Reverted>)> {
    let start = "verify_start";
    db.admin(format!("CREATE DATABASE {start}")).await?;
    let mut conn = db.connect(start).await?;
    if let Some(sql) = prelude {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .context("the prelude failed")?;
    }
    sqlx::raw_sql(AssertSqlSafe(bookkeeping.to_owned()))
        .execute(&mut conn)
        .await
        .context("cannot create the migration tool's own table")?;
    conn.close().await?;
    let jobs = if each { jobs.max(1) } else { 1 };
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..jobs {
        let prefix = format!("verify_prefix_{w}");
        db.admin(format!("CREATE DATABASE {prefix} TEMPLATE {start}"))
            .await?;
        let worker = Worker {
            w,
            url: (db.url)(&prefix),
            copy_url: (db.url)(&format!("verify_copy_{w}")),
            prefix,
            admin: db.admin_url.clone(),
            parts: parts.clone(),
            downs: if w == 0 { downs.clone() } else { None },
            needs_own: needs_own.clone(),
            base: base.to_vec(),
        };
        tasks.spawn(async move { worker.run(jobs, each).await });
    }
    let mut runs: BTreeMap<Option<usize>, Vec<Option<Outcome>>> = BTreeMap::new();
    let mut full = None;
    let mut reverted = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (w, prefix_run, exclusions, downs) = done??;
        if w == 0 {
            full = Some(prefix_run);
            reverted = downs;
        }
        for (k, out) in exclusions {
            runs.insert(Some(k), out);
        }
    }
    let full = full.expect("worker 0 ran");
    for (k, out) in runs.iter_mut() {
        let k = k.expect("exclusions only");
        // The shared prefix: as in the full run.
        out[..k].clone_from_slice(&full[..k]);
    }
    runs.insert(None, full);
    Ok((runs, reverted))
}

/// One migration of the revert run: its index, what PostgreSQL said to its down part, and to
/// its up part run again afterwards (`None`: not run again).
type Reverted = (usize, Option<DbError>, Option<Option<DbError>>);

/// One worker of a verification: its own database, advanced migration by migration.
struct Worker {
    w: usize,
    prefix: String,
    url: String,
    admin: String,
    copy_url: String,
    parts: Arc<Vec<Part>>,
    /// `--check-down` (worker 0 only): the down parts, reverted after the full run.
    downs: Option<Arc<Vec<Option<Part>>>>,
    needs_own: Arc<Vec<bool>>,
    base: Vec<usize>,
}

/// A worker's prefix run, its exclusions' runs and its revert run.
type WorkerResult = (
    usize,
    Vec<Option<Outcome>>,
    Vec<(usize, Vec<Option<Outcome>>)>,
    Vec<Reverted>,
);

impl Worker {
    async fn run(self, jobs: usize, each: bool) -> Result<WorkerResult> {
        let n = self.parts.len();
        let mut conn = PgConnection::connect(&self.url).await?;
        let mut prefix_run: Vec<Option<Outcome>> = vec![None; n];
        let mut exclusions = Vec::new();
        let mut turn = 0usize;
        for (k, slot) in prefix_run.iter_mut().enumerate() {
            if self.base.contains(&k) {
                continue;
            }
            if each {
                if turn % jobs == self.w {
                    let out = self
                        .without(&mut conn, k)
                        .await
                        .with_context(|| format!("the run without migration {k}"))?;
                    exclusions.push((k, out));
                }
                turn += 1;
            }
            let t = Instant::now();
            let e = apply(&mut conn, &self.parts[k]).await;
            *slot = Some((e, t.elapsed()));
        }
        let reverted = match &self.downs {
            Some(downs) => revert(&mut conn, &self.parts, downs, &prefix_run).await,
            None => Vec::new(),
        };
        conn.close().await?;
        Ok((self.w, prefix_run, exclusions, reverted))
    }

    /// The rest of the history after `k`, from the state before `k`.
    async fn without(&self, conn: &mut PgConnection, k: usize) -> Result<Vec<Option<Outcome>>> {
        let rest: Vec<usize> = (k + 1..self.parts.len())
            .filter(|i| !self.base.contains(i))
            .collect();
        if !rest.iter().any(|&i| self.needs_own[i]) {
            let out = self.savepoints(conn, &rest).await?;
            let sensitive = out.iter().flatten().any(|(e, _)| {
                e.as_ref()
                    .is_some_and(|e| TRANSACTION_SENSITIVE.contains(&e.code.as_str()))
            });
            if !sensitive {
                return Ok(out);
            }
        }
        self.on_a_copy(conn, &rest).await
    }

    /// The migrations `rest` in one transaction, each under a savepoint; all rolled back.
    async fn savepoints(
        &self,
        conn: &mut PgConnection,
        rest: &[usize],
    ) -> Result<Vec<Option<Outcome>>> {
        let mut out: Vec<Option<Outcome>> = vec![None; self.parts.len()];
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
        for &i in rest {
            let part = &self.parts[i];
            let t = Instant::now();
            sqlx::raw_sql("SAVEPOINT migration")
                .execute(&mut *conn)
                .await?;
            let mut failed = None;
            for (offset, text) in part.queries() {
                if text.trim().is_empty() {
                    continue;
                }
                if let Err(e) = sqlx::raw_sql(AssertSqlSafe(text.to_owned()))
                    .execute(&mut *conn)
                    .await
                {
                    failed = Some(db_error(part, offset, text, &e));
                    break;
                }
            }
            // What a commit would check.
            if failed.is_none()
                && let Err(e) = sqlx::raw_sql("SET CONSTRAINTS ALL IMMEDIATE")
                    .execute(&mut *conn)
                    .await
            {
                failed = Some(db_error(part, 0, "", &e));
            }
            let end = if failed.is_some() {
                "ROLLBACK TO SAVEPOINT migration"
            } else {
                "RELEASE SAVEPOINT migration"
            };
            sqlx::raw_sql(end).execute(&mut *conn).await?;
            out[i] = Some((failed, t.elapsed()));
        }
        sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
        Ok(out)
    }

    /// The migrations `rest`, each as its tool runs it, on a copy of the worker's database.
    async fn on_a_copy(
        &self,
        conn: &mut PgConnection,
        rest: &[usize],
    ) -> Result<Vec<Option<Outcome>>> {
        let copy = format!("verify_copy_{}", self.w);
        // The template must have no session while it is copied.
        let own = std::mem::replace(conn, PgConnection::connect(&self.admin).await?);
        own.close().await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE {copy} TEMPLATE {}",
            self.prefix
        )))
        .execute(&mut *conn)
        .await?;
        let mut admin = std::mem::replace(conn, PgConnection::connect(&self.url).await?);
        let mut c = PgConnection::connect(&self.copy_url).await?;
        let mut out: Vec<Option<Outcome>> = vec![None; self.parts.len()];
        for &i in rest {
            let t = Instant::now();
            let e = apply(&mut c, &self.parts[i]).await;
            out[i] = Some((e, t.elapsed()));
        }
        c.close().await?;
        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {copy}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        Ok(out)
    }
}

/// The revert run: from the last applied migration back to the first, each down part as the
/// tool applies it, stopping at the first PostgreSQL refuses (as `sqlx migrate revert`,
/// `goose down`, `diesel migration revert` do); then the reverted up parts again, in order.
async fn revert(
    conn: &mut PgConnection,
    parts: &[Part],
    downs: &[Option<Part>],
    applied: &[Option<Outcome>],
) -> Vec<Reverted> {
    let mut out: Vec<Reverted> = Vec::new();
    for k in (0..parts.len()).rev() {
        if !matches!(applied[k], Some((None, _))) {
            continue;
        }
        let Some(down) = &downs[k] else {
            // Nothing to revert (sqlx skips simple migrations; goose and golang-migrate
            // only drop the version).
            continue;
        };
        let e = apply(conn, down).await;
        let stop = e.is_some();
        out.push((k, e, None));
        if stop {
            break;
        }
    }
    let undone: Vec<usize> = out
        .iter()
        .filter(|r| r.1.is_none())
        .map(|r| r.0)
        .rev()
        .collect();
    for k in undone {
        let e = apply(conn, &parts[k]).await;
        if let Some(r) = out.iter_mut().find(|r| r.0 == k) {
            r.2 = Some(e);
        }
    }
    out
}

/// The revert run for people.
fn human_downs(downs: &[DownResult], summary: &Summary, verbose: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "
down parts (--check-down): {} applied in reverse order, {} refused, {} up part(s) refused when run again",
        summary.downs_applied, summary.downs_refused, summary.ups_again_refused
    );
    for d in downs {
        let problem =
            d.database.is_some() || !d.findings.is_empty() || matches!(d.up_again, Some(Some(_)));
        if !verbose && !problem {
            continue;
        }
        let _ = writeln!(s, "  {}", d.file);
        for f in &d.findings {
            let _ = writeln!(s, "      analysis: {f}");
        }
        if !d.reached {
            let _ = writeln!(
                s,
                "      database: not reached (the revert stopped at a later migration)"
            );
            continue;
        }
        let _ = writeln!(s, "      database: {}", describe_db(&d.database));
        match &d.up_again {
            Some(e) => {
                let _ = writeln!(s, "      up again: {}", describe_db(e));
            }
            None => {
                let _ = writeln!(s, "      up again: not run (the revert stopped here)");
            }
        }
    }
    s
}

/// The revert run's problems as GitHub annotations.
fn down_github_lines(source: &std::path::Path, d: &DownResult) -> Vec<String> {
    let path = source.join(&d.file).display().to_string();
    let mut out: Vec<String> = d
        .findings
        .iter()
        .map(|f| crate::report::github(f, &path))
        .collect();
    if let Some(e) = &d.database {
        out.push(format!(
            "::error file={},line={},title=migration verify::{}",
            crate::report::escape_github_property(&path),
            e.line.unwrap_or(1),
            crate::report::escape_github(&format!(
                "reverting: PostgreSQL {}",
                describe_db(&d.database)
            ))
        ));
    }
    if let Some(Some(e)) = &d.up_again {
        out.push(format!(
            "::error file={},line=1,title=migration verify::{}",
            crate::report::escape_github_property(&path),
            crate::report::escape_github(&format!(
                "after this down part, the up part fails again: {} ({}): the down part does not undo it",
                e.message, e.code
            ))
        ));
    }
    out
}

fn verdict_text(f: &FileResult) -> &'static str {
    match f.verdict {
        Verdict::Agree if f.database.is_some() => "agree (both refuse)",
        Verdict::Agree => "agree",
        Verdict::DatabaseOnly => "DATABASE ONLY (analysis gap)",
        Verdict::StaticOnlyDeferred => {
            "static only (function body; PostgreSQL checks it when the function runs)"
        }
        Verdict::FalseError => "FALSE ERROR (PostgreSQL applies it)",
    }
}

fn describe_db(e: &Option<DbError>) -> String {
    match e {
        None => "applies".to_owned(),
        Some(e) => format!(
            "refuses{}: {} ({})",
            e.line.map(|l| format!(" at line {l}")).unwrap_or_default(),
            e.message,
            e.code
        ),
    }
}

fn describe_static(f: &FileResult) -> String {
    let errors: Vec<&Finding> = f
        .findings
        .iter()
        .filter(|x| x.severity == Severity::Error)
        .collect();
    let warnings = f.findings.len() - errors.len();
    let mut s = match errors.first() {
        None => "no error".to_owned(),
        Some(e) => format!(
            "line {}: {}{}",
            e.line,
            e.message,
            if errors.len() > 1 {
                format!(" (+{} more)", errors.len() - 1)
            } else {
                String::new()
            }
        ),
    };
    if warnings > 0 {
        let _ = write!(s, "; {warnings} warning(s)");
    }
    s
}

/// The human report.
fn human(
    runs: &[Run],
    summary: &Summary,
    server: &str,
    base: &[String],
    verbose: bool,
    each: bool,
) -> String {
    let mut s = String::new();
    let full = &runs[0];
    let _ = writeln!(
        s,
        "PostgreSQL: {server}\n{} migrations applied{}:",
        full.files.len(),
        if base.is_empty() {
            String::new()
        } else {
            format!(" without {}", base.join(", "))
        }
    );
    for f in &full.files {
        if verbose || f.database.is_some() || !f.findings.is_empty() {
            let _ = writeln!(
                s,
                "  {:<48} {}\n      database: {}\n      analysis: {}",
                f.file,
                verdict_text(f),
                describe_db(&f.database),
                describe_static(f)
            );
        }
    }
    if each {
        let _ = writeln!(s, "\nevery single exclusion:");
        for r in &runs[1..] {
            let disagreements: Vec<&FileResult> = r
                .files
                .iter()
                .filter(|f| f.verdict != Verdict::Agree)
                .collect();
            let missed = r.first_failure_named == Some(false);
            if !verbose && disagreements.is_empty() && !missed {
                continue;
            }
            let _ = writeln!(
                s,
                "  without {}: {}",
                r.excluded.join(", "),
                match (&r.first_failure, r.first_failure_named) {
                    (Some(f), Some(true)) =>
                        format!("PostgreSQL first refuses {f}; the analysis names it"),
                    (Some(f), _) =>
                        format!("PostgreSQL first refuses {f}; the analysis does NOT name it"),
                    (None, _) => "PostgreSQL applies the rest".to_owned(),
                }
            );
            for f in disagreements {
                let _ = writeln!(
                    s,
                    "    {:<46} {}\n        database: {}\n        analysis: {}",
                    f.file,
                    verdict_text(f),
                    describe_db(&f.database),
                    describe_static(f)
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\n| exclusions | breaking | first failure named | migrations compared | agree | database only | static only (deferred) | false errors | time |\n\
         |---|---|---|---|---|---|---|---|---|\n\
         | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
        summary.exclusions,
        summary.breaking,
        if summary.breaking == 0 {
            "–".to_owned()
        } else {
            format!(
                "{} ({:.1} %)",
                summary.first_failure_named,
                100.0 * summary.first_failure_named as f64 / summary.breaking as f64
            )
        },
        summary.files,
        summary.agree,
        summary.database_only,
        summary.static_only_deferred,
        summary.false_errors,
        summary.seconds
    );
    s
}

/// A GitHub workflow-command annotation for a disagreement.
fn github_line(source: &std::path::Path, r: &Run, f: &FileResult) -> Option<String> {
    let (level, text) = match f.verdict {
        Verdict::Agree => return None,
        Verdict::DatabaseOnly => (
            "error",
            format!(
                "PostgreSQL {}, the analysis does not",
                describe_db(&f.database)
            ),
        ),
        Verdict::FalseError => (
            "error",
            format!(
                "the analysis reports an error PostgreSQL does not: {}",
                describe_static(f)
            ),
        ),
        Verdict::StaticOnlyDeferred => ("notice", format!("function body: {}", describe_static(f))),
    };
    let line = f
        .database
        .as_ref()
        .and_then(|d| d.line)
        .or_else(|| f.findings.first().map(|x| x.line))
        .unwrap_or(1);
    let context = if r.excluded.is_empty() {
        String::new()
    } else {
        format!(" (without {})", r.excluded.join(", "))
    };
    Some(format!(
        "::{level} file={},line={line},title=migrations verify::{}{context}",
        crate::report::escape_github_property(&source.join(&f.file).display().to_string()),
        crate::report::escape_github(&text)
    ))
}

/// The table the migration tool keeps its history in, as the tool creates it before the first
/// migration runs (some migrations use it). No rows are recorded in it.
fn bookkeeping(layout: LayoutKind) -> &'static str {
    match layout {
        LayoutKind::Sqlx => {
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, \
             checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)"
        }
        LayoutKind::Diesel => {
            "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        }
        LayoutKind::Goose => {
            "CREATE TABLE goose_db_version (id serial NOT NULL, version_id bigint NOT NULL, \
             is_applied boolean NOT NULL, tstamp timestamp NULL DEFAULT now(), PRIMARY KEY (id))"
        }
        LayoutKind::GolangMigrate => {
            "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
        }
        LayoutKind::Dbmate => "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)",
        LayoutKind::Flyway => {
            "CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL PRIMARY KEY, \
             version VARCHAR(50), description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, \
             script VARCHAR(1000) NOT NULL, checksum INT, installed_by VARCHAR(100) NOT NULL, \
             installed_on TIMESTAMP NOT NULL DEFAULT now(), execution_time INT NOT NULL, \
             success BOOLEAN NOT NULL)"
        }
    }
}

/// `layout` as given on the command line.
pub fn parse_layout(name: &str) -> Result<Option<LayoutKind>> {
    if name == "auto" {
        return Ok(None);
    }
    LayoutKind::from_name(name).map(Some).ok_or_else(|| {
        anyhow!(
            "--layout {name}: unknown layout; use auto, {}",
            LayoutKind::ALL
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Reads a folder with the given layout (or the one detected), saying which.
pub fn read(source: &std::path::Path, layout: &str) -> Result<(MigrationSet, String)> {
    let (kind, how) = match parse_layout(layout)? {
        Some(k) => (k, format!("read as {k} (--layout {k})")),
        None => {
            let d = migration_deps::detect(source).map_err(|e| anyhow!("{e}"))?;
            (d.kind, format!("read as {} ({})", d.kind, d.reason))
        }
    };
    let set = MigrationSet::read_as(source, kind).map_err(|e| anyhow!("{e}"))?;
    if set.migrations.is_empty() {
        bail!("{}: no {kind} migrations found", source.display());
    }
    let how = format!("{} migrations {how}", set.migrations.len());
    Ok((set, how))
}
