//! Walking a profile in order over a [`Catalog`], as PostgreSQL would apply it: what a
//! migration needs must exist, what it creates must not exist yet, what it drops must have no
//! dependents left (without `CASCADE`), and what a PL/pgSQL body uses must exist once the
//! profile has run.
//!
//! The canonical history is walked first ([`History`]): it says which migration creates each
//! object, so a finding can name the migration the profile lacks, and it keeps the analysis
//! quiet about what no migration creates (built-in or from outside the migrations).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;

use crate::analyze::{Analysis, analyze};
use crate::catalog::{Catalog, Id, Refusal};
use crate::extensions;
use crate::facts::{Action, CreateMode, Detail, Event, Object, RelKind};
use crate::layout::{Migration, MigrationSet, NO_TX_DIRECTIVE};

/// A migration with what the analysis learned about it.
#[derive(Debug, Clone)]
pub struct Analyzed {
    pub migration: Migration,
    pub analysis: Analysis,
    /// Set by [`analyze_lenient`] when the up part does not parse (the analysis is then empty).
    pub parse_error: Option<AnalyzeError>,
}

/// A migration the analysis could not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}: cannot parse: {message}")]
pub struct AnalyzeError {
    pub file: String,
    pub line: u32,
    pub message: String,
}

/// Analyses every migration of a set (on every core).
pub fn analyze_set(set: &MigrationSet) -> Result<Vec<Analyzed>, AnalyzeError> {
    parallel(&set.migrations, analyze_migration)
        .into_iter()
        .collect()
}

/// `f` over `items`, split across the machine's cores, in order.
pub fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len().max(1));
    if cores <= 1 || items.len() < 8 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(cores);
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("analysis thread"))
            .collect()
    })
}

/// Analyses one migration.
pub fn analyze_migration(m: &Migration) -> Result<Analyzed, AnalyzeError> {
    let analysis = analyze(&m.up.text).map_err(|e| AnalyzeError {
        file: m.up.file_name.clone(),
        line: e.line,
        message: e.message,
    })?;
    Ok(Analyzed {
        migration: m.clone(),
        analysis,
        parse_error: None,
    })
}

/// Analyses one migration; SQL that does not parse gives an empty analysis and
/// [`Analyzed::parse_error`], which [`check_profile`] reports as an error of that migration.
pub fn analyze_lenient(m: &Migration) -> Analyzed {
    analyze_migration(m).unwrap_or_else(|e| Analyzed {
        migration: m.clone(),
        analysis: Analysis::default(),
        parse_error: Some(e),
    })
}

/// How a profile member relates to the canonical migration of the same version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// The canonical file itself.
    Included,
    /// A profile-specific variant of the canonical version.
    Replaced,
    /// The canonical file, which PostgreSQL refused: what it needs is checked, what it creates
    /// does not exist afterwards (for comparing the analysis with a real run).
    NotApplied,
}

/// One migration of a profile, in version order.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub analyzed: &'a Analyzed,
    pub membership: Membership,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// PostgreSQL accepts it, but it is a hazard (a `BEGIN` inside a migration sqlx wraps in a
    /// transaction, a dependency only inside an exception-guarded block, …).
    Warning,
    /// PostgreSQL refuses the migration, or the function it creates fails when it runs.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A broken dependency or another problem found without a database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub file: String,
    pub line: u32,
    pub severity: Severity,
    pub message: String,
    /// For broken dependencies: the object and the canonical migration that creates it.
    pub dependency: Option<(Object, String)>,
    /// PostgreSQL only finds it when a function body runs, not when the migration applies.
    pub deferred: bool,
}

impl Finding {
    pub fn error(file: &str, line: u32, message: String) -> Self {
        Finding {
            file: file.to_owned(),
            line,
            severity: Severity::Error,
            message,
            dependency: None,
            deferred: false,
        }
    }

    pub fn warning(file: &str, line: u32, message: String) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(file, line, message)
        }
    }
}

/// `FILE:LINE: error: message`
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.severity, self.message
        )
    }
}

/// The object a reference really depends on: a use of something an extension provides
/// (the `vector` type, the `hnsw` method, …) depends on the extension.
fn dependency_key(obj: &Object) -> Object {
    match extensions::provider_of(obj) {
        Some(ext) => Object::Extension(ext.to_owned()),
        None => obj.clone(),
    }
}

/// One change of an object's existence in the canonical walk.
#[derive(Debug, Clone)]
struct Entry {
    /// The canonical migration.
    at: usize,
    /// Created (`true`) or gone.
    created: bool,
    /// For an object copied or renamed from another: that object, and where it was created.
    from: Option<(Object, usize)>,
}

/// The canonical history: for every object, which migrations created and removed it, in order.
#[derive(Debug, Default)]
pub struct History {
    entries: HashMap<Object, Vec<Entry>>,
    rel_kinds: HashMap<String, RelKind>,
}

/// One name that came (`true`) or went during a walk, and what a new one came from.
type Change = (Object, bool, Option<(Object, usize)>);

/// What happened to names during a walk (recorded into a [`History`]).
#[derive(Debug, Default)]
struct Changes {
    list: Vec<Change>,
}

impl History {
    /// Walks the canonical set in order.
    pub fn of(canonical: &[Analyzed]) -> Self {
        let mut h = History::default();
        let mut walk = Walk::default();
        for (i, a) in canonical.iter().enumerate() {
            let mut changes = Changes::default();
            walk.member(
                i,
                &a.analysis.facts.events,
                true,
                &mut Vec::new(),
                &mut changes,
            );
            for (object, created, from) in changes.list {
                h.entries.entry(object).or_default().push(Entry {
                    at: i,
                    created,
                    from,
                });
            }
            for e in &a.analysis.facts.events {
                if let (Action::Create { .. }, Object::Relation(name), Some(kind)) =
                    (&e.action, &e.object, e.rel_kind)
                {
                    h.rel_kinds.entry(name.clone()).or_insert(kind);
                }
            }
        }
        h
    }

