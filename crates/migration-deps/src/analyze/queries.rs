//! Queries and expressions: every relation, column, function, type and operator they use.
//!
//! `SELECT`, `INSERT`, `UPDATE`, `DELETE` and `MERGE` get scopes (their tables and aliases,
//! CTEs, the branches of `UNION`/`INTERSECT`/`EXCEPT` each with its own), so a column reference
//! is resolved to the table it belongs to; every other node is walked through all its children
//! (the generated [`for_each_child`]), so no expression is missed wherever it sits.

use pg_query::NodeRef;
use pg_query::protobuf::{
    AExprKind, DeleteStmt, InsertStmt, MergeStmt, Node, SelectStmt, SetOperation, UpdateStmt,
    WithClause,
};

use super::names::{qualified, range_var, regclass_name, strings, type_name};
use super::source::Source;
use super::{Analyzer, Ctx};
use crate::extensions;
use crate::facts::Object;
use crate::syntax::children::for_each_child;

/// Relations visible to column references, innermost scope last.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    /// (name or alias, relation); relation `None` for subqueries and functions.
    entries: Vec<(String, Option<String>)>,
    ctes: Vec<String>,
    parent: Option<Box<Scope>>,
}

impl Scope {
    /// The scope of one table (a constraint's, an index's, a default's).
    pub(crate) fn of(rel: &str) -> Self {
        Scope {
            entries: vec![(super::names::last(rel).to_owned(), Some(rel.to_owned()))],
            ..Default::default()
        }
    }

