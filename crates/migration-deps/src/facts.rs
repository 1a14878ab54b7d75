//! What a migration does to the schema, as the analysis sees it.

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
    Function(String),
    OperatorClass(String),
    AccessMethod(String),
    Operator(String),
}

impl Object {
    /// The relation an object belongs to (for columns, constraints, triggers).
    pub fn owner(&self) -> Option<&str> {
        match self {
            Object::Column { table, .. }
            | Object::Constraint { table, .. }
            | Object::Trigger { table, .. } => Some(table),
            _ => None,
        }
    }

    /// The same object moved to another relation (after `ALTER TABLE … RENAME TO`).
    pub fn with_owner(&self, new_table: &str) -> Object {
        match self {
            Object::Column { column, .. } => Object::Column {
                table: new_table.to_owned(),
                column: column.clone(),
            },
            Object::Constraint { name, .. } => Object::Constraint {
                table: new_table.to_owned(),
                name: name.clone(),
            },
            Object::Trigger { name, .. } => Object::Trigger {
                table: new_table.to_owned(),
                name: name.clone(),
            },
            other => other.clone(),
        }
    }
}

/// How a relation was created, for messages ("table x", "index y").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelKind {
    Table,
    View,
    Index,
    Sequence,
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
            Object::Function(n) => write!(f, "function {n}"),
            Object::OperatorClass(n) => write!(f, "operator class {n}"),
            Object::AccessMethod(n) => write!(f, "access method {n}"),
            Object::Operator(n) => write!(f, "operator {n}"),
        }
    }
}

/// What a statement does to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Brings the object into existence (`CREATE`, `ADD COLUMN`, the new name of a rename).
    Create,
    /// Needs the object to exist.
    Reference,
    /// Removes the object.
    Drop,
    /// Renames a relation: its columns, constraints and triggers move along.
    RenameRelation { to: String },
    /// The relation gets the columns of another (`LIKE other`, `PARTITION OF parent`, `INHERITS`).
    CopyColumns { from: String },
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
    /// The reference is inside a function body, resolved when the function runs.
    pub in_function: Option<String>,
    /// For relations: how it was created.
    pub rel_kind: Option<RelKind>,
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
