//! `CREATE INDEX`: its table, columns, expressions, access method and operator classes, and the
//! name PostgreSQL gives it when the statement gives none.

use pg_query::NodeEnum;
use pg_query::protobuf::IndexStmt;

use super::names::{make_object_name, qualified, range_var, strings};
use super::queries::Scope;
use super::source::Source;
use super::{Analyzer, Ctx, Stmt};
use crate::facts::{CreateMode, Detail, Object, RelKind};

impl Analyzer<'_> {
    pub(crate) fn create_index(&mut self, src: &Source<'_>, st: &Stmt, s: &IndexStmt, ctx: &Ctx) {
        let Some(rv) = &s.relation else {
            return;
        };
        let rel = range_var(rv);
        let line = src.line(rv.location);
        if s.concurrent {
            self.tx_only(st.line, "CREATE INDEX CONCURRENTLY");
        }
        self.reference(ctx, Object::Relation(rel.clone()), line);
        let schema = rel.rsplit_once('.').map(|(s, _)| s.to_owned());
        // PostgreSQL's own name: `<table>_<columns>_idx` (`_key` for unique ones).
        let mut cols = Vec::new();
        for p in &s.index_params {
            if let Some(NodeEnum::IndexElem(ie)) = &p.node {
                cols.push(if !ie.name.is_empty() {
                    ie.name.clone()
                } else {
                    match ie.expr.as_deref().and_then(|e| e.node.as_ref()) {
                        Some(NodeEnum::FuncCall(f)) => strings(&f.funcname)
                            .last()
                            .cloned()
                            .unwrap_or_else(|| "expr".to_owned()),
                        _ => "expr".to_owned(),
                    }
                });
            }
        }
        let name = if s.idxname.is_empty() {
            let label = if s.primary {
                "pkey"
            } else if s.unique {
                "key"
            } else {
                "idx"
            };
            let joined = cols.join("_");
            make_object_name(super::names::last(&rel), Some(&joined), Some(label))
        } else {
            s.idxname.clone()
        };
        let index = Object::Relation(match &schema {
            Some(schema) => format!("{schema}.{name}"),
            None => name.clone(),
        });
        let kept = ctx.kept_by(index.clone());
        // Functions in an index's expressions and predicate must be IMMUTABLE.
        let exprs = Ctx {
            immutable: true,
            ..kept.clone()
        };
        if !s.access_method.is_empty() {
            let l = src.ident_line(st.start, st.end, &s.access_method);
            self.reference(&kept, Object::AccessMethod(s.access_method.clone()), l);
        }
        let scope = Scope::of(&rel);
        for p in s.index_params.iter().chain(&s.index_including_params) {
            let Some(NodeEnum::IndexElem(ie)) = &p.node else {
                continue;
            };
            if !ie.name.is_empty() {
                let l = src.ident_line(st.start, st.end, &ie.name);
                self.reference(
                    &kept,
                    Object::Column {
                        table: rel.clone(),
                        column: ie.name.clone(),
                    },
                    l,
                );
            }
            self.walk_opt(src, &ie.expr, &scope, &exprs);
            let opclass = qualified(&strings(&ie.opclass));
            if !opclass.is_empty() {
                let l = src.ident_line(st.start, st.end, super::names::last(&opclass));
                self.reference(&kept, Object::OperatorClass(opclass), l);
            }
        }
        self.walk_opt(src, &s.where_clause, &scope, &exprs);
        let l = if s.idxname.is_empty() {
            st.line
        } else {
            src.ident_line(st.start, st.end, &name)
        };
        let mode = if s.idxname.is_empty() {
            CreateMode::Implicit
        } else if s.if_not_exists {
            CreateMode::IfNotExists
        } else {
            CreateMode::Plain
        };
        let name = match index {
            Object::Relation(n) => n,
            _ => unreachable!(),
        };
        let plain_columns = s
            .index_params
            .iter()
            .all(|p| matches!(&p.node, Some(NodeEnum::IndexElem(ie)) if !ie.name.is_empty()));
        let key =
            (s.unique && s.where_clause.is_none() && plain_columns).then(|| Detail::UniqueKey {
                primary: s.primary,
                columns: Some(cols.clone()),
            });
        let index = Object::Relation(name.clone());
        self.create_rel_owned(
            ctx,
            name,
            RelKind::Index,
            l,
            mode,
            Some(Object::Relation(rel)),
        );
        if let Some(key) = key {
            self.detail_of(&index, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::testing::has;

    #[test]
    fn an_index_its_columns_method_and_operator_class() {
        has(
            "CREATE INDEX i ON app.docs USING hnsw (embedding vector_cosine_ops) WHERE deleted_at IS NULL;",
            &[
                "ref access method hnsw (by relation app.i)",
                "ref column app.docs.embedding (by relation app.i)",
                "ref operator class vector_cosine_ops (by relation app.i)",
                "ref column app.docs.deleted_at (by relation app.i)",
                "create relation app.i (owner relation app.docs)",
            ],
        );
    }

    #[test]
    fn an_unnamed_index_gets_postgres_name_and_expressions_need_immutable_functions() {
        has(
            "CREATE UNIQUE INDEX ON t (lower(email), tenant);",
            &[
                "call function lower (by relation t_lower_tenant_key)",
                "create implicit relation t_lower_tenant_key (owner relation t)",
            ],
        );
        let events = crate::analyze::analyze("CREATE INDEX i ON t (norm(x));")
            .unwrap()
            .facts
            .events;
        assert!(
            events
                .iter()
                .any(|e| e.immutable && e.object == crate::facts::Object::Function("norm".into()))
        );
    }
}
