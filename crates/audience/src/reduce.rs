//! Reducers (`audiences.md` §3): an [`Accumulator`] takes the events that count one at a time
//! (their time, processing sequence and the reducer's property value), can absorb another
//! accumulator of the same reducer (profiles merging), and finishes into the value. Both the
//! from-scratch evaluator and the incremental state fold through it, so each reducer's rules
//! (sums in processing order, ties, text forms) live here once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ast::{As, Reducer};
use crate::value::{ScalarType, number, present, text};

/// A value on an event: where it sits in time and processing order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stamped {
    time: i64,
    seq: u64,
    value: Value,
}

/// The running state of one reducer over the events that count so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Accumulator {
    /// `count()`.
    Count(u64),
    /// `sum` and `avg`: the numbers with their processing sequence, and their running sum in
    /// processing order. The addends are kept because a merge must add them again in processing
    /// order (floating-point addition is not associative).
    Sum {
        average: bool,
        addends: Vec<(u64, f64)>,
        total: f64,
    },
    /// `min`/`max` over numbers: the extreme value, the earliest in processing order on ties.
    Number {
        max: bool,
        best: Option<(f64, u64, Value)>,
    },
    /// `min`/`max … as string`: the extreme string by code point.
    Text { max: bool, best: Option<String> },
    /// `first`/`last`: the value on the earliest/latest event by time, ties by processing order.
    Edge { last: bool, best: Option<Stamped> },
    /// `mode(p, d)`: how often each text occurred.
    Mode {
        minimum: u64,
        counts: BTreeMap<String, u64>,
    },
    /// `unique(p)` (or its `.count()`): the distinct scalars by (text, type), each with the
    /// processing sequence and value of its first occurrence.
    Unique {
        count: bool,
        #[serde(with = "pairs")]
        items: BTreeMap<(String, ScalarType), (u64, Value)>,
    },
}

impl Accumulator {
    /// An empty accumulator for `reducer`.
    pub(crate) fn new(reducer: &Reducer) -> Accumulator {
        match reducer {
            Reducer::Count => Accumulator::Count(0),
            Reducer::Sum(_) | Reducer::Avg(_) => Accumulator::Sum {
                average: matches!(reducer, Reducer::Avg(_)),
                addends: Vec::new(),
                total: 0.0,
            },
            Reducer::Min(_, As::Number) | Reducer::Max(_, As::Number) => Accumulator::Number {
                max: matches!(reducer, Reducer::Max(..)),
                best: None,
            },
            Reducer::Min(_, As::String) | Reducer::Max(_, As::String) => Accumulator::Text {
                max: matches!(reducer, Reducer::Max(..)),
                best: None,
            },
            Reducer::First(_) | Reducer::Last(_) => Accumulator::Edge {
                last: matches!(reducer, Reducer::Last(_)),
                best: None,
            },
            Reducer::Mode(_, minimum) => Accumulator::Mode {
                minimum: *minimum,
                counts: BTreeMap::new(),
            },
            Reducer::Unique(_) | Reducer::UniqueCount(_) => Accumulator::Unique {
                count: matches!(reducer, Reducer::UniqueCount(_)),
                items: BTreeMap::new(),
            },
        }
    }

    /// Takes one event that counts: its time, processing sequence and the reducer's property
    /// value on it (`None` when missing; `count()` has none).
    pub(crate) fn add(&mut self, time: i64, seq: u64, value: Option<&Value>) {
        let value = present(value);
        match self {
            Accumulator::Count(n) => *n += 1,
            Accumulator::Sum { addends, total, .. } => {
                let Some(x) = value.and_then(number) else {
                    return;
                };
                if addends.last().is_none_or(|&(last, _)| last < seq) {
                    addends.push((seq, x));
                    *total += x;
                } else {
                    let at = addends.partition_point(|&(s, _)| s < seq);
                    addends.insert(at, (seq, x));
                    *total = addends.iter().map(|&(_, x)| x).fold(0.0, |sum, x| sum + x);
                }
            }
            Accumulator::Number { max, best } => {
                let Some(x) = value.and_then(number) else {
                    return;
                };
                let better = match best {
                    None => true,
                    Some((current, current_seq, _)) => {
                        let strictly = if *max { x > *current } else { x < *current };
                        strictly || (x == *current && seq < *current_seq)
                    }
                };
                if better {
                    *best = value.map(|v| (x, seq, v.clone()));
                }
            }
            Accumulator::Text { max, best } => {
                let Some(s) = value.and_then(Value::as_str) else {
                    return;
                };
                let better = best
                    .as_deref()
                    .is_none_or(|current| if *max { s > current } else { s < current });
                if better {
                    *best = Some(s.to_owned());
                }
            }
            Accumulator::Edge { last, best } => {
                let Some(value) = value else {
                    return;
                };
                let better = best.as_ref().is_none_or(|current| {
                    let key = (time, seq);
                    let current = (current.time, current.seq);
                    if *last { key > current } else { key < current }
                });
                if better {
                    *best = Some(Stamped {
                        time,
                        seq,
                        value: value.clone(),
                    });
                }
            }
            Accumulator::Mode { counts, .. } => {
                if let Some((text, _)) = value.and_then(text) {
                    *counts.entry(text).or_insert(0) += 1;
                }
            }
            Accumulator::Unique { items, .. } => {
                let Some(value) = value else {
                    return;
                };
                let Some(key) = text(value) else {
                    return;
                };
                let entry = items.entry(key).or_insert_with(|| (seq, value.clone()));
                if seq < entry.0 {
                    *entry = (seq, value.clone());
                }
            }
        }
    }

