//! Rewriting a migration so that it needs none of some extensions, on PostgreSQL's parse tree.
//!
//! [`rewrite`] parses one migration part with libpg_query and decides statement by statement:
//! a statement that needs nothing forbidden is kept byte for byte; one that only creates or
//! changes what needs a forbidden extension (its `CREATE EXTENSION`, an index with its access
//! method or operator classes, a function over its types, a comment on a removed column, …) is
//! removed whole; a `CREATE TABLE` or `ALTER TABLE` loses only the columns of forbidden types
//! and the constraints and subcommands over them, and is deparsed from its rewritten tree.
//! Everything removed is returned as *bridge* statements, which restore it on a database at the
//! end of the derived history. Where the rewrite cannot be sure (dynamic SQL, a `DO` block, a
//! domain or composite over a forbidden type, data written into a removed column next to kept
//! ones), it refuses that statement with its line and what to write by hand.
//!
//! [`Removed`] carries what earlier migrations lost, so that a later statement on a removed
//! column or index (`DROP INDEX`, `ALTER COLUMN … TYPE vector(768)`) goes too.

use std::collections::BTreeSet;
use std::ops::Range;

use pg_query::protobuf::{
    self, AlterTableCmd, AlterTableStmt, AlterTableType, ColumnDef, ConstrType, Constraint,
    CreateStmt, Node, ObjectType, RawStmt,
};
use pg_query::{NodeEnum, NodeRef};

use crate::analyze::names::{range_var, strings};
use crate::analyze::source::skip_blank;
use crate::extensions::{KNOWN, Provides};
use crate::layout::{Part, line_of};
use crate::syntax::children::for_each_child;

/// The extensions a derived profile must do without.
#[derive(Debug, Clone)]
pub struct Forbid {
    provides: Vec<&'static Provides>,
}

impl Forbid {
    /// The forbidden extensions by name; an extension the analysis does not know is an error
    /// naming the ones it knows.
    pub fn new(names: &[String]) -> Result<Self, String> {
        if names.is_empty() {
            return Err("name at least one extension to forbid".to_owned());
        }
        let mut provides = Vec::new();
        for name in names {
            match KNOWN.iter().find(|p| p.extension == name) {
                Some(p) => provides.push(p),
                None => {
                    return Err(format!(
                        "extension `{name}`: the analysis does not know what it provides (known: {})",
                        KNOWN
                            .iter()
                            .map(|p| p.extension)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        Ok(Self { provides })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.provides.iter().map(|p| p.extension).collect()
    }

    pub fn is_extension(&self, name: &str) -> bool {
        self.provides.iter().any(|p| p.extension == name)
    }

    pub fn is_type(&self, name: &str) -> bool {
        self.provides.iter().any(|p| p.has_type(name))
    }

    pub fn is_function(&self, name: &str) -> bool {
        self.provides.iter().any(|p| p.has_function(name))
    }

    pub fn is_access_method(&self, name: &str) -> bool {
        self.provides.iter().any(|p| p.has_access_method(name))
    }

    pub fn is_operator_class(&self, name: &str) -> bool {
        self.provides.iter().any(|p| p.has_operator_class(name))
    }

    /// `%` is also PostgreSQL's modulo: it alone never marks a use of `pg_trgm`.
    pub fn is_operator(&self, name: &str) -> bool {
        name != "%" && self.provides.iter().any(|p| p.has_operator(name))
    }
}

/// What the rewrites of earlier migrations removed, by name as the parser gives it
/// (`public.` dropped from relation names).
#[derive(Debug, Clone, Default)]
pub struct Removed {
    /// `(table, column)`.
    columns: BTreeSet<(String, String)>,
    /// Indexes, views and other relations removed whole.
    relations: BTreeSet<String>,
    functions: BTreeSet<String>,
}

impl Removed {
    fn column(&self, table: &str, column: &str) -> bool {
        self.columns
            .contains(&(table.to_owned(), column.to_owned()))
    }

    fn has_columns_of(&self, table: &str) -> bool {
        self.columns.iter().any(|(t, _)| t == table)
    }
}

/// One thing the rewrite removed, for the proposal and the generated header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub line: u32,
    /// e.g. "column notification_audit.embedding (type vector)", "index idx_x (index method hnsw)".
    pub what: String,
}

/// A statement the rewrite will not change, and what to write by hand instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: u32,
    pub why: String,
}

/// The rewrite of one migration part.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    /// Replacements of byte ranges of the file, in order, not overlapping (empty: unchanged).
    pub edits: Vec<(Range<usize>, String)>,
    pub removed: Vec<Removal>,
    /// Statements that restore what was removed, in order, without their `;`.
    pub bridge: Vec<String>,
    pub refusals: Vec<Refusal>,
    /// Statements kept (changed or not).
    pub kept: usize,
    /// The part creates a forbidden extension itself.
    pub creates_extension: bool,
}

impl Rewrite {
    pub fn changed(&self) -> bool {
        !self.edits.is_empty()
    }

    /// The file's text with the edits applied.
    pub fn apply(&self, source: &str) -> String {
        apply_edits(source, &self.edits)
    }
}

/// `source` with non-overlapping `edits` applied.
pub fn apply_edits(source: &str, edits: &[(Range<usize>, String)]) -> String {
    let mut sorted: Vec<&(Range<usize>, String)> = edits.iter().collect();
    sorted.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = String::with_capacity(source.len());
    let mut at = 0;
    for (r, text) in sorted {
        out.push_str(&source[at..r.start]);
        out.push_str(text);
        at = r.end;
    }
    out.push_str(&source[at..]);
    out
}

/// The offset just after the file's header comment (its leading `--` lines; after sqlx's
/// `-- no-transaction` line when there is no other), where a generated note goes.
pub fn header_end(source: &str) -> usize {
    let mut at = 0;
    for line in source.split_inclusive('\n') {
        if line.trim_start().starts_with("--") {
            at += line.len();
        } else {
            break;
        }
    }
    at
}

/// Rewrites one migration part (the up or the down direction of a file) without the forbidden
/// extensions; `removed` carries what earlier parts removed and learns what this one removes.
pub fn rewrite(part: &Part, forbid: &Forbid, removed: &mut Removed) -> Result<Rewrite, String> {
    let text = part.text.as_str();
    let parsed = pg_query::parse(text, pg_query::ParserOptions::DEFAULT)
        .map_err(|e| format!("{}: {e}", part.file_name))?;
    let mut out = Rewrite::default();
    let ranges = statement_ranges(text, &parsed.protobuf.stmts);
    for (raw, span) in parsed.protobuf.stmts.iter().zip(ranges) {
        let Some(stmt) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
            continue;
        };
        let line = line_of(&part.source, span.start);
        let original = &text[span.clone()];
        let mut cx = Statement {
            version: parsed.protobuf.version,
            forbid,
            removed,
            line,
            file: &part.source,
            original,
            out: &mut out,
        };
        match cx.decide(stmt) {
            Decision::Keep => out.kept += 1,
            Decision::Remove => {
                out.edits
                    .push((removal_range(text, &part.source, span), String::new()));
            }
            Decision::Rewrite(node) => {
                out.kept += 1;
                out.edits
                    .push((span, deparse(&node, parsed.protobuf.version)?));
            }
        }
    }
    Ok(out)
}

/// What becomes of one statement.
enum Decision {
    Keep,
    Remove,
    /// Replaced by this statement (deparsed).
    Rewrite(Box<NodeEnum>),
}

struct Statement<'a> {
    /// The parser's version, for deparsing.
    version: i32,
    forbid: &'a Forbid,
    removed: &'a mut Removed,
    line: u32,
    /// The whole file, for the lines of parse-tree locations.
    file: &'a str,
    original: &'a str,
    out: &'a mut Rewrite,
}

