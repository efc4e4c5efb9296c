//! Properties: for random definitions (generated over the language subset) and random event
//! sequences, the incremental values always equal a from-scratch recomputation — after every
//! refresh, across profile merges, expiry and a round trip of the state through JSON — and a
//! value does not change before the next time edge the state reports. Parsing and checking
//! never panic on arbitrary text.

// Strategies and helpers outside #[test] functions may panic on broken fixtures.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use junction_audience::{
    DAY_MS, DefinitionSpec, Definitions, Engine, Event, HOUR_MS, Kind, Limits, Profile,
    ProfileState, evaluate, parse,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// 2026-03-01T00:00:00Z: every generated time is near it.
const BASE: i64 = 1_772_323_200_000;

fn iso(millis: i64) -> String {
    // Days and milliseconds since the epoch back to a calendar date (civil_from_days).
    let days = millis.div_euclid(DAY_MS);
    let rest = millis.rem_euclid(DAY_MS);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / HOUR_MS,
        rest % HOUR_MS / 60_000,
        rest % 60_000 / 1_000,
        rest % 1_000
    )
}

/// A time near `BASE`: whole hours (so window edges are hit exactly), sometimes a millisecond
/// off.
fn time() -> impl Strategy<Value = i64> {
    (-120i64..=120, prop_oneof![Just(0i64), Just(1), Just(-1)])
        .prop_map(|(hours, off)| BASE + hours * HOUR_MS + off)
}

// ---- definitions ----

const EVENTS: &[&str] = &["A", "B", "Page Viewed"];
const KEYS: &[&str] = &["d0", "d1", "d2", "d3"];

fn quoted(text: &'static str) -> String {
    format!("'{text}'")
}

fn prop_ref() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("property('n')".to_owned()),
        Just("property('s')".to_owned()),
        Just("property('d')".to_owned()),
        Just("property('m.k')".to_owned()),
        Just("context('x')".to_owned()),
    ]
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        (-3i64..5).prop_map(|n| n.to_string()),
        Just("1.5".to_owned()),
        Just("'a'".to_owned()),
        Just("'b'".to_owned()),
        Just("true".to_owned()),
        Just("literal('pro')".to_owned()),
    ]
}

/// `trait()` of a profile trait or of a definition (`d0`…`d3`; see [`definitions`] for how
/// cycles are mostly avoided).
fn trait_ref() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("trait('plan')".to_owned()),
        1 => Just("trait('score')".to_owned()),
        1 => Just("trait('created_at')".to_owned()),
        3 => prop::sample::select(KEYS).prop_map(|key| format!("trait('{key}')")),
    ]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..50).prop_map(|n| format!("{n} hours")),
        (0u32..4).prop_map(|n| format!("{n} days")),
    ]
}

/// A comparator given the kind of value it is likely to meet (any comparator may meet any).
fn comparator(argument: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (prop::sample::select(&["=", "!=", ">", ">=", "<", "<="][..]), argument.clone())
            .prop_map(|(op, v)| format!(" {op} {v}")),
        2 => (
            prop::sample::select(&["equals", "differs", "at_least", "less_than"][..]),
            argument.clone()
        )
            .prop_map(|(name, v)| format!(".{name}({v})")),
        1 => Just(".exists()".to_owned()),
        1 => Just(".absent()".to_owned()),
        1 => Just(".contains('a', 'p')".to_owned()),
        1 => Just(".omits('b')".to_owned()),
        1 => Just(".starts_with('p')".to_owned()),
        1 => (argument.clone(), argument).prop_map(|(a, b)| format!(".one_of({a}, {b})")),
        1 => prop::sample::select(&[
            ".before_date('2026-03-01T00:00:00Z')",
            ".after_date('2026-02-27T12:00:00+01:00')",
        ][..])
        .prop_map(str::to_owned),
        2 => (
            prop::sample::select(&["within_last", "within_next", "before_last", "after_next"][..]),
            duration()
        )
            .prop_map(|(name, d)| format!(".{name}({d})")),
    ]
}

/// A `where` condition: comparisons of properties, traits and literals.
fn condition() -> impl Strategy<Value = String> {
    let operand = prop_oneof![3 => prop_ref(), 1 => trait_ref(), 1 => literal()];
    let argument = prop_oneof![2 => literal(), 1 => trait_ref(), 1 => prop_ref()].boxed();
    let comparison = (operand, comparator(argument)).prop_map(|(a, c)| format!("{a}{c}"));
    comparison.prop_recursive(2, 6, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.prop_map(|a| format!("NOT({a})")),
        ]
    })
}

