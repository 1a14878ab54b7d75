//! From SQL text to [`Facts`], on PostgreSQL's own grammar (libpg_query) and its typed parse
//! tree (pg_query's protobuf types; PL/pgSQL, which pg_query gives only as JSON, is read as
//! JSON).
//!
//! The dispatcher ([`Analyzer::statement`]) only delegates: one module per construct.
//! - [`tables`]: `CREATE`/`ALTER TABLE`, columns, constraints (and the indexes and sequences
//!   PostgreSQL creates for them), partitions;
//! - [`indexes`]: `CREATE INDEX`;
//! - [`routines`]: functions, procedures, `DO`, triggers, and the SQL inside their bodies;
//! - [`objects`]: `DROP`, renames, schemas, extensions, types, sequences, views, policies,
//!   comments, grants;
//! - [`queries`]: queries and expressions, with scopes;
//! - [`transactions`]: what cannot run inside a transaction block, and transaction control.

mod indexes;
pub(crate) mod names;
mod objects;
mod queries;
mod routines;
pub(crate) mod source;
mod tables;
mod transactions;

use std::collections::HashSet;
use std::rc::Rc;

use pg_query::NodeRef;
use pg_query::protobuf::RawStmt;

use crate::extensions;
use crate::facts::{Action, CreateMode, Detail, Event, ExtensionUse, Facts, Object, RelKind};
use queries::Scope;
use source::{Lines, Source};

/// SQL the analysis cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: u32,
    pub message: String,
}

/// A statement that cannot run inside a transaction block, or that controls transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOnlyStatement {
    pub line: u32,
    pub what: String,
}

/// Facts plus what the transaction check needs.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub facts: Facts,
    /// Statements that PostgreSQL refuses inside a transaction block.
    pub tx_only: Vec<TxOnlyStatement>,
    /// Explicit transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, …).
    pub tx_control: Vec<TxOnlyStatement>,
    /// Top-level statements in the file.
    pub statement_count: usize,
    /// Syntax newer than some PostgreSQL versions accept: (line, first major version, what).
    pub requires: Vec<(u32, u32, String)>,
    /// Dynamic SQL (`EXECUTE` of a string built at run time) that runs while the migration
    /// applies (a `DO` block, not a function body): what it depends on cannot be read.
    pub dynamic: Vec<u32>,
}

/// Analyses one migration file (or the up part of one, blanked elsewhere).
pub fn analyze(sql: &str) -> Result<Analysis, ParseError> {
    // A byte-order mark is reported by the transaction check; blank it (same byte length) so the
    // rest of the file is still analysed with its real offsets.
    let unmarked;
    let sql = match sql.strip_prefix('\u{feff}') {
        Some(rest) => {
            unmarked = format!("   {rest}");
            unmarked.as_str()
        }
        None => sql,
    };
    let lines = Lines::new(sql);
    let parsed = pg_query::parse(sql, 0).map_err(|e| locate_parse_error(sql, &lines, e))?;
    let mut a = Analyzer {
        lines: &lines,
        out: Analysis::default(),
        stmt: 0,
        in_body: false,
    };
    let src = Source {
        text: sql,
        base: Some(0),
        fallback_line: 1,
        lines: &lines,
    };
    a.out.statement_count = parsed.protobuf.stmts.len();
    a.statements(&src, &parsed.protobuf.stmts, &Ctx::default());
    Ok(a.out)
}

/// Finds the line of the first statement that does not parse.
fn locate_parse_error(sql: &str, lines: &Lines, err: pg_query::Error) -> ParseError {
    let message = err.to_string();
    if let Ok(parts) = pg_query::split_with_scanner(sql) {
        for part in parts {
            if pg_query::parse(part, 0).is_err() {
                let offset = part.as_ptr() as usize - sql.as_ptr() as usize;
                return ParseError {
                    line: lines.line(source::skip_blank(sql, offset)),
                    message,
                };
            }
        }
    }
    ParseError { line: 1, message }
}

/// What surrounds the statement being analysed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ctx {
    /// The statement may not run, or tolerates what is missing.
    pub(crate) conditional: bool,
    /// Inside a PL/pgSQL block with exception handlers: the conditions they catch.
    pub(crate) catches: Option<Rc<HashSet<String>>>,
    /// Inside the body of this function: it runs later, not now.
    pub(crate) in_function: Option<String>,
    /// The object whose definition is being read: what it references, it depends on.
    pub(crate) by: Option<Object>,
    /// PL/pgSQL variables and parameters in scope: names that are not columns.
    pub(crate) vars: Option<Rc<HashSet<String>>>,
    /// The SQL is a definition checked now but run later (a `LANGUAGE sql` body): its function
    /// calls do not happen now.
    pub(crate) defined: bool,
    /// Inside an index expression or predicate: functions must be `IMMUTABLE`.
    pub(crate) immutable: bool,
}