impl Statement<'_> {
    /// The line of a parse-tree location (an offset in the file), else the statement's.
    fn line_at(&self, location: i32) -> u32 {
        usize::try_from(location)
            .ok()
            .filter(|&l| l <= self.file.len())
            .map_or(self.line, |l| line_of(self.file, l))
    }

    fn remove(&mut self, what: String) -> Decision {
        self.out.removed.push(Removal {
            line: self.line,
            what,
        });
        self.out.bridge.push(self.original.to_owned());
        Decision::Remove
    }

    fn refuse(&mut self, why: String) -> Decision {
        self.out.refusals.push(Refusal {
            line: self.line,
            why,
        });
        Decision::Keep
    }

    fn decide(&mut self, stmt: &NodeEnum) -> Decision {
        match stmt {
            NodeEnum::CreateExtensionStmt(s) if self.forbid.is_extension(&s.extname) => {
                self.out.creates_extension = true;
                self.remove(format!("extension {}", s.extname))
            }
            NodeEnum::AlterExtensionStmt(s) if self.forbid.is_extension(&s.extname) => {
                self.remove(format!("ALTER EXTENSION {}", s.extname))
            }
            NodeEnum::CreateStmt(s) => self.create_table(s),
            NodeEnum::AlterTableStmt(s) => self.alter_table(s),
            NodeEnum::IndexStmt(s) => {
                let table = s.relation.as_ref().map(range_var).unwrap_or_default();
                let why = if self.forbid.is_access_method(&s.access_method) {
                    Some(format!("index method {}", s.access_method))
                } else {
                    self.forbidden_use(stmt.to_ref(), &[table.as_str()])
                };
                match why {
                    Some(why) => {
                        self.removed.relations.insert(qualified_index(s));
                        self.remove(format!("index {} ({why})", qualified_index(s)))
                    }
                    None => Decision::Keep,
                }
            }
            NodeEnum::DropStmt(s) => self.drop(s, stmt),
            NodeEnum::CommentStmt(s) => self.comment(s, stmt),
            NodeEnum::RenameStmt(s) => self.rename(s, stmt),
            NodeEnum::CreateFunctionStmt(s) => {
                let name = strings(&s.funcname).last().cloned().unwrap_or_default();
                match self.forbidden_use(stmt.to_ref(), &[]).or_else(|| {
                    body_mentions(&s.options, self.forbid, self.removed).map(|w| format!("its body uses {w}"))
                }) {
                    Some(why) => {
                        self.removed.functions.insert(name.clone());
                        self.remove(format!("function {name} ({why})"))
                    }
                    None => Decision::Keep,
                }
            }
            NodeEnum::CreateTrigStmt(s) => {
                let table = s.relation.as_ref().map(range_var).unwrap_or_default();
                let func = strings(&s.funcname).last().cloned().unwrap_or_default();
                if self.removed.functions.contains(&func) {
                    return self.remove(format!("trigger {} (its function {func} is removed)", s.trigname));
                }
                match self.forbidden_use(stmt.to_ref(), &[table.as_str()]) {
                    Some(why) => self.remove(format!("trigger {} ({why})", s.trigname)),
                    None => Decision::Keep,
                }
            }
            NodeEnum::ViewStmt(s) => {
                let name = s.view.as_ref().map(range_var).unwrap_or_default();
                let tables = relations_in(stmt.to_ref());
                let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
                match self.forbidden_use(stmt.to_ref(), &tables) {
                    Some(why) => {
                        self.removed.relations.insert(name.clone());
                        self.remove(format!("view {name} ({why})"))
                    }
                    None => Decision::Keep,
                }
            }
            NodeEnum::CreateTableAsStmt(s) => {
                let name = s
                    .into
                    .as_ref()
                    .and_then(|i| i.rel.as_ref())
                    .map(range_var)
                    .unwrap_or_default();
                let tables = relations_in(stmt.to_ref());
                let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
                match self.forbidden_use(stmt.to_ref(), &tables) {
                    Some(why) => {
                        self.removed.relations.insert(name.clone());
                        self.remove(format!("relation {name} ({why})"))
                    }
                    None => Decision::Keep,
                }
            }
            NodeEnum::DoStmt(s) => match self
                .forbidden_use(stmt.to_ref(), &[])
                .or_else(|| body_mentions(&s.args, self.forbid, self.removed))
            {
                Some(why) => self.refuse(format!(
                    "a DO block uses {why}; the rewrite does not change procedural code: hand-write this version's replacement (and bridge)"
                )),
                None => Decision::Keep,
            },
            NodeEnum::CreateDomainStmt(_) | NodeEnum::CompositeTypeStmt(_) => {
                match self.forbidden_use(stmt.to_ref(), &[]) {
                    Some(why) => self.refuse(format!(
                        "a domain or composite type over {why}: every object using it would change too; hand-write this version's replacement (and bridge)"
                    )),
                    None => Decision::Keep,
                }
            }
            NodeEnum::UpdateStmt(s) => {
                let table = s.relation.as_ref().map(range_var).unwrap_or_default();
                let targets: Vec<String> = s
                    .target_list
                    .iter()
                    .filter_map(|t| match &t.node {
                        Some(NodeEnum::ResTarget(r)) => Some(r.name.clone()),
                        _ => None,
                    })
                    .collect();
                if !targets.is_empty() && targets.iter().all(|c| self.removed.column(&table, c)) {
                    return self.remove(format!(
                        "UPDATE of removed column{} {}",
                        if targets.len() == 1 { "" } else { "s" },
                        targets.join(", ")
                    ));
                }
                self.refuse_any(stmt)
            }
            _ => self.refuse_any(stmt),
        }
    }

    /// Any other statement: kept when it needs nothing forbidden, refused otherwise.
    fn refuse_any(&mut self, stmt: &NodeEnum) -> Decision {
        let tables = relations_in(stmt.to_ref());
        let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
        match self.forbidden_use(stmt.to_ref(), &tables) {
            Some(why) => self.refuse(format!(
                "this statement uses {why} among other things; the rewrite cannot remove only that part: hand-write this version's replacement (and bridge)"
            )),
            None => Decision::Keep,
        }
    }

    /// The first thing in the tree under `node` that needs a forbidden extension or something
    /// removed: a type, function, operator, operator class, index method, or a column of one of
    /// `tables` that was removed.
    fn forbidden_use(&self, node: NodeRef<'_>, tables: &[&str]) -> Option<String> {
        let mut found = None;
        walk(node, &mut |n| {
            if found.is_some() {
                return;
            }
            found = match n {
                NodeRef::TypeName(t) => {
                    let names = strings(&t.names);
                    let last = names.last().map(String::as_str).unwrap_or("");
                    self.forbid.is_type(last).then(|| format!("type {last}"))
                }
                NodeRef::FuncCall(f) => {
                    let names = strings(&f.funcname);
                    let last = names.last().map(String::as_str).unwrap_or("");
                    if self.forbid.is_function(last) {
                        Some(format!("function {last}"))
                    } else if self.removed.functions.contains(last) {
                        Some(format!("function {last} (removed)"))
                    } else {
                        None
                    }
                }
                NodeRef::AExpr(a) => {
                    let names = strings(&a.name);
                    let last = names.last().map(String::as_str).unwrap_or("");
                    self.forbid
                        .is_operator(last)
                        .then(|| format!("operator {last}"))
                }
                NodeRef::IndexElem(e) => {
                    let names = strings(&e.opclass);
                    let last = names.last().map(String::as_str).unwrap_or("");
                    if self.forbid.is_operator_class(last) {
                        Some(format!("operator class {last}"))
                    } else if !e.name.is_empty()
                        && tables.iter().any(|t| self.removed.column(t, &e.name))
                    {
                        Some(format!("removed column {}", e.name))
                    } else {
                        None
                    }
                }
                NodeRef::Constraint(c) if self.forbid.is_access_method(&c.access_method) => {
                    Some(format!("index method {}", c.access_method))
                }
                NodeRef::ColumnRef(c) => {
                    let names = strings(&c.fields);
                    let last = names.last().map(String::as_str).unwrap_or("");
                    tables
                        .iter()
                        .any(|t| self.removed.column(t, last))
                        .then(|| format!("removed column {last}"))
                }
                NodeRef::String(s) => tables
                    .iter()
                    .find(|t| self.removed.column(t, &s.sval))
                    .map(|_| format!("removed column {}", s.sval)),
                NodeRef::RangeVar(rv) => {
                    let name = range_var(rv);
                    self.removed
                        .relations
                        .contains(&name)
                        .then(|| format!("removed relation {name}"))
                }
                _ => None,
            };
        });
        found
    }

    fn create_table(&mut self, s: &CreateStmt) -> Decision {
        let table = s.relation.as_ref().map(range_var).unwrap_or_default();
        let mut kept = Vec::new();
        let mut bridge_cmds = Vec::new();
        for elt in &s.table_elts {
            match &elt.node {
                Some(NodeEnum::ColumnDef(c)) => {
                    let type_use = c
                        .type_name
                        .as_ref()
                        .and_then(|t| self.forbidden_use(NodeRef::TypeName(t), &[]));
                    match type_use {
                        Some(why) if not_null_without_default(c) => {
                            return self.refuse(format!(
                                "column {table}.{} ({why}) is NOT NULL without a default: a bridge cannot add it to the rows that exist by then; hand-write this version's replacement (e.g. the column with a type the profile has) and its bridge",
                                c.colname
                            ));
                        }
                        Some(why) => {
                            self.removed
                                .columns
                                .insert((table.clone(), c.colname.clone()));
                            self.out.removed.push(Removal {
                                line: self.line_at(c.location),
                                what: format!("column {table}.{} ({why})", c.colname),
                            });
                            bridge_cmds.push(add_column(c));
                        }
                        None => {
                            if let Some(why) = self.forbidden_use(NodeRef::ColumnDef(c), &[]) {
                                return self.refuse(format!(
                                    "column {table}.{} is kept, but its default or constraint uses {why}: hand-write this version's replacement (and bridge)",
                                    c.colname
                                ));
                            }
                            kept.push(elt.clone());
                        }
                    }
                }
                _ => kept.push(elt.clone()),
            }
        }
        // Table constraints over removed columns (or needing the extension) go as well.
        let mut rest = Vec::new();
        for elt in kept {
            match &elt.node {
                Some(NodeEnum::Constraint(c)) => {
                    match self.forbidden_use(NodeRef::Constraint(c), &[table.as_str()]) {
                        Some(why) => {
                            self.out.removed.push(Removal {
                                line: self.line,
                                what: format!(
                                    "constraint {} on {table} ({why})",
                                    constraint_name(c)
                                ),
                            });
                            bridge_cmds.push(add_constraint(c));
                        }
                        None => rest.push(elt),
                    }
                }
                _ => rest.push(elt),
            }
        }
        if bridge_cmds.is_empty() {
            return Decision::Keep;
        }
        if let Some(why) = s
            .partspec
            .as_ref()
            .and_then(|p| self.forbidden_use(NodeRef::PartitionSpec(p), &[table.as_str()]))
        {
            return self.refuse(format!(
                "the partition key of {table} uses {why}: hand-write this version's replacement (and bridge)"
            ));
        }
        self.out.bridge.push(deparse_or_comment(
            alter_table(s.relation.clone(), bridge_cmds),
            self.version,
        ));
        let mut new = s.clone();
        new.table_elts = rest;
        Decision::Rewrite(Box::new(NodeEnum::CreateStmt(new)))
    }

    fn alter_table(&mut self, s: &AlterTableStmt) -> Decision {
        if s.objtype != ObjectType::ObjectTable as i32 {
            return self.refuse_any(&NodeEnum::AlterTableStmt(s.clone()));
        }
        let table = s.relation.as_ref().map(range_var).unwrap_or_default();
        let mut kept = Vec::new();
        let mut bridged = Vec::new();
        for cmd_node in &s.cmds {
            let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd_node.node else {
                kept.push(cmd_node.clone());
                continue;
            };
            let subtype =
                AlterTableType::try_from(cmd.subtype).unwrap_or(AlterTableType::Undefined);
            let column_def = match cmd.def.as_ref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::ColumnDef(c)) => Some(c),
                _ => None,
            };
            let why = match (subtype, column_def) {
                (AlterTableType::AtAddColumn, Some(c)) => {
                    match c
                        .type_name
                        .as_ref()
                        .and_then(|t| self.forbidden_use(NodeRef::TypeName(t), &[]))
                    {
                        Some(why) => {
                            self.removed
                                .columns
                                .insert((table.clone(), c.colname.clone()));
                            Some(format!("column {table}.{} ({why})", c.colname))
                        }
                        None => None,
                    }
                }
                _ if !cmd.name.is_empty() && self.removed.column(&table, &cmd.name) => {
                    if subtype == AlterTableType::AtDropColumn {
                        self.removed
                            .columns
                            .remove(&(table.clone(), cmd.name.clone()));
                    }
                    Some(format!(
                        "{} of removed column {table}.{}",
                        subcommand(subtype),
                        cmd.name
                    ))
                }
                _ => None,
            };
            match why {
                Some(what) => {
                    self.out.removed.push(Removal {
                        line: self.line,
                        what,
                    });
                    bridged.push(cmd_node.clone());
                }
                None => {
                    if let Some(why) =
                        self.forbidden_use(NodeRef::AlterTableCmd(cmd), &[table.as_str()])
                    {
                        if subtype == AlterTableType::AtAddConstraint {
                            self.out.removed.push(Removal {
                                line: self.line,
                                what: format!("constraint on {table} ({why})"),
                            });
                            bridged.push(cmd_node.clone());
                            continue;
                        }
                        return self.refuse(format!(
                            "ALTER TABLE {table} {} uses {why}, on a column the rewrite keeps: hand-write this version's replacement (and bridge)",
                            subcommand(subtype)
                        ));
                    }
                    kept.push(cmd_node.clone());
                }
            }
        }
        if bridged.is_empty() {
            return Decision::Keep;
        }
        if kept.is_empty() {
            self.out.bridge.push(self.original.to_owned());
            return Decision::Remove;
        }
        self.out.bridge.push(deparse_or_comment(
            alter_table_cmds(s, bridged),
            self.version,
        ));
        let mut new = s.clone();
        new.cmds = kept;
        Decision::Rewrite(Box::new(NodeEnum::AlterTableStmt(new)))
    }

    fn drop(&mut self, s: &protobuf::DropStmt, stmt: &NodeEnum) -> Decision {
        let kind = ObjectType::try_from(s.remove_type).unwrap_or(ObjectType::Undefined);
        let names: Vec<String> = s
            .objects
            .iter()
            .map(|o| match &o.node {
                Some(NodeEnum::List(l)) => crate::analyze::names::qualified(&strings(&l.items)),
                Some(NodeEnum::String(s)) => s.sval.clone(),
                Some(NodeEnum::ObjectWithArgs(o)) => {
                    strings(&o.objname).last().cloned().unwrap_or_default()
                }
                _ => String::new(),
            })
            .collect();
        let gone = |n: &String| match kind {
            ObjectType::ObjectExtension => self.forbid.is_extension(n),
            ObjectType::ObjectFunction
            | ObjectType::ObjectProcedure
            | ObjectType::ObjectRoutine => self.removed.functions.contains(n),
            ObjectType::ObjectIndex
            | ObjectType::ObjectView
            | ObjectType::ObjectMatview
            | ObjectType::ObjectTable => self.removed.relations.contains(n),
            _ => false,
        };
        let hits = names.iter().filter(|n| gone(n)).count();
        if hits == 0 {
            return self.refuse_any(stmt);
        }
        if hits < names.len() {
            return self.refuse(format!(
                "DROP of {} together with objects the rewrite keeps: split it, or hand-write this version's replacement (and bridge)",
                names.join(", ")
            ));
        }
        self.remove(format!("DROP of removed {}", names.join(", ")))
    }

    fn comment(&mut self, s: &protobuf::CommentStmt, stmt: &NodeEnum) -> Decision {
        let kind = ObjectType::try_from(s.objtype).unwrap_or(ObjectType::Undefined);
        let parts = match s.object.as_ref().and_then(|o| o.node.as_ref()) {
            Some(NodeEnum::List(l)) => strings(&l.items),
            Some(NodeEnum::String(s)) => vec![s.sval.clone()],
            Some(NodeEnum::ObjectWithArgs(o)) => strings(&o.objname),
            _ => Vec::new(),
        };
        let gone = match kind {
            ObjectType::ObjectColumn if parts.len() >= 2 => {
                let column = &parts[parts.len() - 1];
                let table = crate::analyze::names::qualified(&parts[..parts.len() - 1]);
                self.removed.column(&table, column)
            }
            ObjectType::ObjectExtension => {
                parts.last().is_some_and(|e| self.forbid.is_extension(e))
            }
            ObjectType::ObjectFunction => parts
                .last()
                .is_some_and(|f| self.removed.functions.contains(f)),
            ObjectType::ObjectIndex | ObjectType::ObjectView => self
                .removed
                .relations
                .contains(&crate::analyze::names::qualified(&parts)),
            _ => false,
        };
        if gone {
            self.remove(format!("comment on removed {}", parts.join(".")))
        } else {
            self.refuse_any(stmt)
        }
    }

    fn rename(&mut self, s: &protobuf::RenameStmt, stmt: &NodeEnum) -> Decision {
        let kind = ObjectType::try_from(s.rename_type).unwrap_or(ObjectType::Undefined);
        let table = s.relation.as_ref().map(range_var).unwrap_or_default();
        match kind {
            ObjectType::ObjectColumn if self.removed.column(&table, &s.subname) => {
                self.removed
                    .columns
                    .remove(&(table.clone(), s.subname.clone()));
                self.removed
                    .columns
                    .insert((table.clone(), s.newname.clone()));
                self.remove(format!("rename of removed column {table}.{}", s.subname))
            }
            ObjectType::ObjectTable if self.removed.has_columns_of(&table) => {
                let new = crate::analyze::names::replace_last(&table, &s.newname);
                let moved: Vec<(String, String)> = self
                    .removed
                    .columns
                    .iter()
                    .filter(|(t, _)| *t == table)
                    .cloned()
                    .collect();
                for (t, c) in moved {
                    self.removed.columns.remove(&(t, c.clone()));
                    self.removed.columns.insert((new.clone(), c));
                }
                Decision::Keep
            }
            ObjectType::ObjectIndex if self.removed.relations.contains(&table) => {
                self.removed.relations.remove(&table);
                self.removed
                    .relations
                    .insert(crate::analyze::names::replace_last(&table, &s.newname));
                self.remove(format!("rename of removed index {table}"))
            }
            _ => self.refuse_any(stmt),
        }
    }
}