fn filter() -> impl Strategy<Value = String> {
    prop_oneof![
        duration().prop_map(|d| format!(".within({d})")),
        (duration(), duration()).prop_map(|(a, b)| format!(".between({a}, {b})")),
        prop::sample::select(&["'web'", "'ios'", "'web', 'ios'"][..])
            .prop_map(|s| format!(".sources(exclude: {s})")),
        condition().prop_map(|c| format!(".where({c})")),
    ]
}

fn reducer() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(".count()".to_owned()),
        prop_ref().prop_map(|p| format!(".sum({p})")),
        prop_ref().prop_map(|p| format!(".avg({p})")),
        (
            prop_ref(),
            prop::sample::select(&["", " as number", " as string"][..])
        )
            .prop_map(|(p, a)| format!(".min({p}{a})")),
        (
            prop_ref(),
            prop::sample::select(&["", " as number", " as string"][..])
        )
            .prop_map(|(p, a)| format!(".max({p}{a})")),
        (prop_ref(), 0u32..3).prop_map(|(p, d)| format!(".mode({p}, {d})")),
        prop_ref().prop_map(|p| format!(".first({p})")),
        prop_ref().prop_map(|p| format!(".last({p})")),
        prop_ref().prop_map(|p| format!(".unique({p})")),
        prop_ref().prop_map(|p| format!(".unique({p}).count()")),
    ]
}

fn stream() -> impl Strategy<Value = String> {
    (
        prop::sample::select(EVENTS),
        prop::collection::vec(filter(), 0..3),
        reducer(),
    )
        .prop_map(|(event, filters, reducer)| {
            format!("event({}){}{reducer}", quoted(event), filters.concat())
        })
}

fn audience() -> impl Strategy<Value = String> {
    let argument = prop_oneof![3 => literal(), 1 => trait_ref()].boxed();
    let operand = prop_oneof![3 => stream(), 2 => trait_ref(), 1 => literal()];
    let comparison = (operand, comparator(argument)).prop_map(|(a, c)| format!("{a}{c}"));
    comparison.prop_recursive(2, 4, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} OR {b}")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

fn definition() -> impl Strategy<Value = (Kind, String)> {
    prop_oneof![
        audience().prop_map(|q| (Kind::Audience, q)),
        stream().prop_map(|q| (Kind::Trait, q)),
    ]
}

/// Up to four definitions `d0`…`d3`. Most of the time a definition's `trait('dk')` is moved to
/// a later definition of the set (else, for the last one, to the profile trait `plan`), so that
/// most sets have chains of definitions reading definitions rather than refused cycles.
fn definitions() -> impl Strategy<Value = Definitions> {
    (
        prop::collection::vec(definition(), 1..=KEYS.len()),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(list, allow_cycles)| {
            let count = list.len();
            let specs: Vec<DefinitionSpec> = list
                .into_iter()
                .zip(KEYS)
                .enumerate()
                .map(|(index, ((kind, mut query), key))| {
                    if !allow_cycles {
                        // Two passes through placeholders, so a rewritten reference is not rewritten
                        // again.
                        for (k, target) in KEYS.iter().enumerate() {
                            query = query
                                .replace(&format!("trait('{target}')"), &format!("\u{1}{k}\u{1}"));
                        }
                        let later = count - index - 1;
                        for k in 0..KEYS.len() {
                            let replacement = match KEYS.get(index + 1 + k % later.max(1)) {
                                Some(later) if index + 1 < count => format!("trait('{later}')"),
                                _ => "trait('plan')".to_owned(),
                            };
                            query = query.replace(&format!("\u{1}{k}\u{1}"), &replacement);
                        }
                    }
                    DefinitionSpec {
                        key: Some((*key).to_owned()),
                        name: None,
                        kind: json!(kind),
                        query,
                    }
                })
                .collect();
            let compiled = Definitions::compile(&specs);
            for refusal in &compiled.refused {
                // The generator writes only valid text; refusals are reference cycles.
                let message = refusal.error.to_string();
                assert!(
                    message.contains("reference cycle") || message.contains("refused"),
                    "{message}"
                );
            }
            compiled.definitions
        })
}

// ---- events ----

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..5).prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!(0.1)),
        Just(json!(2.0)),
        Just(json!("a")),
        Just(json!("pro")),
        Just(json!("2")),
        Just(json!(true)),
        Just(Value::Null),
        Just(json!([1])),
        time().prop_map(|t| json!(iso(t))),
    ]
}

