//! Checking a set of definitions as a whole (`audiences.md` §2 and §4): keys (given or derived,
//! valid, unique — a later repeat is refused), kinds, the text, and the `trait()` references
//! between definitions — every definition on a reference cycle is refused, and so is any that
//! reads a refused one. What survives is [`Definitions`]: the compiled set in evaluation order,
//! with the indexes the incremental state needs (which definitions read an event name, a
//! profile trait, another definition).

use std::collections::{BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ast::{Body, Kind, Query};
use crate::error::DefinitionError;
use crate::key::{is_valid_key, key_from_name};
use crate::parser::parse;

/// A definition as saved: its key (or a name to derive it from), its kind as given, its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefinitionSpec {
    /// The key; when absent, derived from `name` (see [`key_from_name`]).
    #[serde(default)]
    pub key: Option<String>,
    /// The display name.
    #[serde(default)]
    pub name: Option<String>,
    /// `"audience"` or `"trait"`, as given (anything else is refused with what it was).
    #[serde(default)]
    pub kind: Value,
    /// The definition's text in the query language.
    pub query: String,
}

impl DefinitionSpec {
    /// The definition's key: the one given, else the one derived from the name.
    pub fn key(&self) -> Option<String> {
        self.key
            .clone()
            .or_else(|| self.name.as_deref().map(key_from_name))
    }
}

/// A definition that passed every check, compiled.
#[derive(Debug, Clone)]
pub struct Definition {
    key: String,
    kind: Kind,
    text: String,
    position: usize,
    query: Query,
    reads_definitions: Vec<usize>,
    reads_traits: BTreeSet<String>,
    reads_events: BTreeSet<String>,
}

impl Definition {
    /// The key its value is sent and read (`trait('key')`) under.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Audience or computed trait.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The text it was compiled from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its position in the list given to [`Definitions::compile`].
    pub fn position(&self) -> usize {
        self.position
    }

    /// The parsed query.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The event names its streams read (`Page Viewed` and `Screen Viewed` include page and
    /// screen calls).
    pub fn reads_events(&self) -> &BTreeSet<String> {
        &self.reads_events
    }

    /// The profile traits it reads through `trait()` (keys that are not definitions').
    pub fn reads_traits(&self) -> &BTreeSet<String> {
        &self.reads_traits
    }

    /// The definitions it reads through `trait()`, as indexes into [`Definitions::list`].
    pub fn reads_definitions(&self) -> &[usize] {
        &self.reads_definitions
    }
}

/// A refused definition: where it was in the list, its key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Its position in the list given to [`Definitions::compile`].
    pub position: usize,
    /// Its key (given or derived; empty when it has neither key nor name).
    pub key: String,
    /// Why it is refused.
    pub error: DefinitionError,
}

/// The result of [`Definitions::compile`]: what can be evaluated, and what was refused.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The definitions that passed every check.
    pub definitions: Definitions,
    /// The refused ones, in list order.
    pub refused: Vec<Refusal>,
}

/// A checked set of definitions, ready to evaluate: in list order, with the order to compute
/// them in (a definition after those it reads) and who reads what.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    list: Vec<Definition>,
    order: Vec<usize>,
    by_key: HashMap<String, usize>,
    event_readers: HashMap<String, Vec<usize>>,
    trait_readers: HashMap<String, Vec<usize>>,
    dependents: Vec<Vec<usize>>,
}

/// A `trait()` reference from one definition to another: the target's position and the column.
#[derive(Debug, Clone, Copy)]
struct Edge {
    target: usize,
    column: usize,
}

impl Definitions {
    /// Checks `specs` as a whole and compiles those that pass.
    pub fn compile(specs: &[DefinitionSpec]) -> Compiled {
        let keys: Vec<Option<String>> = specs.iter().map(DefinitionSpec::key).collect();
        // The first definition with a key owns it: `trait()` of that key reads it.
        let mut owner: HashMap<&str, usize> = HashMap::new();
        for (position, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                owner.entry(key.as_str()).or_insert(position);
            }
        }

