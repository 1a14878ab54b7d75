//! The other schema objects: `DROP` of anything, renames and `SET SCHEMA`, schemas, extensions,
//! types, sequences, views and materialized views, policies, comments, owners and grants.

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterDomainStmt, AlterEnumStmt, AlterObjectSchemaStmt, AlterOwnerStmt, AlterPolicyStmt,
    AlterSeqStmt, CommentStmt, CreateExtensionStmt, CreatePolicyStmt, CreateSchemaStmt,
    CreateSeqStmt, CreateTableAsStmt, DropBehavior, DropStmt, GrantStmt, GrantTargetType, Node,
    ObjectType, RenameStmt, ViewStmt,
};

use super::names::{last, named_object, qualified, range_var, replace_last, routine, strings};
use super::queries::Scope;
use super::source::Source;
use super::{Analyzer, Ctx, Stmt};
use crate::facts::{Action, CreateMode, ExtensionUse, Object, RelKind};

/// The name an object is written with (for finding its line).
fn written_name(o: &Object) -> &str {
    match o {
        Object::Column { column: n, .. }
        | Object::Constraint { name: n, .. }
        | Object::Trigger { name: n, .. }
        | Object::Policy { name: n, .. } => n,
        Object::Routine { name, .. } => last(name),
        Object::Extension(n)
        | Object::Schema(n)
        | Object::Type(n)
        | Object::Relation(n)
        | Object::Function(n)
        | Object::OperatorClass(n)
        | Object::AccessMethod(n)
        | Object::Operator(n) => last(n),
        Object::EnumLabel { label, .. } => label,
    }
}

/// The tables of a FROM item: (alias or name, table).
fn collect_sources(item: &Node, out: &mut Vec<(String, String)>) {
    match &item.node {
        Some(NodeEnum::RangeVar(rv)) => {
            let alias = rv
                .alias
                .as_ref()
                .map_or_else(|| rv.relname.clone(), |a| a.aliasname.clone());
            out.push((alias, range_var(rv)));
        }
        Some(NodeEnum::JoinExpr(j)) => {
            for side in [&j.larg, &j.rarg].into_iter().flatten() {
                collect_sources(side, out);
            }
        }
        _ => {}
    }
}