fn event() -> impl Strategy<Value = Value> {
    let user = prop::option::of(prop::sample::select(&["u1", "u2"][..]));
    let anonymous = prop::option::of(prop::sample::select(&["a1", "a2", "a3", "a4"][..]));
    let email = prop::option::of(prop::sample::select(&["e1@x.io", "e2@x.io", "null"][..]));
    let kind = prop::sample::select(
        &[
            "track", "track", "track", "page", "identify", "identify", "alias", "screen",
        ][..],
    );
    let name = prop::sample::select(&["A", "B", "Page Viewed"][..]);
    let source = prop::option::of(prop::sample::select(&["web", "ios", "srv"][..]));
    (
        (kind, name, user, anonymous, email),
        (time(), source, scalar(), scalar(), scalar(), scalar()),
        (scalar(), scalar(), scalar()),
    )
        .prop_map(
            |(
                (kind, name, user, anonymous, email),
                (t, source, n, s, d, x),
                (plan, score, created),
            )| {
                let mut event = json!({
                    "type": kind,
                    "timestamp": iso(t),
                    "properties": {"n": n, "s": s, "d": d, "m": {"k": n}},
                    "context": {"x": x},
                });
                if kind == "track" {
                    event["event"] = json!(name);
                }
                if let Some(user) = user {
                    event["userId"] = json!(user);
                }
                if let Some(anonymous) = anonymous {
                    event["anonymousId"] = json!(anonymous);
                }
                if let Some(source) = source {
                    event["source_id"] = json!(source);
                }
                if kind == "identify" {
                    event["traits"] = json!({"plan": plan, "score": score, "created_at": created});
                    if let Some(email) = email {
                        event["traits"]["email"] = json!(email);
                    }
                } else if let Some(email) = email {
                    event["context"]["traits"] = json!({"email": email});
                }
                event
            },
        )
}

/// Events, each followed (or not) by a refresh at a time no earlier than the previous one (in
/// whole hours, sometimes a millisecond off, so edges are hit exactly).
fn timeline() -> impl Strategy<Value = Vec<(Value, Option<i64>)>> {
    let step = prop_oneof![
        1 => Just(0i64),
        4 => (0i64..30, prop_oneof![Just(0i64), Just(1), Just(-1)])
            .prop_map(|(hours, off)| (hours * HOUR_MS + off).max(0)),
    ];
    prop::collection::vec((event(), prop::option::weighted(0.4, step)), 1..40).prop_map(|steps| {
        let mut now = BASE - 60 * HOUR_MS;
        steps
            .into_iter()
            .map(|(event, step)| {
                let refresh = step.map(|step| {
                    now += step;
                    now
                });
                (event, refresh)
            })
            .collect()
    })
}

fn same_values(engine: &Engine, now: i64) -> Result<(), TestCaseError> {
    let scratch = engine.evaluate_from_scratch(now);
    let incremental: Vec<_> = engine
        .profiles()
        .map(|(id, _, values)| (id, values.to_vec()))
        .collect();
    prop_assert_eq!(incremental, scratch, "at now = {}", iso(now));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// After every refresh, every profile's incremental values equal those recomputed from
    /// scratch, however events joined and merged profiles in between; expiring kept events at
    /// the refresh time changes nothing.
    #[test]
    fn incremental_values_equal_a_recomputation(
        definitions in definitions(),
        timeline in timeline(),
        last in time(),
    ) {
        let mut engine = Engine::new(definitions, Limits::default());
        let mut latest = None;
        for (event, refresh) in &timeline {
            engine.ingest(event);
            if let Some(now) = *refresh {
                engine.refresh(now);
                same_values(&engine, now)?;
                engine.expire(now);
                latest = Some(now);
            }
        }
        // A final refresh at any time (before the last one too, with nothing expired then).
        if latest.is_none_or(|latest| last >= latest) {
            engine.refresh(last);
            same_values(&engine, last)?;
        }
    }

    /// No value changes before the next time edge a profile's state reports: from scratch, at
    /// any instant between the refresh and that edge, the values are those of the refresh.
    #[test]
    fn values_hold_until_the_next_edge(
        definitions in definitions(),
        events in prop::collection::vec(event(), 1..15),
        now in time(),
        offsets in prop::collection::vec(0i64..100 * HOUR_MS, 1..4),
    ) {
        let mut state = ProfileState::new(&definitions);
        let mut profile = Profile::new();
        for (seq, event) in events.iter().enumerate() {
            let event = Event::from_json(event, seq as u64);
            state.apply(&definitions, &event);
            profile.push(event);
        }
        state.refresh(&definitions, now);
        let edge = state.next_edge();
        prop_assert!(edge.is_none_or(|edge| edge > now));
        for offset in offsets {
            let at = now + offset;
            if edge.is_some_and(|edge| at >= edge) {
                continue;
            }
            prop_assert_eq!(
                evaluate(&definitions, &profile, at),
                state.values().to_vec(),
                "at {} (refreshed at {}, edge {:?})", iso(at), iso(now), edge
            );
        }
        if let Some(edge) = edge {
            // At the edge itself the state, refreshed, agrees again.
            state.refresh(&definitions, edge);
            prop_assert_eq!(evaluate(&definitions, &profile, edge), state.values().to_vec());
        }
    }

    /// A state survives a round trip through JSON at any point (the server persists it).
    #[test]
    fn state_round_trips_through_json(
        definitions in definitions(),
        events in prop::collection::vec(event(), 1..15),
        cut in 0usize..15,
        now in time(),
    ) {
        let mut state = ProfileState::new(&definitions);
        let mut profile = Profile::new();
        for (seq, event) in events.iter().enumerate() {
            if seq == cut {
                let text = serde_json::to_string(&state).unwrap();
                state = serde_json::from_str(&text).unwrap();
                prop_assert!(state.fits(&definitions));
            }
            let event = Event::from_json(event, seq as u64);
            state.apply(&definitions, &event);
            profile.push(event);
        }
        state.refresh(&definitions, now);
        prop_assert_eq!(state.values().to_vec(), evaluate(&definitions, &profile, now));
    }
}