        let mut outcome: Vec<Result<(Kind, Query), DefinitionError>> = specs
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(position, (spec, key))| check_one(spec, key.as_deref(), position, &owner))
            .collect();

        let edges: Vec<Vec<Edge>> = outcome
            .iter()
            .map(|result| match result {
                Ok((_, query)) => query
                    .references
                    .iter()
                    .filter_map(|reference| {
                        let target = *owner.get(reference.key.as_str())?;
                        Some(Edge {
                            target,
                            column: reference.column,
                        })
                    })
                    .collect(),
                Err(_) => Vec::new(),
            })
            .collect();

        refuse_cycles(&mut outcome, &edges, &keys);
        let order = refuse_readers_of_refused(&mut outcome, &edges, &keys);

        let mut refused = Vec::new();
        let mut survivors = Vec::new();
        for (position, result) in outcome.into_iter().enumerate() {
            let key = keys.get(position).cloned().flatten().unwrap_or_default();
            match result {
                Ok((kind, query)) => survivors.push((position, key, kind, query)),
                Err(error) => refused.push(Refusal {
                    position,
                    key,
                    error,
                }),
            }
        }
        let definitions = Definitions::assemble(specs, survivors, &order);
        Compiled {
            definitions,
            refused,
        }
    }

    fn assemble(
        specs: &[DefinitionSpec],
        survivors: Vec<(usize, String, Kind, Query)>,
        order: &[usize],
    ) -> Definitions {
        let index_of: HashMap<usize, usize> = survivors
            .iter()
            .enumerate()
            .map(|(index, (position, ..))| (*position, index))
            .collect();
        let by_key: HashMap<String, usize> = survivors
            .iter()
            .enumerate()
            .map(|(index, (_, key, ..))| (key.clone(), index))
            .collect();
        let mut list = Vec::with_capacity(survivors.len());
        for (position, key, kind, query) in survivors {
            let mut reads_definitions = Vec::new();
            let mut reads_traits = BTreeSet::new();
            for reference in &query.references {
                match by_key.get(&reference.key) {
                    Some(&index) if !reads_definitions.contains(&index) => {
                        reads_definitions.push(index);
                    }
                    Some(_) => {}
                    None => {
                        reads_traits.insert(reference.key.clone());
                    }
                }
            }
            let reads_events = query.streams.iter().map(|s| s.event.clone()).collect();
            let text = specs
                .get(position)
                .map(|spec| spec.query.clone())
                .unwrap_or_default();
            list.push(Definition {
                key,
                kind,
                text,
                position,
                query,
                reads_definitions,
                reads_traits,
                reads_events,
            });
        }
        let mut event_readers: HashMap<String, Vec<usize>> = HashMap::new();
        let mut trait_readers: HashMap<String, Vec<usize>> = HashMap::new();
        let mut dependents = vec![Vec::new(); list.len()];
        for (index, definition) in list.iter().enumerate() {
            for event in &definition.reads_events {
                event_readers.entry(event.clone()).or_default().push(index);
            }
            for key in &definition.reads_traits {
                trait_readers.entry(key.clone()).or_default().push(index);
            }
            for &read in &definition.reads_definitions {
                if let Some(readers) = dependents.get_mut(read) {
                    readers.push(index);
                }
            }
        }
        let order = order
            .iter()
            .filter_map(|position| index_of.get(position).copied())
            .collect();
        Definitions {
            list,
            order,
            by_key,
            event_readers,
            trait_readers,
            dependents,
        }
    }

    /// Every definition, in list order.
    pub fn list(&self) -> &[Definition] {
        &self.list
    }

    /// How many definitions there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The order to compute values in (indexes into [`Self::list`]): each definition after
    /// those it reads.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The index of the definition with this key.
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    /// The definitions whose streams read events named `event`.
    pub fn readers_of_event(&self, event: &str) -> &[usize] {
        self.event_readers.get(event).map_or(&[], Vec::as_slice)
    }

    /// The definitions that read the profile trait `key`.
    pub fn readers_of_trait(&self, key: &str) -> &[usize] {
        self.trait_readers.get(key).map_or(&[], Vec::as_slice)
    }

    /// The definitions that read definition `index` through `trait()`.
    pub fn dependents_of(&self, index: usize) -> &[usize] {
        self.dependents.get(index).map_or(&[], Vec::as_slice)
    }
}