    /// Takes in another accumulator of the same reducer (over events of a profile merged into
    /// this one), as if every event had been added to this one in processing order.
    pub(crate) fn absorb(&mut self, other: Accumulator) {
        match (self, other) {
            (Accumulator::Count(n), Accumulator::Count(m)) => *n += m,
            (
                Accumulator::Sum { addends, total, .. },
                Accumulator::Sum {
                    addends: theirs, ..
                },
            ) => {
                addends.extend(theirs);
                addends.sort_by_key(|&(seq, _)| seq);
                *total = addends.iter().map(|&(_, x)| x).fold(0.0, |sum, x| sum + x);
            }
            (
                this @ Accumulator::Number { .. },
                Accumulator::Number {
                    best: Some((_, seq, value)),
                    ..
                },
            ) => this.add(0, seq, Some(&value)),
            (
                this @ Accumulator::Text { .. },
                Accumulator::Text {
                    best: Some(best), ..
                },
            ) => this.add(0, 0, Some(&Value::String(best))),
            (
                this @ Accumulator::Edge { .. },
                Accumulator::Edge {
                    best: Some(best), ..
                },
            ) => this.add(best.time, best.seq, Some(&best.value)),
            (Accumulator::Mode { counts, .. }, Accumulator::Mode { counts: theirs, .. }) => {
                for (text, n) in theirs {
                    *counts.entry(text).or_insert(0) += n;
                }
            }
            (Accumulator::Unique { items, .. }, Accumulator::Unique { items: theirs, .. }) => {
                for (key, (seq, value)) in theirs {
                    let entry = items.entry(key).or_insert_with(|| (seq, value.clone()));
                    if seq < entry.0 {
                        *entry = (seq, value);
                    }
                }
            }
            // Nothing to take in, or accumulators of different reducers (they never meet: both
            // come from one definition).
            _ => {}
        }
    }

    /// The reducer's value; `None` when it has none (an average, extreme, first/last or mode
    /// of no value).
    pub(crate) fn finish(&self) -> Option<Value> {
        match self {
            Accumulator::Count(n) => Some(Value::from(*n)),
            Accumulator::Sum {
                average,
                addends,
                total,
            } => {
                if !*average {
                    return Some(junction_js::f64_to_value(*total));
                }
                if addends.is_empty() {
                    return None;
                }
                #[allow(clippy::cast_precision_loss)] // counts stay far below 2^53
                let count = addends.len() as f64;
                Some(junction_js::f64_to_value(*total / count))
            }
            Accumulator::Number { best, .. } => best.as_ref().map(|(_, _, value)| value.clone()),
            Accumulator::Text { best, .. } => best.clone().map(Value::String),
            Accumulator::Edge { best, .. } => best.as_ref().map(|b| b.value.clone()),
            Accumulator::Mode { minimum, counts } => {
                // The most frequent text occurring at least `minimum` times; ties to the
                // smallest text (the map iterates in code point order, so the first wins).
                let mut winner: Option<(&String, u64)> = None;
                for (text, &n) in counts {
                    if n >= *minimum && winner.is_none_or(|(_, best)| n > best) {
                        winner = Some((text, n));
                    }
                }
                winner.map(|(text, _)| Value::String(text.clone()))
            }
            Accumulator::Unique { count, items } => {
                if *count {
                    return Some(Value::from(items.len()));
                }
                Some(Value::Array(
                    items.values().map(|(_, value)| value.clone()).collect(),
                ))
            }
        }
    }
}

