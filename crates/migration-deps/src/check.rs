//! Walking a profile in order: every object a migration needs must have been created by an
//! earlier migration of the same profile.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::analyze::{Analysis, analyze};
use crate::extensions;
use crate::facts::{Action, Event, Object, RelKind};
use crate::layout::{Migration, MigrationSet, NO_TX_DIRECTIVE, Version};

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

/// Analyses every migration of a set.
pub fn analyze_set(set: &MigrationSet) -> Result<Vec<Analyzed>, AnalyzeError> {
    set.migrations.iter().map(analyze_migration).collect()
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

/// The canonical history: for every object, which migration created (or dropped) it, in order.
#[derive(Debug, Default)]
pub struct History {
    entries: HashMap<Object, Vec<Entry>>,
    rel_kinds: HashMap<String, RelKind>,
}

/// One change of an object's existence in the canonical walk.
#[derive(Debug)]
struct Entry {
    version: Version,
    /// The index of the creating migration, `None` when dropped.
    created: Option<usize>,
    /// For a column, constraint or trigger copied or moved from another relation: the object it
    /// came from and the index of the migration that created that.
    from: Option<(Object, usize)>,
}

/// An object whose existence changed.
struct Change {
    object: Object,
    created: Option<usize>,
    from: Option<(Object, usize)>,
}

impl Change {
    fn created(object: Object, idx: usize) -> Self {
        Change {
            object,
            created: Some(idx),
            from: None,
        }
    }

    fn removed(object: Object) -> Self {
        Change {
            object,
            created: None,
            from: None,
        }
    }
}

impl History {
    /// Walks the canonical set in order.
    pub fn of(canonical: &[Analyzed]) -> Self {
        let mut h = History::default();
        let mut state = State::default();
        for (idx, a) in canonical.iter().enumerate() {
            let version = &a.migration.version;
            for e in &a.analysis.facts.events {
                for c in state.apply(e, idx) {
                    h.entries.entry(c.object).or_default().push(Entry {
                        version: version.clone(),
                        created: c.created,
                        from: c.from,
                    });
                }
                if let (Action::Create, Object::Relation(name), Some(kind)) =
                    (&e.action, &e.object, e.rel_kind)
                {
                    h.rel_kinds.entry(name.clone()).or_insert(kind);
                }
            }
        }
        h
    }

    /// The object a reference needs (see [`dependency_key`]), for objects no migration creates
    /// under that name: a type named like a table is the table's row type (`RETURNS SETOF
    /// posts`), and a known extension's object may be qualified with the schema the extension
    /// was installed in (`extensions.uuid_generate_v4()`).
    fn needs(&self, obj: &Object) -> Object {
        let key = dependency_key(obj);
        if self.entries.contains_key(&key) {
            return key;
        }
        let (name, bare): (&String, fn(String) -> Object) = match &key {
            Object::Type(n) => (n, Object::Type),
            Object::Function(n) => (n, Object::Function),
            Object::OperatorClass(n) => (n, Object::OperatorClass),
            _ => return key,
        };
        let table = Object::Relation(name.clone());
        if matches!(key, Object::Type(_)) && self.entries.contains_key(&table) {
            return table;
        }
        match name
            .rsplit_once('.')
            .map(|(_, b)| dependency_key(&bare(b.to_owned())))
        {
            Some(ext @ Object::Extension(_)) => ext,
            _ => key,
        }
    }

    /// The canonical migration that provides `obj` to a migration of version `before`.
    fn provider(&self, obj: &Object, before: &Version) -> Option<usize> {
        self.entries
            .get(obj)?
            .iter()
            .rev()
            .find(|e| &e.version < before)
            .and_then(|e| e.created)
    }

    /// The first canonical migration that creates `obj` at all (for objects created later).
    fn any_provider(&self, obj: &Object) -> Option<usize> {
        self.entries.get(obj)?.iter().find_map(|e| e.created)
    }

    /// What a missing `obj` that migration `provider` creates really needs: when `provider` ran
    /// (`ran`) but the object is a copy or the new name of another one (`LIKE`, `PARTITION OF`,
    /// a table rename), it could not copy or move what was not there, so the object it came from
    /// is the one missing, and so on back.
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
                    .find(|e| e.created == Some(p))
                    .and_then(|e| e.from.clone())
            });
            match from {
                // Creators only ever come earlier, so this ends.
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
                let kind = match self.rel_kinds.get(name) {
                    Some(RelKind::View) => "view",
                    Some(RelKind::Index) => "index",
                    Some(RelKind::Sequence) => "sequence",
                    _ => "table",
                };
                format!("{kind} {name}")
            }
            other => other.to_string(),
        }
    }
}

