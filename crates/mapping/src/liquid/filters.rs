//! Liquid filters with LiquidJS's semantics (JS numbers and string conversions), the filters
//! `@liquid` disables, the pass-through that stands for an unknown filter, and the memory budget
//! that replaces LiquidJS's `memoryLimit`.

use std::fmt;
use std::sync::OnceLock;

use liquid_core::error::{Error, Result};
use liquid_core::model::{Value as LiquidValue, ValueView};
use liquid_core::parser::{FilterArguments, ParameterReflection};
use liquid_core::{Expression, Filter, FilterReflection, ParseFilter, Runtime};

use crate::js;

/// LiquidJS's `memoryLimit` for `@liquid` (in bytes here, characters there).
pub(crate) const MEMORY_LIMIT: usize = 100_000_000;

/// The message when a render exceeds [`MEMORY_LIMIT`].
pub(crate) const MEMORY_MESSAGE: &str = "memory alloc limit exceeded";

/// Filters LiquidJS offers that `@liquid` refuses.
pub(crate) const DISABLED_FILTERS: [&str; 20] = [
    "array_to_sentence_string",
    "concat",
    "find",
    "find_exp",
    "find_index",
    "find_index_exp",
    "group_by",
    "group_by_exp",
    "has",
    "has_exp",
    "map",
    "newline_to_br",
    "reject",
    "reject_exp",
    "reverse",
    "sort",
    "sort_natural",
    "uniq",
    "where_exp",
    "type",
];

/// Bytes produced by filters and captures during one render.
#[derive(Debug, Default)]
pub(crate) struct MemoryUsed(usize);

/// Counts `bytes` against the render's budget.
pub(crate) fn charge(runtime: &dyn Runtime, bytes: usize) -> Result<()> {
    let mut used = runtime.registers().get_mut::<MemoryUsed>();
    used.0 = used.0.saturating_add(bytes);
    if used.0 > MEMORY_LIMIT {
        return Err(Error::with_msg(MEMORY_MESSAGE));
    }
    Ok(())
}

/// What is left of the render's budget.
pub(crate) fn remaining(runtime: &dyn Runtime) -> usize {
    MEMORY_LIMIT.saturating_sub(runtime.registers().get_mut::<MemoryUsed>().0)
}

/// A JS value as LiquidJS filters see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Js {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Js>),
    Obj(Vec<(String, Js)>),
}

impl Js {
    /// Reads any Liquid value.
    pub(crate) fn from_view(value: &dyn ValueView) -> Js {
        if let Some(array) = value.as_array() {
            return Js::Arr(array.values().map(Js::from_view).collect());
        }
        if value.is_nil() {
            return if value.type_name() == "undefined" {
                Js::Undefined
            } else {
                Js::Null
            };
        }
        if let Some(object) = value.as_object() {
            return Js::Obj(
                object
                    .iter()
                    .map(|(k, v)| (k.to_string(), Js::from_view(v)))
                    .collect(),
            );
        }
        if let Some(scalar) = value.as_scalar() {
            return match value.type_name() {
                "boolean" => Js::Bool(scalar.to_bool().unwrap_or_default()),
                "whole number" | "fractional number" => {
                    Js::Num(scalar.to_float().unwrap_or(f64::NAN))
                }
                _ => Js::Str(scalar.to_kstr().to_string()),
            };
        }
        if value.as_state().is_some() {
            return Js::Str(String::new());
        }
        Js::Undefined
    }

    /// Back to a Liquid value.
    pub(crate) fn into_liquid(self) -> LiquidValue {
        match self {
            Js::Undefined | Js::Null => LiquidValue::Nil,
            Js::Bool(b) => LiquidValue::scalar(b),
            Js::Num(n) => number_value(n),
            Js::Str(s) => LiquidValue::scalar(s),
            Js::Arr(items) => LiquidValue::Array(items.into_iter().map(Js::into_liquid).collect()),
            Js::Obj(members) => LiquidValue::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into_liquid()))
                    .collect(),
            ),
        }
    }

    fn is_nil(&self) -> bool {
        matches!(self, Js::Undefined | Js::Null)
    }

    /// LiquidJS truthiness: only `false`, `null` and `undefined` are falsy.
    fn is_truthy(&self) -> bool {
        !matches!(self, Js::Undefined | Js::Null | Js::Bool(false))
    }

    /// Bytes this value holds in strings (what the memory budget counts).
    fn weight(&self) -> usize {
        match self {
            Js::Str(s) => s.len(),
            Js::Arr(items) => items.iter().map(|i| i.weight() + 8).sum(),
            Js::Obj(members) => members.iter().map(|(k, v)| k.len() + v.weight()).sum(),
            _ => 8,
        }
    }
}

