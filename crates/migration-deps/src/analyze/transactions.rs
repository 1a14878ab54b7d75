//! Transactions: the statements PostgreSQL refuses inside a transaction block (the callers of
//! `PreventInTransactionBlock` in its source, no more), and explicit transaction control.
//!
//! Refused in a transaction block: `VACUUM`, `CLUSTER` without a table, `DISCARD ALL`,
//! `CREATE`/`DROP DATABASE`, `CREATE`/`DROP TABLESPACE`, `ALTER SYSTEM`, `CREATE`/`DROP INDEX
//! CONCURRENTLY`, `REINDEX CONCURRENTLY`, `REINDEX SYSTEM`/`DATABASE`, `DETACH PARTITION
//! CONCURRENTLY`, `CREATE SUBSCRIPTION` that creates a slot, `ALTER SUBSCRIPTION … REFRESH`,
//! `DROP SUBSCRIPTION` with a slot, `COMMIT`/`ROLLBACK PREPARED`. Accepted there: `ANALYZE`,
//! `REFRESH MATERIALIZED VIEW CONCURRENTLY`, `ALTER TYPE … ADD VALUE`.

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterSubscriptionType, DiscardMode, RefreshMatViewStmt, ReindexObjectType, ReindexStmt,
    TransactionStmt, TransactionStmtKind, VacuumStmt,
};

use super::names::range_var;
use super::queries::Scope;
use super::source::Source;
use super::{Analyzer, Ctx, Stmt, TxOnlyStatement};
use crate::facts::Object;

/// Whether a `WITH (…)` option list sets `name` to false.
fn option_is_false(options: &[pg_query::protobuf::Node], name: &str) -> bool {
    options.iter().any(|o| match &o.node {
        Some(NodeEnum::DefElem(de)) if de.defname == name => {
            match de.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::Boolean(b)) => !b.boolval,
                Some(NodeEnum::String(s)) => matches!(s.sval.as_str(), "false" | "off" | "0"),
                Some(NodeEnum::Integer(i)) => i.ival == 0,
                _ => false,
            }
        }
        _ => false,
    })
}