/// A function body that names something forbidden or removed (PL/pgSQL is read as text: a
/// name as a whole word).
fn body_mentions(options: &[Node], forbid: &Forbid, removed: &Removed) -> Option<String> {
    let body: String = options
        .iter()
        .filter_map(|o| match &o.node {
            Some(NodeEnum::DefElem(d)) if d.defname == "as" => Some(d),
            _ => None,
        })
        .flat_map(|d| match d.arg.as_ref().and_then(|a| a.node.as_ref()) {
            Some(NodeEnum::List(l)) => strings(&l.items),
            Some(NodeEnum::String(s)) => vec![s.sval.clone()],
            _ => Vec::new(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    let words: BTreeSet<&str> = body
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    for p in &forbid.provides {
        for t in p.types {
            if words.contains(t) {
                return Some(format!("type {t}"));
            }
        }
        for f in p.functions {
            if words.contains(f) {
                return Some(format!("function {f}"));
            }
        }
        for o in p.operators {
            if *o != "%" && o.len() > 1 && body.contains(o) {
                return Some(format!("operator {o}"));
            }
        }
    }
    removed
        .functions
        .iter()
        .find(|f| words.contains(f.as_str()))
        .map(|f| format!("function {f} (removed)"))
}

/// A line a migration tool reads (`-- migrate:down`, `-- +goose Down`, `-- no-transaction`):
/// never removed with the statement under it.
fn is_annotation(line: &str) -> bool {
    let rest = line.trim_start().trim_start_matches('-').trim_start();
    rest.starts_with("migrate:")
        || rest.starts_with("+goose")
        || rest.starts_with("+migrate")
        || rest.starts_with("no-transaction")
}

/// `NOT NULL` (or `PRIMARY KEY`) and no default, identity or generation expression.
fn not_null_without_default(c: &ColumnDef) -> bool {
    let kinds: Vec<ConstrType> = c
        .constraints
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::Constraint(k)) => ConstrType::try_from(k.contype).ok(),
            _ => None,
        })
        .collect();
    let not_null = c.is_not_null
        || kinds
            .iter()
            .any(|k| matches!(k, ConstrType::ConstrNotnull | ConstrType::ConstrPrimary));
    let filled = c.raw_default.is_some()
        || kinds.iter().any(|k| {
            matches!(
                k,
                ConstrType::ConstrDefault
                    | ConstrType::ConstrIdentity
                    | ConstrType::ConstrGenerated
            )
        });
    not_null && !filled
}