/// A JS number as a Liquid value: whole numbers as integers (so the crate's own filters and
/// comparisons treat them as such), others as doubles.
fn number_value(n: f64) -> LiquidValue {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        return LiquidValue::scalar(n as i64);
    }
    LiquidValue::scalar(n)
}

/// LiquidJS `stringify`.
fn stringify(value: &Js) -> String {
    let mut out = String::new();
    push_stringified(value, &mut out);
    out
}

fn push_stringified(value: &Js, out: &mut String) {
    match value {
        Js::Undefined | Js::Null => {}
        Js::Arr(items) => items.iter().for_each(|i| push_stringified(i, out)),
        other => push_js_string(other, out),
    }
}

/// JS `String(x)`.
fn push_js_string(value: &Js, out: &mut String) {
    match value {
        Js::Undefined => out.push_str("undefined"),
        Js::Null => out.push_str("null"),
        Js::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Js::Num(n) => junction_js::push_f64(*n, out),
        Js::Str(s) => out.push_str(s),
        Js::Arr(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !item.is_nil() {
                    push_js_string(item, out);
                }
            }
        }
        Js::Obj(_) => out.push_str("[object Object]"),
    }
}

fn js_string(value: &Js) -> String {
    let mut out = String::new();
    push_js_string(value, &mut out);
    out
}

/// JS `Number(x)`.
fn to_number(value: &Js) -> f64 {
    match value {
        Js::Undefined | Js::Obj(_) => f64::NAN,
        Js::Null => 0.0,
        Js::Bool(b) => f64::from(u8::from(*b)),
        Js::Num(n) => *n,
        Js::Str(s) => string_to_number(s),
        Js::Arr(_) => string_to_number(&js_string(value)),
    }
}

/// JS `StringToNumber`: decimal literals (with `Infinity`), `0x`/`0o`/`0b` integers; blank is 0.
fn string_to_number(s: &str) -> f64 {
    let s = junction_js::trim(s);
    if s.is_empty() {
        return 0.0;
    }
    let radix = |prefix: &str, radix: u32| {
        s.get(..2)
            .filter(|p| p.eq_ignore_ascii_case(prefix))
            .and_then(|_| s.get(2..))
            .filter(|digits| !digits.is_empty())
            .map(|digits| {
                digits.chars().try_fold(0.0_f64, |acc, c| {
                    c.to_digit(radix)
                        .map(|d| acc * f64::from(radix) + f64::from(d))
                })
            })
    };
    for (prefix, base) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(parsed) = radix(prefix, base) {
            return parsed.unwrap_or(f64::NAN);
        }
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned == "Infinity" {
        return if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let valid = !unsigned.is_empty()
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && unsigned
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.');
    if !valid {
        return f64::NAN;
    }
    s.parse::<f64>().unwrap_or(f64::NAN)
}

/// The evaluated arguments of a filter call.
#[derive(Debug, Default)]
struct Args {
    positional: Vec<Js>,
    keyword: Vec<(String, Js)>,
}

impl Args {
    fn get(&self, index: usize) -> &Js {
        self.positional.get(index).unwrap_or(&Js::Undefined)
    }

    fn keyword(&self, name: &str) -> &Js {
        self.keyword
            .iter()
            .find(|(k, _)| k == name)
            .map_or(&Js::Undefined, |(_, v)| v)
    }

    fn number_or(&self, index: usize, default: f64) -> f64 {
        match self.get(index) {
            Js::Undefined => default,
            other => to_number(other),
        }
    }

    fn string_or(&self, index: usize, default: &str) -> String {
        match self.get(index) {
            Js::Undefined => default.to_owned(),
            other => stringify(other),
        }
    }
}

type Apply = fn(Js, &Args) -> std::result::Result<Js, String>;

#[derive(Clone, Copy)]
enum Kind {
    Apply(Apply),
    Disabled,
    PassThrough,
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Apply(_) => f.write_str("Apply"),
            Kind::Disabled => f.write_str("Disabled"),
            Kind::PassThrough => f.write_str("PassThrough"),
        }
    }
}

/// A filter registered on the parser.
#[derive(Debug, Clone)]
pub(crate) struct JsFilter {
    name: String,
    kind: Kind,
}

impl JsFilter {
    /// A filter that returns its input, standing for a filter LiquidJS does not know (it ignores
    /// those).
    pub(crate) fn pass_through(name: &str) -> Self {
        JsFilter {
            name: name.to_owned(),
            kind: Kind::PassThrough,
        }
    }
}

/// The names of [`all`].
pub(crate) fn names() -> Vec<&'static str> {
    FILTERS
        .iter()
        .map(|(name, _)| *name)
        .chain(DISABLED_FILTERS)
        .collect()
}

