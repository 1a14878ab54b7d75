//! From SQL text to [`Facts`], with libpg_query (PostgreSQL's own grammar, PL/pgSQL included).
//!
//! Statements are read from the parse tree in its JSON form: the DDL that shapes the schema
//! (`CREATE`/`ALTER`/`RENAME`/`DROP` of tables, columns, indexes, constraints, functions,
//! triggers, views, sequences, types, extensions) is handled statement by statement, and every
//! expression, query and type name is walked generically for the relations, columns, functions,
//! types and operators it uses. PL/pgSQL bodies (functions and `DO` blocks) are parsed with the
//! PL/pgSQL grammar and the SQL inside them analysed in turn.

use serde_json::{Map, Value};

use crate::extensions;
use crate::facts::{Action, Event, ExtensionUse, Facts, Object, RelKind};
use crate::layout::line_of;

/// SQL the analysis cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: u32,
    pub message: String,
}

/// A statement that cannot run inside a transaction block.
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
    /// Explicit transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, …), which breaks the
    /// transaction sqlx wraps the migration in.
    pub tx_control: Vec<TxOnlyStatement>,
    /// Top-level statements in the file.
    pub statement_count: usize,
}

/// Analyses one migration file.
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
    let parsed = pg_query::parse(sql, 0).map_err(|e| locate_parse_error(sql, e))?;
    let tree = serde_json::to_value(&parsed.protobuf).expect("parse tree serializes");
    let mut a = Analyzer {
        file: sql,
        out: Analysis::default(),
    };
    let src = Source::new(sql, sql, Some(0), 1);
    let stmts = tree["stmts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    a.out.statement_count = stmts.len();
    let ctx = Ctx::default();
    a.raw_statements(&src, stmts, &ctx);
    Ok(a.out)
}

/// Finds the line of the first statement that does not parse.
fn locate_parse_error(sql: &str, err: pg_query::Error) -> ParseError {
    let message = err.to_string();
    if let Ok(parts) = pg_query::split_with_scanner(sql) {
        for part in parts {
            if pg_query::parse(part, 0).is_err() {
                let offset = part.as_ptr() as usize - sql.as_ptr() as usize;
                let lead = part.len() - part.trim_start().len();
                return ParseError {
                    line: line_of(sql, offset + lead),
                    message,
                };
            }
        }
    }
    ParseError { line: 1, message }
}

/// A piece of SQL text and where it sits in the migration file.
struct Source<'a> {
    text: &'a str,
    /// Byte offset of `text` in the file, when it appears there verbatim.
    base: Option<usize>,
    /// The line to report when the position is unknown.
    fallback_line: u32,
    tokens: Vec<(usize, usize)>,
    file: &'a str,
}