    /// Whether any canonical migration creates `obj` (else it is built in or from outside).
    fn known(&self, obj: &Object) -> bool {
        self.entries
            .get(obj)
            .is_some_and(|es| es.iter().any(|e| e.created))
    }

    /// The canonical migration that provides `obj` to canonical migration `before`.
    fn provider(&self, obj: &Object, before: usize) -> Option<usize> {
        let e = self
            .entries
            .get(obj)?
            .iter()
            .rev()
            .find(|e| e.at < before)?;
        e.created.then_some(e.at)
    }

    /// The first canonical migration that creates `obj` at all.
    fn any_provider(&self, obj: &Object) -> Option<usize> {
        self.entries
            .get(obj)?
            .iter()
            .find(|e| e.created)
            .map(|e| e.at)
    }

    /// A canonical migration after `from` and before `to` that removes `obj`.
    fn removed_between(&self, obj: &Object, from: usize, to: usize) -> Option<usize> {
        self.entries
            .get(obj)?
            .iter()
            .find(|e| !e.created && e.at > from && e.at < to)
            .map(|e| e.at)
    }

    /// What a missing `obj` that migration `provider` creates really needs: when `provider` ran
    /// but the object is a copy or the new name of another one, the object it came from is the
    /// one missing, and so on back.
    fn origin(
        &self,
        obj: &Object,
        provider: usize,
        ran: impl Fn(usize) -> bool,
    ) -> (Object, usize) {
        let (mut obj, mut p) = (obj.clone(), provider);
        while ran(p) {
            let from = self.entries.get(&obj).and_then(|es| {
                es.iter()
                    .rev()
                    .find(|e| e.created && e.at == p)
                    .and_then(|e| e.from.clone())
            });
            match from {
                Some((o, q)) if q < p => (obj, p) = (o, q),
                _ => break,
            }
        }
        (obj, p)
    }

    /// `table x`, `index y`, `column t.c`, …
    pub fn describe(&self, obj: &Object) -> String {
        match obj {
            Object::Relation(name) => {
                let kind = self.rel_kinds.get(name).map_or("table", |k| k.noun());
                format!("{kind} {name}")
            }
            other => other.to_string(),
        }
    }
}

/// What a walk found wrong, for [`check_profile`] to put in words.
#[derive(Debug)]
enum Problem {
    /// A reference to an object that does not exist (`guarded`: inside an exception block).
    Missing {
        line: u32,
        object: Object,
        key: Object,
        guarded: bool,
        in_function: Option<String>,
    },
    /// A `CREATE` (or rename) of a name that exists.
    Exists {
        line: u32,
        object: Object,
        existing: Id,
    },
    /// A `DROP` PostgreSQL refuses.
    DropRefused {
        line: u32,
        target: Id,
        refusal: Refusal,
    },
    /// Something else PostgreSQL refuses, said in full; `about` names the object it concerns
    /// (its creating migration is added).
    Refused {
        line: u32,
        message: String,
        about: Option<Id>,
        /// What the canonical history creates that would have made it fine (an enum label).
        needs: Option<Object>,
    },
    /// A problem of a function's body, which a statement at `line` runs by calling it.
    InCall {
        line: u32,
        function: String,
        problem: Box<Problem>,
    },
}

/// A statement inside a PL/pgSQL body: what it does happens when the function runs.
#[derive(Debug, Clone)]
struct BodyEvent {
    member: usize,
    event: Event,
}

/// How deep calls of functions whose bodies run during a migration are followed.
const MAX_CALL_DEPTH: usize = 4;

/// The state of one walk.
#[derive(Debug, Default, Clone)]
struct Walk {
    cat: Catalog,
    /// Routine → what its PL/pgSQL body does.
    bodies: HashMap<Id, Vec<BodyEvent>>,
    /// Body events read since the last `CREATE FUNCTION` (they come before it).
    pending_bodies: Vec<BodyEvent>,
    /// Functions whose bodies are running (called from a migration), innermost last.
    calls: Vec<Id>,
    /// Everything the canonical history creates: a name it creates is never taken for an
    /// extension's object of the same last name.
    known: HashSet<Object>,
}

impl Walk {
    /// The object a reference needs: a use of an extension's object needs the extension, also
    /// when qualified with the schema the extension was installed in.
    fn resolve(&self, obj: &Object) -> Object {
        let key = dependency_key(obj);
        if matches!(key, Object::Extension(_))
            || self.cat.lookup(&key).is_some()
            || self.known.contains(&key)
        {
            return key;
        }
        let bare = match &key {
            Object::Type(n) => n.rsplit_once('.').map(|(_, b)| Object::Type(b.to_owned())),
            Object::Function(n) => n
                .rsplit_once('.')
                .map(|(_, b)| Object::Function(b.to_owned())),
            Object::OperatorClass(n) => n
                .rsplit_once('.')
                .map(|(_, b)| Object::OperatorClass(b.to_owned())),
            _ => None,
        };
        match bare.map(|b| dependency_key(&b)) {
            Some(ext @ Object::Extension(_)) => ext,
            _ => key,
        }
    }

    /// Why a foreign key to `table` (on `columns`; none: its primary key) is refused: the
    /// table has no primary key, or no unique key on exactly those columns. Only for tables
    /// the history created with their own column list, whose keys it writes down.
    fn missing_key(&self, table: &Object, columns: &[String]) -> Option<String> {
        let tid = self.cat.lookup(table)?;
        if !matches!(self.cat.get(tid).detail, Some(Detail::KeysKnown)) {
            return None;
        }
        let Object::Relation(name) = &self.cat.get(tid).key else {
            return None;
        };
        let keys: Vec<&crate::catalog::UniqueKey> = self
            .cat
            .live()
            .filter_map(|(_, o)| o.unique.as_ref())
            .filter(|u| u.table == tid)
            .collect();
        if columns.is_empty() {
            return (!keys.iter().any(|k| k.primary)).then(|| {
                format!(
                    "table {name} has no primary key here, and a foreign key that names no columns references it"
                )
            });
        }
        let mut wanted = columns
            .iter()
            .map(|c| {
                self.cat.lookup(&Object::Column {
                    table: name.clone(),
                    column: c.clone(),
                })
            })
            .collect::<Option<Vec<Id>>>()?;
        wanted.sort_unstable();
        wanted.dedup();
        let matches = keys.iter().any(|k| match &k.columns {
            None => true,
            Some(cols) => {
                let mut cols = cols.clone();
                cols.sort_unstable();
                cols.dedup();
                cols == wanted
            }
        });
        (!matches).then(|| {
            format!(
                "table {name} has no primary key, unique constraint or unique index on exactly ({}) here, which PostgreSQL needs for a foreign key to them",
                columns.join(", ")
            )
        })
    }