/// Every filter `@liquid` registers.
pub(crate) fn all() -> Vec<JsFilter> {
    let mut filters: Vec<JsFilter> = FILTERS
        .iter()
        .map(|(name, apply)| JsFilter {
            name: (*name).to_owned(),
            kind: Kind::Apply(*apply),
        })
        .collect();
    filters.extend(DISABLED_FILTERS.iter().map(|name| JsFilter {
        name: (*name).to_owned(),
        kind: Kind::Disabled,
    }));
    filters
}

impl FilterReflection for JsFilter {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        ""
    }

    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }

    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
}

impl ParseFilter for JsFilter {
    fn parse(&self, arguments: FilterArguments<'_>) -> Result<Box<dyn Filter>> {
        Ok(Box::new(BoundFilter {
            name: self.name.clone(),
            kind: self.kind,
            positional: arguments.positional.collect(),
            keyword: arguments.keyword.map(|(k, v)| (k.to_owned(), v)).collect(),
        }))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

/// A filter call in a parsed template.
#[derive(Debug)]
struct BoundFilter {
    name: String,
    kind: Kind,
    positional: Vec<Expression>,
    keyword: Vec<(String, Expression)>,
}

impl fmt::Display for BoundFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Filter for BoundFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<LiquidValue> {
        let apply = match self.kind {
            Kind::Disabled => {
                return Err(Error::with_msg(format!(
                    "filter \"{}\" is disabled",
                    self.name
                )));
            }
            Kind::PassThrough => return Ok(input.to_value()),
            Kind::Apply(apply) => apply,
        };
        let mut args = Args::default();
        for expression in &self.positional {
            args.positional
                .push(Js::from_view(expression.evaluate(runtime)?.as_view()));
        }
        for (key, expression) in &self.keyword {
            let value = Js::from_view(expression.evaluate(runtime)?.as_view());
            args.keyword.push((key.clone(), value));
        }
        let output = apply(Js::from_view(input), &args).map_err(Error::with_msg)?;
        charge(runtime, output.weight())?;
        Ok(output.into_liquid())
    }
}

/// Fails before building a string or array larger than what the budget could ever allow.
fn guard(bytes: usize) -> std::result::Result<(), String> {
    if bytes > MEMORY_LIMIT {
        return Err(MEMORY_MESSAGE.to_owned());
    }
    Ok(())
}

type Outcome = std::result::Result<Js, String>;

const FILTERS: &[(&str, Apply)] = &[
    ("append", append),
    ("prepend", prepend),
    ("capitalize", capitalize),
    ("upcase", |v, _| Ok(Js::Str(stringify(&v).to_uppercase()))),
    ("downcase", |v, _| Ok(Js::Str(stringify(&v).to_lowercase()))),
    ("lstrip", |v, a| Ok(Js::Str(strip(&v, a, true, false)))),
    ("rstrip", |v, a| Ok(Js::Str(strip(&v, a, false, true)))),
    ("strip", |v, a| Ok(Js::Str(strip(&v, a, true, true)))),
    ("strip_newlines", |v, _| {
        Ok(Js::Str(stringify(&v).replace("\r\n", "").replace('\n', "")))
    }),
    ("split", split),
    ("remove", |v, a| {
        Ok(Js::Str(split_join(
            &stringify(&v),
            &js_string(a.get(0)),
            "",
        )))
    }),
    ("remove_first", |v, a| {
        Ok(Js::Str(replace_first(
            &stringify(&v),
            &js_string(a.get(0)),
            "",
            false,
        )))
    }),
    ("remove_last", |v, a| {
        Ok(Js::Str(replace_last(
            &stringify(&v),
            &js_string(a.get(0)),
            "",
        )))
    }),
    ("replace", replace),
    ("replace_first", |v, a| {
        Ok(Js::Str(replace_first(
            &stringify(&v),
            &js_string(a.get(0)),
            &js_string(a.get(1)),
            true,
        )))
    }),
    ("replace_last", |v, a| {
        Ok(Js::Str(replace_last(
            &stringify(&v),
            &js_string(a.get(0)),
            &js_string(a.get(1)),
        )))
    }),
    ("truncate", truncate),
    ("truncatewords", truncate_words),
    ("normalize_whitespace", |v, _| {
        Ok(Js::Str(collapse_whitespace(&stringify(&v), " ")))
    }),
    ("escape", |v, _| Ok(Js::Str(escape(&stringify(&v))))),
    ("xml_escape", |v, _| Ok(Js::Str(escape(&stringify(&v))))),
    ("escape_once", |v, _| {
        Ok(Js::Str(escape(&unescape(&stringify(&v)))))
    }),
    ("unescape", |v, _| Ok(Js::Str(unescape(&stringify(&v))))),
    ("strip_html", strip_html),
    ("url_encode", |v, _| {
        Ok(Js::Str(
            encode_uri(&stringify(&v), COMPONENT_SAFE).replace("%20", "+"),
        ))
    }),
    ("url_decode", |v, _| {
        decode_uri(&stringify(&v).replace('+', " ")).map(Js::Str)
    }),
    ("cgi_escape", |v, _| {
        Ok(Js::Str(
            encode_uri(&stringify(&v), CGI_SAFE).replace("%20", "+"),
        ))
    }),
    ("uri_escape", |v, _| {
        Ok(Js::Str(
            encode_uri(&stringify(&v), URI_SAFE)
                .replace("%5B", "[")
                .replace("%5D", "]"),
        ))
    }),
    ("base64_encode", |v, _| {
        Ok(Js::Str(base64_encode(stringify(&v).as_bytes())))
    }),
    ("base64_decode", |v, _| {
        Ok(Js::Str(
            String::from_utf8_lossy(&base64_decode(&stringify(&v))).into_owned(),
        ))
    }),
    ("abs", |v, _| Ok(Js::Num(to_number(&v).abs()))),
    ("at_least", |v, a| {
        Ok(Js::Num(js_max(to_number(&v), to_number(a.get(0)))))
    }),
    ("at_most", |v, a| {
        Ok(Js::Num(js_min(to_number(&v), to_number(a.get(0)))))
    }),
    ("ceil", |v, _| Ok(Js::Num(to_number(&v).ceil()))),
    ("floor", |v, _| Ok(Js::Num(to_number(&v).floor()))),
    ("divided_by", |v, a| {
        let quotient = to_number(&v) / to_number(a.get(0));
        Ok(Js::Num(if a.get(1).is_truthy() {
            quotient.floor()
        } else {
            quotient
        }))
    }),
    ("minus", |v, a| {
        Ok(Js::Num(to_number(&v) - to_number(a.get(0))))
    }),
    ("plus", |v, a| {
        Ok(Js::Num(to_number(&v) + to_number(a.get(0))))
    }),
    ("times", |v, a| {
        Ok(Js::Num(to_number(&v) * to_number(a.get(0))))
    }),
    ("modulo", |v, a| {
        Ok(Js::Num(to_number(&v) % to_number(a.get(0))))
    }),
    ("round", |v, a| {
        let amp = 10_f64.powf(a.number_or(0, 0.0));
        Ok(Js::Num(js_round(to_number(&v) * amp) / amp))
    }),
    ("join", join),
    ("first", |v, _| Ok(first_or_last(v, true))),
    ("last", |v, _| Ok(first_or_last(v, false))),
    ("size", |v, _| {
        Ok(Js::Num(match &v {
            Js::Str(s) => junction_js::utf16_len(s) as f64,
            Js::Arr(items) => items.len() as f64,
            _ => 0.0,
        }))
    }),
    ("compact", |v, _| {
        Ok(Js::Arr(
            to_array(v).into_iter().filter(|x| !x.is_nil()).collect(),
        ))
    }),
    ("push", |v, a| {
        let mut items = to_array(v);
        items.push(a.get(0).clone());
        Ok(Js::Arr(items))
    }),
    ("pop", |v, _| {
        let mut items = to_array(v);
        items.pop();
        Ok(Js::Arr(items))
    }),
    ("shift", |v, _| {
        Ok(Js::Arr(to_array(v).into_iter().skip(1).collect()))
    }),
    ("unshift", |v, a| {
        let mut items = vec![a.get(0).clone()];
        items.extend(to_array(v));
        Ok(Js::Arr(items))
    }),
    ("slice", slice),
    ("where", filter_where),
    ("sum", sum),
    ("default", default),
    ("json", json),
    ("jsonify", json),
    ("inspect", json),
    ("raw", |v, _| Ok(v)),
    ("date", date),
];

fn append(value: Js, args: &Args) -> Outcome {
    let (left, right) = (stringify(&value), stringify(args.get(0)));
    guard(left.len() + right.len())?;
    Ok(Js::Str(left + &right))
}

fn prepend(value: Js, args: &Args) -> Outcome {
    let (left, right) = (stringify(args.get(0)), stringify(&value));
    guard(left.len() + right.len())?;
    Ok(Js::Str(left + &right))
}

fn capitalize(value: Js, _: &Args) -> Outcome {
    let s = stringify(&value);
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return Ok(Js::Str(s));
    };
    let mut out: String = if first.len_utf16() == 1 {
        first.to_uppercase().collect()
    } else {
        first.to_string()
    };
    out.push_str(&chars.as_str().to_lowercase());
    Ok(Js::Str(out))
}