fn walk<'a>(node: NodeRef<'a>, f: &mut dyn FnMut(NodeRef<'a>)) {
    f(node);
    for_each_child(node, &mut |c| walk(c, f));
}

/// Every relation a statement names.
fn relations_in(node: NodeRef<'_>) -> Vec<String> {
    let mut out = Vec::new();
    walk(node, &mut |n| {
        if let NodeRef::RangeVar(rv) = n {
            out.push(range_var(rv));
        }
    });
    out
}

fn qualified_index(s: &protobuf::IndexStmt) -> String {
    match s.relation.as_ref() {
        Some(rv) if !rv.schemaname.is_empty() && rv.schemaname != "public" => {
            format!("{}.{}", rv.schemaname, s.idxname)
        }
        _ => s.idxname.clone(),
    }
}

fn constraint_name(c: &Constraint) -> String {
    if c.conname.is_empty() {
        match ConstrType::try_from(c.contype).unwrap_or(ConstrType::Undefined) {
            ConstrType::ConstrCheck => "CHECK".into(),
            ConstrType::ConstrPrimary => "PRIMARY KEY".into(),
            ConstrType::ConstrUnique => "UNIQUE".into(),
            ConstrType::ConstrForeign => "FOREIGN KEY".into(),
            ConstrType::ConstrExclusion => "EXCLUDE".into(),
            _ => "(unnamed)".into(),
        }
    } else {
        c.conname.clone()
    }
}

