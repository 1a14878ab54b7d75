//! Reading a schema fingerprint from `pg_catalog`.

use std::collections::BTreeMap;
use std::fmt;

use sqlx::PgConnection;

use crate::diff::Diff;

/// The kinds of object a fingerprint holds, in the order differences are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `name` → `schema <where it is installed>` (the extension's version is left out, so that
    /// two servers with different builds of the same extension compare equal).
    Extension,
    /// `name` → `schema`.
    Schema,
    /// Enum, domain, composite and range types.
    Type,
    /// Tables, partitioned tables (with their partition key) and partitions (with their bound).
    Table,
    /// `schema.table.column` → type, collation, `NOT NULL`, default, identity or generation.
    /// Columns of partitions are not listed: they are those of the partitioned table.
    Column,
    /// `schema.table.constraint` → `pg_get_constraintdef`. Constraints a partition inherits are
    /// not listed.
    Constraint,
    /// `schema.index` → `pg_get_indexdef`. Indexes that implement a constraint and indexes a
    /// partition inherits from its partitioned table are not listed.
    Index,
    /// Type, bounds, increment, cache, cycle and the column that owns it (not its position).
    Sequence,
    /// `pg_get_viewdef`, also for materialized views.
    View,
    /// `schema.name(identity arguments)` → `pg_get_functiondef`.
    Function,
    /// `schema.table.trigger` → `pg_get_triggerdef`. Triggers a partition inherits are not listed.
    Trigger,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Extension,
        Kind::Schema,
        Kind::Type,
        Kind::Table,
        Kind::Column,
        Kind::Constraint,
        Kind::Index,
        Kind::Sequence,
        Kind::View,
        Kind::Function,
        Kind::Trigger,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Extension => "extension",
            Kind::Schema => "schema",
            Kind::Type => "type",
            Kind::Table => "table",
            Kind::Column => "column",
            Kind::Constraint => "constraint",
            Kind::Index => "index",
            Kind::Sequence => "sequence",
            Kind::View => "view",
            Kind::Function => "function",
            Kind::Trigger => "trigger",
        }
    }

    fn query(self) -> &'static str {
        match self {
            Kind::Extension => EXTENSIONS,
            Kind::Schema => SCHEMAS,
            Kind::Type => TYPES,
            Kind::Table => TABLES,
            Kind::Column => COLUMNS,
            Kind::Constraint => CONSTRAINTS,
            Kind::Index => INDEXES,
            Kind::Sequence => SEQUENCES,
            Kind::View => VIEWS,
            Kind::Function => FUNCTIONS,
            Kind::Trigger => TRIGGERS,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object: its kind and its qualified name (identifiers quoted only where PostgreSQL needs
/// it, e.g. `public.audit_events.event_date`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    pub kind: Kind,
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// The schema of one database: each object with its definition, sorted by kind and name.
/// Two fingerprints are equal exactly when the schemas are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    objects: BTreeMap<ObjectId, String>,
}

impl Fingerprint {
    /// Reads the schema of the database `conn` is connected to. Only reads the catalog.
    pub async fn read(conn: &mut PgConnection) -> Result<Self, sqlx::Error> {
        let mut objects = BTreeMap::new();
        for kind in Kind::ALL {
            let rows: Vec<(String, Option<String>)> =
                sqlx::query_as(kind.query()).fetch_all(&mut *conn).await?;
            for (name, definition) in rows {
                let definition = definition.unwrap_or_default().trim_end().to_owned();
                objects.insert(ObjectId { kind, name }, definition);
            }
        }
        Ok(Self { objects })
    }

    /// Builds a fingerprint from objects read elsewhere (or written by hand, in tests).
    pub fn from_objects(objects: impl IntoIterator<Item = (ObjectId, String)>) -> Self {
        Self {
            objects: objects.into_iter().collect(),
        }
    }

    /// Every object with its definition, sorted by kind and name.
    pub fn objects(&self) -> impl Iterator<Item = (&ObjectId, &str)> {
        self.objects.iter().map(|(id, def)| (id, def.as_str()))
    }

    /// The definition of one object.
    pub fn get(&self, kind: Kind, name: &str) -> Option<&str> {
        self.objects
            .get(&ObjectId {
                kind,
                name: name.to_owned(),
            })
            .map(String::as_str)
    }

    /// The names of the objects of one kind, sorted.
    pub fn names(&self, kind: Kind) -> impl Iterator<Item = &str> {
        self.objects
            .keys()
            .filter(move |id| id.kind == kind)
            .map(|id| id.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// What differs from `other` (`self` is side A, `other` side B).
    pub fn diff(&self, other: &Fingerprint) -> Diff {
        Diff::between(&self.objects, &other.objects)
    }
}

/// One line per object (`kind name`), its definition indented below: a stable text to store or
/// compare with ordinary tools.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (id, def) in &self.objects {
            writeln!(f, "{id}")?;
            for line in def.lines() {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

// The catalog queries. Each returns (name, definition). `USER_SCHEMA` keeps the system schemas
// out; `NOT_EXT_*` the objects that belong to an extension; `_sqlx_migrations` is sqlx's
// bookkeeping, not the application's schema.

macro_rules! user_schema {
    ($n:literal) => {
        concat!(
            " ",
            $n,
            ".nspname NOT IN ('pg_catalog', 'information_schema') AND ",
            $n,
            ".nspname !~ '^pg_(toast|temp_)' "
        )
    };
}

macro_rules! not_extension_member {
    ($catalog:literal, $oid:literal) => {
        concat!(
            " NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '",
            $catalog,
            "'::regclass AND dep.objid = ",
            $oid,
            " AND dep.deptype = 'e') "
        )
    };
}

const EXTENSIONS: &str = "
SELECT e.extname::text, 'schema ' || quote_ident(n.nspname)
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace";

const SCHEMAS: &str = concat!(
    "
SELECT quote_ident(n.nspname), 'schema'
FROM pg_namespace n
WHERE",
    user_schema!("n"),
    "AND",
    not_extension_member!("pg_namespace", "n.oid")
);

const TYPES: &str = concat!(
    "
SELECT format('%I.%I', n.nspname, t.typname),
       CASE t.typtype
           WHEN 'e' THEN 'enum (' || (
               SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
               FROM pg_enum e
               WHERE e.enumtypid = t.oid) || ')'
           WHEN 'd' THEN concat_ws(' ',
               'domain over ' || format_type(t.typbasetype, t.typtypmod),
               CASE WHEN t.typnotnull THEN 'NOT NULL' END,
               'DEFAULT ' || pg_get_expr(t.typdefaultbin, 0),
               (SELECT string_agg(format('CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)),
                                  ' ' ORDER BY c.conname)
                FROM pg_constraint c
                WHERE c.contypid = t.oid))
           WHEN 'c' THEN 'composite (' || (
               SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)),
                                 ', ' ORDER BY a.attnum)
               FROM pg_attribute a
               WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) || ')'
           WHEN 'r' THEN 'range of ' || (
               SELECT format_type(r.rngsubtype, NULL)
               FROM pg_range r
               WHERE r.rngtypid = t.oid)
       END
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'c', 'r')
  AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
  AND",
    user_schema!("n"),
    "AND",
    not_extension_member!("pg_type", "t.oid")
);

const TABLES: &str = concat!(
    "
SELECT format('%I.%I', n.nspname, c.relname),
       concat_ws(' ',
           CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' ELSE 'table' END,
           CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED' END,
           CASE WHEN c.relkind = 'p' THEN 'PARTITION BY ' || pg_get_partkeydef(c.oid) END,
           CASE WHEN c.relispartition THEN
               'PARTITION OF ' || (
                   SELECT format('%I.%I', pn.nspname, p.relname)
                   FROM pg_inherits i
                   JOIN pg_class p ON p.oid = i.inhparent
                   JOIN pg_namespace pn ON pn.oid = p.relnamespace
                   WHERE i.inhrelid = c.oid)
               || ' ' || pg_get_expr(c.relpartbound, c.oid)
           END,
           CASE WHEN NOT c.relispartition THEN
               'INHERITS (' || (
                   SELECT string_agg(format('%I.%I', pn.nspname, p.relname), ', ' ORDER BY i.inhseqno)
                   FROM pg_inherits i
                   JOIN pg_class p ON p.oid = i.inhparent
                   JOIN pg_namespace pn ON pn.oid = p.relnamespace
                   WHERE i.inhrelid = c.oid) || ')'
           END)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f')
  AND c.relname <> '_sqlx_migrations'
  AND",
    user_schema!("n"),
    "AND",
    not_extension_member!("pg_class", "c.oid")
);

const COLUMNS: &str = concat!(
    "
SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname),
       concat_ws(' ',
           format_type(a.atttypid, a.atttypmod),
           CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN
               'COLLATE ' || (
                   SELECT format('%I.%I', cn.nspname, co.collname)
                   FROM pg_collation co
                   JOIN pg_namespace cn ON cn.oid = co.collnamespace
                   WHERE co.oid = a.attcollation)
           END,
           CASE WHEN a.attnotnull THEN 'NOT NULL' END,
           CASE WHEN a.attgenerated = 's' THEN 'GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                WHEN d.adbin IS NOT NULL THEN 'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid)
           END,
           CASE a.attidentity
               WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY'
               WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY'
           END)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0
  AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'f')
  AND NOT c.relispartition
  AND c.relname <> '_sqlx_migrations'
  AND",
    user_schema!("n"),
    "AND",
    not_extension_member!("pg_class", "c.oid")
);

