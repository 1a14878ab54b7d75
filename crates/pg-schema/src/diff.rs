//! The differences between two fingerprints, and their rendering for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::fingerprint::{Kind, ObjectId};

/// Where an object differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    OnlyInA,
    OnlyInB,
    Differs,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::OnlyInA => "only in A",
            Status::OnlyInB => "only in B",
            Status::Differs => "differs",
        }
    }
}

/// One object that is not the same on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: ObjectId,
    /// Its definition in A, if A has it.
    pub a: Option<String>,
    /// Its definition in B, if B has it.
    pub b: Option<String>,
}

impl Change {
    pub fn status(&self) -> Status {
        match (&self.a, &self.b) {
            (Some(_), None) => Status::OnlyInA,
            (None, Some(_)) => Status::OnlyInB,
            _ => Status::Differs,
        }
    }
}

/// Every difference between two fingerprints, sorted by kind and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub changes: Vec<Change>,
}

/// Definitions up to this length that fit on one line are shown beside the object's name.
const INLINE: usize = 100;
/// Names longer than this do not widen the name column.
const MAX_NAME_WIDTH: usize = 56;

impl Diff {
    pub(crate) fn between(a: &BTreeMap<ObjectId, String>, b: &BTreeMap<ObjectId, String>) -> Self {
        let mut changes = Vec::new();
        let mut ids: Vec<&ObjectId> = a.keys().chain(b.keys()).collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let (da, db) = (a.get(id), b.get(id));
            if da != db {
                changes.push(Change {
                    id: id.clone(),
                    a: da.cloned(),
                    b: db.cloned(),
                });
            }
        }
        Self { changes }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// How many objects are only in A, only in B, and in both with different definitions.
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |s| self.changes.iter().filter(|c| c.status() == s).count();
        (n(Status::OnlyInA), n(Status::OnlyInB), n(Status::Differs))
    }

    /// The changes of one status.
    pub fn with_status(&self, status: Status) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.status() == status)
    }

    /// One line, e.g. `12 differences: 0 only in A, 11 only in B, 1 differ`.
    pub fn summary(&self) -> String {
        let (a, b, d) = self.counts();
        format!(
            "{} difference{}: {a} only in A, {b} only in B, {d} differ{}",
            self.len(),
            if self.len() == 1 { "" } else { "s" },
            if d == 1 { "s" } else { "" }
        )
    }

    /// A table grouped by kind of object: each object, where it is (only in A, only in B,
    /// differs) and its definition (both, when it differs). `a` and `b` name the two sides.
    pub fn render(&self, a: &str, b: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "A = {a}");
        let _ = writeln!(out, "B = {b}");
        if self.is_empty() {
            let _ = writeln!(out, "\nidentical");
            return out;
        }
        let width = self
            .changes
            .iter()
            .map(|c| c.id.name.chars().count())
            .filter(|&w| w <= MAX_NAME_WIDTH)
            .max()
            .unwrap_or(0);
        for kind in Kind::ALL {
            let group: Vec<&Change> = self.changes.iter().filter(|c| c.id.kind == kind).collect();
            if group.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{kind} ({})", group.len());
            for c in group {
                let status = c.status().as_str();
                let name = &c.id.name;
                match (&c.a, &c.b) {
                    (Some(def), None) | (None, Some(def)) => {
                        if inline(def) {
                            let _ = writeln!(out, "  {name:<width$}  {status:<9}  {def}");
                        } else {
                            let _ = writeln!(out, "  {name:<width$}  {status}");
                            block(&mut out, "", def);
                        }
                    }
                    (Some(da), Some(db)) => {
                        let _ = writeln!(out, "  {name:<width$}  {status}");
                        block(&mut out, "A: ", da);
                        block(&mut out, "B: ", db);
                    }
                    (None, None) => {}
                }
            }
        }
        let _ = writeln!(out, "\n{}", self.summary());
        out
    }
}

fn inline(def: &str) -> bool {
    !def.contains('\n') && def.chars().count() <= INLINE
}

/// A definition below its object, indented, with an optional `A: `/`B: ` label.
fn block(out: &mut String, label: &str, def: &str) {
    let pad = " ".repeat(label.len());
    for (i, line) in def.lines().enumerate() {
        let lead = if i == 0 { label } else { &pad };
        let _ = writeln!(out, "      {lead}{line}");
    }
    if def.is_empty() {
        let _ = writeln!(out, "      {label}(empty)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fingerprint;

    fn fp(items: &[(Kind, &str, &str)]) -> Fingerprint {
        Fingerprint::from_objects(items.iter().map(|(k, n, d)| {
            (
                ObjectId {
                    kind: *k,
                    name: (*n).to_owned(),
                },
                (*d).to_owned(),
            )
        }))
    }

    #[test]
    fn classifies_and_renders_grouped_by_kind() {
        let a = fp(&[
            (Kind::Table, "public.t", "table"),
            (Kind::Column, "public.t.a", "integer NOT NULL"),
            (Kind::Column, "public.t.gone", "text"),
        ]);
        let b = fp(&[
            (Kind::Table, "public.t", "table"),
            (Kind::Column, "public.t.a", "bigint NOT NULL"),
            (Kind::Extension, "vector", "schema public"),
            (
                Kind::Function,
                "public.f()",
                "CREATE OR REPLACE FUNCTION public.f()\n RETURNS integer\nAS $$ SELECT 1 $$",
            ),
        ]);
        let d = a.diff(&b);
        assert_eq!(d.counts(), (1, 2, 1));
        assert_eq!(
            d.summary(),
            "4 differences: 1 only in A, 2 only in B, 1 differs"
        );
        let text = d.render("left", "right");
        let expected = "\
A = left
B = right

extension (1)
  vector         only in B  schema public

column (2)
  public.t.a     differs
      A: integer NOT NULL
      B: bigint NOT NULL
  public.t.gone  only in A  text

function (1)
  public.f()     only in B
      CREATE OR REPLACE FUNCTION public.f()
       RETURNS integer
      AS $$ SELECT 1 $$

4 differences: 1 only in A, 2 only in B, 1 differs
";
        assert_eq!(text, expected);
        assert!(b.diff(&b).is_empty());
        assert!(b.diff(&b).render("x", "y").ends_with("\nidentical\n"));
    }
}