fn subcommand(t: AlterTableType) -> &'static str {
    match t {
        AlterTableType::AtAddColumn => "ADD COLUMN",
        AlterTableType::AtColumnDefault => "ALTER COLUMN … DEFAULT",
        AlterTableType::AtDropNotNull => "DROP NOT NULL",
        AlterTableType::AtSetNotNull => "SET NOT NULL",
        AlterTableType::AtSetStatistics => "SET STATISTICS",
        AlterTableType::AtSetStorage => "SET STORAGE",
        AlterTableType::AtDropColumn => "DROP COLUMN",
        AlterTableType::AtAddConstraint => "ADD CONSTRAINT",
        AlterTableType::AtDropConstraint => "DROP CONSTRAINT",
        AlterTableType::AtAlterColumnType => "ALTER COLUMN … TYPE",
        _ => "subcommand",
    }
}

fn add_column(c: &ColumnDef) -> Node {
    cmd(
        AlterTableType::AtAddColumn,
        NodeEnum::ColumnDef(Box::new(c.clone())),
    )
}

fn add_constraint(c: &Constraint) -> Node {
    cmd(
        AlterTableType::AtAddConstraint,
        NodeEnum::Constraint(Box::new(c.clone())),
    )
}

fn cmd(subtype: AlterTableType, def: NodeEnum) -> Node {
    Node {
        node: Some(NodeEnum::AlterTableCmd(Box::new(AlterTableCmd {
            subtype: subtype as i32,
            def: Some(Box::new(Node { node: Some(def) })),
            behavior: protobuf::DropBehavior::DropRestrict as i32,
            ..Default::default()
        }))),
    }
}

