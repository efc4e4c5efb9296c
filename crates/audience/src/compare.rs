//! Conditions: how a comparator judges a value (`audiences.md` §3, "Comparisons"), how a
//! condition combines them, and when a comparison's result can next change as time passes.
//! Shared by the from-scratch evaluator and the incremental state, which differ only in where
//! a stream's value comes from (the [`Scope`]).

use std::borrow::Cow;

use serde_json::Value;

use crate::ast::{Comparator, Comparison, Expr, Operand};
use crate::datetime::parse_rfc3339;
use crate::value::{equal, number, present};

/// Where a condition finds its operands' values.
pub(crate) trait Scope {
    /// The value of an operand (`None` when missing); `null` counts as absent either way.
    fn operand<'s>(&'s self, operand: &'s Operand) -> Option<Cow<'s, Value>>;
}

/// Whether `expr` holds in `scope` at `now`.
pub(crate) fn holds(expr: &Expr, scope: &impl Scope, now: i64) -> bool {
    match expr {
        Expr::Or(items) => items.iter().any(|item| holds(item, scope, now)),
        Expr::And(items) => items.iter().all(|item| holds(item, scope, now)),
        Expr::Not(inner) => !holds(inner, scope, now),
        Expr::Compare(comparison) => compare(comparison, scope, now),
    }
}

fn compare(comparison: &Comparison, scope: &impl Scope, now: i64) -> bool {
    let value = scope.operand(&comparison.operand);
    let value = present(value.as_deref());
    let argument = |operand| scope.operand(operand).filter(|v| !v.is_null());
    let comparator = &comparison.comparator;
    // `omits` is the only comparator that holds for an absent value.
    if let Comparator::Omits(needle) = comparator {
        return !value
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains(needle.as_str()));
    }
    let Some(value) = value else {
        return matches!(comparator, Comparator::Absent);
    };
    let numbers = |operand| {
        let other = argument(operand)?;
        Some((number(value)?, number(&other)?))
    };
    match comparator {
        Comparator::Exists => true,
        Comparator::Absent => false,
        Comparator::Equals(operand) => argument(operand).is_some_and(|arg| equal(value, &arg)),
        Comparator::Differs(operand) => argument(operand).is_some_and(|arg| !equal(value, &arg)),
        Comparator::GreaterThan(operand) => numbers(operand).is_some_and(|(v, a)| v > a),
        Comparator::AtLeast(operand) => numbers(operand).is_some_and(|(v, a)| v >= a),
        Comparator::LessThan(operand) => numbers(operand).is_some_and(|(v, a)| v < a),
        Comparator::AtMost(operand) => numbers(operand).is_some_and(|(v, a)| v <= a),
        Comparator::Contains(needles) => value
            .as_str()
            .is_some_and(|s| needles.iter().any(|needle| s.contains(needle.as_str()))),
        Comparator::Omits(_) => true,
        Comparator::StartsWith(prefix) => value
            .as_str()
            .is_some_and(|s| s.starts_with(prefix.as_str())),
        Comparator::EndsWith(suffix) => {
            value.as_str().is_some_and(|s| s.ends_with(suffix.as_str()))
        }
        Comparator::OneOf(operands) => {
            // Any absent argument makes the comparison false.
            let arguments: Option<Vec<_>> = operands.iter().map(argument).collect();
            arguments.is_some_and(|arguments| arguments.iter().any(|arg| equal(value, arg)))
        }
        Comparator::BeforeDate(_)
        | Comparator::AfterDate(_)
        | Comparator::WithinLast(_)
        | Comparator::WithinNext(_)
        | Comparator::BeforeLast(_)
        | Comparator::AfterNext(_) => {
            date_of(value).is_some_and(|date| date_holds(comparator, date, now))
        }
    }
}

/// The Unix milliseconds of a value that is an RFC 3339 date-time string.
pub(crate) fn date_of(value: &Value) -> Option<i64> {
    parse_rfc3339(value.as_str()?)
}

fn date_holds(comparator: &Comparator, date: i64, now: i64) -> bool {
    match *comparator {
        Comparator::BeforeDate(limit) => date < limit,
        Comparator::AfterDate(limit) => date > limit,
        Comparator::WithinLast(span) => now.saturating_sub(span) <= date && date <= now,
        Comparator::WithinNext(span) => now <= date && date <= now.saturating_add(span),
        Comparator::BeforeLast(span) => date <= now.saturating_sub(span),
        Comparator::AfterNext(span) => date >= now.saturating_add(span),
        _ => false,
    }
}