impl Analyzer<'_> {
    pub(crate) fn drop_objects(&mut self, src: &Source<'_>, st: &Stmt, s: &DropStmt, ctx: &Ctx) {
        if s.concurrent {
            self.tx_only(st.line, "DROP INDEX CONCURRENTLY");
        }
        let cascade = s.behavior() == DropBehavior::DropCascade;
        for o in &s.objects {
            if let Some(obj) = named_object(s.remove_type(), o) {
                let l = src.ident_line(st.start, st.end, written_name(&obj));
                self.drop(ctx, obj, l, s.missing_ok, cascade);
            }
        }
    }

    pub(crate) fn rename_stmt(&mut self, src: &Source<'_>, st: &Stmt, s: &RenameStmt, ctx: &Ctx) {
        use ObjectType as T;
        let rel = s.relation.as_ref().map(range_var).unwrap_or_default();
        let rel_line = s.relation.as_ref().map(|r| src.line(r.location));
        let member = |make: fn(String, String) -> Object| {
            (
                make(rel.clone(), s.subname.clone()),
                make(rel.clone(), s.newname.clone()),
            )
        };
        let (from, to) = match s.rename_type() {
            T::ObjectColumn | T::ObjectAttribute => {
                member(|table, column| Object::Column { table, column })
            }
            T::ObjectTabconstraint => member(|table, name| Object::Constraint { table, name }),
            T::ObjectTrigger => member(|table, name| Object::Trigger { table, name }),
            T::ObjectPolicy => member(|table, name| Object::Policy { table, name }),
            T::ObjectTable
            | T::ObjectView
            | T::ObjectIndex
            | T::ObjectSequence
            | T::ObjectMatview
            | T::ObjectForeignTable => (
                Object::Relation(rel.clone()),
                Object::Relation(replace_last(&rel, &s.newname)),
            ),
            T::ObjectSchema => (
                Object::Schema(s.subname.clone()),
                Object::Schema(s.newname.clone()),
            ),
            other => {
                let Some(old) = s.object.as_deref().and_then(|o| named_object(other, o)) else {
                    return;
                };
                let renamed = match &old {
                    Object::Function(n) => Object::Function(replace_last(n, &s.newname)),
                    Object::Routine { name, args } => Object::Routine {
                        name: replace_last(name, &s.newname),
                        args: args.clone(),
                    },
                    Object::Type(n) => Object::Type(replace_last(n, &s.newname)),
                    _ => return,
                };
                (old, renamed)
            }
        };
        let line = match (&from, rel_line) {
            (Object::Relation(_), Some(l)) => l,
            _ => src.ident_line(st.start, st.end, written_name(&from)),
        };
        if !matches!(from, Object::Relation(_)) && !rel.is_empty() {
            self.reference_if(
                ctx,
                Object::Relation(rel.clone()),
                rel_line.unwrap_or(line),
                s.missing_ok,
            );
        }
        self.rename(ctx, from, to, line, s.missing_ok);
    }

    pub(crate) fn set_schema(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &AlterObjectSchemaStmt,
        ctx: &Ctx,
    ) {
        use ObjectType as T;
        let moved = |name: &str| qualified(&[s.newschema.clone(), last(name).to_owned()]);
        let (from, to) = match s.object_type() {
            T::ObjectTable
            | T::ObjectView
            | T::ObjectSequence
            | T::ObjectMatview
            | T::ObjectForeignTable => {
                let Some(rv) = &s.relation else {
                    return;
                };
                let rel = range_var(rv);
                (Object::Relation(rel.clone()), Object::Relation(moved(&rel)))
            }
            other => {
                let Some(old) = s.object.as_deref().and_then(|o| named_object(other, o)) else {
                    return;
                };
                let new = match &old {
                    Object::Function(n) => Object::Function(moved(n)),
                    Object::Routine { name, args } => Object::Routine {
                        name: moved(name),
                        args: args.clone(),
                    },
                    Object::Type(n) => Object::Type(moved(n)),
                    _ => {
                        self.reference_if(ctx, old, st.line, s.missing_ok);
                        return;
                    }
                };
                (old, new)
            }
        };
        if s.newschema != "public" {
            self.reference(ctx, Object::Schema(s.newschema.clone()), st.line);
        }
        let line = src.ident_line(st.start, st.end, written_name(&from));
        self.rename(ctx, from, to, line, s.missing_ok);
    }

    pub(crate) fn create_extension(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &CreateExtensionStmt,
        ctx: &Ctx,
    ) {
        let ext = s.extname.clone();
        self.out.facts.extension_uses.push(ExtensionUse {
            extension: ext.clone(),
            what: format!("CREATE EXTENSION {ext}"),
            line: st.line,
        });
        let obj = Object::Extension(ext);
        for o in &s.options {
            if let Some(NodeEnum::DefElem(de)) = &o.node
                && de.defname == "schema"
                && let Some(NodeEnum::String(v)) = de.arg.as_deref().and_then(|a| a.node.as_ref())
                && v.sval != "public"
            {
                let l = src.ident_line(st.start, st.end, &v.sval);
                self.reference(&ctx.kept_by(obj.clone()), Object::Schema(v.sval.clone()), l);
            }
        }
        self.create(
            ctx,
            obj,
            st.line,
            CreateMode::if_not_exists(s.if_not_exists),
            None,
        );
    }

    pub(crate) fn create_schema(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &CreateSchemaStmt,
        ctx: &Ctx,
    ) {
        if !s.schemaname.is_empty() {
            let l = src.ident_line(st.start, st.end, &s.schemaname);
            self.create(
                ctx,
                Object::Schema(s.schemaname.clone()),
                l,
                CreateMode::if_not_exists(s.if_not_exists),
                None,
            );
        }
        for e in &s.schema_elts {
            if let Some(n) = &e.node {
                self.stmt += 1;
                self.statement(src, st.start, st.end, n.to_ref(), ctx);
            }
        }
    }

    pub(crate) fn create_view(&mut self, src: &Source<'_>, _st: &Stmt, s: &ViewStmt, ctx: &Ctx) {
        let Some(rv) = &s.view else {
            return;
        };
        let view = range_var(rv);
        let kept = ctx.kept_by(Object::Relation(view.clone()));
        self.walk_opt(src, &s.query, &Scope::default(), &kept);
        let line = src.line(rv.location);
        self.create_rel(
            ctx,
            view.clone(),
            RelKind::View,
            line,
            CreateMode::or_replace(s.replace),
        );
        let aliases = strings(&s.aliases);
        self.output_columns(ctx, &view, s.query.as_deref(), &aliases, line);
    }

    /// The columns a view or `CREATE TABLE … AS` gets from its query: the names of its select
    /// list (`AS` names, column names, function names; `aliases` first), and for `*` / `t.*`
    /// the columns its tables have now.
    fn output_columns(
        &mut self,
        ctx: &Ctx,
        rel: &str,
        query: Option<&Node>,
        aliases: &[String],
        line: u32,
    ) {
        let Some(NodeEnum::SelectStmt(sel)) = query.and_then(|q| q.node.as_ref()) else {
            return;
        };
        let mut sel: &pg_query::protobuf::SelectStmt = sel;
        // A CTE is no table: its `*` is not known here.
        let mut ctes: Vec<String> = Vec::new();
        // A set operation takes its names from its first branch.
        loop {
            ctes.extend(sel.with_clause.iter().flat_map(|w| &w.ctes).filter_map(
                |c| match &c.node {
                    Some(NodeEnum::CommonTableExpr(c)) => Some(c.ctename.clone()),
                    _ => None,
                },
            ));
            match sel.larg.as_deref() {
                Some(l) => sel = l,
                None => break,
            }
        }
        let mut sources: Vec<(String, String)> = Vec::new();
        for f in &sel.from_clause {
            collect_sources(f, &mut sources);
        }
        let before = sources.len();
        sources.retain(|(_, table)| !ctes.contains(table));
        let mut open = sources.len() < before;
        let owner = Some(Object::Relation(rel.to_owned()));
        let mut n = 0;
        for t in &sel.target_list {
            let Some(NodeEnum::ResTarget(rt)) = &t.node else {
                continue;
            };
            let val = rt.val.as_deref().and_then(|v| v.node.as_ref());
            if let Some(NodeEnum::ColumnRef(c)) = val
                && matches!(
                    c.fields.last().and_then(|f| f.node.as_ref()),
                    Some(NodeEnum::AStar(_))
                )
            {
                let qualifier = strings(&c.fields).last().cloned();
                let mut matched = false;
                for (alias, table) in &sources {
                    if qualifier.as_ref().is_none_or(|q| q == alias) {
                        matched = true;
                        self.push(
                            ctx,
                            Action::CopyColumns {
                                from: table.clone(),
                            },
                            Object::Relation(rel.to_owned()),
                            line,
                        );
                    }
                }
                // `*` of a CTE, subquery or function: columns this analysis does not know.
                open |= !matched || qualifier.is_none() && sources.len() < sel.from_clause.len();
                continue;
            }
            let name = if let Some(a) = aliases.get(n) {
                a.clone()
            } else if !rt.name.is_empty() {
                rt.name.clone()
            } else {
                match val {
                    Some(NodeEnum::ColumnRef(c)) => {
                        strings(&c.fields).last().cloned().unwrap_or_default()
                    }
                    Some(NodeEnum::FuncCall(f)) => {
                        strings(&f.funcname).last().cloned().unwrap_or_default()
                    }
                    _ => String::new(),
                }
            };
            n += 1;
            if name.is_empty() {
                open = true;
                continue;
            }
            let column = Object::Column {
                table: rel.to_owned(),
                column: name,
            };
            self.create(ctx, column, line, CreateMode::Implicit, owner.clone());
        }
        if open {
            let unknown = Object::Column {
                table: rel.to_owned(),
                column: crate::facts::UNKNOWN_COLUMNS.to_owned(),
            };
            self.create(ctx, unknown, line, CreateMode::Implicit, owner);
        }
    }

    pub(crate) fn create_table_as(
        &mut self,
        src: &Source<'_>,
        _st: &Stmt,
        s: &CreateTableAsStmt,
        ctx: &Ctx,
    ) {
        let Some(rel) = s.into.as_ref().and_then(|i| i.rel.as_ref()) else {
            self.walk_opt(src, &s.query, &Scope::default(), ctx);
            return;
        };
        let name = range_var(rel);
        let matview = s.objtype() == ObjectType::ObjectMatview;
        // A materialized view depends on what its query uses; a table made from a query does not.
        let kept = if matview {
            ctx.kept_by(Object::Relation(name.clone()))
        } else {
            ctx.clone()
        };
        self.walk_opt(src, &s.query, &Scope::default(), &kept);
        let kind = if matview {
            RelKind::MaterializedView
        } else {
            RelKind::Table
        };
        let line = src.line(rel.location);
        let cols = s
            .into
            .as_ref()
            .map(|i| strings(&i.col_names))
            .unwrap_or_default();
        self.create_rel(
            ctx,
            name.clone(),
            kind,
            line,
            CreateMode::if_not_exists(s.if_not_exists),
        );
        self.output_columns(ctx, &name, s.query.as_deref(), &cols, line);
    }

    /// `OWNED BY t.c` among sequence options: the column, or `None` for `OWNED BY NONE`.
    fn owned_by(options: &[Node]) -> Option<Option<Object>> {
        for o in options {
            if let Some(NodeEnum::DefElem(de)) = &o.node
                && de.defname == "owned_by"
                && let Some(NodeEnum::List(l)) = de.arg.as_deref().and_then(|a| a.node.as_ref())
            {
                let parts = strings(&l.items);
                return Some(match parts.split_last() {
                    Some((c, t)) if !t.is_empty() => Some(Object::Column {
                        table: qualified(t),
                        column: c.clone(),
                    }),
                    _ => None,
                });
            }
        }
        None
    }

    pub(crate) fn create_sequence(
        &mut self,
        src: &Source<'_>,
        _st: &Stmt,
        s: &CreateSeqStmt,
        ctx: &Ctx,
    ) {
        let Some(rv) = &s.sequence else {
            return;
        };
        let seq = range_var(rv);
        let line = src.line(rv.location);
        self.walk_all(
            src,
            &s.options,
            &Scope::default(),
            &ctx.kept_by(Object::Relation(seq.clone())),
        );
        let owner = Self::owned_by(&s.options).flatten();
        if let Some(c) = &owner {
            self.reference(ctx, c.clone(), line);
        }
        self.create_rel_owned(
            ctx,
            seq,
            RelKind::Sequence,
            line,
            CreateMode::if_not_exists(s.if_not_exists),
            owner,
        );
    }

    pub(crate) fn alter_sequence(
        &mut self,
        src: &Source<'_>,
        _st: &Stmt,
        s: &AlterSeqStmt,
        ctx: &Ctx,
    ) {
        let Some(rv) = &s.sequence else {
            return;
        };
        let seq = Object::Relation(range_var(rv));
        let line = src.line(rv.location);
        self.reference_if(ctx, seq.clone(), line, s.missing_ok);
        if let Some(owner) = Self::owned_by(&s.options) {
            if let Some(c) = &owner {
                self.reference(ctx, c.clone(), line);
            }
            let e = self.push(ctx, Action::Attach { owner }, seq, line);
            e.conditional = s.missing_ok;
        }
    }

    pub(crate) fn create_type(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        node: pg_query::NodeRef<'_>,
        ctx: &Ctx,
    ) {
        let none = Scope::default();
        let name = match node {
            pg_query::NodeRef::CreateEnumStmt(s) => qualified(&strings(&s.type_name)),
            pg_query::NodeRef::CreateRangeStmt(s) => {
                let name = qualified(&strings(&s.type_name));
                self.walk_all(
                    src,
                    &s.params,
                    &none,
                    &ctx.kept_by(Object::Type(name.clone())),
                );
                name
            }
            pg_query::NodeRef::CreateDomainStmt(s) => {
                let name = qualified(&strings(&s.domainname));
                let kept = ctx.kept_by(Object::Type(name.clone()));
                if let Some(t) = &s.type_name {
                    self.walk(src, pg_query::NodeRef::TypeName(t), &none, &kept);
                }
                self.walk_all(src, &s.constraints, &none, &kept);
                name
            }
            pg_query::NodeRef::CompositeTypeStmt(s) => {
                let Some(rv) = &s.typevar else {
                    return;
                };
                let name = range_var(rv);
                self.walk_all(
                    src,
                    &s.coldeflist,
                    &none,
                    &ctx.kept_by(Object::Type(name.clone())),
                );
                name
            }
            _ => return,
        };
        let l = src.ident_line(st.start, st.end, last(&name));
        self.create(ctx, Object::Type(name), l, CreateMode::Plain, None);
        if let pg_query::NodeRef::CreateEnumStmt(s) = node {
            self.detail(crate::facts::Detail::Enum(strings(&s.vals)));
        }
    }

    pub(crate) fn alter_enum(&mut self, src: &Source<'_>, st: &Stmt, s: &AlterEnumStmt, ctx: &Ctx) {
        let name = qualified(&strings(&s.type_name));
        let l = src.ident_line(st.start, st.end, last(&name));
        self.reference(ctx, Object::Type(name.clone()), l);
        if !s.new_val.is_empty() {
            let old = (!s.old_val.is_empty()).then(|| s.old_val.clone());
            self.push(
                ctx,
                Action::EnumLabel {
                    old,
                    new: s.new_val.clone(),
                },
                Object::Type(name),
                l,
            );
        }
    }

    pub(crate) fn alter_domain(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &AlterDomainStmt,
        ctx: &Ctx,
    ) {
        let name = qualified(&strings(&s.type_name));
        let l = src.ident_line(st.start, st.end, last(&name));
        self.reference_if(ctx, Object::Type(name.clone()), l, s.missing_ok);
        self.walk_opt(
            src,
            &s.def,
            &Scope::default(),
            &ctx.kept_by(Object::Type(name)),
        );
    }

    pub(crate) fn comment(&mut self, src: &Source<'_>, st: &Stmt, s: &CommentStmt, ctx: &Ctx) {
        if let Some(obj) = s
            .object
            .as_deref()
            .and_then(|o| named_object(s.objtype(), o))
        {
            let l = src.ident_line(st.start, st.end, written_name(&obj));
            self.reference(ctx, obj, l);
        }
    }

    pub(crate) fn create_policy(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &CreatePolicyStmt,
        ctx: &Ctx,
    ) {
        let Some(rv) = &s.table else {
            return;
        };
        let rel = range_var(rv);
        let policy = Object::Policy {
            table: rel.clone(),
            name: s.policy_name.clone(),
        };
        self.reference(ctx, Object::Relation(rel.clone()), src.line(rv.location));
        let kept = ctx.kept_by(policy.clone());
        let scope = Scope::of(&rel);
        self.walk_opt(src, &s.qual, &scope, &kept);
        self.walk_opt(src, &s.with_check, &scope, &kept);
        let l = src.ident_line(st.start, st.end, &s.policy_name);
        self.create(
            ctx,
            policy,
            l,
            CreateMode::Plain,
            Some(Object::Relation(rel)),
        );
    }

    pub(crate) fn alter_policy(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &AlterPolicyStmt,
        ctx: &Ctx,
    ) {
        let Some(rv) = &s.table else {
            return;
        };
        let rel = range_var(rv);
        let policy = Object::Policy {
            table: rel.clone(),
            name: s.policy_name.clone(),
        };
        self.reference(ctx, Object::Relation(rel.clone()), src.line(rv.location));
        let l = src.ident_line(st.start, st.end, &s.policy_name);
        self.reference(ctx, policy.clone(), l);
        let kept = ctx.kept_by(policy);
        let scope = Scope::of(&rel);
        self.walk_opt(src, &s.qual, &scope, &kept);
        self.walk_opt(src, &s.with_check, &scope, &kept);
    }

    pub(crate) fn alter_owner(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &AlterOwnerStmt,
        ctx: &Ctx,
    ) {
        let obj = match (&s.relation, s.object.as_deref()) {
            (Some(rv), _) => Some(Object::Relation(range_var(rv))),
            (None, Some(o)) => named_object(s.object_type(), o),
            _ => None,
        };
        if let Some(obj) = obj {
            let l = src.ident_line(st.start, st.end, written_name(&obj));
            self.reference(ctx, obj, l);
        }
    }

    pub(crate) fn grant(&mut self, src: &Source<'_>, st: &Stmt, s: &GrantStmt, ctx: &Ctx) {
        use ObjectType as T;
        if s.targtype() == GrantTargetType::AclTargetAllInSchema {
            for o in &s.objects {
                if let Some(NodeEnum::String(v)) = &o.node {
                    let l = src.ident_line(st.start, st.end, &v.sval);
                    self.reference(ctx, Object::Schema(v.sval.clone()), l);
                }
            }
            return;
        }
        if s.targtype() != GrantTargetType::AclTargetObject {
            return;
        }
        for o in &s.objects {
            let obj = match (&o.node, s.objtype()) {
                (Some(NodeEnum::RangeVar(rv)), _) => Some(Object::Relation(range_var(rv))),
                (Some(NodeEnum::ObjectWithArgs(f)), _) => Some(routine(f)),
                (Some(NodeEnum::String(v)), T::ObjectSchema) => {
                    Some(Object::Schema(v.sval.clone()))
                }
                (Some(_), T::ObjectType | T::ObjectDomain) => named_object(T::ObjectType, o),
                _ => None,
            };
            let Some(obj) = obj else {
                continue;
            };
            let l = src.ident_line(st.start, st.end, written_name(&obj));
            if let Object::Relation(table) = &obj {
                for p in &s.privileges {
                    if let Some(NodeEnum::AccessPriv(ap)) = &p.node {
                        for c in strings(&ap.cols) {
                            self.reference(
                                ctx,
                                Object::Column {
                                    table: table.clone(),
                                    column: c,
                                },
                                l,
                            );
                        }
                    }
                }
            }
            self.reference(ctx, obj, l);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::testing::has;

    #[test]
    fn drops_with_their_behaviour() {
        has(
            "DROP TABLE IF EXISTS a, b CASCADE; DROP FUNCTION f(numeric, timestamp with time zone); DROP FUNCTION g;",
            &[
                "ref relation a (conditional)",
                "drop cascade relation a",
                "drop cascade relation b",
                "drop function f(numeric,timestamptz)",
                "drop function g",
            ],
        );
    }

    #[test]
    fn renames_and_schema_moves() {
        has(
            "ALTER TABLE a RENAME TO b; ALTER TABLE b RENAME COLUMN x TO y; ALTER TYPE mood RENAME TO feeling; \
             ALTER TABLE b SET SCHEMA archive; ALTER TYPE s ADD VALUE 'z';",
            &[
                "rename to relation b: relation a",
                "rename to column b.y: column b.x",
                "rename to type feeling: type mood",
                "ref schema archive",
                "rename to relation archive.b: relation b",
                "label None -> z of type s",
            ],
        );
    }

    #[test]
    fn views_keep_what_they_use_and_policies_their_expressions() {
        has(
            "CREATE OR REPLACE VIEW v AS SELECT o.id FROM orders o JOIN lines l ON l.order_id = o.id;",
            &[
                "ref relation orders (by relation v)",
                "ref column lines.order_id (by relation v)",
                "create or replace relation v",
            ],
        );
        has(
            "CREATE POLICY own ON docs USING (owner = current_user);",
            &[
                "ref column docs.owner (by policy own on docs)",
                "create policy own on docs (owner relation docs)",
            ],
        );
        has(
            "CREATE SEQUENCE s OWNED BY t.id; COMMENT ON COLUMN t.c IS 'x'; GRANT SELECT (c) ON t TO r;",
            &["create relation s (owner column t.id)", "ref column t.c"],
        );
    }
}
