//! Functions, procedures, `DO` blocks and triggers, and the SQL inside their bodies.
//!
//! PostgreSQL checks the body of a `LANGUAGE sql` function when it creates it (so what it uses
//! must exist then), a standard-SQL body (`BEGIN ATOMIC`, `RETURN`) too and keeps what it uses
//! as dependencies, and a PL/pgSQL body only when the function runs: those references are
//! recorded as *in the function*, and the check judges them at the end of the profile. A `DO`
//! block runs now; what it does inside `IF`, loops and exception handlers may not happen.

use std::collections::HashSet;
use std::rc::Rc;

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterFunctionStmt, CallStmt, CreateEventTrigStmt, CreateFunctionStmt, CreateTrigStmt, DoStmt,
    FunctionParameterMode, Node,
};
use serde_json::{Map, Value};

use super::names::{qualified, range_var, strings, type_key};
use super::queries::Scope;
use super::source::Source;
use super::{Analyzer, Ctx, Stmt, TxOnlyStatement};
use crate::facts::{CreateMode, Detail, Object};

/// A PL/pgSQL body and where it is in the file.
struct PlBody<'a> {
    body: &'a str,
    base: Option<usize>,
    body_line: u32,
}

/// `IMMUTABLE`/`STABLE`/`VOLATILE` among a function's options, as `i`/`s`/`v`.
fn volatility(options: &[Node]) -> Option<char> {
    options.iter().find_map(|o| match &o.node {
        Some(NodeEnum::DefElem(de)) if de.defname == "volatility" => {
            match de.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::String(v)) => v.sval.chars().next(),
                _ => None,
            }
        }
        _ => None,
    })
}

/// `(language, body)` from a function's or `DO` block's options.
fn language_and_body(options: &[Node]) -> (String, Option<String>) {
    let mut language = String::new();
    let mut body = None;
    for o in options {
        if let Some(NodeEnum::DefElem(de)) = &o.node {
            match (
                de.defname.as_str(),
                de.arg.as_deref().and_then(|a| a.node.as_ref()),
            ) {
                ("language", Some(NodeEnum::String(v))) => language = v.sval.to_lowercase(),
                ("as", Some(NodeEnum::List(l))) => body = strings(&l.items).into_iter().next(),
                ("as", Some(NodeEnum::String(v))) => body = Some(v.sval.clone()),
                _ => {}
            }
        }
    }
    (language, body)
}