const CONSTRAINTS: &str = concat!(
    "
SELECT format('%I.%I.%I', n.nspname, c.relname, con.conname),
       pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype <> 'n'
  AND con.conparentid = 0
  AND con.coninhcount = 0
  AND c.relname <> '_sqlx_migrations'
  AND",
    user_schema!("n"),
    "AND",
    not_extension_member!("pg_class", "c.oid")
);

const INDEXES: &str = concat!(
    "
SELECT format('%I.%I', n.nspname, ic.relname),
       pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
WHERE c.relname <> '_sqlx_migrations'
  AND NOT EXISTS (
      SELECT 1 FROM pg_constraint con
      WHERE con.conindid = i.indexrelid
        AND con.conrelid = i.indrelid
        AND con.contype IN ('p', 'u', 'x'))
  AND NOT EXISTS (SELECT 1 FROM pg_inherits inh WHERE inh.inhrelid = i.indexrelid)
  AND",
    user_schema!("n"),
    "AND",
    not_extension_member!("pg_class", "ic.oid")
);

const SEQUENCES: &str = concat!(
    "
SELECT format('%I.%I', n.nspname, c.relname),
       concat_ws(' ',
           format_type(s.seqtypid, NULL),
           'START', s.seqstart,
           'INCREMENT', s.seqincrement,
           'MINVALUE', s.seqmin,
           'MAXVALUE', s.seqmax,
           'CACHE', s.seqcache,
           CASE WHEN s.seqcycle THEN 'CYCLE' END,
           (SELECT CASE d.deptype WHEN 'i' THEN 'IDENTITY OF ' ELSE 'OWNED BY ' END
                   || format('%I.%I.%I', tn.nspname, t.relname, a.attname)
            FROM pg_depend d
            JOIN pg_class t ON t.oid = d.refobjid
            JOIN pg_namespace tn ON tn.oid = t.relnamespace
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_class'::regclass
              AND d.objid = c.oid
              AND d.refclassid = 'pg_class'::regclass
              AND d.refobjsubid > 0
              AND d.deptype IN ('a', 'i')
            ORDER BY 1
            LIMIT 1))
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE",
    user_schema!("n"),
    "AND",
    not_extension_member!("pg_class", "c.oid")
);

const VIEWS: &str = concat!(
    "
SELECT format('%I.%I', n.nspname, c.relname),
       CASE c.relkind WHEN 'm' THEN 'MATERIALIZED VIEW AS ' ELSE 'VIEW AS ' END
       || pg_get_viewdef(c.oid, true)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm')
  AND",
    user_schema!("n"),
    "AND",
    not_extension_member!("pg_class", "c.oid")
);

const FUNCTIONS: &str = concat!(
    "
SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
       CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid)
            ELSE 'AGGREGATE RETURNS ' || format_type(p.prorettype, NULL)
       END
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE",
    user_schema!("n"),
    "AND",
    not_extension_member!("pg_proc", "p.oid")
);

const TRIGGERS: &str = concat!(
    "
SELECT format('%I.%I.%I', n.nspname, c.relname, t.tgname),
       pg_get_triggerdef(t.oid)
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal
  AND t.tgparentid = 0
  AND c.relname <> '_sqlx_migrations'
  AND",
    user_schema!("n"),
    "AND",
    not_extension_member!("pg_class", "c.oid")
);