/// Which objects exist, and which migration created each.
#[derive(Debug, Default)]
struct State {
    present: HashMap<Object, usize>,
}

impl State {
    /// Applies one event; returns the objects whose existence changed.
    fn apply(&mut self, e: &Event, idx: usize) -> Vec<Change> {
        let key = dependency_key(&e.object);
        match &e.action {
            Action::Reference => Vec::new(),
            Action::Create => {
                self.present.insert(key.clone(), idx);
                vec![Change::created(key, idx)]
            }
            Action::Drop => {
                self.present.remove(&key);
                let mut changed = vec![Change::removed(key.clone())];
                if let Object::Relation(name) = &key {
                    let owned: Vec<Object> = self
                        .present
                        .keys()
                        .filter(|o| o.owner() == Some(name.as_str()))
                        .cloned()
                        .collect();
                    for o in owned {
                        self.present.remove(&o);
                        changed.push(Change::removed(o));
                    }
                }
                changed
            }
            Action::CopyColumns { from } => {
                let Object::Relation(to) = &key else {
                    return Vec::new();
                };
                let copied: Vec<(Object, usize)> = self
                    .present
                    .iter()
                    .filter(|(o, _)| matches!(o, Object::Column { table, .. } if table == from))
                    .map(|(o, i)| (o.clone(), *i))
                    .collect();
                copied
                    .into_iter()
                    .map(|(o, i)| {
                        let copy = o.with_owner(to);
                        self.present.insert(copy.clone(), idx);
                        Change {
                            object: copy,
                            created: Some(idx),
                            from: Some((o, i)),
                        }
                    })
                    .collect()
            }
            Action::RenameRelation { to } => {
                let Object::Relation(from) = &key else {
                    return Vec::new();
                };
                let mut changed = Vec::new();
                self.present.remove(&key);
                changed.push(Change::removed(key.clone()));
                self.present.insert(Object::Relation(to.clone()), idx);
                changed.push(Change::created(Object::Relation(to.clone()), idx));
                let owned: Vec<(Object, usize)> = self
                    .present
                    .iter()
                    .filter(|(o, _)| o.owner() == Some(from.as_str()))
                    .map(|(o, i)| (o.clone(), *i))
                    .collect();
                // Under its new name, an object exists from the rename on.
                for (o, i) in owned {
                    self.present.remove(&o);
                    changed.push(Change::removed(o.clone()));
                    let moved = o.with_owner(to);
                    self.present.insert(moved.clone(), idx);
                    changed.push(Change {
                        object: moved,
                        created: Some(idx),
                        from: Some((o, i)),
                    });
                }
                changed
            }
        }
    }
}