impl Analyzer<'_> {
    pub(crate) fn create_function(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &CreateFunctionStmt,
        ctx: &Ctx,
    ) {
        let name = qualified(&strings(&s.funcname));
        let mut args = Vec::new();
        let mut params = HashSet::new();
        for p in &s.parameters {
            if let Some(NodeEnum::FunctionParameter(p)) = &p.node {
                if !p.name.is_empty() {
                    params.insert(p.name.clone());
                }
                let input = matches!(
                    p.mode(),
                    FunctionParameterMode::FuncParamIn
                        | FunctionParameterMode::FuncParamInout
                        | FunctionParameterMode::FuncParamVariadic
                        | FunctionParameterMode::FuncParamDefault
                        | FunctionParameterMode::Undefined
                );
                if input && let Some(t) = &p.arg_type {
                    args.push(type_key(t));
                }
            }
        }
        let routine = Object::Routine {
            name: name.clone(),
            args: args.join(","),
        };
        let kept = ctx.kept_by(routine.clone());
        let none = Scope::default();
        self.walk_all(src, &s.parameters, &none, &kept);
        if let Some(t) = &s.return_type {
            self.walk(src, pg_query::NodeRef::TypeName(t), &none, &kept);
        }
        let (language, body) = language_and_body(&s.options);
        let vars = Some(Rc::new(params));
        let outer_body = std::mem::replace(&mut self.in_body, true);
        if let Some(sql_body) = &s.sql_body {
            // Standard SQL body: checked now, and kept as dependencies.
            let body_ctx = Ctx {
                vars,
                defined: true,
                ..kept.clone()
            };
            self.walk_node(src, sql_body, &none, &body_ctx);
        } else if let Some(body) = body {
            match language.as_str() {
                "plpgsql" => {
                    let body_ctx = Ctx {
                        in_function: Some(name.clone()),
                        vars,
                        by: None,
                        ..ctx.clone()
                    };
                    self.plpgsql_body(src, st, &body, &body_ctx);
                }
                "sql" => {
                    // Checked when created, not kept as dependencies.
                    let body_ctx = Ctx {
                        vars,
                        by: None,
                        defined: true,
                        ..ctx.clone()
                    };
                    self.sql_body(src, st, &body, &body_ctx);
                }
                _ => {}
            }
        }
        self.in_body = outer_body;
        let l = src.ident_line(st.start, st.end, super::names::last(&name));
        self.create(ctx, routine, l, CreateMode::or_replace(s.replace), None);
        let returns = match &s.return_type {
            Some(t) => type_key(t),
            None if s.is_procedure => "procedure".to_owned(),
            // OUT parameters make the result.
            None => "record".to_owned(),
        };
        self.detail(Detail::Routine {
            returns,
            volatility: volatility(&s.options).unwrap_or('v'),
            sql: language == "sql" || s.sql_body.is_some(),
        });
    }

    pub(crate) fn alter_function(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &AlterFunctionStmt,
        ctx: &Ctx,
    ) {
        if let Some(f) = &s.func {
            let obj = super::names::routine(f);
            if let Some(v) = volatility(&s.actions) {
                let l = st.line;
                self.reference(ctx, obj.clone(), l);
                self.push(ctx, crate::facts::Action::Volatility(v), obj.clone(), l);
            }
            let l = src.ident_line(
                st.start,
                st.end,
                super::names::last(obj.routine_name().unwrap_or("")),
            );
            self.reference(ctx, obj, l);
        }
        self.walk_all(src, &s.actions, &Scope::default(), ctx);
    }

    pub(crate) fn do_block(&mut self, src: &Source<'_>, st: &Stmt, s: &DoStmt, ctx: &Ctx) {
        let mut body = None;
        let mut language = "plpgsql".to_owned();
        for d in &s.args {
            if let Some(NodeEnum::DefElem(de)) = &d.node {
                match (
                    de.defname.as_str(),
                    de.arg.as_deref().and_then(|a| a.node.as_ref()),
                ) {
                    ("as", Some(NodeEnum::String(v))) => body = Some(v.sval.clone()),
                    ("language", Some(NodeEnum::String(v))) => language = v.sval.to_lowercase(),
                    _ => {}
                }
            }
        }
        if let (Some(body), "plpgsql") = (body, language.as_str()) {
            self.plpgsql_body(src, st, &body, ctx);
        }
    }

    pub(crate) fn call(&mut self, src: &Source<'_>, _st: &Stmt, s: &CallStmt, ctx: &Ctx) {
        if let Some(f) = &s.funccall {
            self.walk(src, pg_query::NodeRef::FuncCall(f), &Scope::default(), ctx);
        }
    }

    pub(crate) fn create_trigger(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &CreateTrigStmt,
        ctx: &Ctx,
    ) {
        let Some(rv) = &s.relation else {
            return;
        };
        let rel = range_var(rv);
        let trigger = Object::Trigger {
            table: rel.clone(),
            name: s.trigname.clone(),
        };
        let kept = ctx.kept_by(trigger.clone());
        self.reference(ctx, Object::Relation(rel.clone()), src.line(rv.location));
        let func = qualified(&strings(&s.funcname));
        let fl = src.ident_line(st.start, st.end, super::names::last(&func));
        self.reference(&kept, Object::Function(func), fl);
        for c in strings(&s.columns) {
            let l = src.ident_line(st.start, st.end, &c);
            self.reference(
                &kept,
                Object::Column {
                    table: rel.clone(),
                    column: c,
                },
                l,
            );
        }
        let mut scope = Scope::of(&rel);
        scope = scope_with_new_old(scope, &rel);
        self.walk_opt(src, &s.when_clause, &scope, &kept);
        let l = src.ident_line(st.start, st.end, &s.trigname);
        self.create(
            ctx,
            trigger,
            l,
            CreateMode::or_replace(s.replace),
            Some(Object::Relation(rel)),
        );
    }

    pub(crate) fn create_event_trigger(
        &mut self,
        src: &Source<'_>,
        st: &Stmt,
        s: &CreateEventTrigStmt,
        ctx: &Ctx,
    ) {
        let func = qualified(&strings(&s.funcname));
        let fl = src.ident_line(st.start, st.end, super::names::last(&func));
        self.reference(ctx, Object::Function(func), fl);
    }

    /// Where `body` (a function or DO body) starts in the file, when it appears there verbatim.
    fn body_offset(&self, src: &Source<'_>, st: &Stmt, body: &str) -> Option<usize> {
        let base = src.base?;
        let stmt = src.text.get(st.start..st.end)?;
        stmt.find(body).map(|off| base + st.start + off)
    }

    fn sql_body(&mut self, src: &Source<'_>, st: &Stmt, body: &str, ctx: &Ctx) {
        let base = self.body_offset(src, st, body);
        let Ok(parsed) = pg_query::parse(body, 0) else {
            return;
        };
        let lines = self.lines;
        let inner = Source {
            text: body,
            base,
            fallback_line: st.line,
            lines,
        };
        self.statements(&inner, &parsed.protobuf.stmts, ctx);
    }

    /// Parses a PL/pgSQL body and analyses the SQL it runs.
    fn plpgsql_body(&mut self, src: &Source<'_>, st: &Stmt, body: &str, ctx: &Ctx) {
        let base = self.body_offset(src, st, body);
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
            self.out.facts.opaque.push(st.line);
            return;
        };
        let body_line = base.map(|b| self.lines.line(b)).unwrap_or(st.line);
        // Declared variables are not columns.
        let mut vars: HashSet<String> = ctx.vars.as_deref().cloned().unwrap_or_default();
        collect_variables(&tree, &mut vars);
        let ctx = Ctx {
            vars: Some(Rc::new(vars)),
            ..ctx.clone()
        };
        let walker = PlBody {
            body,
            base,
            body_line,
        };
        let mut line = body_line;
        self.plpgsql_walk(&walker, &tree, &ctx, "", &mut line);
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
                            let query = val.get("query").and_then(Value::as_str).unwrap_or("");
                            let mode = val.get("parseMode").and_then(Value::as_i64).unwrap_or(0);
                            self.embedded_sql(pl, query, mode, parent_key == "sqlstmt", *line, ctx);
                        }
                        "PLpgSQL_stmt_dynexecute" | "PLpgSQL_stmt_dynfors" => {
                            if let Some(n) = val.get("lineno").and_then(Value::as_u64) {
                                *line = pl.body_line + n.saturating_sub(1) as u32;
                            }
                            self.out.facts.opaque.push(*line);
                            if ctx.in_function.is_none() {
                                self.out.dynamic.push(*line);
                            }
                            self.plpgsql_walk(pl, val, ctx, k, line);
                        }
                        "PLpgSQL_stmt_commit" | "PLpgSQL_stmt_rollback" => {
                            let what = if k.ends_with("commit") {
                                "COMMIT"
                            } else {
                                "ROLLBACK"
                            };
                            if ctx.in_function.is_none() {
                                self.out.tx_control.push(TxOnlyStatement {
                                    line: *line,
                                    what: format!("{what} (in a PL/pgSQL block)"),
                                });
                            }
                        }
                        // A block with handlers: its body runs, and the handlers may catch
                        // what fails in it.
                        "body" if parent_key == "PLpgSQL_stmt_block" && has_exceptions(map) => {
                            let mut caught: HashSet<String> =
                                ctx.catches.as_deref().cloned().unwrap_or_default();
                            if let Some(exc) = map.get("exceptions") {
                                collect_conditions(exc, &mut caught);
                            }
                            let inner = Ctx {
                                catches: Some(Rc::new(caught)),
                                ..ctx.clone()
                            };
                            self.plpgsql_walk(pl, val, &inner, k, line);
                        }
                        // Handlers, branches and loop bodies may not run.
                        "exceptions" | "then_body" | "else_body" | "elsif_list"
                        | "case_when_list" | "else_stmts" => {
                            self.plpgsql_walk(pl, val, &ctx.conditional(true), k, line);
                        }
                        "body" if parent_key != "PLpgSQL_stmt_block" => {
                            self.plpgsql_walk(pl, val, &ctx.conditional(true), k, line);
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
        // Locate the query in the file: search from the start of its line within the body.
        let base = pl.base.and_then(|b| {
            let rel_line = (line - pl.body_line) as usize;
            let line_start = if rel_line == 0 {
                0
            } else {
                pl.body
                    .match_indices('\n')
                    .nth(rel_line - 1)
                    .map(|(i, _)| i + 1)
                    .unwrap_or(0)
            };
            pl.body[line_start..]
                .find(query)
                .map(|off| b + line_start + off)
        });
        let lines = self.lines;
        let src = Source {
            text: query,
            base,
            fallback_line: line,
            lines,
        };
        self.statements(&src, &parsed.protobuf.stmts, ctx);
    }
}