/// Fragments of the language, to build text near valid definitions.
const TOKENS: &[&str] = &[
    "event(",
    "'A'",
    "\"B\"",
    ")",
    "(",
    ".",
    ",",
    "count()",
    "sum(",
    "avg(",
    "min(",
    "max(",
    "mode(",
    "first(",
    "last(",
    "unique(",
    "property('n')",
    "context('x')",
    "trait('plan')",
    "literal(",
    "within(",
    "between(",
    "where(",
    "sources(exclude:",
    "parent:",
    "1",
    "-1",
    "2.0",
    "1e999",
    "days",
    "hour",
    " as ",
    "array",
    "string",
    "AND",
    "or",
    "NOT",
    "ANY",
    "=",
    "==",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "!",
    ".equals(",
    ".one_of(",
    ".within_last(",
    ".before_date(",
    "'2026-03-01T00:00:00Z'",
    "'\\",
    "\\",
    "'",
    "\"",
    " ",
    "true",
    "null",
    "🎉",
    "\n",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Parsing arbitrary text, as either kind, returns a result (never panics), and an error's
    /// column lies within the text (or one past its end).
    #[test]
    fn parsing_arbitrary_text_never_panics(text in "\\PC{0,80}") {
        for kind in [Kind::Audience, Kind::Trait] {
            if let Err(error) = parse(&text, kind) {
                prop_assert!(error.column() >= 1 && error.column() <= text.chars().count() + 1);
            }
        }
    }

    /// The same for soups of the language's own tokens, and for checking them as a set.
    #[test]
    fn parsing_token_soups_never_panics(
        parts in prop::collection::vec(prop::sample::select(TOKENS), 0..40),
        kinds in prop::collection::vec(prop_oneof![Just(json!("audience")), Just(json!("trait")), Just(json!(null))], 3),
    ) {
        let text = parts.concat();
        for kind in [Kind::Audience, Kind::Trait] {
            if let Err(error) = parse(&text, kind) {
                prop_assert!(error.column() >= 1 && error.column() <= text.chars().count() + 1);
            }
        }
        let specs: Vec<DefinitionSpec> = kinds
            .into_iter()
            .zip(["a", "b", "a"])
            .map(|(kind, key)| DefinitionSpec {
                key: Some(key.to_owned()),
                name: None,
                kind,
                query: text.clone(),
            })
            .collect();
        let compiled = Definitions::compile(&specs);
        prop_assert_eq!(compiled.refused.len() + compiled.definitions.len(), 3);
    }
}

#[test]
fn deeply_nested_text_is_refused_not_overflowing() {
    let text = format!(
        "{}trait('a') = 1{}",
        "NOT(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(parse(&text, Kind::Audience).is_err());
    let text = format!(
        "event('A'){}.count() > 1",
        ".where(event('A')".repeat(5_000)
    );
    assert!(parse(&text, Kind::Audience).is_err());
}