/// Checks a profile: every unconditional reference must be satisfied by an earlier member.
///
/// `canonical` is the full set in version order; `members` the profile in version order. A
/// missing object is reported only when some canonical migration creates it (anything else is
/// built in or comes from outside the migrations), naming that migration.
pub fn check_profile(
    canonical: &[Analyzed],
    members: &[Member<'_>],
    forbidden: &[String],
) -> Vec<Finding> {
    let history = History::of(canonical);
    let by_version: BTreeMap<&Version, &Member<'_>> = members
        .iter()
        .map(|m| (&m.analyzed.migration.version, m))
        .collect();
    let mut state = State::default();
    let mut findings = Vec::new();

    let ran = |p: usize| {
        by_version
            .get(&canonical[p].migration.version)
            .is_some_and(|member| member.membership == Membership::Included)
    };

    for (idx, member) in members.iter().enumerate() {
        let m = &member.analyzed.migration;
        if let Some(e) = &member.analyzed.parse_error {
            findings.push(Finding::error(
                &e.file,
                e.line,
                format!("cannot parse: {}", e.message),
            ));
        }
        let mut reported: HashSet<Object> = HashSet::new();
        let mut missing_relations: HashSet<String> = HashSet::new();
        // (owner relation, finding) for this migration.
        let mut found: Vec<(Option<String>, Finding)> = Vec::new();
        for e in &member.analyzed.analysis.facts.events {
            if e.action == Action::Reference && !e.conditional {
                let key = history.needs(&e.object);
                if !state.present.contains_key(&key) {
                    let provider = history.provider(&key, &m.version).or_else(|| {
                        // Created later in the canonical order: an ordering problem of its own.
                        history
                            .any_provider(&key)
                            .filter(|&p| canonical[p].migration.version > m.version)
                    });
                    if let Some(p) = provider
                        && reported.insert(key.clone())
                    {
                        if let Object::Relation(name) = &key {
                            missing_relations.insert(name.clone());
                        }
                        let (needed, p) = history.origin(&key, p, ran);
                        let f = missing(&history, canonical, &by_version, m, e, &needed, p);
                        found.push((e.object.owner().map(str::to_owned), f));
                    }
                }
            }
            if member.membership != Membership::NotApplied {
                state.apply(e, idx);
            }
        }
        // A missing table is reported once, not again for each of its columns, wherever in the
        // migration they are used.
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
                    &m.up.file_name,
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

fn missing(
    history: &History,
    canonical: &[Analyzed],
    by_version: &BTreeMap<&Version, &Member<'_>>,
    m: &Migration,
    e: &Event,
    key: &Object,
    provider: usize,
) -> Finding {
    let p = &canonical[provider].migration;
    let what = if &e.object == key {
        history.describe(&e.object)
    } else {
        format!(
            "{} (from {})",
            history.describe(&e.object),
            history.describe(key)
        )
    };
    let whose = match by_version.get(&p.version) {
        _ if p.version > m.version => format!("is created only later, by {}", p.up.file_name),
        None => format!("is created by excluded {}", p.up.file_name),
        Some(member) if member.membership == Membership::NotApplied => {
            format!("is created by {}, which did not apply", p.up.file_name)
        }
        Some(member) if member.membership == Membership::Replaced => format!(
            "is created by {}, but this profile's replacement {} does not create it",
            p.up.file_name, member.analyzed.migration.up.file_name
        ),
        Some(_) => format!(
            "is created by {}, but an earlier migration of this profile drops or renames it",
            p.up.file_name
        ),
    };
    let context = match &e.in_function {
        Some(f) => format!(" (used in the body of function {f})"),
        None => String::new(),
    };
    Finding {
        dependency: Some((key.clone(), p.up.file_name.clone())),
        deferred: e.in_function.is_some(),
        ..Finding::error(&m.up.file_name, e.line, format!("{what} {whose}{context}"))
    }
}

/// Problems with the transaction sqlx runs a migration in (or does not).
pub fn transaction_findings(a: &Analyzed) -> Vec<Finding> {
    let m = &a.migration;
    let mut out = Vec::new();
    let finding = |line: u32, message: String| Finding::error(&m.up.file_name, line, message);
    let warning = |line: u32, message: String| Finding::warning(&m.up.file_name, line, message);
    let stripped = m.up.source.trim_start_matches('\u{feff}');
    if m.up.source.starts_with('\u{feff}') && !stripped.trim_start().starts_with(NO_TX_DIRECTIVE) {
        out.push(finding(
            1,
            "starts with a byte-order mark, which PostgreSQL rejects as a syntax error; save the file as UTF-8 without BOM"
                .to_owned(),
        ));
    }
    // The directive only counts at the very first byte.
    if !m.up.no_transaction {
        let stripped = m.up.source.trim_start_matches('\u{feff}');
        let lead = stripped.len() - stripped.trim_start().len();
        if stripped.trim_start().starts_with(NO_TX_DIRECTIVE) {
            let what = if m.up.source.starts_with('\u{feff}') {
                "a byte-order mark"
            } else {
                "blank space"
            };
            let line = m.up.line_of(m.up.source.len() - stripped.len() + lead);
            out.push(warning(
                line,
                format!(
                    "`{NO_TX_DIRECTIVE}` is preceded by {what}, so sqlx ignores it and runs this migration in a transaction; \
                     move the directive to the first byte of the file"
                ),
            ));
        }
    }
    if m.up.no_transaction {
        if a.analysis.statement_count > 1 {
            for s in &a.analysis.tx_only {
                out.push(finding(
                    s.line,
                    format!(
                        "{} must be the only statement of a `{NO_TX_DIRECTIVE}` migration: PostgreSQL runs the \
                         {} statements of one migration as a single implicit transaction; split it into its own file",
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
                    "{} cannot run inside the transaction sqlx wraps this migration in; put it in a migration of \
                     its own that starts with `{NO_TX_DIRECTIVE}`",
                    s.what
                ),
            ));
        }
    }
    for s in &a.analysis.tx_control {
        out.push(warning(
            s.line,
            format!(
                "{} inside a migration breaks the transaction sqlx manages (each migration is committed by sqlx \
                 together with its `_sqlx_migrations` row); remove it",
                s.what
            ),
        ));
    }
    out
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
    for (idx, a) in canonical.iter().enumerate() {
        let mut own: HashSet<Object> = HashSet::new();
        for e in &a.analysis.facts.events {
            let key = history.needs(&e.object);
            if e.action != Action::Reference {
                own.insert(key);
                continue;
            }
            if let Some(p) = history.provider(&key, &a.migration.version)
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
