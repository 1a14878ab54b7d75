//! Tables: `CREATE TABLE` (columns, constraints, `LIKE`, `INHERITS`, partitions), `ALTER TABLE`,
//! and what PostgreSQL creates for them under names of its own (the index of a primary key or
//! unique constraint, the sequence of a `serial` column).

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableStmt, AlterTableType, ColumnDef, ConstrType, Constraint, CreateStmt,
    DropBehavior, ObjectType, RangeVar,
};

use super::names::{make_object_name, range_var, strings, truncate_identifier, type_key};
use super::queries::Scope;
use super::source::Source;
use super::{Analyzer, Ctx, Stmt};
use crate::facts::{Action, CreateMode, Detail, Object, RelKind};

/// A constraint without a name gets one PostgreSQL chooses.
fn implicit_mode(c: &Constraint) -> CreateMode {
    if c.conname.is_empty() {
        CreateMode::Implicit
    } else {
        CreateMode::Plain
    }
}

fn col(table: &str, column: &str) -> Object {
    Object::Column {
        table: table.to_owned(),
        column: column.to_owned(),
    }
}

/// `schema.name` → the schema-qualified name of another object in the same schema.
fn sibling(rel: &str, name: &str) -> String {
    match rel.rsplit_once('.') {
        Some((schema, _)) => format!("{schema}.{name}"),
        None => name.to_owned(),
    }
}

