//! The schema as a walk of migrations leaves it: which objects exist, what each belongs to and
//! what it depends on, as PostgreSQL keeps them in `pg_depend`.
//!
//! Objects have identities (like PostgreSQL's OIDs), so a rename changes a name and nothing
//! else. Two kinds of dependency decide what a `DROP` does:
//! - *belongs to* (`owner`): a column, constraint, index, trigger or policy of a table, a
//!   partition of its parent, a sequence owned by a column, the index behind a constraint. It
//!   goes when its owner goes. Dropping a column also takes the indexes and constraints of its
//!   table that use it.
//! - *depends on* (`deps`): a view on its tables and columns, a default on its sequence, a
//!   column on its type, a foreign key on the referenced table, a trigger on its function,
//!   anything in a schema on the schema. It stops a `DROP` without `CASCADE`, and goes with
//!   `CASCADE`.

use std::collections::{HashMap, HashSet};

use crate::facts::{Detail, Object, RelKind};

pub(crate) type Id = usize;

#[derive(Debug, Clone)]
pub(crate) struct Obj {
    pub(crate) key: Object,
    pub(crate) alive: bool,
    /// The member of the walk that created it.
    pub(crate) created_by: usize,
    pub(crate) owner: Option<Id>,
    pub(crate) deps: Vec<Id>,
    pub(crate) detail: Option<Detail>,
    pub(crate) kind: Option<RelKind>,
    /// For a primary key, unique constraint or unique index: what it makes unique.
    pub(crate) unique: Option<UniqueKey>,
    /// For a column: whether it has a default.
    pub(crate) has_default: bool,
}

/// What a primary key, unique constraint or unique index makes unique.
#[derive(Debug, Clone)]
pub(crate) struct UniqueKey {
    pub(crate) table: Id,
    pub(crate) primary: bool,
    /// The columns (`None`: not known, matches any foreign key).
    pub(crate) columns: Option<Vec<Id>>,
}

/// Why a `DROP` is refused.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// Other objects depend on what would be dropped.
    Dependents { blocker: Id, on: Id },
    /// An index that a constraint implements.
    Required { by: Id },
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Catalog {
    pub(crate) objs: Vec<Obj>,
    names: HashMap<Object, Id>,
    /// Routine name → its overloads.
    routines: HashMap<String, Vec<Id>>,
    children: HashMap<Id, Vec<Id>>,
    dependents: HashMap<Id, Vec<Id>>,
}

impl Catalog {
    pub(crate) fn get(&self, id: Id) -> &Obj {
        &self.objs[id]
    }

    /// The live object a reference names: any overload for a routine named without arguments.
    pub(crate) fn lookup(&self, key: &Object) -> Option<Id> {
        if let Object::Function(name) = key {
            return self
                .routines
                .get(name)
                .and_then(|ids| ids.iter().copied().find(|&i| self.objs[i].alive));
        }
        self.names.get(key).copied()
    }

    pub(crate) fn create(&mut self, key: Object, created_by: usize, owner: Option<Id>) -> Id {
        let id = self.objs.len();
        self.objs.push(Obj {
            key: key.clone(),
            alive: true,
            created_by,
            owner,
            deps: Vec::new(),
            detail: None,
            kind: None,
            unique: None,
            has_default: false,
        });
        if let Some(o) = owner {
            self.children.entry(o).or_default().push(id);
        }
        self.bind(key, id);
        id
    }

    fn bind(&mut self, key: Object, id: Id) {
        if let Object::Routine { name, .. } = &key {
            self.routines.entry(name.clone()).or_default().push(id);
        }
        self.names.insert(key, id);
    }

    fn unbind(&mut self, id: Id) {
        let key = self.objs[id].key.clone();
        if self.names.get(&key) == Some(&id) {
            self.names.remove(&key);
        }
        if let Object::Routine { name, .. } = &key
            && let Some(ids) = self.routines.get_mut(name)
        {
            ids.retain(|&i| i != id);
        }
    }

    pub(crate) fn add_dep(&mut self, from: Id, on: Id) {
        if from == on || self.objs[from].owner == Some(on) || self.objs[from].deps.contains(&on) {
            return;
        }
        self.objs[from].deps.push(on);
        self.dependents.entry(on).or_default().push(from);
    }

    /// Forgets what an object depends on (its definition is replaced).
    pub(crate) fn clear_deps(&mut self, id: Id) {
        for on in std::mem::take(&mut self.objs[id].deps) {
            if let Some(d) = self.dependents.get_mut(&on) {
                d.retain(|&x| x != id);
            }
        }
    }

    /// Forgets the dependencies on objects whose names match `which` (a column's type).
    pub(crate) fn clear_deps_where(&mut self, id: Id, which: impl Fn(&Object) -> bool) {
        let (gone, kept): (Vec<Id>, Vec<Id>) = std::mem::take(&mut self.objs[id].deps)
            .into_iter()
            .partition(|&on| which(&self.objs[on].key));
        self.objs[id].deps = kept;
        for on in gone {
            if let Some(d) = self.dependents.get_mut(&on) {
                d.retain(|&x| x != id);
            }
        }
    }