fn alter_table(relation: Option<protobuf::RangeVar>, cmds: Vec<Node>) -> NodeEnum {
    NodeEnum::AlterTableStmt(AlterTableStmt {
        relation,
        cmds,
        objtype: ObjectType::ObjectTable as i32,
        missing_ok: false,
    })
}

fn alter_table_cmds(s: &AlterTableStmt, cmds: Vec<Node>) -> NodeEnum {
    let mut new = s.clone();
    new.cmds = cmds;
    NodeEnum::AlterTableStmt(new)
}

/// PostgreSQL's own SQL for a statement tree, laid out on several lines.
pub fn deparse(node: &NodeEnum, version: i32) -> Result<String, String> {
    let result = protobuf::ParseResult {
        version,
        stmts: vec![RawStmt {
            stmt: Some(Box::new(Node {
                node: Some(node.clone()),
            })),
            stmt_location: 0,
            stmt_len: 0,
        }],
    };
    pg_query::deparse(
        &result,
        pg_query::DeparseOptions {
            pretty_print: true,
            indent_size: 4,
            ..Default::default()
        },
    )
    .map(|s| s.trim_end().trim_end_matches(';').to_owned())
    .map_err(|e| format!("cannot deparse a rewritten statement: {e}"))
}

fn deparse_or_comment(node: NodeEnum, version: i32) -> String {
    deparse(&node, version).unwrap_or_else(|e| format!("-- {e}"))
}