    /// Makes `name` (an alias) stand for `rel`.
    pub(crate) fn push_entry(&mut self, name: &str, rel: &str) {
        self.entries.push((name.to_owned(), Some(rel.to_owned())));
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
            .rev()
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

impl Analyzer<'_> {
    /// Walks an expression or query for the objects it uses.
    pub(crate) fn walk(&mut self, src: &Source<'_>, node: NodeRef<'_>, scope: &Scope, ctx: &Ctx) {
        match node {
            NodeRef::RangeVar(rv) => {
                let rel = range_var(rv);
                if !scope.is_cte(&rel) {
                    self.reference(ctx, Object::Relation(rel), src.line(rv.location));
                }
            }
            NodeRef::ColumnRef(c) => {
                if let Some(column) = column_of(c, scope, ctx) {
                    self.reference(ctx, column, src.line(c.location));
                }
            }
            NodeRef::FuncCall(f) => {
                let name = qualified(&strings(&f.funcname));
                self.reference(ctx, Object::Function(name.clone()), src.line(f.location));
                if !ctx.defined
                    && let Some(e) = self.out.facts.events.last_mut()
                {
                    e.call = true;
                }
                // `nextval('seq')`: the text is cast to regclass, naming the sequence.
                if matches!(name.as_str(), "nextval" | "currval" | "setval")
                    && let Some((seq, at)) = f.args.first().and_then(string_const)
                {
                    self.reference(ctx, Object::Relation(regclass_name(seq)), src.line(at));
                }
                self.children(src, node, scope, ctx);
            }
            NodeRef::TypeName(t) => {
                if let Some(name) = type_name(t) {
                    self.reference(ctx, Object::Type(name), src.line(t.location));
                }
                for m in &t.typmods {
                    self.walk_node(src, m, scope, ctx);
                }
            }
            NodeRef::TypeCast(c) => {
                // `'name'::regclass` names a relation.
                let to = c.type_name.as_ref().map(|t| strings(&t.names));
                if to.as_ref().and_then(|n| n.last()).map(String::as_str) == Some("regclass")
                    && let Some((rel, at)) = c.arg.as_deref().and_then(string_const)
                {
                    self.reference(ctx, Object::Relation(regclass_name(rel)), src.line(at));
                }
                // `'paid'::order_status`: a label of that type, when it is an enum.
                if let Some(t) = c
                    .type_name
                    .as_ref()
                    .filter(|t| t.array_bounds.is_empty())
                    .and_then(type_name)
                    && let Some(arg) = &c.arg
                {
                    self.label_use(src, &Object::Type(t), arg, ctx);
                }
                self.children(src, node, scope, ctx);
            }
            NodeRef::AExpr(a) => {
                let op = strings(&a.name).join(".");
                // `%` is pg_trgm's similarity only between texts; with a number it is modulo.
                let number = |n: &Option<Box<Node>>| {
                    matches!(
                        n.as_deref().and_then(|n| n.node.as_ref()),
                        Some(pg_query::NodeEnum::AConst(c)) if matches!(
                            c.val,
                            Some(pg_query::protobuf::a_const::Val::Ival(_) | pg_query::protobuf::a_const::Val::Fval(_))
                        )
                    )
                };
                let modulo = op == "%" && (number(&a.lexpr) || number(&a.rexpr));
                // `status = 'paid'`, `status IN ('paid', 'sent')`: labels of the column's type.
                let column =
                    |n: &Option<Box<Node>>| match n.as_deref().and_then(|n| n.node.as_ref()) {
                        Some(pg_query::NodeEnum::ColumnRef(c)) => column_of(c, scope, ctx),
                        _ => None,
                    };
                match (a.kind(), op.as_str()) {
                    (AExprKind::AexprOp, "=" | "<>" | "!=") => {
                        for (col, other) in [(&a.lexpr, &a.rexpr), (&a.rexpr, &a.lexpr)] {
                            if let Some(c) = column(col) {
                                self.label_uses(src, &c, other, ctx);
                            }
                        }
                    }
                    (AExprKind::AexprIn, _) => {
                        if let Some(c) = column(&a.lexpr)
                            && let Some(pg_query::NodeEnum::List(l)) =
                                a.rexpr.as_deref().and_then(|n| n.node.as_ref())
                        {
                            for item in &l.items {
                                self.label_use(src, &c, item, ctx);
                            }
                        }
                    }
                    _ => {}
                }
                if !modulo && extensions::provider_of(&Object::Operator(op.clone())).is_some() {
                    self.reference(ctx, Object::Operator(op), src.line(a.location));
                }
                self.children(src, node, scope, ctx);
            }
            NodeRef::JsonTable(t) => {
                self.requires(17, src.line(t.location), "JSON_TABLE");
                self.children(src, node, scope, ctx);
            }
            NodeRef::JsonIsPredicate(p) => {
                self.requires(16, src.line(p.location), "IS JSON");
                self.children(src, node, scope, ctx);
            }
            NodeRef::JsonObjectConstructor(c) => {
                self.requires(16, src.line(c.location), "JSON_OBJECT");
                self.children(src, node, scope, ctx);
            }
            NodeRef::JsonArrayConstructor(c) => {
                self.requires(16, src.line(c.location), "JSON_ARRAY");
                self.children(src, node, scope, ctx);
            }
            NodeRef::SelectStmt(s) => self.select(src, s, scope, ctx),
            NodeRef::InsertStmt(s) => self.insert(src, s, scope, ctx),
            NodeRef::UpdateStmt(s) => self.update(src, s, scope, ctx),
            NodeRef::DeleteStmt(s) => self.delete(src, s, scope, ctx),
            NodeRef::MergeStmt(s) => self.merge(src, s, scope, ctx),
            _ => self.children(src, node, scope, ctx),
        }
    }

    /// A string constant used as a value of `of` (a column or a type): if `of`'s type is an
    /// enum, the label must be one of it.
    pub(crate) fn label_use(&mut self, src: &Source<'_>, of: &Object, value: &Node, ctx: &Ctx) {
        if let Some((label, at)) = string_const(value) {
            let plain = Ctx {
                by: None,
                immutable: false,
                ..ctx.clone()
            };
            self.reference(
                &plain,
                Object::EnumLabel {
                    of: Box::new(of.clone()),
                    label: label.to_owned(),
                },
                src.line(at),
            );
        }
    }

    pub(crate) fn label_uses(
        &mut self,
        src: &Source<'_>,
        of: &Object,
        value: &Option<Box<Node>>,
        ctx: &Ctx,
    ) {
        if let Some(v) = value {
            self.label_use(src, of, v, ctx);
        }
    }

    /// Walks every child of `node`.
    pub(crate) fn children(
        &mut self,
        src: &Source<'_>,
        node: NodeRef<'_>,
        scope: &Scope,
        ctx: &Ctx,
    ) {
        for_each_child(node, &mut |c| self.walk(src, c, scope, ctx));
    }

    /// Walks a `Node` (which may be empty).
    pub(crate) fn walk_node(&mut self, src: &Source<'_>, n: &Node, scope: &Scope, ctx: &Ctx) {
        if let Some(n) = &n.node {
            self.walk(src, n.to_ref(), scope, ctx);
        }
    }

    pub(crate) fn walk_opt(
        &mut self,
        src: &Source<'_>,
        n: &Option<Box<Node>>,
        scope: &Scope,
        ctx: &Ctx,
    ) {
        if let Some(n) = n {
            self.walk_node(src, n, scope, ctx);
        }
    }

    pub(crate) fn walk_all(&mut self, src: &Source<'_>, ns: &[Node], scope: &Scope, ctx: &Ctx) {
        for n in ns {
            self.walk_node(src, n, scope, ctx);
        }
    }

    fn with_ctes(
        &mut self,
        src: &Source<'_>,
        with: &Option<WithClause>,
        scope: &mut Scope,
        ctx: &Ctx,
    ) {
        let Some(with) = with else {
            return;
        };
        for cte in &with.ctes {
            if let Some(pg_query::NodeEnum::CommonTableExpr(c)) = &cte.node {
                scope.ctes.push(c.ctename.clone());
                self.walk_opt(src, &c.ctequery, scope, ctx);
            }
        }
    }

    pub(crate) fn select(&mut self, src: &Source<'_>, s: &SelectStmt, outer: &Scope, ctx: &Ctx) {
        let mut scope = outer.child();
        self.with_ctes(src, &s.with_clause, &mut scope, ctx);
        if s.op() != SetOperation::SetopNone && s.op() != SetOperation::Undefined {
            // Each branch has its own FROM; ORDER BY and LIMIT name output columns.
            if let Some(l) = &s.larg {
                self.select(src, l, &scope, ctx);
            }
            if let Some(r) = &s.rarg {
                self.select(src, r, &scope, ctx);
            }
            let none = scope.child();
            self.walk_opt(src, &s.limit_offset, &none, ctx);
            self.walk_opt(src, &s.limit_count, &none, ctx);
            return;
        }
        for f in &s.from_clause {
            self.scope_item(src, f, &mut scope, outer, ctx);
        }
        self.walk_all(src, &s.target_list, &scope, ctx);
        self.walk_opt(src, &s.where_clause, &scope, ctx);
        self.walk_all(src, &s.group_clause, &scope, ctx);
        self.walk_opt(src, &s.having_clause, &scope, ctx);
        self.walk_all(src, &s.window_clause, &scope, ctx);
        self.walk_all(src, &s.distinct_clause, &scope, ctx);
        for row in &s.values_lists {
            self.walk_node(src, row, &scope, ctx);
        }
        self.walk_all(src, &s.sort_clause, &scope, ctx);
        self.walk_opt(src, &s.limit_offset, &scope, ctx);
        self.walk_opt(src, &s.limit_count, &scope, ctx);
        self.walk_all(src, &s.locking_clause, &scope, ctx);
        // `SELECT … INTO new_table` creates it.
        if let Some(into) = &s.into_clause
            && let Some(rel) = &into.rel
        {
            self.create_rel(
                ctx,
                range_var(rel),
                crate::facts::RelKind::Table,
                src.line(rel.location),
                crate::facts::CreateMode::Plain,
            );
        }
    }

    /// Adds the relations of a FROM item to `scope`, walking what it uses (subqueries see the
    /// scope outside the query; `LATERAL` ones see the items before them).
    fn scope_item(
        &mut self,
        src: &Source<'_>,
        item: &Node,
        scope: &mut Scope,
        outer: &Scope,
        ctx: &Ctx,
    ) {
        let Some(node) = &item.node else {
            return;
        };
        match node {
            pg_query::NodeEnum::RangeVar(rv) => {
                let rel = range_var(rv);
                let alias = rv.alias.as_ref().map(|a| a.aliasname.clone());
                if scope.is_cte(&rel) {
                    scope.entries.push((alias.unwrap_or(rel), None));
                } else {
                    self.reference(ctx, Object::Relation(rel.clone()), src.line(rv.location));
                    scope
                        .entries
                        .push((alias.unwrap_or_else(|| rv.relname.clone()), Some(rel)));
                }
            }
            pg_query::NodeEnum::JoinExpr(j) => {
                if let Some(l) = &j.larg {
                    self.scope_item(src, l, scope, outer, ctx);
                }
                if let Some(r) = &j.rarg {
                    self.scope_item(src, r, scope, outer, ctx);
                }
                let q = scope.clone();
                self.walk_opt(src, &j.quals, &q, ctx);
                if let Some(a) = &j.alias {
                    scope.entries.push((a.aliasname.clone(), None));
                }
            }
            pg_query::NodeEnum::RangeSubselect(r) => {
                if r.alias.is_none() {
                    let at = r.subquery.as_deref().map_or(-1, node_location);
                    self.requires(16, src.line(at), "a subquery in FROM without an alias");
                }
                let sees = if r.lateral {
                    scope.clone()
                } else {
                    outer.clone()
                };
                self.walk_opt(src, &r.subquery, &sees, ctx);
                let alias = r
                    .alias
                    .as_ref()
                    .map(|a| a.aliasname.clone())
                    .unwrap_or_default();
                scope.entries.push((alias, None));
            }
            pg_query::NodeEnum::RangeFunction(r) => {
                let sees = scope.clone();
                self.walk_all(src, &r.functions, &sees, ctx);
                self.walk_all(src, &r.coldeflist, &sees, ctx);
                let alias = r
                    .alias
                    .as_ref()
                    .map(|a| a.aliasname.clone())
                    .unwrap_or_default();
                scope.entries.push((alias, None));
            }
            other => {
                let sees = scope.clone();
                self.walk(src, other.to_ref(), &sees, ctx);
                scope.entries.push((String::new(), None));
            }
        }
    }

    /// The target columns of `INSERT INTO t (a, b)` / `UPDATE t SET a = …` are columns of `t`.
    fn target_columns(
        &mut self,
        src: &Source<'_>,
        rel: &str,
        targets: &[Node],
        scope: &Scope,
        ctx: &Ctx,
    ) {
        for t in targets {
            if let Some(pg_query::NodeEnum::ResTarget(rt)) = &t.node {
                if !rt.name.is_empty() {
                    self.reference(
                        ctx,
                        Object::Column {
                            table: rel.to_owned(),
                            column: rt.name.clone(),
                        },
                        src.line(rt.location),
                    );
                }
                self.walk_all(src, &rt.indirection, scope, ctx);
                self.walk_opt(src, &rt.val, scope, ctx);
                if !rt.name.is_empty() && rt.indirection.is_empty() {
                    let column = Object::Column {
                        table: rel.to_owned(),
                        column: rt.name.clone(),
                    };
                    self.label_uses(src, &column, &rt.val, ctx);
                }
            }
        }
    }

    fn insert(&mut self, src: &Source<'_>, s: &InsertStmt, outer: &Scope, ctx: &Ctx) {
        let mut scope = outer.child();
        self.with_ctes(src, &s.with_clause, &mut scope, ctx);
        let Some(rv) = &s.relation else {
            return;
        };
        let rel = range_var(rv);
        self.reference(ctx, Object::Relation(rel.clone()), src.line(rv.location));
        // An INSERT's SELECT does not see the target table.
        let with_ctes = scope.clone();
        self.walk_opt(src, &s.select_stmt, &with_ctes, ctx);
        let alias = rv.alias.as_ref().map(|a| a.aliasname.clone());
        scope.entries.push((
            alias.unwrap_or_else(|| rv.relname.clone()),
            Some(rel.clone()),
        ));
        self.target_columns(src, &rel, &s.cols, &scope, ctx);
        // `INSERT INTO t (status) VALUES ('paid')`: labels of the columns' types.
        if let Some(pg_query::NodeEnum::SelectStmt(sel)) =
            s.select_stmt.as_deref().and_then(|n| n.node.as_ref())
        {
            let cols: Vec<String> = s
                .cols
                .iter()
                .filter_map(|c| match &c.node {
                    Some(pg_query::NodeEnum::ResTarget(rt)) => Some(rt.name.clone()),
                    _ => None,
                })
                .collect();
            for row in &sel.values_lists {
                if let Some(pg_query::NodeEnum::List(l)) = &row.node {
                    for (name, v) in cols.iter().zip(&l.items) {
                        let column = Object::Column {
                            table: rel.clone(),
                            column: name.clone(),
                        };
                        self.label_use(src, &column, v, ctx);
                    }
                }
            }
        }
        if let Some(oc) = &s.on_conflict_clause {
            let mut conflict = scope.clone();
            conflict
                .entries
                .push(("excluded".to_owned(), Some(rel.clone())));
            if let Some(infer) = &oc.infer {
                for e in &infer.index_elems {
                    if let Some(pg_query::NodeEnum::IndexElem(ie)) = &e.node {
                        if !ie.name.is_empty() {
                            self.reference(
                                ctx,
                                Object::Column {
                                    table: rel.clone(),
                                    column: ie.name.clone(),
                                },
                                src.line(oc.location),
                            );
                        }
                        self.walk_opt(src, &ie.expr, &conflict, ctx);
                    }
                }
                self.walk_opt(src, &infer.where_clause, &conflict, ctx);
                if !infer.conname.is_empty() {
                    self.reference(
                        ctx,
                        Object::Constraint {
                            table: rel.clone(),
                            name: infer.conname.clone(),
                        },
                        src.line(oc.location),
                    );
                }
            }
            self.target_columns(src, &rel, &oc.target_list, &conflict, ctx);
            self.walk_opt(src, &oc.where_clause, &conflict, ctx);
        }
        if let Some(r) = &s.returning_clause {
            self.walk_all(src, &r.exprs, &scope, ctx);
        }
    }

    fn update(&mut self, src: &Source<'_>, s: &UpdateStmt, outer: &Scope, ctx: &Ctx) {
        let mut scope = outer.child();
        self.with_ctes(src, &s.with_clause, &mut scope, ctx);
        let Some(rv) = &s.relation else {
            return;
        };
        let rel = range_var(rv);
        self.reference(ctx, Object::Relation(rel.clone()), src.line(rv.location));
        let alias = rv.alias.as_ref().map(|a| a.aliasname.clone());
        scope.entries.push((
            alias.unwrap_or_else(|| rv.relname.clone()),
            Some(rel.clone()),
        ));
        let inner = outer.child();
        for f in &s.from_clause {
            self.scope_item(src, f, &mut scope, &inner, ctx);
        }
        self.target_columns(src, &rel, &s.target_list, &scope, ctx);
        self.walk_opt(src, &s.where_clause, &scope, ctx);
        if let Some(r) = &s.returning_clause {
            self.walk_all(src, &r.exprs, &scope, ctx);
        }
    }

    fn delete(&mut self, src: &Source<'_>, s: &DeleteStmt, outer: &Scope, ctx: &Ctx) {
        let mut scope = outer.child();
        self.with_ctes(src, &s.with_clause, &mut scope, ctx);
        let Some(rv) = &s.relation else {
            return;
        };
        let rel = range_var(rv);
        self.reference(ctx, Object::Relation(rel.clone()), src.line(rv.location));
        let alias = rv.alias.as_ref().map(|a| a.aliasname.clone());
        scope
            .entries
            .push((alias.unwrap_or_else(|| rv.relname.clone()), Some(rel)));
        let inner = outer.child();
        for f in &s.using_clause {
            self.scope_item(src, f, &mut scope, &inner, ctx);
        }
        self.walk_opt(src, &s.where_clause, &scope, ctx);
        if let Some(r) = &s.returning_clause {
            self.walk_all(src, &r.exprs, &scope, ctx);
        }
    }

    fn merge(&mut self, src: &Source<'_>, s: &MergeStmt, outer: &Scope, ctx: &Ctx) {
        let mut scope = outer.child();
        self.with_ctes(src, &s.with_clause, &mut scope, ctx);
        let Some(rv) = &s.relation else {
            return;
        };
        let rel = range_var(rv);
        self.reference(ctx, Object::Relation(rel.clone()), src.line(rv.location));
        let alias = rv.alias.as_ref().map(|a| a.aliasname.clone());
        scope.entries.push((
            alias.unwrap_or_else(|| rv.relname.clone()),
            Some(rel.clone()),
        ));
        if let Some(source) = &s.source_relation {
            let inner = outer.child();
            self.scope_item(src, source, &mut scope, &inner, ctx);
        }
        self.walk_opt(src, &s.join_condition, &scope, ctx);
        for w in &s.merge_when_clauses {
            if let Some(pg_query::NodeEnum::MergeWhenClause(mw)) = &w.node {
                self.walk_opt(src, &mw.condition, &scope, ctx);
                self.target_columns(src, &rel, &mw.target_list, &scope, ctx);
                self.walk_all(src, &mw.values, &scope, ctx);
            }
        }
        if let Some(r) = &s.returning_clause {
            self.walk_all(src, &r.exprs, &scope, ctx);
        }
    }
}

/// A string constant (`'text'`) and its location.
pub(crate) fn string_const(n: &Node) -> Option<(&str, i32)> {
    match n.node.as_ref()? {
        pg_query::NodeEnum::AConst(c) => match &c.val {
            Some(pg_query::protobuf::a_const::Val::Sval(s)) => Some((s.sval.as_str(), c.location)),
            _ => None,
        },
        _ => None,
    }
}

/// The location of a query node, where it has one (`-1` otherwise).
fn node_location(n: &Node) -> i32 {
    match n.node.as_ref() {
        // A set operation: where its first branch is.
        Some(pg_query::NodeEnum::SelectStmt(s)) if s.target_list.is_empty() => {
            s.larg.as_ref().map_or(-1, |l| {
                node_location(&Node {
                    node: Some(pg_query::NodeEnum::SelectStmt(l.clone())),
                })
            })
        }
        Some(pg_query::NodeEnum::SelectStmt(s)) => s
            .target_list
            .first()
            .and_then(|t| match &t.node {
                Some(pg_query::NodeEnum::ResTarget(r)) => Some(r.location),
                _ => None,
            })
            .unwrap_or(-1),
        _ => -1,
    }
}

/// The column a column reference names, when the scope tells which table it belongs to.
fn column_of(c: &pg_query::protobuf::ColumnRef, scope: &Scope, ctx: &Ctx) -> Option<Object> {
    let fields = strings(&c.fields);
    if fields.len() != c.fields.len() {
        return None; // `t.*`
    }
    let (table, column) = match fields.as_slice() {
        [col] if !ctx.is_variable(col) => scope.single().map(|t| (t.to_owned(), col.clone()))?,
        [q, col] if !ctx.is_variable(q) => scope.lookup(q).flatten().map(|t| (t, col.clone()))?,
        [schema, t, col] => (qualified(&[schema.clone(), t.clone()]), col.clone()),
        _ => return None,
    };
    Some(Object::Column { table, column })
}

#[cfg(test)]
mod tests {
    use crate::analyze::testing::{has, lacks};