impl Analyzer<'_> {
    pub(crate) fn tx_only(&mut self, line: u32, what: &str) {
        if self.in_body {
            return;
        }
        self.out.tx_only.push(TxOnlyStatement {
            line,
            what: what.to_owned(),
        });
    }

    pub(crate) fn transaction(&mut self, st: &Stmt, s: &TransactionStmt) {
        use TransactionStmtKind as K;
        let what = match s.kind() {
            K::TransStmtBegin | K::TransStmtStart => "BEGIN",
            K::TransStmtCommit => "COMMIT",
            K::TransStmtRollback => "ROLLBACK",
            K::TransStmtPrepare => "PREPARE TRANSACTION",
            K::TransStmtCommitPrepared => {
                self.tx_only(st.line, "COMMIT PREPARED");
                return;
            }
            K::TransStmtRollbackPrepared => {
                self.tx_only(st.line, "ROLLBACK PREPARED");
                return;
            }
            _ => return,
        };
        if self.in_body {
            return;
        }
        self.out.tx_control.push(TxOnlyStatement {
            line: st.line,
            what: what.to_owned(),
        });
    }

    pub(crate) fn vacuum(&mut self, src: &Source<'_>, st: &Stmt, s: &VacuumStmt, ctx: &Ctx) {
        if s.is_vacuumcmd {
            self.tx_only(st.line, "VACUUM");
        }
        for r in &s.rels {
            if let Some(NodeEnum::VacuumRelation(vr)) = &r.node
                && let Some(rv) = &vr.relation
            {
                let rel = range_var(rv);
                self.reference(ctx, Object::Relation(rel.clone()), src.line(rv.location));
                for c in super::names::strings(&vr.va_cols) {
                    self.reference(
                        ctx,
                        Object::Column {
                            table: rel.clone(),
                            column: c,
                        },
                        src.line(rv.location),
                    );
                }
            }
        }
    }

    pub(crate) fn reindex(&mut self, src: &Source<'_>, st: &Stmt, s: &ReindexStmt, ctx: &Ctx) {
        let concurrently = s.params.iter().any(|p| {
            matches!(&p.node, Some(NodeEnum::DefElem(de)) if de.defname == "concurrently")
                && !option_is_false(std::slice::from_ref(p), "concurrently")
        });
        if concurrently {
            self.tx_only(st.line, "REINDEX CONCURRENTLY");
        } else if matches!(
            s.kind(),
            ReindexObjectType::ReindexObjectSystem | ReindexObjectType::ReindexObjectDatabase
        ) {
            self.tx_only(st.line, "REINDEX SYSTEM/DATABASE");
        }
        if let Some(rv) = &s.relation {
            self.reference(ctx, Object::Relation(range_var(rv)), src.line(rv.location));
        }
    }

    pub(crate) fn refresh(
        &mut self,
        src: &Source<'_>,
        _st: &Stmt,
        s: &RefreshMatViewStmt,
        ctx: &Ctx,
    ) {
        // CONCURRENTLY is fine inside a transaction block.
        if let Some(rv) = &s.relation {
            self.reference(ctx, Object::Relation(range_var(rv)), src.line(rv.location));
        }
    }

    /// The statements that are refused in a transaction block in some forms.
    pub(crate) fn maybe_tx_only(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        node: pg_query::NodeRef<'_>,
        ctx: &Ctx,
    ) {
        use pg_query::NodeRef as N;
        match node {
            N::ClusterStmt(s) => match &s.relation {
                None => self.tx_only(st.line, "CLUSTER without a table"),
                Some(rv) => {
                    self.reference(ctx, Object::Relation(range_var(rv)), src.line(rv.location))
                }
            },
            N::CreatedbStmt(_) => self.tx_only(st.line, "CREATE DATABASE"),
            N::DropdbStmt(_) => self.tx_only(st.line, "DROP DATABASE"),
            N::AlterSystemStmt(_) => self.tx_only(st.line, "ALTER SYSTEM"),
            N::CreateTableSpaceStmt(_) => self.tx_only(st.line, "CREATE TABLESPACE"),
            N::DropTableSpaceStmt(_) => self.tx_only(st.line, "DROP TABLESPACE"),
            N::DiscardStmt(s) if s.target() == DiscardMode::DiscardAll => {
                self.tx_only(st.line, "DISCARD ALL")
            }
            N::CreateSubscriptionStmt(s) if !option_is_false(&s.options, "create_slot") => {
                self.tx_only(st.line, "CREATE SUBSCRIPTION (creating a replication slot)")
            }
            N::AlterSubscriptionStmt(s)
                if s.kind() == AlterSubscriptionType::AlterSubscriptionRefresh =>
            {
                self.tx_only(st.line, "ALTER SUBSCRIPTION … REFRESH PUBLICATION")
            }
            N::DropSubscriptionStmt(_) => {
                self.tx_only(st.line, "DROP SUBSCRIPTION (dropping its replication slot)")
            }
            other => self.walk(src, other, &Scope::default(), ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    fn tx(sql: &str) -> (Vec<String>, Vec<String>) {
        let a = crate::analyze::analyze(sql).unwrap();
        (
            a.tx_only.into_iter().map(|s| s.what).collect(),
            a.tx_control.into_iter().map(|s| s.what).collect(),
        )
    }

    #[test]
    fn only_what_postgres_refuses_in_a_transaction_block() {
        let (only, _) = tx(
            "VACUUM t; ANALYZE t; REFRESH MATERIALIZED VIEW CONCURRENTLY m; CREATE INDEX CONCURRENTLY i ON t (a); \
             DROP INDEX CONCURRENTLY i; REINDEX TABLE CONCURRENTLY t; REINDEX TABLE t; CLUSTER; CLUSTER t USING i; \
             ALTER TYPE e ADD VALUE 'x'; DISCARD ALL; DISCARD PLANS;",
        );
        assert_eq!(
            only,
            [
                "VACUUM",
                "CREATE INDEX CONCURRENTLY",
                "DROP INDEX CONCURRENTLY",
                "REINDEX CONCURRENTLY",
                "CLUSTER without a table",
                "DISCARD ALL"
            ]
        );
    }

    #[test]
    fn transaction_control_but_not_inside_function_bodies() {
        let (_, control) = tx("BEGIN; COMMIT; ROLLBACK; SAVEPOINT s; \
             CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$;");
        assert_eq!(control, ["BEGIN", "COMMIT", "ROLLBACK"]);
    }
}