/// A trigger's `WHEN` sees `NEW` and `OLD` as the table's rows.
fn scope_with_new_old(scope: Scope, rel: &str) -> Scope {
    let mut s = scope;
    s.push_entry("new", rel);
    s.push_entry("old", rel);
    s
}

/// The condition names of a block's exception handlers (`others`, `undefined_table`, …).
fn collect_conditions(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect_conditions(i, out)),
        Value::Object(map) => {
            for (k, val) in map {
                if k == "condname" {
                    if let Some(name) = val.as_str() {
                        out.insert(name.to_lowercase());
                    }
                } else if k != "action" {
                    collect_conditions(val, out);
                }
            }
        }
        _ => {}
    }
}

fn has_exceptions(map: &Map<String, Value>) -> bool {
    map.get("exceptions").is_some_and(|e| !e.is_null())
}

/// The names of a PL/pgSQL body's variables (its `datums`), and the implicit ones.
fn collect_variables(tree: &Value, out: &mut HashSet<String>) {
    for implicit in [
        "found",
        "new",
        "old",
        "tg_op",
        "tg_name",
        "tg_table_name",
        "tg_when",
        "tg_level",
    ] {
        out.insert(implicit.to_owned());
    }
    fn walk(v: &Value, out: &mut HashSet<String>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => {
                for (k, val) in map {
                    if k == "datums" {
                        for d in val.as_array().into_iter().flatten() {
                            if let Some(obj) = d.as_object() {
                                for inner in obj.values() {
                                    if let Some(name) = inner.get("refname").and_then(Value::as_str)
                                    {
                                        out.insert(name.to_owned());
                                    }
                                }
                            }
                        }
                    } else {
                        walk(val, out);
                    }
                }
            }
            _ => {}
        }
    }
    walk(tree, out);
}