fn strip(value: &Js, args: &Args, start: bool, end: bool) -> String {
    let s = stringify(value);
    let chars: Option<Vec<char>> = match args.get(0) {
        Js::Undefined => None,
        other => Some(stringify(other).chars().collect()),
    };
    let matches = |c: char| match &chars {
        Some(set) => set.contains(&c),
        None => junction_js::is_js_whitespace(c),
    };
    let mut out = s.as_str();
    if start {
        out = out.trim_start_matches(matches);
    }
    if end {
        out = out.trim_end_matches(matches);
    }
    out.to_owned()
}

/// JS `String.prototype.split` with a string separator.
fn js_split(s: &str, separator: &str) -> Vec<String> {
    if separator.is_empty() {
        return js::utf16_units(s);
    }
    s.split(separator).map(str::to_owned).collect()
}

fn split(value: Js, args: &Args) -> Outcome {
    let s = stringify(&value);
    let separator = js_string(args.get(0));
    let pieces = if separator.is_empty() {
        junction_js::utf16_len(&s)
    } else {
        s.matches(separator.as_str()).count() + 1
    };
    guard(pieces.saturating_mul(32).saturating_add(s.len()))?;
    let mut parts = js_split(&s, &separator);
    while parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    Ok(Js::Arr(parts.into_iter().map(Js::Str).collect()))
}