impl Analyzer<'_> {
    pub(crate) fn create_table(&mut self, src: &Source<'_>, st: &Stmt, s: &CreateStmt, ctx: &Ctx) {
        let Some(rv) = &s.relation else {
            return;
        };
        let rel = range_var(rv);
        let line = src.line(rv.location);
        let table = Object::Relation(rel.clone());
        let kept = ctx.kept_by(table.clone());
        let mut parents = Vec::new();
        for parent in &s.inh_relations {
            if let Some(NodeEnum::RangeVar(p)) = &parent.node {
                self.reference(&kept, Object::Relation(range_var(p)), src.line(p.location));
                parents.push(range_var(p));
            }
        }
        if let Some(t) = &s.of_typename {
            self.walk(
                src,
                pg_query::NodeRef::TypeName(t),
                &Scope::default(),
                &kept,
            );
        }
        // A partition belongs to its parent: dropping the parent drops it.
        let owner = match (&s.partbound, parents.first()) {
            (Some(_), Some(p)) => Some(Object::Relation(p.clone())),
            _ => None,
        };
        self.create_rel_owned(
            ctx,
            rel.clone(),
            RelKind::Table,
            line,
            CreateMode::if_not_exists(s.if_not_exists),
            owner,
        );
        let own_columns = parents.is_empty()
            && s.partbound.is_none()
            && s.of_typename.is_none()
            && !s
                .table_elts
                .iter()
                .any(|e| matches!(e.node, Some(NodeEnum::TableLikeClause(_))));
        if own_columns {
            self.detail_of(&Object::Relation(rel.clone()), Detail::KeysKnown);
        }
        for p in parents {
            self.copy_columns(ctx, &rel, p, line);
        }
        for elt in &s.table_elts {
            match &elt.node {
                Some(NodeEnum::ColumnDef(cd)) => self.column_def(src, st, &rel, cd, ctx),
                Some(NodeEnum::Constraint(c)) => self.constraint(src, st, &rel, c, None, ctx),
                Some(NodeEnum::TableLikeClause(like)) => {
                    if let Some(r) = &like.relation {
                        let l = src.line(r.location);
                        self.reference(ctx, Object::Relation(range_var(r)), l);
                        self.copy_columns(ctx, &rel, range_var(r), l);
                    }
                }
                _ => {}
            }
        }
        for c in &s.constraints {
            if let Some(NodeEnum::Constraint(c)) = &c.node {
                self.constraint(src, st, &rel, c, None, ctx);
            }
        }
        if let Some(spec) = &s.partspec {
            for pe in &spec.part_params {
                if let Some(NodeEnum::PartitionElem(pe)) = &pe.node {
                    if !pe.name.is_empty() {
                        self.reference(&kept, col(&rel, &pe.name), src.line(pe.location));
                    }
                    self.walk_opt(src, &pe.expr, &Scope::of(&rel), &kept);
                }
            }
        }
        if let Some(bound) = &s.partbound {
            self.children(
                src,
                pg_query::NodeRef::PartitionBoundSpec(bound),
                &Scope::default(),
                &kept,
            );
        }
    }

    fn copy_columns(&mut self, ctx: &Ctx, rel: &str, from: String, line: u32) {
        let e = self.push(
            ctx,
            Action::CopyColumns { from },
            Object::Relation(rel.to_owned()),
            line,
        );
        e.conditional = false;
    }

    pub(crate) fn column_def(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        rel: &str,
        cd: &ColumnDef,
        ctx: &Ctx,
    ) {
        let column = col(rel, &cd.colname);
        let line = src.line(cd.location);
        let kept = ctx.kept_by(column.clone());
        if let Some(t) = &cd.type_name {
            self.walk(
                src,
                pg_query::NodeRef::TypeName(t),
                &Scope::default(),
                &kept,
            );
        }
        self.create(
            ctx,
            column.clone(),
            line,
            CreateMode::Plain,
            Some(Object::Relation(rel.to_owned())),
        );
        if let Some(t) = &cd.type_name {
            self.detail(Detail::ColumnType(type_key(t)));
        }
        // `serial`: a sequence owned by the column.
        if let Some(t) = &cd.type_name {
            let names = strings(&t.names);
            if matches!(
                names.last().map(String::as_str),
                Some("serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2")
            ) {
                let seq = sibling(
                    rel,
                    &make_object_name(super::names::last(rel), Some(&cd.colname), Some("seq")),
                );
                self.create_rel_owned(
                    ctx,
                    seq,
                    RelKind::Sequence,
                    line,
                    CreateMode::Implicit,
                    Some(column.clone()),
                );
            }
        }
        let scope = Scope::of(rel);
        self.walk_opt(src, &cd.raw_default, &scope, &kept);
        self.label_uses(src, &column, &cd.raw_default, ctx);
        for c in &cd.constraints {
            if let Some(NodeEnum::Constraint(c)) = &c.node {
                self.constraint(src, st, rel, c, Some(&cd.colname), ctx);
            }
        }
    }

    /// A constraint of table `rel` (a column constraint when `column` is given).
    pub(crate) fn constraint(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        rel: &str,
        c: &Constraint,
        column: Option<&str>,
        ctx: &Ctx,
    ) {
        let line = src.line(c.location);
        let table = super::names::last(rel);
        let mut keys = strings(&c.keys);
        if keys.is_empty()
            && let Some(column) = column
            && matches!(
                c.contype(),
                ConstrType::ConstrPrimary | ConstrType::ConstrUnique
            )
        {
            keys.push(column.to_owned());
        }
        let implicit = |label: &str, cols: &[String]| {
            let joined = cols.join("_");
            make_object_name(
                table,
                (!cols.is_empty()).then_some(joined.as_str()),
                Some(label),
            )
        };
        let recorded = matches!(
            c.contype(),
            ConstrType::ConstrPrimary
                | ConstrType::ConstrUnique
                | ConstrType::ConstrExclusion
                | ConstrType::ConstrForeign
                | ConstrType::ConstrCheck
        );
        let name = if !recorded {
            None
        } else if c.conname.is_empty() {
            match c.contype() {
                ConstrType::ConstrPrimary => Some(make_object_name(table, None, Some("pkey"))),
                ConstrType::ConstrUnique => Some(implicit("key", &keys)),
                ConstrType::ConstrExclusion => {
                    let cols: Vec<String> = c
                        .exclusions
                        .iter()
                        .filter_map(|e| match &e.node {
                            Some(NodeEnum::List(l)) => {
                                l.items.first().and_then(|ie| match &ie.node {
                                    Some(NodeEnum::IndexElem(ie)) if !ie.name.is_empty() => {
                                        Some(ie.name.clone())
                                    }
                                    _ => None,
                                })
                            }
                            _ => None,
                        })
                        .collect();
                    Some(implicit("excl", &cols))
                }
                ConstrType::ConstrForeign => {
                    let mut cols = strings(&c.fk_attrs);
                    if cols.is_empty()
                        && let Some(column) = column
                    {
                        cols.push(column.to_owned());
                    }
                    Some(implicit("fkey", &cols))
                }
                ConstrType::ConstrCheck => Some(match column {
                    Some(col) => make_object_name(table, Some(col), Some("check")),
                    None => make_object_name(table, None, Some("check")),
                }),
                _ => None,
            }
        } else {
            Some(truncate_identifier(&c.conname))
        };
        let constraint = name.as_ref().map(|n| Object::Constraint {
            table: rel.to_owned(),
            name: n.clone(),
        });
        let kept = match &constraint {
            Some(o) => ctx.kept_by(o.clone()),
            None => match column {
                Some(colname) => ctx.kept_by(col(rel, colname)),
                None => ctx.clone(),
            },
        };
        let scope = Scope::of(rel);
        match c.contype() {
            ConstrType::ConstrPrimary | ConstrType::ConstrUnique => {
                for k in keys.iter().chain(&strings(&c.including)) {
                    self.reference(&kept, col(rel, k), src.ident_line(st.start, st.end, k));
                }
            }
            ConstrType::ConstrCheck | ConstrType::ConstrExclusion => {
                self.walk_opt(src, &c.raw_expr, &scope, &kept);
                self.walk_opt(src, &c.where_clause, &scope, &kept);
                self.walk_all(src, &c.exclusions, &scope, &kept);
                if !c.access_method.is_empty() {
                    self.reference(&kept, Object::AccessMethod(c.access_method.clone()), line);
                }
            }
            ConstrType::ConstrForeign => {
                let mut fk = strings(&c.fk_attrs);
                if fk.is_empty()
                    && let Some(column) = column
                {
                    fk.push(column.to_owned());
                }
                for k in &fk {
                    self.reference(&kept, col(rel, k), line);
                }
                if let Some(pk) = &c.pktable {
                    let target = range_var(pk);
                    self.reference(
                        &kept,
                        Object::Relation(target.clone()),
                        src.line(pk.location),
                    );
                    // "referenced relation … is not a table"; the key it needs there (not
                    // for a table referencing itself, whose keys PostgreSQL adds first).
                    if let Some(e) = self.out.facts.events.last_mut() {
                        e.rel_kind = Some(RelKind::Table);
                        if target != rel {
                            e.detail = Some(Detail::ForeignKey(strings(&c.pk_attrs)));
                        }
                    }
                    for k in strings(&c.pk_attrs) {
                        self.reference(&kept, col(&target, &k), line);
                    }
                }
            }
            ConstrType::ConstrGenerated => {
                let kept = Ctx {
                    immutable: true,
                    ..kept
                };
                self.walk_opt(src, &c.raw_expr, &scope, &kept);
            }
            ConstrType::ConstrDefault => {
                self.walk_opt(src, &c.raw_expr, &scope, &kept);
                if let Some(colname) = column {
                    self.label_uses(src, &col(rel, colname), &c.raw_expr, ctx);
                    self.default_of(ctx, col(rel, colname), &c.raw_expr, line);
                }
            }
            ConstrType::ConstrIdentity => {
                if let Some(colname) = column {
                    let seq = sibling(rel, &make_object_name(table, Some(colname), Some("seq")));
                    self.create_rel_owned(
                        ctx,
                        seq,
                        RelKind::Sequence,
                        line,
                        CreateMode::Implicit,
                        Some(col(rel, colname)),
                    );
                }
            }
            _ => {}
        }
        let (Some(name), Some(constraint)) = (name, constraint) else {
            return;
        };
        let owner = Some(Object::Relation(rel.to_owned()));
        if matches!(
            c.contype(),
            ConstrType::ConstrPrimary | ConstrType::ConstrUnique | ConstrType::ConstrExclusion
        ) {
            // The index behind it, named like it; `USING INDEX idx` turns an index into it.
            if !c.indexname.is_empty() {
                let idx = sibling(rel, &c.indexname);
                self.reference(ctx, Object::Relation(idx.clone()), line);
                self.create(ctx, constraint.clone(), line, CreateMode::Plain, owner);
                if c.contype() != ConstrType::ConstrExclusion {
                    self.detail(Detail::UniqueKey {
                        primary: c.contype() == ConstrType::ConstrPrimary,
                        columns: None,
                    });
                }
                if idx != sibling(rel, &name) {
                    self.rename(
                        ctx,
                        Object::Relation(idx.clone()),
                        Object::Relation(sibling(rel, &name)),
                        line,
                        false,
                    );
                }
                self.attach(
                    ctx,
                    Object::Relation(sibling(rel, &name)),
                    Some(constraint),
                    line,
                );
                return;
            }
            self.create(ctx, constraint.clone(), line, implicit_mode(c), owner);
            if c.contype() != ConstrType::ConstrExclusion {
                self.detail(Detail::UniqueKey {
                    primary: c.contype() == ConstrType::ConstrPrimary,
                    columns: Some(keys.clone()),
                });
            }
            self.create_rel_owned(
                ctx,
                sibling(rel, &name),
                RelKind::Index,
                line,
                implicit_mode(c),
                Some(constraint),
            );
        } else {
            self.create(ctx, constraint, line, implicit_mode(c), owner);
        }
    }

    /// A column's default set (an expression other than `NULL`) or dropped (`None`).
    fn default_of(
        &mut self,
        ctx: &Ctx,
        column: Object,
        expr: &Option<Box<pg_query::protobuf::Node>>,
        line: u32,
    ) {
        let set = match expr.as_deref().and_then(|e| e.node.as_ref()) {
            None => false,
            Some(NodeEnum::AConst(c)) => !c.isnull,
            Some(_) => true,
        };
        self.push(ctx, Action::Default { set }, column, line);
    }

    /// Makes `object` belong to `owner` (or to nothing).
    fn attach(&mut self, ctx: &Ctx, object: Object, owner: Option<Object>, line: u32) {
        self.push(ctx, Action::Attach { owner }, object, line);
    }

    pub(crate) fn alter_table(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &AlterTableStmt,
        ctx: &Ctx,
    ) {
        let Some(rv) = &s.relation else {
            return;
        };
        let rel = range_var(rv);
        let ctx = &ctx.conditional(s.missing_ok);
        self.reference(ctx, Object::Relation(rel.clone()), src.line(rv.location));
        if s.objtype() == ObjectType::ObjectTable
            && s.cmds.iter().any(needs_a_table)
            && let Some(e) = self.out.facts.events.last_mut()
        {
            e.rel_kind = Some(RelKind::Table);
        }
        if s.objtype() == ObjectType::ObjectIndex {
            // ALTER INDEX … SET/ATTACH PARTITION …: the index is the relation.
            for cmd in &s.cmds {
                if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node
                    && cmd.subtype() == AlterTableType::AtAttachPartition
                    && let Some(NodeEnum::PartitionCmd(pc)) =
                        cmd.def.as_deref().and_then(|d| d.node.as_ref())
                    && let Some(part) = &pc.name
                {
                    self.reference(
                        ctx,
                        Object::Relation(range_var(part)),
                        src.line(part.location),
                    );
                }
            }
            return;
        }
        // PostgreSQL runs the subcommands in passes: defaults are dropped before columns are
        // retyped, and set after.
        let pass = |cmd: &AlterTableCmd| match cmd.subtype() {
            AlterTableType::AtColumnDefault if cmd.def.is_none() => 0,
            AlterTableType::AtColumnDefault => 2,
            _ => 1,
        };
        for p in 0..3 {
            for cmd in &s.cmds {
                if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node
                    && pass(cmd) == p
                {
                    self.alter_table_cmd(src, st, rv, &rel, cmd, ctx);
                }
            }
        }
    }

    fn alter_table_cmd(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        rv: &RangeVar,
        rel: &str,
        cmd: &AlterTableCmd,
        ctx: &Ctx,
    ) {
        use AlterTableType as T;
        let name = cmd.name.as_str();
        let def = cmd.def.as_deref().and_then(|d| d.node.as_ref());
        let line = if name.is_empty() {
            src.line(rv.location)
        } else {
            src.ident_line(st.start, st.end, name)
        };
        let scope = Scope::of(rel);
        let cascade = cmd.behavior() == DropBehavior::DropCascade;
        match cmd.subtype() {
            T::AtAddColumn | T::AtAddColumnToView => {
                if let Some(NodeEnum::ColumnDef(cd)) = def {
                    if cmd.missing_ok {
                        // ADD COLUMN IF NOT EXISTS
                        let before = self.out.facts.events.len();
                        self.column_def(src, st, rel, cd, ctx);
                        for e in &mut self.out.facts.events[before..] {
                            if let Action::Create { mode } = &mut e.action {
                                *mode = CreateMode::IfNotExists;
                            }
                        }
                    } else {
                        self.column_def(src, st, rel, cd, ctx);
                    }
                }
            }
            T::AtDropColumn => {
                self.drop(ctx, col(rel, name), line, cmd.missing_ok, cascade);
            }
            T::AtAlterColumnType => {
                let column = col(rel, name);
                self.reference(ctx, column.clone(), line);
                // The column's type dependency is replaced by the new type's.
                let e = self.push(
                    ctx,
                    Action::Create {
                        mode: CreateMode::OrReplace,
                    },
                    column.clone(),
                    line,
                );
                e.owner = Some(Object::Relation(rel.to_owned()));
                if let Some(NodeEnum::ColumnDef(cd)) = def
                    && let Some(t) = &cd.type_name
                {
                    self.detail(Detail::ColumnType(type_key(t)));
                }
                if let Some(NodeEnum::ColumnDef(cd)) = def {
                    let kept = ctx.kept_by(column);
                    if let Some(t) = &cd.type_name {
                        self.walk(src, pg_query::NodeRef::TypeName(t), &scope, &kept);
                    }
                    self.walk_opt(src, &cd.raw_default, &scope, ctx);
                }
            }
            T::AtColumnDefault | T::AtCookedColumnDefault => {
                let column = col(rel, name);
                self.reference(ctx, column.clone(), line);
                if let Some(d) = &cmd.def {
                    self.walk_node(src, d, &scope, &ctx.kept_by(column.clone()));
                }
                self.default_of(ctx, column, &cmd.def, line);
            }
            T::AtAddConstraint | T::AtReAddConstraint => {
                if let Some(NodeEnum::Constraint(c)) = def {
                    self.constraint(src, st, rel, c, None, ctx);
                }
            }
            T::AtAddIndexConstraint => {}
            T::AtDropConstraint => {
                let obj = Object::Constraint {
                    table: rel.to_owned(),
                    name: name.to_owned(),
                };
                self.drop(ctx, obj, line, cmd.missing_ok, cascade);
            }
            T::AtValidateConstraint | T::AtAlterConstraint => {
                let cname = match def {
                    Some(NodeEnum::Constraint(c)) if !c.conname.is_empty() => c.conname.clone(),
                    Some(NodeEnum::AtalterConstraint(c)) if !c.conname.is_empty() => {
                        c.conname.clone()
                    }
                    _ => name.to_owned(),
                };
                let obj = Object::Constraint {
                    table: rel.to_owned(),
                    name: cname,
                };
                self.reference_if(ctx, obj, line, cmd.missing_ok);
            }
            T::AtEnableTrig | T::AtEnableAlwaysTrig | T::AtEnableReplicaTrig | T::AtDisableTrig => {
                self.reference(
                    ctx,
                    Object::Trigger {
                        table: rel.to_owned(),
                        name: name.to_owned(),
                    },
                    line,
                );
            }
            T::AtAttachPartition => {
                if let Some(NodeEnum::PartitionCmd(pc)) = def
                    && let Some(part) = &pc.name
                {
                    let p = range_var(part);
                    self.reference(ctx, Object::Relation(p.clone()), src.line(part.location));
                    if let Some(bound) = &pc.bound {
                        self.children(
                            src,
                            pg_query::NodeRef::PartitionBoundSpec(bound),
                            &Scope::default(),
                            ctx,
                        );
                    }
                    self.attach(
                        ctx,
                        Object::Relation(p),
                        Some(Object::Relation(rel.to_owned())),
                        line,
                    );
                }
            }
            T::AtDetachPartition => {
                if let Some(NodeEnum::PartitionCmd(pc)) = def
                    && let Some(part) = &pc.name
                {
                    if pc.concurrent {
                        self.tx_only(line, "DETACH PARTITION CONCURRENTLY");
                    }
                    let p = range_var(part);
                    self.reference(ctx, Object::Relation(p.clone()), src.line(part.location));
                    self.attach(ctx, Object::Relation(p), None, line);
                }
            }
            T::AtAddInherit | T::AtDropInherit => {
                if let Some(NodeEnum::RangeVar(p)) = def {
                    self.reference(
                        &ctx.kept_by(Object::Relation(rel.to_owned())),
                        Object::Relation(range_var(p)),
                        src.line(p.location),
                    );
                }
            }
            T::AtAddIdentity => {
                let column = col(rel, name);
                self.reference(ctx, column.clone(), line);
                let seq = sibling(
                    rel,
                    &make_object_name(super::names::last(rel), Some(name), Some("seq")),
                );
                self.create_rel_owned(
                    ctx,
                    seq,
                    RelKind::Sequence,
                    line,
                    CreateMode::Implicit,
                    Some(column),
                );
            }
            T::AtClusterOn => {
                self.reference(ctx, Object::Relation(sibling(rel, name)), line);
            }
            T::AtChangeOwner
            | T::AtSetRelOptions
            | T::AtResetRelOptions
            | T::AtReplaceRelOptions
            | T::AtSetTableSpace
            | T::AtSetLogged
            | T::AtSetUnLogged
            | T::AtEnableRowSecurity
            | T::AtDisableRowSecurity
            | T::AtForceRowSecurity
            | T::AtNoForceRowSecurity
            | T::AtReplicaIdentity
            | T::AtDropCluster
            | T::AtEnableTrigAll
            | T::AtDisableTrigAll
            | T::AtEnableTrigUser
            | T::AtDisableTrigUser
            | T::AtGenericOptions
            | T::AtSetAccessMethod => {
                if let Some(d) = &cmd.def {
                    self.walk_node(src, d, &scope, ctx);
                }
            }
            _ => {
                // SET/DROP NOT NULL, SET STATISTICS, SET STORAGE, identity options, …: the column
                // must exist.
                if !name.is_empty() {
                    self.reference_if(ctx, col(rel, name), line, cmd.missing_ok);
                }
                if let Some(d) = &cmd.def {
                    self.walk_node(src, d, &scope, ctx);
                }
            }
        }
    }
}