/// The checks of one definition on its own: key, kind, text.
fn check_one(
    spec: &DefinitionSpec,
    key: Option<&str>,
    position: usize,
    owner: &HashMap<&str, usize>,
) -> Result<(Kind, Query), DefinitionError> {
    let Some(key) = key else {
        return Err(DefinitionError::MissingKey);
    };
    if !is_valid_key(key) {
        return Err(DefinitionError::InvalidKey {
            key: key.to_owned(),
        });
    }
    if owner.get(key).is_some_and(|&first| first != position) {
        return Err(DefinitionError::DuplicateKey {
            key: key.to_owned(),
        });
    }
    let kind = match spec.kind.as_str() {
        Some("audience") => Kind::Audience,
        Some("trait") => Kind::Trait,
        _ => {
            return Err(DefinitionError::UnknownKind {
                kind: spec.kind.to_string(),
            });
        }
    };
    let query = parse(&spec.query, kind)?;
    debug_assert!(matches!(
        (&query.body, kind),
        (Body::Audience(_), Kind::Audience) | (Body::Trait(_), Kind::Trait)
    ));
    Ok((kind, query))
}

/// Refuses every definition that reaches itself through `trait()` references.
fn refuse_cycles(
    outcome: &mut [Result<(Kind, Query), DefinitionError>],
    edges: &[Vec<Edge>],
    keys: &[Option<String>],
) {
    let alive: Vec<bool> = outcome.iter().map(Result::is_ok).collect();
    let key = |position: usize| keys.get(position).cloned().flatten().unwrap_or_default();
    let mut cycles = Vec::new();
    for start in 0..outcome.len() {
        if !alive.get(start).copied().unwrap_or(false) {
            continue;
        }
        if let Some((path, column)) = cycle_through(start, edges, &alive) {
            let path = path.into_iter().map(key).collect();
            cycles.push((start, DefinitionError::Cycle { column, path }));
        }
    }
    for (position, error) in cycles {
        if let Some(slot) = outcome.get_mut(position) {
            *slot = Err(error);
        }
    }
}

/// The shortest path of references from `start` back to itself (positions, `start` at both
/// ends) and the column of its first reference, if there is one.
fn cycle_through(start: usize, edges: &[Vec<Edge>], alive: &[bool]) -> Option<(Vec<usize>, usize)> {
    let is_alive = |position: usize| alive.get(position).copied().unwrap_or(false);
    // Breadth-first from `start`'s own references; `parent` remembers how each was reached.
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::new();
    for edge in edges.get(start)? {
        if edge.target == start {
            return Some((vec![start, start], edge.column));
        }
        if is_alive(edge.target) && !parent.contains_key(&edge.target) {
            parent.insert(edge.target, start);
            queue.push_back(edge.target);
        }
    }
    while let Some(node) = queue.pop_front() {
        for edge in edges.get(node).into_iter().flatten() {
            if edge.target == start {
                let mut path = vec![start, node];
                let mut at = node;
                while let Some(&previous) = parent.get(&at) {
                    if previous == start {
                        break;
                    }
                    path.push(previous);
                    at = previous;
                }
                // `path` is start, node, …, back towards start: reverse all but the first.
                if let Some(tail) = path.get_mut(1..) {
                    tail.reverse();
                }
                path.push(start);
                let first = path.get(1).copied()?;
                let column = edges
                    .get(start)?
                    .iter()
                    .find(|edge| edge.target == first)?
                    .column;
                return Some((path, column));
            }
            if is_alive(edge.target) && !parent.contains_key(&edge.target) && edge.target != start {
                parent.insert(edge.target, node);
                queue.push_back(edge.target);
            }
        }
    }
    None
}