impl Ctx {
    /// Whether an exception handler around catches the error PostgreSQL raises when `action`
    /// on `object` fails: the object missing (a reference), existing (a create) or having
    /// dependents (a drop).
    pub(crate) fn catches(&self, action: &Action, object: &Object) -> bool {
        let Some(caught) = &self.catches else {
            return false;
        };
        let condition = match (action, object) {
            (Action::Drop { .. }, _) => "dependent_objects_still_exist",
            (Action::Create { .. } | Action::Rename { .. }, o) => match o {
                Object::Relation(_) => "duplicate_table",
                Object::Column { .. } => "duplicate_column",
                Object::Function(_) | Object::Routine { .. } => "duplicate_function",
                Object::Schema(_) => "duplicate_schema",
                _ => "duplicate_object",
            },
            (_, Object::Relation(_)) => "undefined_table",
            (_, Object::Column { .. }) => "undefined_column",
            (_, Object::Function(_) | Object::Routine { .. }) => "undefined_function",
            (_, Object::Schema(_)) => "invalid_schema_name",
            _ => "undefined_object",
        };
        caught.contains("others") || caught.contains(condition)
    }

    pub(crate) fn is_variable(&self, name: &str) -> bool {
        self.vars.as_ref().is_some_and(|v| v.contains(name))
    }

    /// The same context, with references now kept by `by`.
    pub(crate) fn kept_by(&self, by: Object) -> Ctx {
        Ctx {
            by: Some(by),
            ..self.clone()
        }
    }

    pub(crate) fn conditional(&self, yes: bool) -> Ctx {
        Ctx {
            conditional: self.conditional || yes,
            ..self.clone()
        }
    }
}

pub(crate) struct Analyzer<'a> {
    pub(crate) lines: &'a Lines,
    pub(crate) out: Analysis,
    /// Statements seen so far (numbering the events' statements).
    pub(crate) stmt: u32,
    /// Inside a function's body, which runs later: its transaction statements are not the
    /// migration's.
    pub(crate) in_body: bool,
}