/// Serialises a map with non-string keys as a list of pairs (JSON objects need string keys).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer, K: Serialize, V: Serialize>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub(super) fn deserialize<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        let pairs: Vec<(K, V)> = Vec::deserialize(deserializer)?;
        Ok(pairs.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Prop, Root};
    use serde_json::json;

    fn prop() -> Prop {
        Prop {
            root: Root::Properties,
            path: vec!["p".into()],
        }
    }

    fn fold(reducer: Reducer, values: &[(i64, Value)]) -> Option<Value> {
        let mut acc = Accumulator::new(&reducer);
        for (seq, (time, value)) in values.iter().enumerate() {
            acc.add(*time, seq as u64, Some(value));
        }
        acc.finish()
    }

    #[test]
    fn sums_and_averages_read_numbers_only() {
        let values = [
            (0, json!(0.1)),
            (0, json!("5")),
            (0, json!(0.2)),
            (0, json!(null)),
        ];
        assert_eq!(
            fold(Reducer::Sum(prop()), &values),
            Some(json!(0.30000000000000004))
        );
        assert_eq!(fold(Reducer::Sum(prop()), &[]), Some(json!(0)));
        assert_eq!(fold(Reducer::Avg(prop()), &[]), None);
        assert_eq!(
            fold(Reducer::Avg(prop()), &[(0, json!(1)), (0, json!(2))]),
            Some(json!(1.5))
        );
    }

    #[test]
    fn extremes_by_number_or_code_point() {
        let values = [
            (0, json!(3)),
            (0, json!("a")),
            (0, json!(-1)),
            (0, json!("B")),
        ];
        assert_eq!(
            fold(Reducer::Min(prop(), As::Number), &values),
            Some(json!(-1))
        );
        assert_eq!(
            fold(Reducer::Max(prop(), As::Number), &values),
            Some(json!(3))
        );
        assert_eq!(
            fold(Reducer::Min(prop(), As::String), &values),
            Some(json!("B"))
        );
        assert_eq!(
            fold(Reducer::Max(prop(), As::String), &values),
            Some(json!("a"))
        );
    }

    #[test]
    fn first_and_last_by_time_then_processing_order() {
        let values = [
            (5, json!("b")),
            (1, json!("a")),
            (5, json!("c")),
            (0, json!(null)),
        ];
        assert_eq!(fold(Reducer::First(prop()), &values), Some(json!("a")));
        assert_eq!(fold(Reducer::Last(prop()), &values), Some(json!("c")));
    }

    #[test]
    fn mode_needs_the_minimum_and_breaks_ties_by_text() {
        let values = [
            (0, json!("b")),
            (0, json!(1)),
            (0, json!("1")),
            (0, json!("b")),
            (0, json!([1])),
        ];
        assert_eq!(fold(Reducer::Mode(prop(), 2), &values), Some(json!("1")));
        assert_eq!(fold(Reducer::Mode(prop(), 3), &values), None);
        assert_eq!(fold(Reducer::Mode(prop(), 0), &[]), None);
    }

    #[test]
    fn unique_sorts_by_text_then_type() {
        let values = [
            (0, json!("2")),
            (0, json!(true)),
            (0, json!(2)),
            (0, json!("true")),
            (0, json!(2.0)),
            (0, json!({})),
        ];
        assert_eq!(
            fold(Reducer::Unique(prop()), &values),
            Some(json!([2, "2", true, "true"]))
        );
        assert_eq!(fold(Reducer::UniqueCount(prop()), &values), Some(json!(4)));
    }

    #[test]
    fn absorbing_equals_adding_in_processing_order() {
        let values = [
            json!(0.1),
            json!("b"),
            json!(1e16),
            json!(2),
            json!(0.2),
            json!("a"),
            json!(-1e16),
            json!(2.0),
            json!(true),
            json!("b"),
            json!(0.3),
            json!(null),
            json!("2"),
            json!(2),
        ];
        let reducers = [
            Reducer::Count,
            Reducer::Sum(prop()),
            Reducer::Avg(prop()),
            Reducer::Min(prop(), As::Number),
            Reducer::Max(prop(), As::Number),
            Reducer::Min(prop(), As::String),
            Reducer::Max(prop(), As::String),
            Reducer::Mode(prop(), 2),
            Reducer::First(prop()),
            Reducer::Last(prop()),
            Reducer::Unique(prop()),
            Reducer::UniqueCount(prop()),
        ];
        for reducer in reducers {
            for split in [2, 3, 5] {
                let mut a = Accumulator::new(&reducer);
                let mut b = Accumulator::new(&reducer);
                let mut all = Accumulator::new(&reducer);
                for (seq, value) in values.iter().enumerate() {
                    // Times repeat so that first/last break ties by processing order.
                    let time = (seq % 4) as i64;
                    let target = if seq % split == 0 { &mut b } else { &mut a };
                    target.add(time, seq as u64, Some(value));
                    all.add(time, seq as u64, Some(value));
                }
                let mut reversed = b.clone();
                reversed.absorb(a.clone());
                a.absorb(b);
                assert_eq!(a.finish(), all.finish(), "{reducer:?} split {split}");
                assert_eq!(a, all, "{reducer:?} split {split}");
                assert_eq!(reversed.finish(), all.finish(), "{reducer:?} reversed");
            }
        }
    }
}