/// Each statement's bytes in `text`, from its first token to just before its `;`.
fn statement_ranges(text: &str, stmts: &[RawStmt]) -> Vec<Range<usize>> {
    stmts
        .iter()
        .map(|s| {
            let from = s.stmt_location.max(0) as usize;
            let to = if s.stmt_len == 0 {
                text.len()
            } else {
                from + s.stmt_len as usize
            };
            let start = skip_blank(text, from).min(to);
            let mut end = to;
            while end > start && text.as_bytes()[end - 1].is_ascii_whitespace() {
                end -= 1;
            }
            start..end
        })
        .collect()
}

/// The bytes to delete for a removed statement: its lines, the comment lines directly above it
/// (not the file's header), its `;` and the rest of its last line, and one blank line after it
/// when one comes before it too.
///
/// `text` is what the tool runs (annotation lines and the other direction blanked), so those are
/// never taken for comments; `source` is the file, so only lines blank there are taken as blank.
fn removal_range(text: &str, file: &str, span: Range<usize>) -> Range<usize> {
    let source = text;
    let b = source.as_bytes();
    let mut start = source[..span.start].rfind('\n').map_or(0, |i| i + 1);
    if !source[start..span.start].trim().is_empty() {
        start = span.start;
    }
    // Comment lines directly above, unless they reach the top of the file (the header).
    let mut above = start;
    while above > 0 {
        let prev = source[..above - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = &source[prev..above];
        if line.trim_start().starts_with("--") && !is_annotation(line) && prev > 0 {
            above = prev;
        } else {
            break;
        }
    }
    if above != start && above > header_end(source) {
        start = above;
    }
    let mut end = span.end;
    if b.get(end) == Some(&b';') {
        end += 1;
    }
    while end < b.len() && b[end] != b'\n' && b[end].is_ascii_whitespace() {
        end += 1;
    }
    if b.get(end) == Some(&b'\n') {
        end += 1;
    }
    let blank_before = start >= 2 && &source[start - 2..start] == "\n\n" || start == 0;
    if blank_before {
        let rest = &source[end..];
        if let Some(nl) = rest.find('\n')
            && rest[..nl].trim().is_empty()
            && file[end..end + nl].trim().is_empty()
        {
            end += nl + 1;
        }
    }
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn part(sql: &str) -> Part {
        Part::whole(
            "001_x.sql".into(),
            PathBuf::from("001_x.sql"),
            sql.into(),
            false,
        )
    }

    fn run(sql: &str, removed: &mut Removed) -> (String, Rewrite) {
        let p = part(sql);
        let rw = rewrite(&p, &Forbid::new(&["vector".into()]).unwrap(), removed).unwrap();
        (rw.apply(sql), rw)
    }

    #[test]
    fn plain_migrations_are_kept_byte_for_byte() {
        let sql =
            "-- header\nCREATE TABLE t (id int PRIMARY KEY, n text);\nCREATE INDEX t_n ON t (n);\n";
        let (out, rw) = run(sql, &mut Removed::default());
        assert!(!rw.changed());
        assert_eq!(out, sql);
        assert_eq!(rw.kept, 2);
    }

    #[test]
    fn vector_columns_indexes_and_the_extension_go_to_the_bridge() {
        let sql = "-- header\n\nCREATE EXTENSION IF NOT EXISTS vector;\n\nCREATE TABLE t (\n    id int PRIMARY KEY,\n    embedding vector(3),\n    n text\n);\n\nCREATE INDEX t_e ON t USING hnsw (embedding vector_cosine_ops);\n\nCREATE INDEX t_n ON t (n);\n";
        let mut removed = Removed::default();
        let (out, rw) = run(sql, &mut removed);
        assert!(rw.refusals.is_empty(), "{:?}", rw.refusals);
        assert!(rw.creates_extension);
        assert!(!out.contains("vector"), "{out}");
        assert!(out.contains("CREATE INDEX t_n ON t (n);"), "{out}");
        assert!(out.starts_with("-- header\n\nCREATE TABLE t"), "{out}");
        assert_eq!(rw.bridge.len(), 3, "{:?}", rw.bridge);
        assert_eq!(rw.bridge[0], "CREATE EXTENSION IF NOT EXISTS vector");
        assert!(
            rw.bridge[1].contains("ADD COLUMN embedding vector(3)"),
            "{}",
            rw.bridge[1]
        );
        assert!(rw.bridge[2].contains("hnsw"));
        assert!(removed.column("t", "embedding"));
    }

    #[test]
    fn later_statements_on_removed_columns_are_removed() {
        let mut removed = Removed::default();
        run(
            "CREATE TABLE t (id int, embedding vector(3));\nCREATE INDEX t_e ON t USING hnsw (embedding vector_l2_ops);\n",
            &mut removed,
        );
        let sql = "DROP INDEX t_e;\nALTER TABLE t ALTER COLUMN embedding TYPE vector(5) USING NULL;\nALTER TABLE t ADD COLUMN n text, ALTER COLUMN embedding SET STORAGE plain;\nCOMMENT ON COLUMN t.embedding IS 'x';\nUPDATE t SET embedding = NULL;\n";
        let (out, rw) = run(sql, &mut removed);
        assert!(rw.refusals.is_empty(), "{:?}", rw.refusals);
        assert_eq!(out.trim(), "ALTER TABLE t\n    ADD COLUMN n text;", "{out}");
        assert_eq!(rw.bridge.len(), 5, "{:?}", rw.bridge);
    }

    #[test]
    fn unsafe_rewrites_are_refused_with_their_line() {
        let sql = "CREATE TABLE t (id int);\nDO $$ BEGIN PERFORM '[1]'::vector; END $$;\nCREATE DOMAIN emb AS vector(3);\n";
        let (_, rw) = run(sql, &mut Removed::default());
        let lines: Vec<u32> = rw.refusals.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 3], "{:?}", rw.refusals);
    }

    #[test]
    fn functions_over_forbidden_types_and_their_triggers_go() {
        let sql = "CREATE FUNCTION f(v vector) RETURNS float8 LANGUAGE sql AS $$ SELECT 1.0 $$;\nCREATE FUNCTION g() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.d := cosine_distance(NEW.a, NEW.b); RETURN NEW; END $$;\nCREATE TRIGGER tg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION g();\nCREATE FUNCTION h() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n";
        let (out, rw) = run(sql, &mut Removed::default());
        assert!(rw.refusals.is_empty(), "{:?}", rw.refusals);
        assert_eq!(
            out.trim(),
            "CREATE FUNCTION h() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;"
        );
        assert_eq!(rw.removed.len(), 3);
    }

    #[test]
    fn tool_annotations_stay() {
        let sql =
            "-- migrate:up\nCREATE EXTENSION vector;\n\n-- migrate:down\nDROP EXTENSION vector;\n";
        let mut p = part(sql);
        p.text = sql.replacen("DROP EXTENSION vector;", "                      ", 1);
        let rw = rewrite(
            &p,
            &Forbid::new(&["vector".into()]).unwrap(),
            &mut Removed::default(),
        )
        .unwrap();
        assert_eq!(
            rw.apply(sql),
            "-- migrate:up\n\n-- migrate:down\nDROP EXTENSION vector;\n"
        );
        let mut d = part(sql);
        d.text = sql.replacen("CREATE EXTENSION vector;", "                        ", 1);
        let rw = rewrite(
            &d,
            &Forbid::new(&["vector".into()]).unwrap(),
            &mut Removed::default(),
        )
        .unwrap();
        assert_eq!(
            rw.apply(sql),
            "-- migrate:up\nCREATE EXTENSION vector;\n\n-- migrate:down\n"
        );
    }

    #[test]
    fn a_not_null_forbidden_column_cannot_be_bridged() {
        let (_, rw) = run(
            "CREATE TABLE t (id int,\n  e vector(3) NOT NULL);\n",
            &mut Removed::default(),
        );
        assert_eq!(rw.refusals.len(), 1, "{:?}", rw.refusals);
        assert!(rw.refusals[0].why.contains("NOT NULL without a default"));
    }

    #[test]
    fn unknown_extensions_are_refused_by_name() {
        let e = Forbid::new(&["nosuch".into()]).unwrap_err();
        assert!(e.contains("nosuch") && e.contains("vector"), "{e}");
    }
}