    fn record_created(&self, changes: &mut Changes, id: Id, from: Option<(Object, usize)>) {
        let key = self.cat.get(id).key.clone();
        if let Object::Routine { name, .. } = &key {
            let overloads = self
                .cat
                .live()
                .filter(|(_, o)| o.key.routine_name() == Some(name.as_str()))
                .count();
            if overloads == 1 {
                changes
                    .list
                    .push((Object::Function(name.clone()), true, None));
            }
        }
        changes.list.push((key, true, from));
    }

    fn record_removed(&self, changes: &mut Changes, key: Object) {
        if let Object::Routine { name, .. } = &key
            && self.cat.lookup(&Object::Function(name.clone())).is_none()
        {
            changes
                .list
                .push((Object::Function(name.clone()), false, None));
        }
        changes.list.push((key, false, None));
    }

    /// Applies one member's events. `applied = false`: PostgreSQL refused the migration, so
    /// nothing it did stays.
    fn member(
        &mut self,
        m: usize,
        events: &[Event],
        applied: bool,
        out: &mut Vec<Problem>,
        changes: &mut Changes,
    ) {
        let before = (!applied).then(|| self.clone());
        let mut i = 0;
        while i < events.len() {
            let stmt = events[i].stmt;
            let j = i + events[i..].iter().take_while(|e| e.stmt == stmt).count();
            self.statement(m, &events[i..j], out, changes, false);
            i = j;
        }
        if let Some(before) = before {
            *self = before;
            changes.list.clear();
        }
    }

