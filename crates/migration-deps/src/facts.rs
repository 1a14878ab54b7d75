//! What a migration does to the schema, as the analysis sees it: one [`Event`] per thing a
//! statement creates, needs, drops or renames, in order.

use std::fmt;

/// A schema object, named the way the dependency check compares them (unqualified names are in
/// `public`; the `public.` prefix is dropped, other schemas are kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Object {
    Extension(String),
    Schema(String),
    Type(String),
    /// A table, view, sequence, index or partition: they share one namespace in PostgreSQL.
    Relation(String),
    Column {
        table: String,
        column: String,
    },
    Constraint {
        table: String,
        name: String,
    },
    Trigger {
        table: String,
        name: String,
    },
    Policy {
        table: String,
        name: String,
    },
    /// A function or procedure by name: any overload will do (a call, a trigger's function).
    Function(String),
    /// One overload: its name and its argument types as PostgreSQL tells overloads apart
    /// (`int4,timestamptz`).
    Routine {
        name: String,
        args: String,
    },
    OperatorClass(String),
    AccessMethod(String),
    Operator(String),
    /// A label of an enum: of the type itself, or of the type of a column (`status = 'paid'`).
    /// PostgreSQL refuses a label the enum does not have.
    EnumLabel {
        of: Box<Object>,
        label: String,
    },
}

impl Object {
    /// The relation an object belongs to (for columns, constraints, triggers, policies).
    pub fn owner(&self) -> Option<&str> {
        match self {
            Object::Column { table, .. }
            | Object::Constraint { table, .. }
            | Object::Trigger { table, .. }
            | Object::Policy { table, .. } => Some(table),
            _ => None,
        }
    }

    /// The same object on another relation (after `ALTER TABLE … RENAME TO`).
    pub fn with_owner(&self, new_table: &str) -> Object {
        let t = new_table.to_owned();
        match self {
            Object::Column { column, .. } => Object::Column {
                table: t,
                column: column.clone(),
            },
            Object::Constraint { name, .. } => Object::Constraint {
                table: t,
                name: name.clone(),
            },
            Object::Trigger { name, .. } => Object::Trigger {
                table: t,
                name: name.clone(),
            },
            Object::Policy { name, .. } => Object::Policy {
                table: t,
                name: name.clone(),
            },
            other => other.clone(),
        }
    }

    /// The schema a `schema.name` object lives in (not `public`).
    pub fn schema(&self) -> Option<&str> {
        let name = match self {
            Object::Type(n) | Object::Relation(n) | Object::Function(n) => n,
            Object::Routine { name, .. } => name,
            _ => return None,
        };
        name.rsplit_once('.').map(|(s, _)| s)
    }

    /// For a routine overload, the routine name it answers to.
    pub fn routine_name(&self) -> Option<&str> {
        match self {
            Object::Function(n) | Object::Routine { name: n, .. } => Some(n),
            _ => None,
        }
    }
}

/// The column name that stands for "columns the analysis cannot name" of a view (its `*` over a
/// CTE or subquery, an expression without a name): references to its columns are then never
/// reported missing.
pub const UNKNOWN_COLUMNS: &str = "*";

/// How a relation was created, for messages ("table x", "index y").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelKind {
    Table,
    View,
    MaterializedView,
    Index,
    Sequence,
}

impl RelKind {
    /// What PostgreSQL calls a relation of this kind (`table`, `materialized view`, …).
    pub fn noun(self) -> &'static str {
        match self {
            RelKind::Table => "table",
            RelKind::View => "view",
            RelKind::MaterializedView => "materialized view",
            RelKind::Index => "index",
            RelKind::Sequence => "sequence",
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Extension(n) => write!(f, "extension {n}"),
            Object::Schema(n) => write!(f, "schema {n}"),
            Object::Type(n) => write!(f, "type {n}"),
            Object::Relation(n) => write!(f, "relation {n}"),
            Object::Column { table, column } => write!(f, "column {table}.{column}"),
            Object::Constraint { table, name } => write!(f, "constraint {name} on {table}"),
            Object::Trigger { table, name } => write!(f, "trigger {name} on {table}"),
            Object::Policy { table, name } => write!(f, "policy {name} on {table}"),
            Object::Function(n) => write!(f, "function {n}"),
            Object::Routine { name, args } => write!(f, "function {name}({args})"),
            Object::OperatorClass(n) => write!(f, "operator class {n}"),
            Object::AccessMethod(n) => write!(f, "access method {n}"),
            Object::Operator(n) => write!(f, "operator {n}"),
            Object::EnumLabel { of, label } => write!(f, "enum label '{label}' of {of}"),
        }
    }
}