fn split_join(s: &str, separator: &str, joiner: &str) -> String {
    js_split(s, separator).join(joiner)
}

fn replace(value: Js, args: &Args) -> Outcome {
    let s = stringify(&value);
    let pattern = js_string(args.get(0));
    // `Array.prototype.join(undefined)` joins with commas.
    let replacement = match args.get(1) {
        Js::Undefined => ",".to_owned(),
        other => js_string(other),
    };
    let occurrences = if pattern.is_empty() {
        junction_js::utf16_len(&s)
    } else {
        s.matches(pattern.as_str()).count()
    };
    guard(
        occurrences
            .saturating_mul(replacement.len())
            .saturating_add(s.len()),
    )?;
    Ok(Js::Str(split_join(&s, &pattern, &replacement)))
}

/// JS `s.replace(pattern, replacement)` with a string pattern: the first occurrence, with `$`
/// patterns in the replacement when `substitute`.
fn replace_first(s: &str, pattern: &str, replacement: &str, substitute: bool) -> String {
    let Some(at) = s.find(pattern) else {
        return s.to_owned();
    };
    let end = at + pattern.len();
    let mut out = String::with_capacity(s.len() + replacement.len());
    out.push_str(s.get(..at).unwrap_or_default());
    if substitute {
        crate::replace::push_substitution(replacement, s, at, end, &mut out);
    } else {
        out.push_str(replacement);
    }
    out.push_str(s.get(end..).unwrap_or_default());
    out
}

fn replace_last(s: &str, pattern: &str, replacement: &str) -> String {
    let Some(at) = s.rfind(pattern) else {
        return s.to_owned();
    };
    let mut out = String::with_capacity(s.len() + replacement.len());
    out.push_str(s.get(..at).unwrap_or_default());
    out.push_str(replacement);
    out.push_str(s.get(at + pattern.len()..).unwrap_or_default());
    out
}

/// The first `units` UTF-16 code units of `s` (a split surrogate pair is dropped).
fn utf16_prefix(s: &str, units: usize) -> &str {
    let mut taken = 0;
    for (at, c) in s.char_indices() {
        if taken + c.len_utf16() > units {
            return s.get(..at).unwrap_or_default();
        }
        taken += c.len_utf16();
    }
    s
}

fn truncate(value: Js, args: &Args) -> Outcome {
    let s = stringify(&value);
    let length = args.number_or(0, 50.0);
    let ellipsis = args.string_or(1, "...");
    if (junction_js::utf16_len(&s) as f64) <= length {
        return Ok(Js::Str(s));
    }
    let keep = (length - junction_js::utf16_len(&ellipsis) as f64).max(0.0);
    let mut out = utf16_prefix(&s, keep as usize).to_owned();
    out.push_str(&ellipsis);
    Ok(Js::Str(out))
}

fn words(s: &str) -> Vec<&str> {
    s.split(junction_js::is_js_whitespace).collect::<Vec<_>>()
}

fn truncate_words(value: Js, args: &Args) -> Outcome {
    let s = stringify(&value);
    let mut count = args.number_or(0, 15.0);
    if count <= 0.0 || count.is_nan() {
        count = 1.0;
    }
    let ellipsis = args.string_or(1, "...");
    let all: Vec<&str> = words(&s)
        .into_iter()
        .enumerate()
        .filter(|(i, w)| *i == 0 || !w.is_empty())
        .map(|(_, w)| w)
        .collect();
    let keep = (count as usize).min(all.len());
    let mut out = all.get(..keep).unwrap_or_default().join(" ");
    if all.len() > keep {
        out.push_str(&ellipsis);
    }
    Ok(Js::Str(out))
}