/// Whether an `ALTER TABLE` subcommand works only on a table (PostgreSQL refuses it on a view,
/// materialized view, sequence or index of that name: "ALTER action … cannot be performed").
fn needs_a_table(cmd: &pg_query::protobuf::Node) -> bool {
    use AlterTableType as T;
    match &cmd.node {
        Some(NodeEnum::AlterTableCmd(c)) => matches!(
            c.subtype(),
            T::AtAddColumn
                | T::AtDropColumn
                | T::AtAddConstraint
                | T::AtDropConstraint
                | T::AtAlterColumnType
                | T::AtSetNotNull
                | T::AtDropNotNull
                | T::AtAddIdentity
                | T::AtAttachPartition
                | T::AtDetachPartition
                | T::AtValidateConstraint
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::testing::{events, has, lacks};

    #[test]
    fn a_table_its_columns_and_the_names_postgres_gives_its_constraints() {
        has(
            "CREATE TABLE app.orders (id bigserial PRIMARY KEY, code text UNIQUE, n int CHECK (n > 0), \
             customer int REFERENCES customers (id));",
            &[
                "ref schema app (by relation app.orders)",
                "create relation app.orders",
                "create column app.orders.id (owner relation app.orders)",
                "create implicit relation app.orders_id_seq (owner column app.orders.id)",
                "create implicit constraint orders_pkey on app.orders (owner relation app.orders)",
                "create implicit relation app.orders_pkey (owner constraint orders_pkey on app.orders)",
                "create implicit relation app.orders_code_key (owner constraint orders_code_key on app.orders)",
                "create implicit constraint orders_n_check on app.orders (owner relation app.orders)",
                "ref relation customers (by constraint orders_customer_fkey on app.orders)",
                "ref column customers.id (by constraint orders_customer_fkey on app.orders)",
            ],
        );
    }

    #[test]
    fn a_column_depends_on_its_type_and_its_default_on_what_it_uses() {
        has(
            "CREATE TABLE t (m mood NOT NULL DEFAULT 'ok', n int DEFAULT nextval('t_seq'));",
            &[
                "ref type mood (by column t.m)",
                "ref enum label 'ok' of column t.m",
                "ref relation t_seq (by column t.n)",
            ],
        );
    }

    #[test]
    fn alter_table_drops_renames_and_retypes() {
        has(
            "ALTER TABLE t DROP COLUMN a CASCADE, DROP CONSTRAINT IF EXISTS c, ALTER COLUMN b TYPE mood USING b::mood;",
            &[
                "ref column t.a",
                "drop cascade column t.a",
                "ref constraint c on t (conditional)",
                "drop constraint c on t",
                "create or replace column t.b (owner relation t)",
                "ref type mood (by column t.b)",
            ],
        );
        has(
            "ALTER TABLE IF EXISTS t ADD COLUMN IF NOT EXISTS z int;",
            &["create if not exists column t.z (owner relation t) (conditional)"],
        );
    }

    #[test]
    fn partitions_belong_to_their_parent_and_take_its_columns() {
        has(
            "CREATE TABLE m_2026 PARTITION OF m FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');",
            &[
                "ref relation m (by relation m_2026)",
                "create relation m_2026 (owner relation m)",
                "copy columns of m to relation m_2026",
            ],
        );
        has(
            "ALTER TABLE m DETACH PARTITION m_2026;",
            &["attach to nothing: relation m_2026"],
        );
    }

    #[test]
    fn a_constraint_that_takes_over_an_index() {
        has(
            "ALTER TABLE t ADD CONSTRAINT t_u UNIQUE USING INDEX t_n_idx;",
            &[
                "ref relation t_n_idx",
                "rename to relation t_u: relation t_n_idx",
                "attach to constraint t_u on t: relation t_u",
            ],
        );
        lacks(
            "ALTER TABLE t ADD CONSTRAINT t_u UNIQUE USING INDEX t_u;",
            "rename",
        );
        assert!(
            events("CREATE TABLE t (a int NOT NULL);")
                .iter()
                .all(|e| !e.contains("constraint"))
        );
    }
}