/// What a statement does to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Brings the object into existence (`CREATE`, `ADD COLUMN`, an implicit index).
    Create { mode: CreateMode },
    /// Needs the object to exist.
    Reference,
    /// Removes the object; without `cascade`, PostgreSQL refuses while other objects depend on
    /// it.
    Drop { cascade: bool },
    /// Renames the object (a relation's columns, constraints and triggers move along).
    Rename { to: Object },
    /// The relation gets the columns of another (`LIKE other`, `PARTITION OF parent`, `INHERITS`).
    CopyColumns { from: String },
    /// An enum type gets a label (`old: None`, `ALTER TYPE … ADD VALUE`) or one is renamed.
    EnumLabel { old: Option<String>, new: String },
    /// A function's volatility changes (`ALTER FUNCTION … IMMUTABLE`).
    Volatility(char),
    /// A column gets a default (`DEFAULT …`, `SET DEFAULT`) or loses it (`DROP DEFAULT`).
    Default { set: bool },
    /// The object now belongs to `owner` and goes with it (`ATTACH PARTITION`, an index taken
    /// over by a constraint), or to nothing (`DETACH PARTITION`).
    Attach { owner: Option<Object> },
}

/// What a `CREATE` does when the object already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// PostgreSQL refuses: it already exists.
    Plain,
    /// `CREATE OR REPLACE`: the new definition replaces the old one.
    OrReplace,
    /// `IF NOT EXISTS`: the statement does nothing.
    IfNotExists,
    /// A name PostgreSQL chooses itself (an unnamed index or constraint, a row type): it picks
    /// another name rather than fail.
    Implicit,
}

impl CreateMode {
    pub fn if_not_exists(yes: bool) -> Self {
        if yes {
            CreateMode::IfNotExists
        } else {
            CreateMode::Plain
        }
    }

    pub fn or_replace(yes: bool) -> Self {
        if yes {
            CreateMode::OrReplace
        } else {
            CreateMode::Plain
        }
    }
}

impl Action {
    pub fn is_create(&self) -> bool {
        matches!(self, Action::Create { .. })
    }
}

/// One fact about one object, at one line of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub action: Action,
    pub object: Object,
    /// 1-based line in the migration file.
    pub line: u32,
    /// The statement may not run, or tolerates a missing object (`IF EXISTS`, inside a PL/pgSQL
    /// `IF`, loop or exception block): a missing object is not an error.
    pub conditional: bool,
    /// Inside a PL/pgSQL block with an exception handler, which may catch what fails: a missing
    /// object is a warning.
    pub guarded: bool,
    /// Inside the body of this function: it happens when the function runs, not now.
    pub in_function: Option<String>,
    /// For relations: how it was created.
    pub rel_kind: Option<RelKind>,
    /// For `Create`: the object it belongs to and goes with (a column's or index's table, a
    /// partition's parent, the constraint an index implements, a sequence's owning column).
    pub owner: Option<Object>,
    /// For `Reference`: the object, created by the same statement, whose definition keeps the
    /// dependency (a view on its tables, a default on its sequence, a column on its type): it
    /// then stops a `DROP` of what it references. `None`: needed only while the statement runs.
    pub by: Option<Object>,
    /// The statement (counted in the file) the event belongs to.
    pub stmt: u32,
    /// For `Create`: what else the statement says of the object.
    pub detail: Option<Detail>,
    /// For a reference to a function: it is used where PostgreSQL requires an `IMMUTABLE` one
    /// (an index expression or predicate, a generated column).
    pub immutable: bool,
    /// A reference that calls the function now (a function call in a statement that runs, not
    /// in a definition kept for later).
    pub call: bool,
}

/// What a `CREATE` says about the object beyond its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// A column's type (as [`crate::analyze`] names types for overloads: `int4`, `app.mood`).
    ColumnType(String),
    /// An enum type's labels.
    Enum(Vec<String>),
    /// A function's return type and volatility (`i`, `s`, `v`); `sql`: `LANGUAGE sql`, which
    /// PostgreSQL may inline (then the body's volatility counts, not the declared one).
    Routine {
        returns: String,
        volatility: char,
        sql: bool,
    },
    /// A table created with its own column list (no `LIKE`, `INHERITS`, `PARTITION OF`, `OF
    /// type`): every unique key it gets is one the history writes down.
    KeysKnown,
    /// A primary key, unique constraint or unique index on these columns (`None`: columns the
    /// analysis does not know, e.g. `USING INDEX`, which then matches any foreign key).
    UniqueKey {
        primary: bool,
        columns: Option<Vec<String>>,
    },
    /// On a foreign key's reference to its target table: the referenced columns (empty: the
    /// primary key).
    ForeignKey(Vec<String>),
}

/// A use of something an extension provides (for profiles that forbid the extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionUse {
    pub extension: String,
    /// e.g. "type vector", "index method hnsw", "operator class vector_cosine_ops".
    pub what: String,
    pub line: u32,
}

/// Everything the analysis learned about one migration file.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub events: Vec<Event>,
    pub extension_uses: Vec<ExtensionUse>,
    /// Statements the analysis could not see into (dynamic SQL), with their line.
    pub opaque: Vec<u32>,
}