    fn statement(
        &mut self,
        m: usize,
        events: &[Event],
        out: &mut Vec<Problem>,
        changes: &mut Changes,
        running: bool,
    ) {
        let mut deps: Vec<(Object, Id)> = Vec::new();
        let mut routines: Vec<Id> = Vec::new();
        for e in events {
            // A function body's statements happen when it runs (`running`: it runs now).
            if e.in_function.is_some() && !running {
                self.pending_bodies.push(BodyEvent {
                    member: m,
                    event: e.clone(),
                });
                continue;
            }
            match &e.action {
                Action::Reference if matches!(e.object, Object::EnumLabel { .. }) => {
                    if !e.conditional {
                        self.check_label(e, out);
                    }
                }
                Action::Reference => {
                    let key = self.resolve(&e.object);
                    if e.immutable
                        && let Some(id) = self.cat.lookup(&key)
                        && let Some(Detail::Routine {
                            volatility,
                            sql: false,
                            ..
                        }) = &self.cat.get(id).detail
                        && *volatility != 'i'
                    {
                        out.push(Problem::Refused {
                            line: e.line,
                            message: format!(
                                "{} is not IMMUTABLE, and PostgreSQL requires functions in an index expression or predicate (or a generated column) to be",
                                self.cat.get(id).key
                            ),
                            about: Some(id),
                            needs: None,
                        });
                    }
                    // A reference that needs a table (`ALTER TABLE … ADD COLUMN`, a foreign
                    // key's target) to a view, sequence or index of that name.
                    if e.rel_kind == Some(RelKind::Table)
                        && let Some(id) = self.cat.lookup(&key)
                        && let Some(kind) = self.cat.get(id).kind
                        && kind != RelKind::Table
                    {
                        let noun = kind.noun();
                        let article = if noun.starts_with('i') { "an" } else { "a" };
                        out.push(Problem::Refused {
                            line: e.line,
                            message: format!(
                                "{} is {article} {noun} here, not a table, and PostgreSQL refuses this on it",
                                self.cat.get(id).key
                            ),
                            about: Some(id),
                            needs: None,
                        });
                    }
                    if let Some(Detail::ForeignKey(columns)) = &e.detail
                        && let Some(message) = self.missing_key(&key, columns)
                    {
                        out.push(Problem::Refused {
                            line: e.line,
                            message,
                            about: self.cat.lookup(&key),
                            needs: None,
                        });
                    }
                    match self.cat.lookup(&key) {
                        Some(id) => {
                            if let Some(by) = &e.by {
                                deps.push((by.clone(), id));
                            } else if e.call && !e.conditional {
                                self.call(m, id, e.line, out, changes);
                            }
                        }
                        None if matches!(&key, Object::Column { table, .. }
                            if self.cat.lookup(&Object::Column {
                                table: table.clone(),
                                column: crate::facts::UNKNOWN_COLUMNS.to_owned(),
                            }).is_some()) => {}
                        None if !e.conditional || e.guarded => {
                            // A column of a missing table: PostgreSQL reports the table.
                            let (object, key) = match &key {
                                Object::Column { table, .. }
                                    if self
                                        .cat
                                        .lookup(&Object::Relation(table.clone()))
                                        .is_none()
                                        && self
                                            .known
                                            .contains(&Object::Relation(table.clone())) =>
                                {
                                    let t = Object::Relation(table.clone());
                                    (t.clone(), t)
                                }
                                _ => (e.object.clone(), key),
                            };
                            out.push(Problem::Missing {
                                line: e.line,
                                object,
                                key,
                                guarded: e.guarded,
                                in_function: None,
                            })
                        }
                        None => {}
                    }
                }
                Action::Create { mode } => match self.cat.lookup(&e.object) {
                    Some(id) => match mode {
                        CreateMode::Plain if !e.conditional && !e.guarded => {
                            out.push(Problem::Exists {
                                line: e.line,
                                object: e.object.clone(),
                                existing: id,
                            })
                        }
                        CreateMode::OrReplace if matches!(e.object, Object::Column { .. }) => {
                            // A column's new type: only its type dependency changes, and not
                            // while a view uses the column.
                            let view = self.cat.live_dependents(id).find(|&d| {
                                matches!(
                                    self.cat.get(d).kind,
                                    Some(RelKind::View | RelKind::MaterializedView)
                                )
                            });
                            if let Some(v) = view {
                                out.push(Problem::Refused {
                                    line: e.line,
                                    message: format!(
                                        "cannot alter the type of {}: {} uses it (PostgreSQL refuses; drop and recreate the view around the change)",
                                        e.object,
                                        self.cat.get(v).key
                                    ),
                                    about: Some(v),
                                    needs: None,
                                });
                                continue;
                            }
                            if let (
                                true,
                                Some(Detail::ColumnType(old)),
                                Some(Detail::ColumnType(new)),
                            ) = (
                                self.cat.get(id).has_default,
                                &self.cat.get(id).detail,
                                &e.detail,
                            ) && !assignment_cast(old, new)
                            {
                                out.push(Problem::Refused {
                                    line: e.line,
                                    message: format!(
                                        "the default of {} ({old}) cannot be cast automatically to type {new}: PostgreSQL refuses the retype while the column has it (drop the default first)",
                                        e.object
                                    ),
                                    about: Some(id),
                                    needs: None,
                                });
                                continue;
                            }
                            self.cat.clear_deps_where(id, |k| {
                                matches!(k, Object::Type(_) | Object::Extension(_))
                            });
                            if e.detail.is_some() {
                                self.cat.objs[id].detail = e.detail.clone();
                            }
                        }
                        CreateMode::OrReplace => {
                            if let (
                                Some(Detail::Routine { returns: old, .. }),
                                Some(Detail::Routine { returns: new, .. }),
                            ) = (&self.cat.get(id).detail, &e.detail)
                                && old != new
                            {
                                out.push(Problem::Refused {
                                    line: e.line,
                                    message: format!(
                                        "cannot change the return type of existing {} from {old} to {new}: PostgreSQL refuses CREATE OR REPLACE for that; DROP it first",
                                        self.cat.get(id).key
                                    ),
                                    about: Some(id),
                                    needs: None,
                                });
                                continue;
                            }
                            if e.detail.is_some() {
                                self.cat.objs[id].detail = e.detail.clone();
                            }
                            self.cat.clear_deps(id);
                            if matches!(e.object, Object::Routine { .. }) {
                                routines.push(id);
                            }
                        }
                        CreateMode::IfNotExists if e.owner.is_none() => break,
                        _ => {}
                    },
                    None => {
                        let owner = e.owner.as_ref().and_then(|o| self.cat.lookup(o));
                        let id = self.cat.create(e.object.clone(), m, owner);
                        self.cat.objs[id].detail = e.detail.clone();
                        if let Some(Detail::Enum(labels)) = &e.detail {
                            for l in labels {
                                let of = Box::new(e.object.clone());
                                changes.list.push((
                                    Object::EnumLabel {
                                        of,
                                        label: l.clone(),
                                    },
                                    true,
                                    None,
                                ));
                            }
                        }
                        self.cat.objs[id].kind = e.rel_kind;
                        if let Some(Detail::UniqueKey { primary, columns }) = &e.detail
                            && let Some(table) = owner
                            && let Object::Relation(name) = &self.cat.get(table).key
                        {
                            let name = name.clone();
                            let columns = columns.as_ref().and_then(|cs| {
                                cs.iter()
                                    .map(|c| {
                                        self.cat.lookup(&Object::Column {
                                            table: name.clone(),
                                            column: c.clone(),
                                        })
                                    })
                                    .collect::<Option<Vec<Id>>>()
                            });
                            self.cat.objs[id].unique = Some(crate::catalog::UniqueKey {
                                table,
                                primary: *primary,
                                columns,
                            });
                        }
                        if matches!(e.object, Object::Routine { .. }) {
                            routines.push(id);
                        }
                        self.record_created(changes, id, None);
                    }
                },
                Action::Drop { cascade } => {
                    let key = self.resolve(&e.object);
                    if let Some(id) = self.cat.lookup(&key) {
                        match self.cat.drop(id, *cascade) {
                            Ok(gone) => {
                                for g in gone {
                                    let key = self.cat.get(g).key.clone();
                                    self.bodies.remove(&g);
                                    self.record_removed(changes, key);
                                }
                            }
                            Err(_) if e.guarded => {}
                            Err(refusal) => out.push(Problem::DropRefused {
                                line: e.line,
                                target: id,
                                refusal,
                            }),
                        }
                    }
                }
                Action::Rename { to } => {
                    let Some(id) = self.cat.lookup(&e.object) else {
                        continue;
                    };
                    if let Some(other) = self.cat.lookup(to)
                        && other != id
                    {
                        out.push(Problem::Exists {
                            line: e.line,
                            object: to.clone(),
                            existing: other,
                        });
                        continue;
                    }
                    self.rename(m, id, to.clone(), changes);
                }
                Action::CopyColumns { from } => {
                    let (Some(to), Some(src)) = (
                        self.cat.lookup(&e.object),
                        self.cat.lookup(&Object::Relation(from.clone())),
                    ) else {
                        continue;
                    };
                    let Object::Relation(to_name) = self.cat.get(to).key.clone() else {
                        continue;
                    };
                    let view = matches!(
                        self.cat.get(to).kind,
                        Some(RelKind::View | RelKind::MaterializedView)
                    );
                    for c in self.cat.columns_of(src) {
                        let orig = self.cat.get(c).key.clone();
                        let copy = orig.with_owner(&to_name);
                        // `SELECT *`: the view uses every column it took.
                        if view {
                            self.cat.add_dep(to, c);
                        }
                        if self.cat.lookup(&copy).is_none() {
                            let made_by = self.cat.get(c).created_by;
                            let id = self.cat.create(copy, m, Some(to));
                            self.record_created(changes, id, Some((orig, made_by)));
                        }
                    }
                }
                Action::EnumLabel { old, new } => {
                    if let Some(id) = self.cat.lookup(&e.object)
                        && let Some(Detail::Enum(labels)) = &mut self.cat.objs[id].detail
                    {
                        let of = Box::new(e.object.clone());
                        changes.list.push((
                            Object::EnumLabel {
                                of,
                                label: new.clone(),
                            },
                            true,
                            None,
                        ));
                        match old
                            .as_ref()
                            .and_then(|o| labels.iter().position(|l| l == o))
                        {
                            Some(i) => labels[i] = new.clone(),
                            None if old.is_none() && !labels.contains(new) => {
                                labels.push(new.clone())
                            }
                            None => {}
                        }
                    }
                }
                Action::Default { set } => {
                    if let Some(id) = self.cat.lookup(&self.resolve(&e.object)) {
                        self.cat.objs[id].has_default = *set;
                    }
                }
                Action::Volatility(v) => {
                    if let Some(id) = self.cat.lookup(&e.object)
                        && let Some(Detail::Routine { volatility, .. }) =
                            &mut self.cat.objs[id].detail
                    {
                        *volatility = *v;
                    }
                }
                Action::Attach { owner } => {
                    if let Some(id) = self.cat.lookup(&e.object) {
                        let owner = owner.as_ref().and_then(|o| self.cat.lookup(o));
                        self.cat.set_owner(id, owner);
                    }
                }
            }
        }
        for (by, on) in deps {
            if let Some(b) = self.cat.lookup(&by) {
                self.cat.add_dep(b, on);
            }
        }
        for id in routines {
            let Some(name) = self.cat.get(id).key.routine_name().map(str::to_owned) else {
                continue;
            };
            let (refs, rest): (Vec<BodyEvent>, Vec<BodyEvent>) =
                std::mem::take(&mut self.pending_bodies)
                    .into_iter()
                    .partition(|r| r.event.in_function.as_deref() == Some(name.as_str()));
            self.pending_bodies = rest;
            self.bodies.insert(id, refs);
        }
    }