impl Analyzer<'_> {
    fn statements(&mut self, src: &Source<'_>, stmts: &[RawStmt], ctx: &Ctx) {
        for raw in stmts {
            let start = usize::try_from(raw.stmt_location).unwrap_or(0);
            let end = match usize::try_from(raw.stmt_len) {
                Ok(0) | Err(_) => src.text.len(),
                Ok(len) => (start + len).min(src.text.len()),
            };
            if let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
                self.stmt += 1;
                self.statement(src, start, end, node.to_ref(), ctx);
            }
        }
    }

    /// One statement: each kind to the module that knows it.
    fn statement(
        &mut self,
        src: &Source<'_>,
        start: usize,
        end: usize,
        node: NodeRef<'_>,
        ctx: &Ctx,
    ) {
        let line = src.stmt_line(start);
        let st = Stmt { start, end, line };
        match node {
            NodeRef::CreateStmt(s) => self.create_table(src, &st, s, ctx),
            NodeRef::CreateForeignTableStmt(s) => {
                if let Some(base) = &s.base_stmt {
                    self.create_table(src, &st, base, ctx);
                }
            }
            NodeRef::AlterTableStmt(s) => self.alter_table(src, &st, s, ctx),
            NodeRef::IndexStmt(s) => self.create_index(src, &st, s, ctx),
            NodeRef::RenameStmt(s) => self.rename_stmt(src, &st, s, ctx),
            NodeRef::AlterObjectSchemaStmt(s) => self.set_schema(src, &st, s, ctx),
            NodeRef::DropStmt(s) => self.drop_objects(src, &st, s, ctx),
            NodeRef::CreateFunctionStmt(s) => self.create_function(src, &st, s, ctx),
            NodeRef::AlterFunctionStmt(s) => self.alter_function(src, &st, s, ctx),
            NodeRef::DoStmt(s) => self.do_block(src, &st, s, ctx),
            NodeRef::CallStmt(s) => self.call(src, &st, s, ctx),
            NodeRef::CreateTrigStmt(s) => self.create_trigger(src, &st, s, ctx),
            NodeRef::CreateEventTrigStmt(s) => self.create_event_trigger(src, &st, s, ctx),
            NodeRef::CreateExtensionStmt(s) => self.create_extension(src, &st, s, ctx),
            NodeRef::CreateSchemaStmt(s) => self.create_schema(src, &st, s, ctx),
            NodeRef::ViewStmt(s) => self.create_view(src, &st, s, ctx),
            NodeRef::CreateTableAsStmt(s) => self.create_table_as(src, &st, s, ctx),
            NodeRef::CreateSeqStmt(s) => self.create_sequence(src, &st, s, ctx),
            NodeRef::AlterSeqStmt(s) => self.alter_sequence(src, &st, s, ctx),
            NodeRef::CreateEnumStmt(_)
            | NodeRef::CreateDomainStmt(_)
            | NodeRef::CompositeTypeStmt(_)
            | NodeRef::CreateRangeStmt(_) => self.create_type(src, &st, node, ctx),
            NodeRef::AlterEnumStmt(s) => self.alter_enum(src, &st, s, ctx),
            NodeRef::AlterDomainStmt(s) => self.alter_domain(src, &st, s, ctx),
            NodeRef::CommentStmt(s) => self.comment(src, &st, s, ctx),
            NodeRef::CreatePolicyStmt(s) => self.create_policy(src, &st, s, ctx),
            NodeRef::AlterPolicyStmt(s) => self.alter_policy(src, &st, s, ctx),
            NodeRef::AlterOwnerStmt(s) => self.alter_owner(src, &st, s, ctx),
            NodeRef::GrantStmt(s) => self.grant(src, &st, s, ctx),
            NodeRef::TransactionStmt(s) => self.transaction(&st, s),
            NodeRef::VacuumStmt(s) => self.vacuum(src, &st, s, ctx),
            NodeRef::ReindexStmt(s) => self.reindex(src, &st, s, ctx),
            NodeRef::RefreshMatViewStmt(s) => self.refresh(src, &st, s, ctx),
            NodeRef::ClusterStmt(_)
            | NodeRef::CreatedbStmt(_)
            | NodeRef::DropdbStmt(_)
            | NodeRef::AlterSystemStmt(_)
            | NodeRef::CreateTableSpaceStmt(_)
            | NodeRef::DropTableSpaceStmt(_)
            | NodeRef::DiscardStmt(_)
            | NodeRef::CreateSubscriptionStmt(_)
            | NodeRef::AlterSubscriptionStmt(_)
            | NodeRef::DropSubscriptionStmt(_) => self.maybe_tx_only(src, &st, node, ctx),
            // Queries and everything else: what they use.
            other => self.walk(src, other, &Scope::default(), ctx),
        }
    }

    pub(crate) fn push(
        &mut self,
        ctx: &Ctx,
        action: Action,
        object: Object,
        line: u32,
    ) -> &mut Event {
        let by = if action == Action::Reference {
            ctx.by.clone().filter(|b| b != &object)
        } else {
            None
        };
        let guarded = ctx.catches(&action, &object);
        self.out.facts.events.push(Event {
            action,
            object,
            line,
            conditional: ctx.conditional,
            guarded,
            in_function: ctx.in_function.clone(),
            rel_kind: None,
            owner: None,
            by,
            stmt: self.stmt,
            call: false,
            detail: None,
            immutable: ctx.immutable,
        });
        self.out.facts.events.last_mut().expect("just pushed")
    }

    /// A reference to `object`, kept by `ctx.by` when there is one.
    pub(crate) fn reference(&mut self, ctx: &Ctx, object: Object, line: u32) {
        self.note_extension_use(&object, line);
        self.push(ctx, Action::Reference, object, line);
    }

    /// A reference that is no error when the object is missing (`IF EXISTS`).
    pub(crate) fn reference_if(&mut self, ctx: &Ctx, object: Object, line: u32, missing_ok: bool) {
        self.note_extension_use(&object, line);
        let e = self.push(ctx, Action::Reference, object, line);
        e.conditional |= missing_ok;
    }

    /// A new object (nothing when inside a function body: that runs later).
    pub(crate) fn create(
        &mut self,
        ctx: &Ctx,
        object: Object,
        line: u32,
        mode: CreateMode,
        owner: Option<Object>,
    ) {
        // Anything named `schema.x` lives in that schema.
        if let Some(schema) = object.schema().map(str::to_owned)
            && !matches!(object, Object::Relation(_) if owner.is_some())
        {
            self.reference(&ctx.kept_by(object.clone()), Object::Schema(schema), line);
        }
        let e = self.push(ctx, Action::Create { mode }, object, line);
        e.owner = owner;
    }

    /// Says more about the last object created that is `object`.
    pub(crate) fn detail_of(&mut self, object: &Object, detail: Detail) {
        if let Some(e) = self
            .out
            .facts
            .events
            .iter_mut()
            .rev()
            .find(|e| e.action.is_create() && &e.object == object)
        {
            e.detail = Some(detail);
        }
    }

    /// Says more about the object the last event created.
    pub(crate) fn detail(&mut self, detail: Detail) {
        if let Some(e) = self.out.facts.events.last_mut()
            && e.action.is_create()
        {
            e.detail = Some(detail);
        }
    }

    pub(crate) fn create_rel(
        &mut self,
        ctx: &Ctx,
        name: String,
        kind: RelKind,
        line: u32,
        mode: CreateMode,
    ) {
        self.create_rel_owned(ctx, name, kind, line, mode, None);
    }

    pub(crate) fn create_rel_owned(
        &mut self,
        ctx: &Ctx,
        name: String,
        kind: RelKind,
        line: u32,
        mode: CreateMode,
        owner: Option<Object>,
    ) {
        self.create(ctx, Object::Relation(name.clone()), line, mode, owner);
        if let Some(e) = self.out.facts.events.last_mut() {
            e.rel_kind = Some(kind);
        }
        // Tables and views come with a row type of the same name.
        if matches!(
            kind,
            RelKind::Table | RelKind::View | RelKind::MaterializedView
        ) {
            let rel = Object::Relation(name.clone());
            let e = self.push(
                ctx,
                Action::Create {
                    mode: CreateMode::Implicit,
                },
                Object::Type(name),
                line,
            );
            e.owner = Some(rel);
        }
    }

    pub(crate) fn drop(
        &mut self,
        ctx: &Ctx,
        object: Object,
        line: u32,
        missing_ok: bool,
        cascade: bool,
    ) {
        self.reference_if(ctx, object.clone(), line, missing_ok);
        self.push(ctx, Action::Drop { cascade }, object, line);
    }

    pub(crate) fn rename(
        &mut self,
        ctx: &Ctx,
        from: Object,
        to: Object,
        line: u32,
        missing_ok: bool,
    ) {
        self.reference_if(ctx, from.clone(), line, missing_ok);
        self.push(ctx, Action::Rename { to }, from, line);
    }

    /// Syntax that PostgreSQL accepts only from major version `major` on.
    pub(crate) fn requires(&mut self, major: u32, line: u32, what: &str) {
        self.out.requires.push((line, major, what.to_owned()));
    }

    fn note_extension_use(&mut self, object: &Object, line: u32) {
        if let Some(ext) = extensions::provider_of(object) {
            self.out.facts.extension_uses.push(ExtensionUse {
                extension: ext.to_owned(),
                what: object.to_string(),
                line,
            });
        }
    }
}