    pub(crate) fn set_owner(&mut self, id: Id, owner: Option<Id>) {
        if let Some(old) = self.objs[id].owner
            && let Some(c) = self.children.get_mut(&old)
        {
            c.retain(|&x| x != id);
        }
        self.objs[id].owner = owner;
        if let Some(o) = owner {
            self.children.entry(o).or_default().push(id);
        }
    }

    fn live_children(&self, id: Id) -> impl Iterator<Item = Id> + '_ {
        self.children
            .get(&id)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&c| self.objs[c].alive)
    }

    pub(crate) fn live_dependents(&self, id: Id) -> impl Iterator<Item = Id> + '_ {
        self.dependents
            .get(&id)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&c| self.objs[c].alive)
    }

    /// What goes with `id`: what belongs to it, recursively; for a column, also what of its
    /// table uses it.
    fn closure(&self, id: Id, out: &mut HashSet<Id>) {
        if !out.insert(id) {
            return;
        }
        let children: Vec<Id> = self.live_children(id).collect();
        for c in children {
            self.closure(c, out);
        }
        if matches!(self.objs[id].key, Object::Column { .. })
            && let Some(table) = self.objs[id].owner
        {
            let same_table: Vec<Id> = self
                .live_dependents(id)
                .filter(|&d| self.belongs_to(d, table))
                .collect();
            for d in same_table {
                self.closure(d, out);
            }
        }
    }

    /// Whether `id` belongs (directly or through its owners) to `table`.
    fn belongs_to(&self, mut id: Id, table: Id) -> bool {
        while let Some(o) = self.objs[id].owner {
            if o == table {
                return true;
            }
            id = o;
        }
        false
    }

    /// Drops `id` as `DROP … [CASCADE]` does, or says why PostgreSQL refuses.
    pub(crate) fn drop(&mut self, id: Id, cascade: bool) -> Result<Vec<Id>, Refusal> {
        if let Some(owner) = self.objs[id].owner
            && matches!(self.objs[owner].key, Object::Constraint { .. })
            && matches!(self.objs[id].key, Object::Relation(_))
        {
            return Err(Refusal::Required { by: owner });
        }
        let mut gone = HashSet::new();
        self.closure(id, &mut gone);
        loop {
            let blockers: Vec<(Id, Id)> = gone
                .iter()
                .flat_map(|&g| self.live_dependents(g).map(move |d| (d, g)))
                .filter(|(d, _)| !gone.contains(d))
                .collect();
            if blockers.is_empty() {
                break;
            }
            if !cascade {
                let (blocker, on) = blockers[0];
                return Err(Refusal::Dependents { blocker, on });
            }
            for (d, _) in blockers {
                self.closure(d, &mut gone);
            }
        }
        let mut gone: Vec<Id> = gone.into_iter().collect();
        gone.sort_unstable();
        for &g in &gone {
            self.objs[g].alive = false;
            self.unbind(g);
        }
        Ok(gone)
    }

    /// Gives `id` a new name; what is keyed by a relation's name (its columns, constraints,
    /// triggers, policies, row type) follows a relation's rename. Returns the renamed
    /// `(old, new)` names.
    pub(crate) fn rename(&mut self, id: Id, to: Object) -> Vec<(Object, Object)> {
        let from = self.objs[id].key.clone();
        let mut changed = vec![(from.clone(), to.clone())];
        self.unbind(id);
        self.objs[id].key = to.clone();
        self.bind(to.clone(), id);
        if let (Object::Relation(old), Object::Relation(new)) = (&from, &to) {
            let owned: Vec<Id> = self.live_children(id).collect();
            for c in owned {
                let key = self.objs[c].key.clone();
                let moved = match &key {
                    Object::Type(t) if t == old => Object::Type(new.clone()),
                    k if k.owner() == Some(old.as_str()) => k.with_owner(new),
                    _ => continue,
                };
                self.unbind(c);
                self.objs[c].key = moved.clone();
                self.bind(moved.clone(), c);
                changed.push((key, moved));
            }
        }
        if let Object::Schema(old) = &from
            && let Object::Schema(new) = &to
        {
            let prefix = format!("{old}.");
            let inside: Vec<Id> = self
                .names
                .iter()
                .filter(|(k, _)| k.schema() == Some(old.as_str()))
                .map(|(_, &i)| i)
                .collect();
            for c in inside {
                let key = self.objs[c].key.clone();
                let re = |n: &str| format!("{new}.{}", n.strip_prefix(&prefix).unwrap_or(n));
                let moved = match &key {
                    Object::Relation(n) => Object::Relation(re(n)),
                    Object::Type(n) => Object::Type(re(n)),
                    Object::Function(n) => Object::Function(re(n)),
                    Object::Routine { name, args } => Object::Routine {
                        name: re(name),
                        args: args.clone(),
                    },
                    _ => continue,
                };
                self.unbind(c);
                self.objs[c].key = moved.clone();
                self.bind(moved.clone(), c);
                changed.push((key, moved));
            }
        }
        changed
    }

    /// The live columns of a relation.
    pub(crate) fn columns_of(&self, table: Id) -> Vec<Id> {
        self.live_children(table)
            .filter(|&c| matches!(self.objs[c].key, Object::Column { .. }))
            .collect()
    }

    /// Every live object.
    pub(crate) fn live(&self) -> impl Iterator<Item = (Id, &Obj)> {
        self.objs.iter().enumerate().filter(|(_, o)| o.alive)
    }
}