    /// A string used as a label of an enum (directly, or as the value of an enum column).
    fn check_label(&self, e: &Event, out: &mut Vec<Problem>) {
        let Object::EnumLabel { of, label } = &e.object else {
            return;
        };
        // A column's type is the type it depends on (renames of the type included).
        let t = match of.as_ref() {
            Object::Column { .. } => {
                let Some(c) = self.cat.lookup(of) else {
                    return;
                };
                match self
                    .cat
                    .get(c)
                    .deps
                    .iter()
                    .copied()
                    .find(|&d| matches!(self.cat.get(d).detail, Some(Detail::Enum(_))))
                {
                    Some(t) => t,
                    None => return,
                }
            }
            other => match self.cat.lookup(other) {
                Some(t) => t,
                None => return,
            },
        };
        if let Some(Detail::Enum(labels)) = &self.cat.get(t).detail
            && !labels.contains(label)
        {
            out.push(Problem::Refused {
                line: e.line,
                message: format!(
                    "'{label}' is not a label of enum {} (it has {}); PostgreSQL refuses the value",
                    self.cat.get(t).key,
                    labels
                        .iter()
                        .map(|l| format!("'{l}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                about: Some(t),
                needs: Some(Object::EnumLabel {
                    of: Box::new(self.cat.get(t).key.clone()),
                    label: label.clone(),
                }),
            });
        }
    }

    /// A statement calls function `id`: its body runs now (statements of a PL/pgSQL body that
    /// a migration calls — `SELECT f()`, `PERFORM f()` in a `DO` block — happen then).
    fn call(&mut self, m: usize, id: Id, line: u32, out: &mut Vec<Problem>, changes: &mut Changes) {
        if self.calls.len() >= MAX_CALL_DEPTH || self.calls.contains(&id) {
            return;
        }
        let Some(body) = self.bodies.get(&id).cloned() else {
            return;
        };
        let function = self
            .cat
            .get(id)
            .key
            .routine_name()
            .unwrap_or_default()
            .to_owned();
        self.calls.push(id);
        let mut inner = Vec::new();
        let events: Vec<Event> = body.into_iter().map(|b| b.event).collect();
        let mut i = 0;
        while i < events.len() {
            let stmt = events[i].stmt;
            let j = i + events[i..].iter().take_while(|e| e.stmt == stmt).count();
            self.statement(m, &events[i..j], &mut inner, changes, true);
            i = j;
        }
        self.calls.pop();
        out.extend(inner.into_iter().map(|p| Problem::InCall {
            line,
            function: function.clone(),
            problem: Box::new(p),
        }));
    }

    /// Renames `id` (and, for a constraint, the index behind it; for such an index, its
    /// constraint).
    fn rename(&mut self, _m: usize, id: Id, to: Object, changes: &mut Changes) {
        let old = self.cat.get(id).key.clone();
        let mut renamed = self.cat.rename(id, to.clone());
        // A constraint and the index that implements it share their name.
        match (&old, &to) {
            (Object::Constraint { table, name }, Object::Constraint { name: new, .. }) => {
                let schema_of = |n: &str| n.rsplit_once('.').map(|(s, _)| format!("{s}."));
                let prefix = schema_of(table).unwrap_or_default();
                let idx = Object::Relation(format!("{prefix}{name}"));
                if let Some(i) = self.cat.lookup(&idx)
                    && self.cat.get(i).owner == Some(id)
                {
                    renamed.extend(
                        self.cat
                            .rename(i, Object::Relation(format!("{prefix}{new}"))),
                    );
                }
            }
            (Object::Relation(_), Object::Relation(new)) => {
                if let Some(owner) = self.cat.get(id).owner
                    && let Object::Constraint { table, .. } = self.cat.get(owner).key.clone()
                {
                    let to = Object::Constraint {
                        table,
                        name: crate::analyze::names::last(new).to_owned(),
                    };
                    renamed.extend(self.cat.rename(owner, to));
                }
            }
            _ => {}
        }
        for (from, to) in renamed {
            let made_by = self
                .cat
                .lookup(&to)
                .map(|i| self.cat.get(i).created_by)
                .unwrap_or(0);
            changes.list.push((from.clone(), false, None));
            changes.list.push((to, true, Some((from, made_by))));
        }
    }

    /// What the PL/pgSQL bodies of the routines that exist at the end use and is missing.
    fn finish(&self, by_member: &mut HashMap<usize, Vec<Problem>>) {
        for (&id, body) in &self.bodies {
            if !self.cat.get(id).alive {
                continue;
            }
            let mut seen = HashSet::new();
            for b in body {
                let e = &b.event;
                if e.action != Action::Reference || e.conditional {
                    continue;
                }
                let key = self.resolve(&e.object);
                if self.cat.lookup(&key).is_none() && seen.insert(key.clone()) {
                    by_member
                        .entry(b.member)
                        .or_default()
                        .push(Problem::Missing {
                            line: e.line,
                            object: e.object.clone(),
                            key,
                            guarded: false,
                            in_function: e.in_function.clone(),
                        });
                }
            }
        }
    }
}

/// Checks a profile as PostgreSQL would apply it.
///
/// `canonical` is the full set in order; `members` the profile in order. A missing object is
/// reported only when some canonical migration creates it (anything else is built in or comes
/// from outside the migrations), naming that migration.
pub fn check_profile(
    canonical: &[Analyzed],
    members: &[Member<'_>],
    forbidden: &[String],
) -> Vec<Finding> {
    let history = History::of(canonical);
    let position: HashMap<&crate::layout::Version, usize> = canonical
        .iter()
        .enumerate()
        .map(|(i, a)| (&a.migration.version, i))
        .collect();
    let at: Vec<usize> = members
        .iter()
        .map(|m| {
            position
                .get(&m.analyzed.migration.version)
                .copied()
                .unwrap_or(0)
        })
        .collect();
    let by_version: BTreeMap<usize, &Member<'_>> =
        members.iter().zip(&at).map(|(m, &i)| (i, m)).collect();
    let ran = |p: usize| {
        by_version
            .get(&p)
            .is_some_and(|m| m.membership == Membership::Included)
    };

    let mut walk = Walk {
        known: history.entries.keys().cloned().collect(),
        ..Walk::default()
    };
    let mut problems: Vec<Vec<Problem>> = Vec::new();
    for (idx, member) in members.iter().enumerate() {
        let mut out = Vec::new();
        walk.member(
            idx,
            &member.analyzed.analysis.facts.events,
            member.membership != Membership::NotApplied,
            &mut out,
            &mut Changes::default(),
        );
        problems.push(out);
    }
    let mut late: HashMap<usize, Vec<Problem>> = HashMap::new();
    walk.finish(&mut late);
    for (m, ps) in late {
        problems[m].extend(ps);
    }

    let mut findings = Vec::new();
    for (idx, member) in members.iter().enumerate() {
        let m = &member.analyzed.migration;
        let file = m.up.file_name.as_str();
        if let Some(e) = &member.analyzed.parse_error {
            findings.push(Finding::error(
                &e.file,
                e.line,
                format!("cannot parse: {}", e.message),
            ));
        }
        let here = at[idx];
        let mut reported: HashSet<Object> = HashSet::new();
        let mut missing_relations: HashSet<String> = HashSet::new();
        let mut found: Vec<(Option<String>, Finding)> = Vec::new();
        for p in std::mem::take(&mut problems[idx]) {
            // A function body that a statement runs: its problem is that statement's.
            let mut p = p;
            let mut call: Option<(u32, String)> = None;
            while let Problem::InCall {
                line,
                function,
                problem,
            } = p
            {
                call.get_or_insert((line, function));
                p = *problem;
            }
            if call.is_some()
                && let Problem::Missing { in_function, .. } = &mut p
            {
                *in_function = None;
            }
            let before = found.len();
            match p {
                Problem::InCall { .. } => unreachable!("unwrapped above"),
                Problem::Refused {
                    line,
                    message,
                    about,
                    needs,
                } => {
                    let mut message = message;
                    if let Some(n) = &needs
                        && let Some(p) = history
                            .provider(n, here)
                            .or_else(|| history.any_provider(n))
                    {
                        let f = &canonical[p].migration.up.file_name;
                        let _ = match by_version.get(&p) {
                            None => {
                                write!(message, "; {f} adds it, and this profile leaves it out")
                            }
                            _ if p > here => write!(message, "; {f} adds it, only later"),
                            Some(_) => write!(message, "; {f} adds it"),
                        };
                    }
                    if let Some(id) = about {
                        let o = walk.cat.get(id);
                        let _ = write!(
                            message,
                            " [{} is created by {}",
                            history.describe(&o.key),
                            members[o.created_by].analyzed.migration.up.file_name
                        );
                        let made_at = at.get(o.created_by).copied().unwrap_or(0);
                        let changed = history
                            .entries
                            .get(&o.key)
                            .and_then(|es| es.iter().find(|e| e.at > made_at && e.at < here))
                            .map(|e| e.at);
                        let _ = match changed.filter(|c| !by_version.contains_key(c)) {
                            Some(c) => write!(
                                message,
                                "; {}, which this profile leaves out, changes it]",
                                canonical[c].migration.up.file_name
                            ),
                            None => write!(message, "]"),
                        };
                    }
                    found.push((None, Finding::error(file, line, message)));
                }
                Problem::Missing {
                    line,
                    object,
                    key,
                    guarded,
                    in_function,
                } => {
                    let provider = history
                        .provider(&key, here)
                        .or_else(|| history.any_provider(&key).filter(|&p| p > here));
                    let Some(p) = provider.or_else(|| {
                        (in_function.is_some() && history.known(&key))
                            .then(|| history.any_provider(&key))
                            .flatten()
                    }) else {
                        continue;
                    };
                    if !reported.insert(key.clone()) {
                        continue;
                    }
                    if let Object::Relation(name) = &key {
                        missing_relations.insert(name.clone());
                    }
                    let (needed, p) = history.origin(&key, p, ran);
                    let mut f = missing(
                        &history,
                        canonical,
                        &by_version,
                        here,
                        file,
                        line,
                        &object,
                        &needed,
                        p,
                        in_function.as_deref(),
                    );
                    if guarded {
                        f.severity = Severity::Warning;
                        f.message.push_str(
                            " (inside a PL/pgSQL block whose exception handler catches the error)",
                        );
                    }
                    found.push((object.owner().map(str::to_owned), f));
                }
                Problem::Exists {
                    line,
                    object,
                    existing,
                } => {
                    let made = walk.cat.get(existing).created_by;
                    let made_at = at.get(made).copied().unwrap_or(0);
                    let by = &members[made].analyzed.migration.up.file_name;
                    let mut message = format!(
                        "{} already exists (created by {by}); PostgreSQL refuses to create it again",
                        history.describe(&object)
                    );
                    if let Some(r) = history.removed_between(&object, made_at, here) {
                        let gone = &canonical[r].migration.up.file_name;
                        message.push_str(&match by_version.get(&r) {
                            None => format!(
                                ": {gone}, which this profile leaves out, drops or renames it first"
                            ),
                            Some(_) => format!(
                                ": {gone} drops or renames it first, but not in this profile"
                            ),
                        });
                    }
                    found.push((None, Finding::error(file, line, message)));
                }
                Problem::DropRefused {
                    line,
                    target,
                    refusal,
                } => {
                    let what = history.describe(&walk.cat.get(target).key);
                    let message = match refusal {
                        Refusal::Required { by } => format!(
                            "cannot drop {what}: {} requires it (PostgreSQL refuses; drop the constraint instead)",
                            walk.cat.get(by).key
                        ),
                        Refusal::Dependents { blocker, on } => {
                            let b = walk.cat.get(blocker);
                            let mut message = format!(
                                "cannot drop {what}: {} (created by {}) depends on {}; PostgreSQL refuses a DROP without CASCADE while it exists",
                                history.describe(&b.key),
                                members[b.created_by].analyzed.migration.up.file_name,
                                if on == target {
                                    "it".to_owned()
                                } else {
                                    history.describe(&walk.cat.get(on).key)
                                }
                            );
                            let made_at = at.get(b.created_by).copied().unwrap_or(0);
                            if let Some(r) = history.removed_between(&b.key, made_at, here)
                                && !by_version.contains_key(&r)
                            {
                                message.push_str(&format!(
                                    " ({}, which this profile leaves out, drops or changes it first)",
                                    canonical[r].migration.up.file_name
                                ));
                            }
                            message
                        }
                    };
                    found.push((None, Finding::error(file, line, message)));
                }
            }
            if let Some((line, function)) = call {
                for (_, f) in &mut found[before..] {
                    f.line = line;
                    f.message.push_str(&format!(
                        " (in the body of function {function}, which this statement runs)"
                    ));
                }
            }
        }
        // A missing table is reported once, not again for each of its columns.
        findings.extend(
            found
                .into_iter()
                .filter(|(owner, _)| {
                    !owner
                        .as_ref()
                        .is_some_and(|o| missing_relations.contains(o))
                })
                .map(|(_, f)| f),
        );
        for u in &member.analyzed.analysis.facts.extension_uses {
            if forbidden.contains(&u.extension) {
                findings.push(Finding::error(
                    file,
                    u.line,
                    format!(
                        "{} needs extension {}, which this profile forbids",
                        u.what, u.extension
                    ),
                ));
            }
        }
    }
    findings
}

#[allow(clippy::too_many_arguments)]
fn missing(
    history: &History,
    canonical: &[Analyzed],
    by_version: &BTreeMap<usize, &Member<'_>>,
    here: usize,
    file: &str,
    line: u32,
    object: &Object,
    key: &Object,
    provider: usize,
    in_function: Option<&str>,
) -> Finding {
    let p = &canonical[provider].migration;
    let what = if object == key {
        history.describe(object)
    } else {
        format!(
            "{} (from {})",
            history.describe(object),
            history.describe(key)
        )
    };
    let whose = match by_version.get(&provider) {
        _ if provider > here && in_function.is_none() => {
            format!("is created only later, by {}", p.up.file_name)
        }
        None => format!("is created by excluded {}", p.up.file_name),
        Some(member) if member.membership == Membership::NotApplied => {
            format!("is created by {}, which did not apply", p.up.file_name)
        }
        Some(member) if member.membership == Membership::Replaced => format!(
            "is created by {}, but this profile's replacement {} does not create it",
            p.up.file_name, member.analyzed.migration.up.file_name
        ),
        Some(_) => format!(
            "is created by {}, but a migration of this profile drops or renames it",
            p.up.file_name
        ),
    };
    let message = match in_function {
        Some(f) => format!(
            "{what} {whose} (used in the body of function {f}; PostgreSQL accepts the migration, the function fails when it runs)"
        ),
        None => format!("{what} {whose}"),
    };
    Finding {
        dependency: Some((key.clone(), p.up.file_name.clone())),
        deferred: in_function.is_some(),
        ..Finding::error(file, line, message)
    }
}

/// Problems with the transaction the tool runs a migration in (or does not).
pub fn transaction_findings(a: &Analyzed) -> Vec<Finding> {
    let m = &a.migration;
    let up = &m.up;
    let mut out = Vec::new();
    let finding = |line: u32, message: String| Finding::error(&up.file_name, line, message);
    let warning = |line: u32, message: String| Finding::warning(&up.file_name, line, message);
    let source = up.source.as_str();
    if source.starts_with('\u{feff}') {
        let stripped = source.trim_start_matches('\u{feff}');
        if !stripped.trim_start().starts_with(NO_TX_DIRECTIVE) {
            out.push(finding(
                1,
                "starts with a byte-order mark, which PostgreSQL rejects as a syntax error; save the file as UTF-8 without BOM"
                    .to_owned(),
            ));
        }
    }
    // sqlx: the directive only counts at the very first byte.
    if up.statements.is_none() && !up.no_transaction {
        let stripped = source.trim_start_matches('\u{feff}');
        let lead = stripped.len() - stripped.trim_start().len();
        if stripped.trim_start().starts_with(NO_TX_DIRECTIVE) {
            let what = if source.starts_with('\u{feff}') {
                "a byte-order mark"
            } else {
                "blank space"
            };
            let line = up.line_of(source.len() - stripped.len() + lead);
            out.push(warning(
                line,
                format!(
                    "`{NO_TX_DIRECTIVE}` is preceded by {what}, so sqlx ignores it and runs this migration in a transaction; \
                     move the directive to the first byte of the file"
                ),
            ));
        }
    }
    if up.no_transaction {
        // One query with several statements is one implicit transaction.
        if up.statements.is_none() && a.analysis.statement_count > 1 {
            for s in &a.analysis.tx_only {
                out.push(finding(
                    s.line,
                    format!(
                        "{} must be the only statement of a migration run outside a transaction: PostgreSQL runs the \
                         {} statements of one query as a single implicit transaction; split it into its own file",
                        s.what, a.analysis.statement_count
                    ),
                ));
            }
        }
    } else {
        for s in &a.analysis.tx_only {
            out.push(finding(
                s.line,
                format!(
                    "{} cannot run inside the transaction this migration runs in; put it in a migration of its own \
                     that runs outside a transaction (sqlx: start the file with `{NO_TX_DIRECTIVE}`)",
                    s.what
                ),
            ));
        }
        for s in &a.analysis.tx_control {
            out.push(warning(
                s.line,
                format!(
                    "{} inside a migration that runs in a transaction: PostgreSQL accepts it, but it ends or nests the \
                     transaction the tool manages (the rest of the file then runs outside it); remove it",
                    s.what
                ),
            ));
        }
    }
    out
}

/// The down part of a migration, checked as the tool would run it when reverting: it must
/// parse, and what cannot run in the tool's transaction is refused as in an up part. Down
/// parts are never part of the forward walk.
pub fn down_findings(m: &Migration) -> Vec<Finding> {
    let Some(down) = &m.down else {
        return Vec::new();
    };
    if down.text.trim().is_empty() {
        return Vec::new();
    }
    match analyze(&down.text) {
        Err(e) => vec![Finding::error(
            &down.file_name,
            e.line,
            format!("the down part does not parse: {}", e.message),
        )],
        Ok(analysis) => {
            let reverted = Migration {
                up: down.clone(),
                down: None,
                ..m.clone()
            };
            transaction_findings(&Analyzed {
                migration: reverted,
                analysis,
                parse_error: None,
            })
        }
    }
}

/// Whether PostgreSQL converts a value of type `from` to `to` where an assignment needs it
/// (a column's default when the column is retyped). Only built-in cases known to fail are
/// `false`: from a string type to a built-in non-string type (I/O conversion from strings is
/// explicit only), and between `bool` and the numeric types. Anything else (domains,
/// extension types with their own casts) is taken to convert.
fn assignment_cast(from: &str, to: &str) -> bool {
    const STRINGS: &[&str] = &["text", "varchar", "bpchar", "name", "char"];
    const NUMBERS: &[&str] = &["int2", "int4", "int8", "numeric", "float4", "float8"];
    const OTHERS: &[&str] = &[
        "bool",
        "bytea",
        "uuid",
        "json",
        "jsonb",
        "date",
        "time",
        "timetz",
        "timestamp",
        "timestamptz",
        "interval",
        "inet",
        "cidr",
        "macaddr",
        "tsvector",
        "xml",
        "money",
    ];
    if from == to {
        return true;
    }
    let builtin = |t: &str| NUMBERS.contains(&t) || OTHERS.contains(&t);
    if STRINGS.contains(&from) {
        return !builtin(to);
    }
    !((from == "bool" && NUMBERS.contains(&to)) || (NUMBERS.contains(&from) && to == "bool"))
}

/// Hazards PostgreSQL accepts: dynamic SQL that runs while the migration applies, whose
/// dependencies the analysis cannot read.
pub fn hazard_findings(a: &Analyzed) -> Vec<Finding> {
    a.analysis
        .dynamic
        .iter()
        .map(|&line| {
            Finding::warning(
                &a.migration.up.file_name,
                line,
                "dynamic SQL (EXECUTE of a string built at run time) runs while this migration applies; \
                 what it uses is not checked"
                    .to_owned(),
            )
        })
        .collect()
}

/// Syntax the PostgreSQL server of major version `server` does not accept yet.
pub fn version_findings(a: &Analyzed, server: u32) -> Vec<Finding> {
    a.analysis
        .requires
        .iter()
        .filter(|(_, major, _)| *major > server)
        .map(|(line, major, what)| {
            Finding::error(
                &a.migration.up.file_name,
                *line,
                format!(
                    "{what} needs PostgreSQL {major} or newer; the target is PostgreSQL {server}"
                ),
            )
        })
        .collect()
}

/// A dependency between two canonical migrations: `to` uses `objects` that `from` creates.
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub objects: Vec<Object>,
}

/// Every dependency between the migrations of a set (walked in order, nothing excluded).
pub fn dependency_edges(canonical: &[Analyzed]) -> Vec<Edge> {
    let history = History::of(canonical);
    let mut edges: BTreeMap<(usize, usize), Vec<Object>> = BTreeMap::new();
    let walk = Walk::default();
    for (idx, a) in canonical.iter().enumerate() {
        let mut own: HashSet<Object> = HashSet::new();
        for e in &a.analysis.facts.events {
            let key = walk.resolve(&e.object);
            if e.action != Action::Reference {
                own.insert(key);
                continue;
            }
            if let Some(p) = history.provider(&key, idx)
                && p != idx
                && !own.contains(&key)
            {
                let objs = edges.entry((p, idx)).or_default();
                if !objs.contains(&key) {
                    objs.push(key);
                }
            }
        }
    }
    edges
        .into_iter()
        .map(|((from, to), objects)| Edge { from, to, objects })
        .collect()
}