/// The first instant after `now` at which a relative date comparator on `date` can change its
/// answer; `None` when it never will (or the comparator does not read `now`).
pub(crate) fn date_edge(comparator: &Comparator, date: i64, now: i64) -> Option<i64> {
    // Each comparator holds on one interval of `now`; its answer changes at the interval's start
    // and one millisecond after its end.
    let (start, end) = match *comparator {
        Comparator::WithinLast(span) => (Some(date), Some(date.saturating_add(span))),
        Comparator::WithinNext(span) => (Some(date.saturating_sub(span)), Some(date)),
        Comparator::BeforeLast(span) => (Some(date.saturating_add(span)), None),
        Comparator::AfterNext(span) => (None, Some(date.saturating_sub(span))),
        _ => return None,
    };
    let changes = [start, end.map(|end| end.saturating_add(1))];
    changes.into_iter().flatten().filter(|&at| at > now).min()
}

/// The first instant after `now` at which a comparison of `expr` that reads `now` can change its
/// answer, the operands' values held as they are.
pub(crate) fn next_edge(expr: &Expr, scope: &impl Scope, now: i64) -> Option<i64> {
    let mut edge: Option<i64> = None;
    expr.for_each_comparison(&mut |comparison| {
        if !comparison.comparator.reads_now() {
            return;
        }
        let value = scope.operand(&comparison.operand);
        let date = present(value.as_deref()).and_then(date_of);
        if let Some(at) = date.and_then(|date| date_edge(&comparison.comparator, date, now)) {
            edge = Some(edge.map_or(at, |e| e.min(at)));
        }
    });
    edge
}

/// The earlier of two optional instants.
pub(crate) fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Body, Kind};
    use crate::datetime::DAY_MS;
    use crate::parser::parse;
    use serde_json::json;

    /// A scope where `trait(k)` reads `traits[k]`.
    struct Traits(Value);

    impl Scope for Traits {
        fn operand<'s>(&'s self, operand: &'s Operand) -> Option<Cow<'s, Value>> {
            match operand {
                Operand::Literal(value) => Some(Cow::Borrowed(value)),
                Operand::Trait(reference) => self.0.get(&reference.key).map(Cow::Borrowed),
                _ => None,
            }
        }
    }

    fn check(text: &str, traits: Value, now: i64) -> bool {
        let query = parse(text, Kind::Audience).unwrap();
        let Body::Audience(expr) = query.body else {
            panic!("not an audience");
        };
        holds(&expr, &Traits(traits), now)
    }

    #[test]
    fn absent_values_fail_all_but_absent_and_omits() {
        for (text, expected) in [
            ("trait('x').absent()", true),
            ("trait('x').exists()", false),
            ("trait('x').omits('a')", true),
            ("trait('x').differs(1)", false),
            ("trait('x') != 1", false),
            ("trait('n').absent()", true),
        ] {
            assert_eq!(check(text, json!({"n": null}), 0), expected, "{text}");
        }
    }

    #[test]
    fn absent_arguments_make_comparisons_false() {
        let traits = json!({"a": 1});
        assert!(!check("trait('a') = trait('missing')", traits.clone(), 0));
        assert!(!check("trait('a') != trait('missing')", traits.clone(), 0));
        assert!(!check(
            "trait('a').one_of(1, trait('missing'))",
            traits.clone(),
            0
        ));
        assert!(check("trait('a').one_of(2, 1.0)", traits, 0));
    }

    #[test]
    fn ordering_needs_two_numbers() {
        let traits = json!({"n": 5, "s": "5"});
        assert!(check("trait('n') > 4", traits.clone(), 0));
        assert!(!check("trait('s') > 4", traits.clone(), 0));
        assert!(!check("trait('n') >= true", traits.clone(), 0));
        assert!(!check("1 >= '1'", traits, 0));
    }

    #[test]
    fn relative_dates_and_their_edges() {
        let traits = json!({"d": "1970-01-02T00:00:00Z"});
        assert!(check(
            "trait('d').within_last(1 day)",
            traits.clone(),
            DAY_MS
        ));
        assert!(check(
            "trait('d').within_last(1 day)",
            traits.clone(),
            2 * DAY_MS
        ));
        assert!(!check(
            "trait('d').within_last(1 day)",
            traits.clone(),
            2 * DAY_MS + 1
        ));
        assert!(!check("trait('d').within_last(1 day)", traits, DAY_MS - 1));
        let within_last = Comparator::WithinLast(DAY_MS);
        assert_eq!(date_edge(&within_last, DAY_MS, 0), Some(DAY_MS));
        assert_eq!(
            date_edge(&within_last, DAY_MS, DAY_MS),
            Some(2 * DAY_MS + 1)
        );
        assert_eq!(date_edge(&within_last, DAY_MS, 2 * DAY_MS + 1), None);
    }
}