    #[test]
    fn columns_are_resolved_through_scopes() {
        has(
            "WITH recent AS (SELECT id FROM orders) \
             SELECT a.name, r.id FROM accounts a JOIN recent r ON r.id = a.order_id WHERE a.active;",
            &[
                "ref column orders.id",
                "ref column accounts.name",
                "ref column accounts.order_id",
                "ref column accounts.active",
            ],
        );
        lacks(
            "WITH recent AS (SELECT 1 AS id) SELECT id FROM recent;",
            "relation recent",
        );
    }

    #[test]
    fn each_branch_of_a_set_operation_has_its_own_scope() {
        has(
            "SELECT id, label FROM a UNION SELECT id, label FROM b EXCEPT SELECT id, tag FROM c;",
            &[
                "ref column a.label",
                "ref column b.label",
                "ref column c.tag",
            ],
        );
    }

    #[test]
    fn dml_targets_and_values() {
        has(
            "INSERT INTO orders (status, total) VALUES ('paid', 1) ON CONFLICT (id) DO UPDATE SET total = excluded.total;",
            &[
                "ref column orders.status",
                "ref enum label 'paid' of column orders.status",
                "ref column orders.id",
                "ref column orders.total",
            ],
        );
        has(
            "UPDATE orders o SET status = 'sent' FROM lines l WHERE l.order_id = o.id AND o.status IN ('paid', 'new');",
            &[
                "ref enum label 'sent' of column orders.status",
                "ref column lines.order_id",
                "ref enum label 'new' of column orders.status",
            ],
        );
        has(
            "SELECT nextval('app.\"Seq\"'), 'x'::regclass;",
            &["ref relation app.Seq", "ref relation x"],
        );
    }
}