fn collapse_whitespace(s: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if junction_js::is_js_whitespace(c) {
            if !in_space {
                out.push_str(with);
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let tail = rest.get(at..).unwrap_or_default();
        let entity = [
            ("&amp;", '&'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&#34;", '"'),
            ("&#39;", '\''),
        ]
        .into_iter()
        .find(|(e, _)| tail.starts_with(e));
        match entity {
            Some((e, c)) => {
                out.push(c);
                rest = tail.get(e.len()..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = tail.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

fn strip_html(value: Js, _: &Args) -> Outcome {
    static TAGS: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let pattern = TAGS.get_or_init(|| {
        regex::Regex::new(r"(?s:<script.*?</script>)|(?s:<style.*?</style>)|<.*?>|(?s:<!--.*?-->)")
            .ok()
    });
    let s = stringify(&value);
    Ok(Js::Str(match pattern {
        Some(re) => re.replace_all(&s, "").into_owned(),
        None => s,
    }))
}

/// Characters `encodeURIComponent` leaves alone (besides ASCII alphanumerics).
const COMPONENT_SAFE: &str = "-_.!~*'()";
/// What `cgi_escape` leaves alone: `encodeURIComponent` minus `!'()*`.
const CGI_SAFE: &str = "-_.~";
/// Characters `encodeURI` leaves alone.
const URI_SAFE: &str = "-_.!~*'();/?:@&=+$,#";

fn encode_uri(s: &str, safe: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || safe.contains(c) {
            out.push(c);
            continue;
        }
        let mut buffer = [0; 4];
        for byte in c.encode_utf8(&mut buffer).bytes() {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// JS `decodeURIComponent`.
fn decode_uri(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            decoded.push(b);
            i += 1;
            continue;
        }
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| "URI malformed".to_owned())?;
        decoded.push(hex);
        i += 3;
    }
    String::from_utf8(decoded).map_err(|_| "URI malformed".to_owned())
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                let index = ((n >> (18 - 6 * k)) & 63) as usize;
                out.push(char::from(BASE64.get(index).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Lenient base64 decoding (Node's `Buffer.from(s, 'base64')` skips what is not base64).
fn base64_decode(s: &str) -> Vec<u8> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for c in s.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(((bits >> count) & 0xFF) as u8);
        }
    }
    out
}

fn js_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn js_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// JS `Math.round`: halves go up, toward +∞.
fn js_round(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let floor = x.floor();
    if x - floor >= 0.5 { floor + 1.0 } else { floor }
}

/// LiquidJS `toArray`.
fn to_array(value: Js) -> Vec<Js> {
    match value {
        Js::Arr(items) => items,
        Js::Str(s) if !s.is_empty() => vec![Js::Str(s)],
        Js::Obj(members) => members
            .into_iter()
            .map(|(k, v)| Js::Arr(vec![Js::Str(k), v]))
            .collect(),
        _ => Vec::new(),
    }
}

fn join(value: Js, args: &Args) -> Outcome {
    let separator = match args.get(0) {
        Js::Undefined => " ".to_owned(),
        other => js_string(other),
    };
    let items = to_array(value);
    let mut parts = Vec::with_capacity(items.len());
    for item in &items {
        parts.push(if item.is_nil() {
            String::new()
        } else {
            js_string(item)
        });
    }
    let total: usize =
        parts.iter().map(String::len).sum::<usize>() + separator.len().saturating_mul(parts.len());
    guard(total)?;
    Ok(Js::Str(parts.join(&separator)))
}

fn first_or_last(value: Js, first: bool) -> Js {
    match value {
        Js::Arr(mut items) => {
            let item = if first {
                (!items.is_empty()).then(|| items.swap_remove(0))
            } else {
                items.pop()
            };
            item.unwrap_or(Js::Undefined)
        }
        Js::Str(s) => {
            let units = js::utf16_units(&s);
            let unit = if first { units.first() } else { units.last() };
            unit.cloned().map_or(Js::Undefined, Js::Str)
        }
        _ => Js::Str(String::new()),
    }
}

/// JS `slice(begin, end)` bounds for a length.
fn slice_bounds(length: usize, begin: f64, end: f64) -> (usize, usize) {
    let length = length as f64;
    let clamp = |r: f64| {
        let r = if r.is_nan() { 0.0 } else { r.trunc() };
        if r < 0.0 {
            (length + r).max(0.0)
        } else {
            r.min(length)
        }
    };
    let (from, to) = (clamp(begin), clamp(end));
    (from as usize, to.max(from) as usize)
}

fn slice(value: Js, args: &Args) -> Outcome {
    let mut begin = args.number_or(0, 0.0);
    let length = args.number_or(1, 1.0);
    match value {
        Js::Undefined | Js::Null => Ok(Js::Arr(Vec::new())),
        Js::Arr(items) => {
            if begin < 0.0 {
                begin += items.len() as f64;
            }
            let (from, to) = slice_bounds(items.len(), begin, begin + length);
            Ok(Js::Arr(
                items.get(from..to).map(<[Js]>::to_vec).unwrap_or_default(),
            ))
        }
        other => {
            let s = stringify(&other);
            let units: Vec<u16> = s.encode_utf16().collect();
            if begin < 0.0 {
                begin += units.len() as f64;
            }
            let (from, to) = slice_bounds(units.len(), begin, begin + length);
            let piece = units.get(from..to).unwrap_or_default();
            Ok(Js::Str(String::from_utf16_lossy(piece)))
        }
    }
}

fn property(item: &Js, key: &str) -> Js {
    match item {
        Js::Obj(members) => members
            .iter()
            .find(|(k, _)| k == key)
            .map_or(Js::Undefined, |(_, v)| v.clone()),
        _ => Js::Undefined,
    }
}

fn filter_where(value: Js, args: &Args) -> Outcome {
    let key = stringify(args.get(0));
    let expected = args.get(1);
    let kept = to_array(value)
        .into_iter()
        .filter(|item| {
            let found = property(item, &key);
            match expected {
                Js::Undefined => found.is_truthy(),
                expected => strictly_equal(&found, expected),
            }
        })
        .collect();
    Ok(Js::Arr(kept))
}

fn strictly_equal(a: &Js, b: &Js) -> bool {
    match (a, b) {
        (Js::Arr(_) | Js::Obj(_), _) | (_, Js::Arr(_) | Js::Obj(_)) => false,
        _ => a == b,
    }
}

fn sum(value: Js, args: &Args) -> Outcome {
    let key = match args.get(0) {
        Js::Undefined => None,
        other => Some(stringify(other)),
    };
    let total = to_array(value)
        .iter()
        .map(|item| match &key {
            Some(key) => to_number(&property(item, key)),
            None => to_number(item),
        })
        .filter(|n| !n.is_nan())
        .sum();
    Ok(Js::Num(total))
}

fn default(value: Js, args: &Args) -> Outcome {
    let fallback = args.get(0).clone();
    let use_fallback = match &value {
        Js::Arr(items) => items.is_empty(),
        Js::Str(s) => s.is_empty(),
        Js::Bool(false) => !args.keyword("allow_false").is_truthy(),
        other => !other.is_truthy(),
    };
    Ok(if use_fallback { fallback } else { value })
}

fn json(value: Js, args: &Args) -> Outcome {
    let indent = match args.get(0) {
        Js::Num(n) if *n >= 1.0 => " ".repeat((n.min(10.0)) as usize),
        Js::Str(s) => s.chars().take(10).collect(),
        _ => String::new(),
    };
    let mut out = String::new();
    if !push_json(&value, &indent, 0, &mut out) {
        return Ok(Js::Undefined);
    }
    Ok(Js::Str(out))
}

/// `JSON.stringify(value, null, indent)`; `false` when the value is not serialisable at the top.
fn push_json(value: &Js, indent: &str, depth: usize, out: &mut String) -> bool {
    let newline = |out: &mut String, depth: usize| {
        if !indent.is_empty() {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(indent);
            }
        }
    };
    match value {
        Js::Undefined => return false,
        Js::Null => out.push_str("null"),
        Js::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Js::Num(n) if n.is_finite() => junction_js::push_f64(*n, out),
        Js::Num(_) => out.push_str("null"),
        Js::Str(s) => junction_js::push_json_string(s, out),
        Js::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                if !push_json(item, indent, depth + 1, out) {
                    out.push_str("null");
                }
            }
            if !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        Js::Obj(members) => {
            out.push('{');
            let mut first = true;
            for (key, item) in members {
                if matches!(item, Js::Undefined) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                newline(out, depth + 1);
                junction_js::push_json_string(key, out);
                out.push(':');
                if !indent.is_empty() {
                    out.push(' ');
                }
                push_json(item, indent, depth + 1, out);
            }
            if !first {
                newline(out, depth);
            }
            out.push('}');
        }
    }
    true
}

/// LiquidJS's default `date` format.
const DEFAULT_DATE_FORMAT: &str = "%A, %B %-e, %Y at %-l:%M %P %z";

/// `date`: LiquidJS reads numbers (and digit strings) as Unix seconds, `now`/`today` as the
/// current time and other strings the way JS `Date` does (ISO 8601; no offset means the process
/// time zone, UTC in production); what it cannot read is returned unchanged. Formatting uses the
/// `liquid` crate's strftime, in UTC.
fn date(value: Js, args: &Args) -> Outcome {
    use liquid_core::model::DateTime;
    let parsed = match &value {
        Js::Num(n) if n.is_finite() => DateTime::from_str(&(n.floor() as i64).to_string()),
        Js::Str(s) => {
            let s = s.trim();
            if s.eq_ignore_ascii_case("now") || s.eq_ignore_ascii_case("today") {
                Some(DateTime::now())
            } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                DateTime::from_str(s)
            } else {
                iso_seconds(s)
                    .and_then(|secs| DateTime::from_str(&secs.to_string()))
                    .or_else(|| DateTime::from_str(s))
            }
        }
        _ => None,
    };
    let Some(parsed) = parsed else {
        return Ok(value);
    };
    let format = match args.get(0) {
        Js::Undefined | Js::Null => DEFAULT_DATE_FORMAT.to_owned(),
        other => stringify(other),
    };
    match parsed.format(&format) {
        Ok(text) => Ok(Js::Str(text)),
        Err(_) => Ok(value),
    }
}

/// Unix seconds of an ECMAScript date-time string (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, then an
/// optional `THH:mm[:ss[.sss]]` and `Z` or `±HH:mm`; a space may stand for the `T`).
fn iso_seconds(s: &str) -> Option<i64> {
    static ISO: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let pattern = ISO
        .get_or_init(|| {
            regex::Regex::new(
                r"(?i)^([+-]\d{6}|\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:[t ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?\s*(z|[+-]\d{2}:?\d{2})?$",
            )
            .ok()
        })
        .as_ref()?;
    let caps = pattern.captures(s)?;
    let number = |i: usize, default: i64| -> Option<i64> {
        match caps.get(i) {
            Some(m) => m.as_str().parse().ok(),
            None => Some(default),
        }
    };
    let year = number(1, 0)?;
    let month = number(2, 1)?;
    let day = number(3, 1)?;
    let (hour, minute, second) = (number(4, 0)?, number(5, 0)?, number(6, 0)?);
    let valid_day = (1..=days_in_month(year, month)).contains(&day);
    let valid_time =
        (hour < 24 && minute < 60 && second < 60) || (hour == 24 && minute == 0 && second == 0);
    if !(1..=12).contains(&month) || !valid_day || !valid_time {
        return None;
    }
    let offset_minutes = match caps.get(7).map(|m| m.as_str()) {
        None => 0,
        Some(z) if z.eq_ignore_ascii_case("z") => 0,
        Some(offset) => {
            let digits: String = offset.chars().filter(char::is_ascii_digit).collect();
            let hours: i64 = digits.get(..2)?.parse().ok()?;
            let minutes: i64 = digits.get(2..)?.parse().ok()?;
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = (month + 9) % 12;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_convert_like_js() {
        assert_eq!(string_to_number(" 12 "), 12.0);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("0x1f"), 31.0);
        assert!(string_to_number("inf").is_nan());
        assert!(string_to_number("abc").is_nan());
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert_eq!(string_to_number("1e3"), 1000.0);
    }

    #[test]
    fn math_round_goes_up_on_halves() {
        assert_eq!(js_round(1.5), 2.0);
        assert_eq!(js_round(-1.5), -1.0);
        assert_eq!(js_round(0.49999999999999994), 0.0);
    }

    #[test]
    fn json_with_indent() {
        let value = Js::Obj(vec![("a".into(), Js::Arr(vec![Js::Num(1.0)]))]);
        let mut out = String::new();
        push_json(&value, "  ", 0, &mut out);
        assert_eq!(out, "{\n  \"a\": [\n    1\n  ]\n}");
    }

    #[test]
    fn iso_dates_read_like_js() {
        assert_eq!(iso_seconds("1970-01-01"), Some(0));
        assert_eq!(iso_seconds("2024-01-02T03:04:05.000Z"), Some(1_704_164_645));
        assert_eq!(
            iso_seconds("2024-01-02T05:04:05+02:00"),
            Some(1_704_164_645)
        );
        assert_eq!(iso_seconds("2024-02-30"), None);
        assert_eq!(iso_seconds("Jan 2 2024"), None);
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_decode("aGVsbG8="), b"hello");
    }

    #[test]
    fn slices_like_js() {
        assert_eq!(slice_bounds(9, 0.0, 3.0), (0, 3));
        assert_eq!(slice_bounds(3, -7.0, -6.0), (0, 0));
        assert_eq!(slice_bounds(3, 1.0, 10.0), (1, 3));
    }
}
