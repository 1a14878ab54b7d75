//! Names as the check compares them, from the typed parse tree.

use pg_query::NodeEnum;
use pg_query::protobuf::{Node, ObjectType, ObjectWithArgs, RangeVar, TypeName};

use crate::facts::Object;

/// The strings of a list of `String` nodes (`["public", "t"]`).
pub(crate) fn strings(list: &[Node]) -> Vec<String> {
    list.iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// A qualified name as the check compares it: `public.` and `pg_catalog.` dropped.
pub(crate) fn qualified(parts: &[String]) -> String {
    match parts {
        [first, rest @ ..] if !rest.is_empty() && (first == "public" || first == "pg_catalog") => {
            rest.join(".")
        }
        _ => parts.join("."),
    }
}

pub(crate) fn range_var(rv: &RangeVar) -> String {
    if rv.schemaname.is_empty() || rv.schemaname == "public" {
        rv.relname.clone()
    } else {
        format!("{}.{}", rv.schemaname, rv.relname)
    }
}

/// `schema.old` → `schema.new`.
pub(crate) fn replace_last(name: &str, new: &str) -> String {
    match name.rsplit_once('.') {
        Some((schema, _)) => format!("{schema}.{new}"),
        None => new.to_owned(),
    }
}

/// The last part of a qualified name.
pub(crate) fn last(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// The name of a type (for a reference to it): `pg_catalog` types are built in and give `None`.
pub(crate) fn type_name(t: &TypeName) -> Option<String> {
    let names = strings(&t.names);
    if names.is_empty() || names[0] == "pg_catalog" {
        return None;
    }
    Some(qualified(&names))
}

/// A type as PostgreSQL tells function overloads apart: `int4`, `timestamptz`, `text[]`,
/// `app.mood` (the SQL spellings `integer`, `timestamp with time zone` already arrive as
/// `pg_catalog.int4`, … from the parser; aliases written by hand are folded here).
pub(crate) fn type_key(t: &TypeName) -> String {
    let names = strings(&t.names);
    let base = match names.as_slice() {
        [s, n] if s == "pg_catalog" => n.clone(),
        _ => qualified(&names),
    };
    let base = match base.as_str() {
        "int" | "integer" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "real" => "float4",
        "float" | "double precision" => "float8",
        "decimal" => "numeric",
        "boolean" => "bool",
        "varchar" | "character varying" => "varchar",
        "char" | "character" => "bpchar",
        "timestamp with time zone" => "timestamptz",
        "time with time zone" => "timetz",
        other => other,
    }
    .to_owned();
    let base = if t.setof {
        format!("setof {base}")
    } else {
        base
    };
    if t.array_bounds.is_empty() {
        base
    } else {
        format!("{base}[]")
    }
}

/// The relation named by the text of a `regclass` (`'app."Seq"'` → `app.Seq`): unquoted parts
/// fold to lower case.
pub(crate) fn regclass_name(text: &str) -> String {
    let parts: Vec<String> = text
        .split('.')
        .map(
            |p| match p.trim().strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => p.trim().to_lowercase(),
            },
        )
        .collect();
    qualified(&parts)
}

/// A function as `DROP FUNCTION`, `COMMENT ON FUNCTION`, … name it: one overload when the
/// argument types are given, any overload of the name otherwise.
pub(crate) fn routine(o: &ObjectWithArgs) -> Object {
    let name = qualified(&strings(&o.objname));
    if o.args_unspecified {
        return Object::Function(name);
    }
    let args: Vec<String> = o
        .objargs
        .iter()
        .filter_map(|a| match &a.node {
            Some(NodeEnum::TypeName(t)) => Some(type_key(t)),
            _ => None,
        })
        .collect();
    Object::Routine {
        name,
        args: args.join(","),
    }
}

/// The object named by a `DROP`/`COMMENT ON`/`ALTER … OWNER` target of the given object type.
pub(crate) fn named_object(objtype: ObjectType, obj: &Node) -> Option<Object> {
    use ObjectType as T;
    let parts = match obj.node.as_ref()? {
        NodeEnum::List(l) => strings(&l.items),
        NodeEnum::String(s) => vec![s.sval.clone()],
        NodeEnum::ObjectWithArgs(o) => {
            return matches!(
                objtype,
                T::ObjectFunction | T::ObjectProcedure | T::ObjectRoutine | T::ObjectAggregate
            )
            .then(|| routine(o));
        }
        NodeEnum::TypeName(t) => strings(&t.names),
        _ => return None,
    };
    let (last, owner) = match parts.split_last() {
        Some((last, owner)) => (last.clone(), qualified(owner)),
        None => return None,
    };
    Some(match objtype {
        T::ObjectTable
        | T::ObjectView
        | T::ObjectIndex
        | T::ObjectSequence
        | T::ObjectMatview
        | T::ObjectForeignTable => Object::Relation(qualified(&parts)),
        T::ObjectColumn => Object::Column {
            table: owner,
            column: last,
        },
        T::ObjectTabconstraint => Object::Constraint {
            table: owner,
            name: last,
        },
        T::ObjectTrigger => Object::Trigger {
            table: owner,
            name: last,
        },
        T::ObjectPolicy => Object::Policy {
            table: owner,
            name: last,
        },
        T::ObjectType | T::ObjectDomain => Object::Type(qualified(&parts)),
        T::ObjectExtension => Object::Extension(last),
        T::ObjectSchema => Object::Schema(last),
        _ => return None,
    })
}

/// PostgreSQL's `makeObjectName`: `name1_name2_label`, the longer name cut first so the whole
/// fits in 63 bytes (NAMEDATALEN - 1), as implicit index and constraint names are made.
pub(crate) fn make_object_name(name1: &str, name2: Option<&str>, label: Option<&str>) -> String {
    const MAX: usize = 63;
    let mut n1 = name1.len();
    let mut n2 = name2.map_or(0, str::len);
    let mut overhead = 0;
    if name2.is_some() {
        overhead += 1;
    }
    if let Some(l) = label {
        overhead += l.len() + 1;
    }
    let avail = MAX.saturating_sub(overhead);
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let clip = |s: &str, mut n: usize| {
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s[..n].to_owned()
    };
    let mut out = clip(name1, n1);
    if let Some(n) = name2 {
        out.push('_');
        out.push_str(&clip(n, n2));
    }
    if let Some(l) = label {
        out.push('_');
        out.push_str(l);
    }
    out
}

/// An identifier as PostgreSQL stores it: longer ones are cut to 63 bytes.
pub(crate) fn truncate_identifier(name: &str) -> String {
    if name.len() <= 63 {
        return name.to_owned();
    }
    let mut n = 63;
    while !name.is_char_boundary(n) {
        n -= 1;
    }
    name[..n].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_fit_in_63_bytes_like_postgres() {
        assert_eq!(make_object_name("t", Some("a_b"), Some("key")), "t_a_b_key");
        assert_eq!(make_object_name("t", None, Some("pkey")), "t_pkey");
        let long = "a".repeat(40);
        let name = make_object_name(&long, Some(&"b".repeat(40)), Some("fkey"));
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("_fkey"));
        assert_eq!(name, format!("{}_{}_fkey", "a".repeat(29), "b".repeat(28)));
    }

    #[test]
    fn types_as_overloads_tell_them_apart() {
        let parsed = pg_query::parse(
            "CREATE FUNCTION f(a integer, b timestamp with time zone, c int4, d varchar(3)[]) RETURNS void AS 'x' LANGUAGE sql",
            0,
        )
        .unwrap();
        let Some(NodeEnum::CreateFunctionStmt(f)) = parsed.protobuf.stmts[0]
            .stmt
            .as_ref()
            .unwrap()
            .node
            .as_ref()
        else {
            panic!()
        };
        let keys: Vec<String> = f
            .parameters
            .iter()
            .map(|p| match &p.node {
                Some(NodeEnum::FunctionParameter(p)) => type_key(p.arg_type.as_ref().unwrap()),
                _ => panic!(),
            })
            .collect();
        assert_eq!(keys, ["int4", "timestamptz", "int4", "varchar[]"]);
    }
}