/// Refuses every definition that reads (directly or not) a refused one, and returns the
/// survivors' evaluation order (positions, each after those it reads). After
/// [`refuse_cycles`], the references between survivors form no cycle.
fn refuse_readers_of_refused(
    outcome: &mut [Result<(Kind, Query), DefinitionError>],
    edges: &[Vec<Edge>],
    keys: &[Option<String>],
) -> Vec<usize> {
    let count = outcome.len();
    // Kahn's algorithm over the references among definitions still standing, lowest position
    // first, so that each definition is judged after everything it reads.
    let mut waiting_on = vec![0usize; count];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (position, list) in edges.iter().enumerate() {
        if outcome.get(position).is_none_or(Result::is_err) {
            continue;
        }
        let targets: BTreeSet<usize> = list.iter().map(|edge| edge.target).collect();
        for target in targets {
            if outcome.get(target).is_some_and(Result::is_ok) {
                if let Some(waiting) = waiting_on.get_mut(position) {
                    *waiting += 1;
                }
                if let Some(list) = readers.get_mut(target) {
                    list.push(position);
                }
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..count)
        .filter(|&p| outcome.get(p).is_some_and(Result::is_ok) && waiting_on.get(p) == Some(&0))
        .collect();
    let mut order = Vec::new();
    while let Some(position) = ready.pop_first() {
        let refused_read = edges.get(position).and_then(|list| {
            list.iter()
                .find(|edge| outcome.get(edge.target).is_some_and(Result::is_err))
                .copied()
        });
        if let Some(edge) = refused_read {
            let key = keys.get(edge.target).cloned().flatten().unwrap_or_default();
            if let Some(slot) = outcome.get_mut(position) {
                *slot = Err(DefinitionError::ReadsRefused {
                    column: edge.column,
                    key,
                });
            }
        } else {
            order.push(position);
        }
        for &reader in readers.get(position).into_iter().flatten() {
            if let Some(waiting) = waiting_on.get_mut(reader) {
                *waiting -= 1;
                if *waiting == 0 {
                    ready.insert(reader);
                }
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(key: &str, kind: &str, query: &str) -> DefinitionSpec {
        DefinitionSpec {
            key: Some(key.to_owned()),
            name: None,
            kind: json!(kind),
            query: query.to_owned(),
        }
    }

    fn errors(specs: &[DefinitionSpec]) -> Vec<(String, String)> {
        Definitions::compile(specs)
            .refused
            .into_iter()
            .map(|r| (r.key, r.error.to_string()))
            .collect()
    }

    #[test]
    fn cycles_refuse_every_member_and_their_readers() {
        let specs = [
            spec(
                "a",
                "audience",
                "trait('b') = true OR trait('plan') = 'pro'",
            ),
            spec(
                "b",
                "trait",
                "event('x').where(trait('a').exists()).count()",
            ),
            spec("c", "audience", "trait('c') = true"),
            spec("d", "audience", "trait('x') = 1 AND trait('a') = true"),
            spec("e", "audience", "trait('d').exists()"),
            spec("f", "audience", "trait('plan') = 'pro'"),
        ];
        assert_eq!(
            errors(&specs),
            [
                ("a".into(), "column 1: reference cycle: a -> b -> a".into()),
                ("b".into(), "column 18: reference cycle: b -> a -> b".into()),
                ("c".into(), "column 1: reference cycle: c -> c".into()),
                (
                    "d".into(),
                    "column 20: trait(\"a\") reads a definition that is refused".into()
                ),
                (
                    "e".into(),
                    "column 1: trait(\"d\") reads a definition that is refused".into()
                ),
            ]
        );
    }

    #[test]
    fn keys_are_checked_and_later_repeats_refused() {
        let specs = [
            spec("score", "audience", "trait('a') = 1"),
            spec("score", "trait", "event('x').count()"),
            spec("Big Spender", "audience", "trait('a') = 1"),
            spec("kind", "Audience", "trait('a') = 1"),
        ];
        let errors = errors(&specs);
        assert_eq!(errors[0].0, "score");
        assert!(errors[0].1.starts_with("duplicate key"));
        assert!(errors[1].1.starts_with("invalid key"));
        assert_eq!(
            errors[2].1,
            "unknown kind \"Audience\" (expected \"audience\" or \"trait\")"
        );
    }

    #[test]
    fn order_puts_what_is_read_first_and_indexes_readers() {
        let specs = [
            spec("a", "audience", "trait('b') > 1 AND trait('plan') = 'pro'"),
            spec("b", "trait", "event('Order Completed').count()"),
        ];
        let compiled = Definitions::compile(&specs);
        assert!(compiled.refused.is_empty());
        let definitions = compiled.definitions;
        assert_eq!(definitions.order(), [1, 0]);
        assert_eq!(definitions.readers_of_event("Order Completed"), [1]);
        assert_eq!(definitions.readers_of_trait("plan"), [0]);
        assert_eq!(definitions.dependents_of(1), [0]);
        assert_eq!(definitions.list()[0].reads_definitions(), [1]);
    }
}