impl<'a> Source<'a> {
    fn new(file: &'a str, text: &'a str, base: Option<usize>, fallback_line: u32) -> Self {
        let tokens = pg_query::scan(text)
            .map(|r| {
                r.tokens
                    .iter()
                    .map(|t| (t.start as usize, t.end as usize))
                    .filter(|&(s, e)| {
                        let tok = &text[s..e];
                        !tok.starts_with("--") && !tok.starts_with("/*")
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            text,
            base,
            fallback_line,
            tokens,
            file,
        }
    }

    /// The line of a byte offset in `text` (negative: unknown).
    fn line(&self, loc: i64) -> u32 {
        match (self.base, usize::try_from(loc)) {
            (Some(base), Ok(loc)) => line_of(self.file, base + loc),
            _ => self.fallback_line,
        }
    }

    /// The line of the first token at or after `from`.
    fn stmt_line(&self, from: usize) -> u32 {
        let start = self
            .tokens
            .iter()
            .find(|(s, _)| *s >= from)
            .map(|(s, _)| *s)
            .unwrap_or(from);
        self.line(start as i64)
    }

    /// The line where identifier `name` first appears in `[from, to)`, else the statement's line.
    fn ident_line(&self, from: usize, to: usize, name: &str) -> u32 {
        self.tokens
            .iter()
            .filter(|(s, _)| *s >= from && *s < to)
            .find(|(s, e)| {
                let tok = &self.text[*s..*e];
                match tok.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                    Some(quoted) => quoted.replace("\"\"", "\"") == name,
                    None => tok.eq_ignore_ascii_case(name),
                }
            })
            .map(|(s, _)| self.line(*s as i64))
            .unwrap_or_else(|| self.stmt_line(from))
    }
}

/// What surrounds the statement being analysed.
#[derive(Debug, Clone, Default)]
struct Ctx {
    conditional: bool,
    in_function: Option<String>,
}

/// Relations visible to column references, innermost scope last.
#[derive(Debug, Clone, Default)]
struct Scope {
    /// (name or alias, relation); relation `None` for subqueries and functions.
    entries: Vec<(String, Option<String>)>,
    ctes: Vec<String>,
    parent: Option<Box<Scope>>,
}

impl Scope {
    fn of(rel: &str) -> Self {
        Scope {
            entries: vec![(
                rel.rsplit('.').next().unwrap_or(rel).to_owned(),
                Some(rel.to_owned()),
            )],
            ..Default::default()
        }
    }

    fn child(&self) -> Scope {
        Scope {
            entries: Vec::new(),
            ctes: Vec::new(),
            parent: Some(Box::new(self.clone())),
        }
    }

    fn lookup(&self, qualifier: &str) -> Option<Option<String>> {
        self.entries
            .iter()
            .find(|(n, _)| n == qualifier)
            .map(|(_, r)| r.clone())
            .or_else(|| self.parent.as_ref().and_then(|p| p.lookup(qualifier)))
    }

    fn is_cte(&self, name: &str) -> bool {
        self.ctes.iter().any(|c| c == name) || self.parent.as_ref().is_some_and(|p| p.is_cte(name))
    }

    /// The only relation in the innermost scope, if there is exactly one.
    fn single(&self) -> Option<&str> {
        match self.entries.as_slice() {
            [(_, Some(rel))] => Some(rel),
            _ => None,
        }
    }
}

struct Analyzer<'a> {
    file: &'a str,
    out: Analysis,
}

// Enum values of the parse tree (libpg_query's protobuf).
const AT_ADD_COLUMN: i64 = 1;
const AT_DROP_COLUMN: i64 = 14;
const AT_ADD_CONSTRAINT: i64 = 17;
const AT_VALIDATE_CONSTRAINT: i64 = 21;
const AT_DROP_CONSTRAINT: i64 = 23;
const AT_ALTER_COLUMN_TYPE: i64 = 25;
const AT_ENABLE_TRIG: i64 = 38;
const AT_DISABLE_TRIG: i64 = 41;
const AT_ATTACH_PARTITION: i64 = 60;
const AT_DETACH_PARTITION: i64 = 61;

const OBJECT_COLUMN: i64 = 7;
const OBJECT_DOMAIN: i64 = 13;
const OBJECT_EXTENSION: i64 = 16;
const OBJECT_FOREIGN_TABLE: i64 = 19;
const OBJECT_FUNCTION: i64 = 20;
const OBJECT_INDEX: i64 = 21;
const OBJECT_MATVIEW: i64 = 24;
const OBJECT_PROCEDURE: i64 = 30;
const OBJECT_ROUTINE: i64 = 35;
const OBJECT_SCHEMA: i64 = 37;
const OBJECT_SEQUENCE: i64 = 38;
const OBJECT_TABCONSTRAINT: i64 = 41;
const OBJECT_TABLE: i64 = 42;
const OBJECT_TRIGGER: i64 = 45;
const OBJECT_TYPE: i64 = 50;
const OBJECT_VIEW: i64 = 52;

const CONSTR_CHECK: i64 = 6;
const CONSTR_PRIMARY: i64 = 7;
const CONSTR_UNIQUE: i64 = 8;
const CONSTR_EXCLUSION: i64 = 9;
const CONSTR_FOREIGN: i64 = 10;

/// `{"node": {"Kind": {...}}}` → ("Kind", {...}).
fn node(v: &Value) -> Option<(&str, &Value)> {
    let inner = v.get("node").unwrap_or(v);
    let obj = inner.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let (k, body) = obj.iter().next()?;
    k.starts_with(|c: char| c.is_ascii_uppercase())
        .then_some((k.as_str(), body))
}

fn s<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn i(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn b(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn arr<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn loc(v: &Value) -> i64 {
    v.get("location").and_then(Value::as_i64).unwrap_or(-1)
}

/// The strings of a list of `String` nodes (`["public", "t"]`).
fn strings(list: &[Value]) -> Vec<String> {
    list.iter()
        .filter_map(|n| match node(n) {
            Some(("String", body)) => Some(s(body, "sval").to_owned()),
            _ => None,
        })
        .collect()
}

/// A qualified name as the check compares it: `public.` and `pg_catalog.` dropped.
fn qualified(parts: &[String]) -> String {
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["public" | "pg_catalog", rest @ ..] if !rest.is_empty() => rest.join("."),
        _ => parts.join("."),
    }
}

fn range_var(rv: &Value) -> String {
    let schema = s(rv, "schemaname");
    let rel = s(rv, "relname");
    if schema.is_empty() || schema == "public" {
        rel.to_owned()
    } else {
        format!("{schema}.{rel}")
    }
}

/// The object named by a `DROP`/`COMMENT ON` target of the given object type.
fn named_object(objtype: i64, obj: &Value) -> Option<Object> {
    let (kind, body) = node(obj)?;
    let parts = match kind {
        "List" => strings(arr(body, "items")),
        "String" => vec![s(body, "sval").to_owned()],
        "ObjectWithArgs" => strings(arr(body, "objname")),
        "TypeName" => strings(arr(body, "names")),
        _ => return None,
    };
    let (last, owner) = match parts.split_last() {
        Some((last, owner)) => (last.clone(), qualified(owner)),
        None => return None,
    };
    Some(match objtype {
        OBJECT_TABLE | OBJECT_VIEW | OBJECT_INDEX | OBJECT_SEQUENCE | OBJECT_MATVIEW
        | OBJECT_FOREIGN_TABLE => Object::Relation(qualified(&parts)),
        OBJECT_COLUMN => Object::Column {
            table: owner,
            column: last,
        },
        OBJECT_TABCONSTRAINT => Object::Constraint {
            table: owner,
            name: last,
        },
        OBJECT_TRIGGER => Object::Trigger {
            table: owner,
            name: last,
        },
        OBJECT_FUNCTION | OBJECT_PROCEDURE | OBJECT_ROUTINE => Object::Function(qualified(&parts)),
        OBJECT_TYPE | OBJECT_DOMAIN => Object::Type(qualified(&parts)),
        OBJECT_EXTENSION => Object::Extension(last),
        OBJECT_SCHEMA => Object::Schema(last),
        _ => return None,
    })
}

impl Analyzer<'_> {
    fn push(&mut self, ctx: &Ctx, action: Action, object: Object, line: u32, conditional: bool) {
        // A function body runs later: only what it needs counts, not what it would create.
        if ctx.in_function.is_some() && action != Action::Reference {
            return;
        }
        let rel_kind = None;
        self.out.facts.events.push(Event {
            action,
            object,
            line,
            conditional: conditional || ctx.conditional,
            in_function: ctx.in_function.clone(),
            rel_kind,
        });
    }

    fn create_rel(&mut self, ctx: &Ctx, name: String, kind: RelKind, line: u32) {
        // An index lives in its table's schema; anything else named `schema.x` needs the schema.
        if kind != RelKind::Index {
            self.needs_schema(ctx, &name, line);
        }
        self.push(ctx, Action::Create, Object::Relation(name), line, false);
        if let Some(e) = self.out.facts.events.last_mut()
            && e.action == Action::Create
        {
            e.rel_kind = Some(kind);
        }
    }

    /// Creating `schema.name` needs the schema.
    fn needs_schema(&mut self, ctx: &Ctx, name: &str, line: u32) {
        if let Some((schema, _)) = name.rsplit_once('.') {
            self.reference(ctx, Object::Schema(schema.to_owned()), line);
        }
    }

    fn reference(&mut self, ctx: &Ctx, object: Object, line: u32) {
        self.note_extension_use(&object, line);
        self.push(ctx, Action::Reference, object, line, false);
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

    fn raw_statements(&mut self, src: &Source<'_>, stmts: &[Value], ctx: &Ctx) {
        for raw in stmts {
            let start = usize::try_from(i(raw, "stmt_location")).unwrap_or(0);
            let len = usize::try_from(i(raw, "stmt_len")).unwrap_or(0);
            let end = if len == 0 {
                src.text.len()
            } else {
                start + len
            };
            if let Some((kind, body)) = raw.get("stmt").and_then(node) {
                self.statement(src, start, end, kind, body, ctx);
            }
        }
    }

    fn statement(
        &mut self,
        src: &Source<'_>,
        start: usize,
        end: usize,
        kind: &str,
        st: &Value,
        ctx: &Ctx,
    ) {
        let line = src.stmt_line(start);
        let none = Scope::default();
        match kind {
            "CreateExtensionStmt" => {
                let ext = s(st, "extname").to_owned();
                self.out.facts.extension_uses.push(ExtensionUse {
                    extension: ext.clone(),
                    what: format!("CREATE EXTENSION {ext}"),
                    line,
                });
                self.push(ctx, Action::Create, Object::Extension(ext), line, false);
            }
            "CreateSchemaStmt" => {
                let name = s(st, "schemaname").to_owned();
                self.push(ctx, Action::Create, Object::Schema(name), line, false);
            }
            "CreateStmt" => self.create_table(src, st, ctx),
            "AlterTableStmt" => self.alter_table(src, start, end, st, ctx),
            "RenameStmt" => self.rename(src, start, end, st, ctx),
            "IndexStmt" => self.create_index(src, start, end, st, ctx),
            "DropStmt" => {
                let objtype = i(st, "remove_type");
                let missing_ok = b(st, "missing_ok");
                if b(st, "concurrent") {
                    self.tx_only(line, "DROP INDEX CONCURRENTLY");
                }
                for o in arr(st, "objects") {
                    if let Some(obj) = named_object(objtype, o) {
                        let name = match &obj {
                            Object::Column { column: n, .. }
                            | Object::Constraint { name: n, .. }
                            | Object::Trigger { name: n, .. } => n.clone(),
                            other => other
                                .to_string()
                                .rsplit(['.', ' '])
                                .next()
                                .unwrap_or("")
                                .to_owned(),
                        };
                        let l = src.ident_line(start, end, &name);
                        self.push(ctx, Action::Reference, obj.clone(), l, missing_ok);
                        self.push(ctx, Action::Drop, obj, l, false);
                    }
                }
            }
            "CommentStmt" => {
                if let Some(obj) = st
                    .get("object")
                    .and_then(|o| named_object(i(st, "objtype"), o))
                {
                    self.reference(ctx, obj, line);
                }
            }
            "CreateFunctionStmt" => self.create_function(src, start, end, st, ctx),
            "DoStmt" => {
                let mut body = None;
                let mut language = "plpgsql".to_owned();
                for d in arr(st, "args") {
                    if let Some(("DefElem", de)) = node(d) {
                        let arg = de.get("arg").and_then(node);
                        match (s(de, "defname"), arg) {
                            ("as", Some(("String", v))) => body = Some(s(v, "sval").to_owned()),
                            ("language", Some(("String", v))) => language = s(v, "sval").to_owned(),
                            _ => {}
                        }
                    }
                }
                if let (Some(body), "plpgsql") = (body, language.as_str()) {
                    self.plpgsql_body(src, start, end, &body, ctx);
                }
            }
            "CreateTrigStmt" => {
                let rel = st.get("relation").map(range_var).unwrap_or_default();
                let rel_loc = st.get("relation").map(loc).unwrap_or(-1);
                self.reference(ctx, Object::Relation(rel.clone()), src.line(rel_loc));
                let func = qualified(&strings(arr(st, "funcname")));
                let fl = src.ident_line(start, end, func.rsplit('.').next().unwrap_or(&func));
                self.reference(ctx, Object::Function(func), fl);
                for c in strings(arr(st, "columns")) {
                    let l = src.ident_line(start, end, &c);
                    self.reference(
                        ctx,
                        Object::Column {
                            table: rel.clone(),
                            column: c,
                        },
                        l,
                    );
                }
                let name = s(st, "trigname").to_owned();
                let l = src.ident_line(start, end, &name);
                self.push(
                    ctx,
                    Action::Create,
                    Object::Trigger { table: rel, name },
                    l,
                    false,
                );
            }
            "ViewStmt" => {
                if let Some(q) = st.get("query") {
                    self.walk(src, q, &none, ctx);
                }
                let view = st.get("view").map(range_var).unwrap_or_default();
                let l = src.line(st.get("view").map(loc).unwrap_or(-1));
                self.create_rel(ctx, view, RelKind::View, l);
            }
            "CreateTableAsStmt" => {
                if let Some(q) = st.get("query") {
                    self.walk(src, q, &none, ctx);
                }
                if let Some(rel) = st.get("into").and_then(|i| i.get("rel")) {
                    let kind = if i(st, "objtype") == OBJECT_MATVIEW {
                        RelKind::View
                    } else {
                        RelKind::Table
                    };
                    self.create_rel(ctx, range_var(rel), kind, src.line(loc(rel)));
                }
            }
            "CreateSeqStmt" => {
                let seq = st.get("sequence").map(range_var).unwrap_or_default();
                let l = src.line(st.get("sequence").map(loc).unwrap_or(-1));
                self.create_rel(ctx, seq, RelKind::Sequence, l);
            }
            "CreateEnumStmt" | "CreateDomainStmt" | "CompositeTypeStmt" | "CreateRangeStmt" => {
                let name = match kind {
                    "CreateEnumStmt" | "CreateRangeStmt" => {
                        qualified(&strings(arr(st, "type_name")))
                    }
                    "CreateDomainStmt" => qualified(&strings(arr(st, "domainname"))),
                    _ => st.get("typevar").map(range_var).unwrap_or_default(),
                };
                if let Some(t) = st.get("type_name").filter(|t| t.is_object()) {
                    self.walk(src, t, &none, ctx);
                }
                for c in arr(st, "coldeflist").iter().chain(arr(st, "constraints")) {
                    self.walk(src, c, &none, ctx);
                }
                self.needs_schema(ctx, &name, line);
                self.push(ctx, Action::Create, Object::Type(name), line, false);
            }
            "AlterEnumStmt" => {
                let name = qualified(&strings(arr(st, "type_name")));
                self.reference(ctx, Object::Type(name), line);
            }
            "TransactionStmt" => {
                let what = match i(st, "kind") {
                    1 | 2 => Some("BEGIN"),
                    3 => Some("COMMIT"),
                    4 => Some("ROLLBACK"),
                    8 => Some("PREPARE TRANSACTION"),
                    9 => Some("COMMIT PREPARED"),
                    10 => Some("ROLLBACK PREPARED"),
                    _ => None,
                };
                if let Some(what) = what {
                    self.out.tx_control.push(TxOnlyStatement {
                        line,
                        what: what.to_owned(),
                    });
                }
            }
            "VacuumStmt" => self.tx_only(
                line,
                if b(st, "is_vacuumcmd") {
                    "VACUUM"
                } else {
                    "ANALYZE"
                },
            ),
            "CreatedbStmt" => self.tx_only(line, "CREATE DATABASE"),
            "DropdbStmt" => self.tx_only(line, "DROP DATABASE"),
            "AlterSystemStmt" => self.tx_only(line, "ALTER SYSTEM"),
            "CreateTableSpaceStmt" => self.tx_only(line, "CREATE TABLESPACE"),
            "DropTableSpaceStmt" => self.tx_only(line, "DROP TABLESPACE"),
            "ReindexStmt" => {
                let concurrently = arr(st, "params").iter().any(|p| {
                    node(p)
                        .is_some_and(|(k, de)| k == "DefElem" && s(de, "defname") == "concurrently")
                });
                if concurrently {
                    self.tx_only(line, "REINDEX CONCURRENTLY");
                }
                self.walk(src, st, &none, ctx);
            }
            "RefreshMatViewStmt" => {
                if b(st, "concurrent") {
                    self.tx_only(line, "REFRESH MATERIALIZED VIEW CONCURRENTLY");
                }
                self.walk(src, st, &none, ctx);
            }
            // `st` is the statement's body: dispatch on its kind so that SELECT and DML get their
            // scopes (target table, aliases, CTEs).
            _ => self.walk_node(src, kind, st, &none, ctx),
        }
    }

    fn tx_only(&mut self, line: u32, what: &str) {
        self.out.tx_only.push(TxOnlyStatement {
            line,
            what: what.to_owned(),
        });
    }

    fn create_table(&mut self, src: &Source<'_>, st: &Value, ctx: &Ctx) {
        let rv = st.get("relation").cloned().unwrap_or(Value::Null);
        let rel = range_var(&rv);
        let scope = Scope::of(&rel);
        let mut parents = Vec::new();
        for parent in arr(st, "inh_relations") {
            if let Some(("RangeVar", p)) = node(parent) {
                self.reference(ctx, Object::Relation(range_var(p)), src.line(loc(p)));
                parents.push(range_var(p));
            }
        }
        if let Some(t) = st.get("of_typename").filter(|t| t.is_object()) {
            self.walk(src, t, &scope, ctx);
        }
        let line = src.line(loc(&rv));
        self.create_rel(ctx, rel.clone(), RelKind::Table, line);
        for p in parents {
            self.push(
                ctx,
                Action::CopyColumns { from: p },
                Object::Relation(rel.clone()),
                line,
                false,
            );
        }
        for elt in arr(st, "table_elts") {
            match node(elt) {
                Some(("ColumnDef", cd)) => self.column_def(src, &rel, cd, ctx),
                Some(("Constraint", c)) => self.constraint(src, &rel, c, ctx),
                Some(("TableLikeClause", like)) => {
                    if let Some(r) = like.get("relation") {
                        let l = src.line(loc(r));
                        self.reference(ctx, Object::Relation(range_var(r)), l);
                        let from = range_var(r);
                        self.push(
                            ctx,
                            Action::CopyColumns { from },
                            Object::Relation(rel.clone()),
                            l,
                            false,
                        );
                    }
                }
                _ => {}
            }
        }
        if let Some(spec) = st.get("partspec").filter(|p| p.is_object()) {
            for pe in arr(spec, "part_params") {
                if let Some(("PartitionElem", pe)) = node(pe) {
                    let name = s(pe, "name");
                    if !name.is_empty() {
                        self.reference(
                            ctx,
                            Object::Column {
                                table: rel.clone(),
                                column: name.to_owned(),
                            },
                            src.line(loc(pe)),
                        );
                    }
                    if let Some(e) = pe.get("expr").filter(|e| e.is_object()) {
                        self.walk(src, e, &scope, ctx);
                    }
                }
            }
        }
        if let Some(bound) = st.get("partbound").filter(|p| p.is_object()) {
            self.walk(src, bound, &Scope::default(), ctx);
        }
    }

    fn column_def(&mut self, src: &Source<'_>, rel: &str, cd: &Value, ctx: &Ctx) {
        let col = s(cd, "colname").to_owned();
        if let Some(t) = cd.get("type_name").filter(|t| t.is_object()) {
            self.walk(
                src,
                &serde_json::json!({ "TypeName": t }),
                &Scope::default(),
                ctx,
            );
        }
        self.push(
            ctx,
            Action::Create,
            Object::Column {
                table: rel.to_owned(),
                column: col.clone(),
            },
            src.line(loc(cd)),
            false,
        );
        let scope = Scope::of(rel);
        if let Some(d) = cd.get("raw_default").filter(|d| d.is_object()) {
            self.walk(src, d, &scope, ctx);
        }
        for c in arr(cd, "constraints") {
            if let Some(("Constraint", c)) = node(c) {
                self.constraint(src, rel, c, ctx);
            }
        }
    }

    fn constraint(&mut self, src: &Source<'_>, rel: &str, c: &Value, ctx: &Ctx) {
        let line = src.line(loc(c));
        let contype = i(c, "contype");
        let scope = Scope::of(rel);
        let col = |name: String| Object::Column {
            table: rel.to_owned(),
            column: name,
        };
        match contype {
            CONSTR_PRIMARY | CONSTR_UNIQUE => {
                for k in strings(arr(c, "keys"))
                    .into_iter()
                    .chain(strings(arr(c, "including")))
                {
                    self.reference(ctx, col(k), line);
                }
            }
            CONSTR_CHECK | CONSTR_EXCLUSION => {
                for key in ["raw_expr", "where_clause"] {
                    if let Some(e) = c.get(key).filter(|e| e.is_object()) {
                        self.walk(src, e, &scope, ctx);
                    }
                }
                for ex in arr(c, "exclusions") {
                    self.walk(src, ex, &scope, ctx);
                }
            }
            CONSTR_FOREIGN => {
                for k in strings(arr(c, "fk_attrs")) {
                    self.reference(ctx, col(k), line);
                }
                if let Some(pk) = c.get("pktable").filter(|p| p.is_object()) {
                    let target = range_var(pk);
                    self.reference(ctx, Object::Relation(target.clone()), src.line(loc(pk)));
                    for k in strings(arr(c, "pk_attrs")) {
                        self.reference(
                            ctx,
                            Object::Column {
                                table: target.clone(),
                                column: k,
                            },
                            line,
                        );
                    }
                }
            }
            _ => {
                if let Some(e) = c.get("raw_expr").filter(|e| e.is_object()) {
                    self.walk(src, e, &scope, ctx);
                }
            }
        }
        let name = s(c, "conname");
        if !name.is_empty() {
            self.push(
                ctx,
                Action::Create,
                Object::Constraint {
                    table: rel.to_owned(),
                    name: name.to_owned(),
                },
                line,
                false,
            );
        }
    }

    fn alter_table(&mut self, src: &Source<'_>, start: usize, end: usize, st: &Value, ctx: &Ctx) {
        let rv = st.get("relation").cloned().unwrap_or(Value::Null);
        let rel = range_var(&rv);
        let missing_ok = b(st, "missing_ok");
        let inner = Ctx {
            conditional: ctx.conditional || missing_ok,
            in_function: ctx.in_function.clone(),
        };
        let ctx = &inner;
        self.reference(ctx, Object::Relation(rel.clone()), src.line(loc(&rv)));
        let scope = Scope::of(&rel);
        let col = |name: &str| Object::Column {
            table: rel.clone(),
            column: name.to_owned(),
        };
        for cmd in arr(st, "cmds") {
            let Some(("AlterTableCmd", cmd)) = node(cmd) else {
                continue;
            };
            let name = s(cmd, "name");
            let def = cmd.get("def").and_then(node);
            let cmd_missing_ok = b(cmd, "missing_ok");
            let line = if name.is_empty() {
                src.stmt_line(start)
            } else {
                src.ident_line(start, end, name)
            };
            match i(cmd, "subtype") {
                AT_ADD_COLUMN => {
                    if let Some(("ColumnDef", cd)) = def {
                        self.column_def(src, &rel, cd, ctx);
                    }
                }
                AT_DROP_COLUMN => {
                    self.push(ctx, Action::Reference, col(name), line, cmd_missing_ok);
                    self.push(ctx, Action::Drop, col(name), line, false);
                }
                AT_ALTER_COLUMN_TYPE => {
                    self.reference(ctx, col(name), line);
                    if let Some(("ColumnDef", cd)) = def {
                        if let Some(t) = cd.get("type_name").filter(|t| t.is_object()) {
                            self.walk(src, &serde_json::json!({ "TypeName": t }), &scope, ctx);
                        }
                        if let Some(u) = cd.get("raw_default").filter(|d| d.is_object()) {
                            self.walk(src, u, &scope, ctx);
                        }
                    }
                }
                AT_ADD_CONSTRAINT => {
                    if let Some(("Constraint", c)) = def {
                        self.constraint(src, &rel, c, ctx);
                    }
                }
                AT_DROP_CONSTRAINT | AT_VALIDATE_CONSTRAINT => {
                    let obj = Object::Constraint {
                        table: rel.clone(),
                        name: name.to_owned(),
                    };
                    self.push(ctx, Action::Reference, obj.clone(), line, cmd_missing_ok);
                    if i(cmd, "subtype") == AT_DROP_CONSTRAINT {
                        self.push(ctx, Action::Drop, obj, line, false);
                    }
                }
                AT_ENABLE_TRIG..=AT_DISABLE_TRIG if !name.is_empty() => {
                    self.reference(
                        ctx,
                        Object::Trigger {
                            table: rel.clone(),
                            name: name.to_owned(),
                        },
                        line,
                    );
                }
                AT_ATTACH_PARTITION | AT_DETACH_PARTITION => {
                    if let Some(("PartitionCmd", pc)) = def
                        && let Some(part) = pc.get("name").filter(|p| p.is_object())
                    {
                        self.reference(ctx, Object::Relation(range_var(part)), src.line(loc(part)));
                        if let Some(bound) = pc.get("bound").filter(|p| p.is_object()) {
                            self.walk(src, bound, &Scope::default(), ctx);
                        }
                    }
                }
                _ => {
                    // SET DEFAULT, SET/DROP NOT NULL, SET STATISTICS, identity, …: the column must exist.
                    if !name.is_empty() {
                        self.reference(ctx, col(name), line);
                    }
                    if let Some(d) = cmd.get("def").filter(|d| d.is_object()) {
                        self.walk(src, d, &scope, ctx);
                    }
                }
            }
        }
    }

    fn rename(&mut self, src: &Source<'_>, start: usize, end: usize, st: &Value, ctx: &Ctx) {
        let rv = st.get("relation").filter(|r| r.is_object());
        let rel = rv.map(range_var).unwrap_or_default();
        let sub = s(st, "subname").to_owned();
        let new = s(st, "newname").to_owned();
        let missing_ok = b(st, "missing_ok");
        let rename_type = i(st, "rename_type");
        let (old_obj, new_obj) = match rename_type {
            OBJECT_COLUMN => (
                Object::Column {
                    table: rel.clone(),
                    column: sub.clone(),
                },
                Object::Column {
                    table: rel.clone(),
                    column: new.clone(),
                },
            ),
            OBJECT_TABCONSTRAINT => (
                Object::Constraint {
                    table: rel.clone(),
                    name: sub.clone(),
                },
                Object::Constraint {
                    table: rel.clone(),
                    name: new.clone(),
                },
            ),
            OBJECT_TRIGGER => (
                Object::Trigger {
                    table: rel.clone(),
                    name: sub.clone(),
                },
                Object::Trigger {
                    table: rel.clone(),
                    name: new.clone(),
                },
            ),
            OBJECT_TABLE | OBJECT_VIEW | OBJECT_INDEX | OBJECT_SEQUENCE | OBJECT_MATVIEW
            | OBJECT_FOREIGN_TABLE => {
                let line = src.line(rv.map(loc).unwrap_or(-1));
                self.push(
                    ctx,
                    Action::Reference,
                    Object::Relation(rel.clone()),
                    line,
                    missing_ok,
                );
                let to = match rel.rsplit_once('.') {
                    Some((schema, _)) => format!("{schema}.{new}"),
                    None => new,
                };
                self.push(
                    ctx,
                    Action::RenameRelation { to },
                    Object::Relation(rel),
                    line,
                    false,
                );
                return;
            }
            other => {
                let Some(old) = st.get("object").and_then(|o| named_object(other, o)) else {
                    return;
                };
                let renamed = match &old {
                    Object::Function(n) => Object::Function(replace_last(n, &new)),
                    Object::Type(n) => Object::Type(replace_last(n, &new)),
                    Object::Schema(_) => Object::Schema(new.clone()),
                    _ => return,
                };
                (old, renamed)
            }
        };
        if let Some(rv) = rv {
            self.push(
                ctx,
                Action::Reference,
                Object::Relation(rel.clone()),
                src.line(loc(rv)),
                missing_ok,
            );
        }
        let old_name = match &old_obj {
            Object::Column { column, .. } => column.clone(),
            _ => sub.clone(),
        };
        let line = src.ident_line(
            start,
            end,
            if old_name.is_empty() { &new } else { &old_name },
        );
        self.push(ctx, Action::Reference, old_obj.clone(), line, missing_ok);
        self.push(ctx, Action::Drop, old_obj, line, false);
        self.push(ctx, Action::Create, new_obj, line, false);
    }

    fn create_index(&mut self, src: &Source<'_>, start: usize, end: usize, st: &Value, ctx: &Ctx) {
        let rv = st.get("relation").cloned().unwrap_or(Value::Null);
        let rel = range_var(&rv);
        let line = src.line(loc(&rv));
        if b(st, "concurrent") {
            self.tx_only(src.stmt_line(start), "CREATE INDEX CONCURRENTLY");
        }
        self.reference(ctx, Object::Relation(rel.clone()), line);
        let method = s(st, "access_method");
        if !method.is_empty() {
            let l = src.ident_line(start, end, method);
            self.reference(ctx, Object::AccessMethod(method.to_owned()), l);
        }
        let scope = Scope::of(&rel);
        for p in arr(st, "index_params")
            .iter()
            .chain(arr(st, "index_including_params"))
        {
            let Some(("IndexElem", ie)) = node(p) else {
                continue;
            };
            let name = s(ie, "name");
            if !name.is_empty() {
                let l = src.ident_line(start, end, name);
                self.reference(
                    ctx,
                    Object::Column {
                        table: rel.clone(),
                        column: name.to_owned(),
                    },
                    l,
                );
            }
            if let Some(e) = ie.get("expr").filter(|e| e.is_object()) {
                self.walk(src, e, &scope, ctx);
            }
            let opclass = qualified(&strings(arr(ie, "opclass")));
            if !opclass.is_empty() {
                let l = src.ident_line(start, end, opclass.rsplit('.').next().unwrap_or(&opclass));
                self.reference(ctx, Object::OperatorClass(opclass), l);
            }
        }
        if let Some(w) = st.get("where_clause").filter(|w| w.is_object()) {
            self.walk(src, w, &scope, ctx);
        }
        let name = s(st, "idxname");
        if !name.is_empty() {
            let qualified_name = match rel.rsplit_once('.') {
                Some((schema, _)) => format!("{schema}.{name}"),
                None => name.to_owned(),
            };
            let l = src.ident_line(start, end, name);
            self.create_rel(ctx, qualified_name, RelKind::Index, l);
        }
    }

    fn create_function(
        &mut self,
        src: &Source<'_>,
        start: usize,
        end: usize,
        st: &Value,
        ctx: &Ctx,
    ) {
        let name = qualified(&strings(arr(st, "funcname")));
        let short = name.rsplit('.').next().unwrap_or(&name).to_owned();
        let none = Scope::default();
        for p in arr(st, "parameters") {
            self.walk(src, p, &none, ctx);
        }
        if let Some(t) = st.get("return_type").filter(|t| t.is_object()) {
            self.walk(src, &serde_json::json!({ "TypeName": t }), &none, ctx);
        }
        let mut language = String::new();
        let mut body = None;
        for o in arr(st, "options") {
            if let Some(("DefElem", de)) = node(o) {
                match (s(de, "defname"), de.get("arg").and_then(node)) {
                    ("language", Some(("String", v))) => language = s(v, "sval").to_lowercase(),
                    ("as", Some(("List", l))) => body = strings(arr(l, "items")).into_iter().next(),
                    ("as", Some(("String", v))) => body = Some(s(v, "sval").to_owned()),
                    _ => {}
                }
            }
        }
        let body_ctx = Ctx {
            conditional: ctx.conditional,
            in_function: Some(name.clone()),
        };
        if let Some(sql_body) = st.get("sql_body").filter(|b| b.is_object()) {
            self.walk(src, sql_body, &none, &body_ctx);
        } else if let Some(body) = body {
            match language.as_str() {
                "plpgsql" => self.plpgsql_body(src, start, end, &body, &body_ctx),
                "sql" => self.sql_body(src, start, end, &body, &body_ctx),
                _ => {}
            }
        }
        let l = src.ident_line(start, end, &short);
        self.needs_schema(ctx, &name, l);
        self.push(ctx, Action::Create, Object::Function(name), l, false);
    }

    /// Where `body` (a function or DO body) starts in the file, when it appears there verbatim.
    fn body_offset(&self, src: &Source<'_>, start: usize, end: usize, body: &str) -> Option<usize> {
        let base = src.base?;
        let stmt = src.text.get(start..end)?;
        stmt.find(body).map(|off| base + start + off)
    }

    fn sql_body(&mut self, src: &Source<'_>, start: usize, end: usize, body: &str, ctx: &Ctx) {
        let base = self.body_offset(src, start, end, body);
        let Ok(parsed) = pg_query::parse(body, 0) else {
            return;
        };
        let tree = serde_json::to_value(&parsed.protobuf).expect("parse tree serializes");
        let fallback = src.stmt_line(start);
        let file = self.file;
        let inner = Source::new(file, body, base, fallback);
        let stmts = tree["stmts"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        self.raw_statements(&inner, stmts, ctx);
    }

    /// Parses a PL/pgSQL body and analyses the SQL it runs.
    fn plpgsql_body(&mut self, src: &Source<'_>, start: usize, end: usize, body: &str, ctx: &Ctx) {
        let base = self.body_offset(src, start, end, body);
        let fallback = src.stmt_line(start);
        let mut tag = String::from("$pgdeps$");
        while body.contains(&tag) {
            tag.insert(1, 'x');
        }
        // The trigger/void/set-returning forms each reject some bodies; one of them takes it.
        let tree = ["integer", "SETOF record", "void"].iter().find_map(|ret| {
            let wrapped = format!(
                "CREATE FUNCTION pgdeps_body() RETURNS {ret} LANGUAGE plpgsql AS {tag}{body}{tag}"
            );
            pg_query::parse_plpgsql(&wrapped).ok()
        });
        let Some(tree) = tree else {
            self.out.facts.opaque.push(fallback);
            return;
        };
        let body_line = base.map(|b| line_of(self.file, b)).unwrap_or(fallback);
        let walker = PlBody {
            body,
            base,
            body_line,
        };
        let mut line = body_line;
        self.plpgsql_walk(&walker, &tree, ctx, "", &mut line);
    }

    fn plpgsql_walk(
        &mut self,
        pl: &PlBody<'_>,
        v: &Value,
        ctx: &Ctx,
        parent_key: &str,
        line: &mut u32,
    ) {
        match v {
            Value::Array(items) => {
                for item in items {
                    self.plpgsql_walk(pl, item, ctx, parent_key, line);
                }
            }
            Value::Object(map) => {
                if let Some(n) = map.get("lineno").and_then(Value::as_u64) {
                    *line = pl.body_line + n.saturating_sub(1) as u32;
                }
                for (k, val) in map {
                    match k.as_str() {
                        "datums" => {}
                        "PLpgSQL_expr" => {
                            let query = s(val, "query");
                            let mode = i(val, "parseMode");
                            self.embedded_sql(pl, query, mode, parent_key == "sqlstmt", *line, ctx);
                        }
                        "PLpgSQL_stmt_dynexecute" | "PLpgSQL_stmt_dynfors" => {
                            self.out.facts.opaque.push(*line);
                            self.plpgsql_walk(pl, val, ctx, k, line);
                        }
                        "PLpgSQL_stmt_commit" | "PLpgSQL_stmt_rollback" => {
                            let what = if k.ends_with("commit") {
                                "COMMIT"
                            } else {
                                "ROLLBACK"
                            };
                            self.out.tx_control.push(TxOnlyStatement {
                                line: *line,
                                what: format!("{what} (in a PL/pgSQL block)"),
                            });
                        }
                        "then_body" | "else_body" | "elsif_list" | "case_when_list"
                        | "else_stmts" | "body"
                            if parent_key != "PLpgSQL_stmt_block" || has_exceptions(map) =>
                        {
                            let cond = Ctx {
                                conditional: true,
                                in_function: ctx.in_function.clone(),
                            };
                            self.plpgsql_walk(pl, val, &cond, k, line);
                        }
                        _ => self.plpgsql_walk(pl, val, ctx, k, line),
                    }
                }
            }
            _ => {}
        }
    }

    /// SQL inside PL/pgSQL: a whole statement (`sqlstmt`) or an expression.
    fn embedded_sql(
        &mut self,
        pl: &PlBody<'_>,
        query: &str,
        mode: i64,
        statement: bool,
        line: u32,
        ctx: &Ctx,
    ) {
        let options = if statement { 0 } else { mode as i32 };
        let parsed = pg_query::parse(query, options)
            .or_else(|_| pg_query::parse(query, 0))
            .or_else(|_| pg_query::parse(&format!("SELECT {query}"), 0));
        let Ok(parsed) = parsed else {
            return;
        };
        let tree = serde_json::to_value(&parsed.protobuf).expect("parse tree serializes");
        // Locate the query in the file: search from the start of its line within the body.
        let base = pl.base.and_then(|b| {
            let rel_line = (line - pl.body_line) as usize;
            let line_start = pl
                .body
                .match_indices('\n')
                .nth(rel_line.wrapping_sub(1))
                .map(|(i, _)| i + 1)
                .filter(|_| rel_line > 0)
                .unwrap_or(0);
            pl.body[line_start..]
                .find(query)
                .map(|off| b + line_start + off)
        });
        let file = self.file;
        let src = Source::new(file, query, base, line);
        let stmts = tree["stmts"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        self.raw_statements(&src, stmts, ctx);
    }

    /// Walks any part of a parse tree for the objects it uses.
    fn walk(&mut self, src: &Source<'_>, v: &Value, scope: &Scope, ctx: &Ctx) {
        match v {
            Value::Array(items) => {
                for item in items {
                    self.walk(src, item, scope, ctx);
                }
            }
            Value::Object(map) => {
                if let Some((kind, body)) = node(v) {
                    self.walk_node(src, kind, body, scope, ctx);
                } else if map.contains_key("relname") && map.contains_key("relpersistence") {
                    // A RangeVar held directly, not as a node: the target of INSERT, UPDATE,
                    // DELETE, COPY, CREATE POLICY, REFRESH MATERIALIZED VIEW, ….
                    self.walk_node(src, "RangeVar", v, scope, ctx);
                } else if map.contains_key("names") && map.contains_key("typemod") {
                    // A TypeName held directly: a function parameter's type, a cast's target, ….
                    self.walk_node(src, "TypeName", v, scope, ctx);
                } else {
                    self.walk_fields(src, map, scope, ctx);
                }
            }
            _ => {}
        }
    }

    fn walk_fields(
        &mut self,
        src: &Source<'_>,
        map: &Map<String, Value>,
        scope: &Scope,
        ctx: &Ctx,
    ) {
        for val in map.values() {
            if val.is_object() || val.is_array() {
                self.walk(src, val, scope, ctx);
            }
        }
    }

    fn walk_node(&mut self, src: &Source<'_>, kind: &str, body: &Value, scope: &Scope, ctx: &Ctx) {
        match kind {
            "RangeVar" => {
                let rel = range_var(body);
                if !scope.is_cte(&rel) {
                    self.reference(ctx, Object::Relation(rel), src.line(loc(body)));
                }
            }
            "ColumnRef" => {
                let fields = strings(arr(body, "fields"));
                if fields.len() != arr(body, "fields").len() {
                    return; // `t.*`
                }
                let target = match fields.as_slice() {
                    [col] => scope.single().map(|t| (t.to_owned(), col.clone())),
                    [q, col] => scope.lookup(q).flatten().map(|t| (t, col.clone())),
                    [schema, t, col] => {
                        Some((qualified(&[schema.clone(), t.clone()]), col.clone()))
                    }
                    _ => None,
                };
                if let Some((table, column)) = target {
                    self.reference(ctx, Object::Column { table, column }, src.line(loc(body)));
                }
            }
            "FuncCall" => {
                let name = qualified(&strings(arr(body, "funcname")));
                self.reference(ctx, Object::Function(name.clone()), src.line(loc(body)));
                // `nextval('seq')`: the text is cast to regclass, naming the sequence.
                if matches!(name.as_str(), "nextval" | "currval" | "setval")
                    && let Some((seq, at)) = arr(body, "args").first().and_then(string_const)
                {
                    self.reference(ctx, Object::Relation(regclass_name(seq)), src.line(at));
                }
                if let Some(map) = body.as_object() {
                    self.walk_fields(src, map, scope, ctx);
                }
            }
            "TypeName" => {
                let names = strings(arr(body, "names"));
                if names.first().map(String::as_str) != Some("pg_catalog") && !names.is_empty() {
                    self.reference(ctx, Object::Type(qualified(&names)), src.line(loc(body)));
                }
                for t in arr(body, "typmods") {
                    self.walk(src, t, scope, ctx);
                }
            }
            "TypeCast" => {
                // `'name'::regclass` names a relation.
                let to = body.get("type_name").map(|t| strings(arr(t, "names")));
                if to.as_ref().and_then(|n| n.last()).map(String::as_str) == Some("regclass")
                    && let Some((rel, at)) = body.get("arg").and_then(string_const)
                {
                    self.reference(ctx, Object::Relation(regclass_name(rel)), src.line(at));
                }
                if let Some(map) = body.as_object() {
                    self.walk_fields(src, map, scope, ctx);
                }
            }
            "AExpr" => {
                let op = strings(arr(body, "name")).join(".");
                // `%` is pg_trgm's similarity only between texts; with a number it is modulo.
                let modulo = op == "%"
                    && ["lexpr", "rexpr"].iter().any(|side| {
                        body.get(*side).and_then(node).is_some_and(|(k, c)| {
                            k == "AConst"
                                && matches!(c.get("val").and_then(node), Some(("Ival" | "Fval", _)))
                        })
                    });
                if !modulo && extensions::provider_of(&Object::Operator(op.clone())).is_some() {
                    self.reference(ctx, Object::Operator(op), src.line(loc(body)));
                }
                if let Some(map) = body.as_object() {
                    self.walk_fields(src, map, scope, ctx);
                }
            }
            "SelectStmt" => self.select(src, body, scope, ctx),
            "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
                self.dml(src, kind, body, scope, ctx)
            }
            _ => {
                if let Some(map) = body.as_object() {
                    self.walk_fields(src, map, scope, ctx);
                }
            }
        }
    }

    fn with_ctes(&mut self, src: &Source<'_>, body: &Value, scope: &mut Scope, ctx: &Ctx) {
        if let Some(with) = body.get("with_clause").filter(|w| w.is_object()) {
            for cte in arr(with, "ctes") {
                if let Some(("CommonTableExpr", c)) = node(cte) {
                    scope.ctes.push(s(c, "ctename").to_owned());
                    if let Some(q) = c.get("ctequery") {
                        self.walk(src, q, scope, ctx);
                    }
                }
            }
        }
    }

    fn select(&mut self, src: &Source<'_>, body: &Value, outer: &Scope, ctx: &Ctx) {
        let mut scope = outer.child();
        self.with_ctes(src, body, &mut scope, ctx);
        for f in arr(body, "from_clause") {
            collect_from(f, &mut scope);
        }
        if let Some(map) = body.as_object() {
            for (k, val) in map {
                if k != "with_clause" && k != "into_clause" && (val.is_object() || val.is_array()) {
                    self.walk(src, val, &scope, ctx);
                }
            }
        }
        // `SELECT … INTO new_table` creates it.
        if let Some(rel) = body
            .get("into_clause")
            .and_then(|i| i.get("rel"))
            .filter(|r| r.is_object())
        {
            self.create_rel(ctx, range_var(rel), RelKind::Table, src.line(loc(rel)));
        }
    }

    fn dml(&mut self, src: &Source<'_>, kind: &str, body: &Value, outer: &Scope, ctx: &Ctx) {
        let mut scope = outer.child();
        self.with_ctes(src, body, &mut scope, ctx);
        let rv = body.get("relation").filter(|r| r.is_object());
        let rel = rv.map(range_var);
        if let Some(rv) = rv {
            collect_from(&serde_json::json!({ "RangeVar": rv }), &mut scope);
        }
        let extra = match kind {
            "UpdateStmt" => "from_clause",
            "DeleteStmt" => "using_clause",
            _ => "",
        };
        for f in arr(body, extra) {
            collect_from(f, &mut scope);
        }
        // Target columns (`INSERT INTO t (a, b)`, `UPDATE t SET a = …`) name columns of `t`.
        let targets = if kind == "InsertStmt" {
            "cols"
        } else {
            "target_list"
        };
        if let Some(rel) = &rel {
            for t in arr(body, targets) {
                if let Some(("ResTarget", rt)) = node(t) {
                    let name = s(rt, "name");
                    if !name.is_empty() {
                        self.reference(
                            ctx,
                            Object::Column {
                                table: rel.clone(),
                                column: name.to_owned(),
                            },
                            src.line(loc(rt)),
                        );
                    }
                    if let Some(val) = rt.get("val").filter(|v| v.is_object()) {
                        self.walk(src, val, &scope, ctx);
                    }
                }
            }
        }
        if let Some(map) = body.as_object() {
            for (k, val) in map {
                if k != "with_clause" && k != targets && (val.is_object() || val.is_array()) {
                    // An INSERT's SELECT does not see the target table.
                    let s = if k == "select_stmt" { outer } else { &scope };
                    self.walk(src, val, s, ctx);
                }
            }
        }
    }
}

/// A string constant (`'text'`) and its location.
fn string_const(v: &Value) -> Option<(&str, i64)> {
    match node(v)? {
        ("AConst", c) => match c.get("val").and_then(node)? {
            ("Sval", v) => Some((v.get("sval")?.as_str()?, loc(c))),
            _ => None,
        },
        _ => None,
    }
}

/// The relation named by the text of a `regclass` (`'app."Seq"'` → `app.Seq`): unquoted parts fold
/// to lower case.
fn regclass_name(text: &str) -> String {
    let parts: Vec<String> = text
        .split('.')
        .map(
            |p| match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => p.trim().to_lowercase(),
            },
        )
        .collect();
    qualified(&parts)
}

fn has_exceptions(map: &Map<String, Value>) -> bool {
    map.get("exceptions").is_some_and(|e| !e.is_null())
}

fn replace_last(name: &str, new: &str) -> String {
    match name.rsplit_once('.') {
        Some((schema, _)) => format!("{schema}.{new}"),
        None => new.to_owned(),
    }
}

/// Adds the relations of a FROM item to the scope.
fn collect_from(item: &Value, scope: &mut Scope) {
    let Some((kind, body)) = node(item) else {
        return;
    };
    let alias = body
        .get("alias")
        .filter(|a| a.is_object())
        .map(|a| s(a, "aliasname").to_owned());
    match kind {
        "RangeVar" => {
            let rel = range_var(body);
            if scope.is_cte(&rel) {
                scope.entries.push((alias.unwrap_or(rel), None));
            } else {
                let short = s(body, "relname").to_owned();
                scope.entries.push((alias.unwrap_or(short), Some(rel)));
            }
        }
        "JoinExpr" => {
            for side in ["larg", "rarg"] {
                if let Some(side) = body.get(side) {
                    collect_from(side, scope);
                }
            }
        }
        "RangeSubselect" | "RangeFunction" => {
            if let Some(alias) = alias {
                scope.entries.push((alias, None));
            } else {
                scope.entries.push((String::new(), None));
            }
        }
        _ => {}
    }
}

/// A PL/pgSQL body and where it is in the file.
struct PlBody<'a> {
    body: &'a str,
    base: Option<usize>,
    body_line: u32,
}