/// Where a statement is in its source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stmt {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) line: u32,
}

/// Small statements and what the analysis records for them, for the modules' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::facts::{Action, CreateMode, Event};

    /// One line per event: `create relation t (owner …)`, `ref column t.a (by view v)`, …
    pub(crate) fn events(sql: &str) -> Vec<String> {
        super::analyze(sql)
            .unwrap_or_else(|e| panic!("{e}"))
            .facts
            .events
            .iter()
            .map(render)
            .collect()
    }

    fn render(e: &Event) -> String {
        let what = match &e.action {
            Action::Create { mode } => match mode {
                CreateMode::Plain => "create".to_owned(),
                CreateMode::OrReplace => "create or replace".to_owned(),
                CreateMode::IfNotExists => "create if not exists".to_owned(),
                CreateMode::Implicit => "create implicit".to_owned(),
            },
            Action::Reference if e.call => "call".to_owned(),
            Action::Reference => "ref".to_owned(),
            Action::Drop { cascade: true } => "drop cascade".to_owned(),
            Action::Drop { cascade: false } => "drop".to_owned(),
            Action::Rename { to } => format!("rename to {to}:"),
            Action::CopyColumns { from } => format!("copy columns of {from} to"),
            Action::EnumLabel { old, new } => format!("label {old:?} -> {new} of"),
            Action::Volatility(v) => format!("volatility {v} of"),
            Action::Default { set } => format!("default {set} of"),
            Action::Attach { owner } => format!(
                "attach to {}:",
                owner
                    .as_ref()
                    .map_or("nothing".to_owned(), ToString::to_string)
            ),
        };
        let mut s = format!("{what} {}", e.object);
        if let Some(o) = &e.owner {
            s.push_str(&format!(" (owner {o})"));
        }
        if let Some(b) = &e.by {
            s.push_str(&format!(" (by {b})"));
        }
        if let Some(f) = &e.in_function {
            s.push_str(&format!(" (in {f})"));
        }
        if e.conditional {
            s.push_str(" (conditional)");
        }
        if e.guarded {
            s.push_str(" (guarded)");
        }
        s
    }

    /// Asserts that every line of `expected` is among the events of `sql`.
    pub(crate) fn has(sql: &str, expected: &[&str]) {
        let got = events(sql);
        for e in expected {
            assert!(
                got.iter().any(|g| g == e),
                "{e:?} not in:\n{}",
                got.join("\n")
            );
        }
    }

    /// Asserts that no event of `sql` contains `needle`.
    pub(crate) fn lacks(sql: &str, needle: &str) {
        let got = events(sql);
        assert!(
            !got.iter().any(|g| g.contains(needle)),
            "{needle:?} in:\n{}",
            got.join("\n")
        );
    }
}