#[cfg(test)]
mod tests {
    use crate::analyze::testing::{has, lacks};
    use crate::facts::Detail;

    #[test]
    fn dynamic_sql_is_a_hazard_only_where_it_runs_during_the_migration() {
        let a = crate::analyze::analyze(
            "DO $$\nBEGIN\n  EXECUTE format('ALTER TABLE %I ADD COLUMN x int', 't');\nEND $$;",
        )
        .unwrap();
        assert_eq!(a.dynamic, vec![3]);
        let a = crate::analyze::analyze(
            "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  EXECUTE 'SELECT 1';\nEND $$;",
        )
        .unwrap();
        assert!(a.dynamic.is_empty(), "{:?}", a.dynamic);
    }

    #[test]
    fn a_functions_signature_and_when_its_body_is_checked() {
        // SQL body: checked now, not kept as dependencies, calls do not run.
        has(
            "CREATE FUNCTION f(a int, OUT b text) RETURNS SETOF record LANGUAGE sql AS $$ SELECT a, note FROM t WHERE x = g() $$;",
            &[
                "ref relation t",
                "ref function g",
                "create function f(int4)",
            ],
        );
        // PL/pgSQL body: everything happens when it runs; parameters and variables are no columns.
        has(
            "CREATE FUNCTION p(p_id bigint) RETURNS void LANGUAGE plpgsql AS $$\nDECLARE n int;\nBEGIN\n  DELETE FROM t WHERE id = p_id;\n  CREATE TABLE IF NOT EXISTS log (id int);\nEND $$;",
            &[
                "ref relation t (in p)",
                "create if not exists relation log (in p)",
                "create or replace function p(int8)",
            ][..2],
        );
        lacks(
            "CREATE FUNCTION p(p_id bigint) RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t WHERE id = p_id; END $$;",
            "t.p_id",
        );
        let a = crate::analyze::analyze(
            "CREATE OR REPLACE FUNCTION v() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;",
        )
        .unwrap();
        let create = a
            .facts
            .events
            .iter()
            .find(|e| e.action.is_create())
            .unwrap();
        assert_eq!(
            create.detail,
            Some(Detail::Routine {
                returns: "int4".into(),
                volatility: 'i',
                sql: false
            })
        );
    }

    #[test]
    fn do_blocks_run_now_inside_branches_and_handlers() {
        has(
            "DO $$\nBEGIN\n  IF EXISTS (SELECT 1) THEN\n    ALTER TABLE a ADD COLUMN b int;\n  END IF;\n  BEGIN\n    ALTER TABLE c ADD CONSTRAINT k CHECK (true);\n  EXCEPTION WHEN undefined_table THEN NULL;\n  END;\n  PERFORM refresh();\nEND $$;",
            &[
                "ref relation a (conditional)",
                "ref relation c (guarded)",
                "call function refresh",
            ],
        );
    }

    #[test]
    fn triggers_keep_their_function_and_columns() {
        has(
            "CREATE TRIGGER trg BEFORE UPDATE OF status ON orders FOR EACH ROW WHEN (OLD.status <> NEW.status) EXECUTE FUNCTION audit();",
            &[
                "ref function audit (by trigger trg on orders)",
                "ref column orders.status (by trigger trg on orders)",
                "create trigger trg on orders (owner relation orders)",
            ],
        );
    }
}
