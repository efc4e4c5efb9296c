//! `@liquid`: templates parsed once by the `liquid` crate, set up to behave like the reference's
//! LiquidJS 10 engine (disabled tags and filters, unknown filters ignored, lax variables, JS
//! output conventions, LiquidJS's tokenizer errors, a 1,000-character limit, a memory budget).

mod filters;
mod scan;
mod tags;
mod view;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use crate::MappingError;
use crate::out::Payload;

/// Longest template accepted, in UTF-16 code units.
const MAX_LENGTH: usize = 1000;

/// How many distinct unknown filters one template may use.
const MAX_UNKNOWN_FILTERS: usize = 64;

fn runtime(message: impl Into<String>) -> MappingError {
    MappingError::Runtime {
        message: message.into(),
    }
}

/// A compiled `@liquid` template.
#[derive(Clone)]
pub(crate) struct LiquidTemplate {
    /// `None` for the empty template, which renders `""` without the engine.
    template: Option<Arc<liquid::Template>>,
}

impl fmt::Debug for LiquidTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiquidTemplate")
            .field("empty", &self.template.is_none())
            .finish()
    }
}

impl LiquidTemplate {
    /// Checks and parses `source`.
    pub(crate) fn compile(source: &str) -> Result<Self, MappingError> {
        if source.is_empty() {
            return Ok(LiquidTemplate { template: None });
        }
        if junction_js::utf16_len(source) > MAX_LENGTH {
            return Err(runtime(
                "liquid template values are limited to 1000 characters",
            ));
        }
        let prepared = scan::prepare(source).map_err(runtime)?;
        let known = known_filters();
        let unknown: Vec<String> = prepared
            .filters
            .into_iter()
            .filter(|name| !known.contains(&name.as_str()))
            .take(MAX_UNKNOWN_FILTERS)
            .collect();
        Ok(LiquidTemplate {
            template: Some(Arc::new(parse(&prepared.source, unknown)?)),
        })
    }

    /// Renders with `payload` as the global scope.
    pub(crate) fn render(&self, payload: Payload<'_>) -> Result<String, MappingError> {
        let Some(template) = &self.template else {
            return Ok(String::new());
        };
        let scope = view::Scope::new(payload);
        let mut out = tags::LimitedWriter::new(filters::MEMORY_LIMIT);
        // The `liquid` crate asserts on a few inputs; a template must never take the process down.
        let rendered = catch_unwind(AssertUnwindSafe(|| template.render_to(&mut out, &scope)));
        match rendered {
            Ok(Ok(())) => Ok(out.into_string()),
            Ok(Err(_)) if out.exceeded() => Err(runtime(filters::MEMORY_MESSAGE)),
            Ok(Err(err)) => Err(runtime(message_of(&err))),
            Err(_) => Err(runtime("liquid template could not be rendered")),
        }
    }
}

/// The parser with every tag and filter `@liquid` offers.
fn builder(unknown_filters: &[String]) -> liquid::ParserBuilder {
    use liquid_lib::stdlib;
    let mut builder = liquid::ParserBuilder::new()
        .tag(stdlib::AssignTag)
        .tag(stdlib::BreakTag)
        .tag(stdlib::ContinueTag)
        .tag(stdlib::CycleTag)
        .tag(stdlib::IncrementTag)
        .tag(stdlib::DecrementTag)
        .tag(tags::EchoTag)
        .tag(tags::OutputTag)
        .block(stdlib::RawBlock)
        .block(stdlib::IfBlock)
        .block(stdlib::UnlessBlock)
        .block(stdlib::CommentBlock)
        .block(tags::CaptureBlock)
        .block(tags::BlockBlock);
    for name in scan::DISABLED_TAGS {
        builder = builder.tag(tags::DisabledTag::new(name));
    }
    for filter in filters::all() {
        builder = builder.filter(filter);
    }
    for name in unknown_filters {
        builder = builder.filter(filters::JsFilter::pass_through(name));
    }
    builder
}

/// Names of the filters the parser has.
fn known_filters() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(filters::names)
}

fn base_parser() -> Option<&'static liquid::Parser> {
    static PARSER: OnceLock<Option<liquid::Parser>> = OnceLock::new();
    PARSER.get_or_init(|| builder(&[]).build().ok()).as_ref()
}

/// Parses, registering a pass-through for every filter LiquidJS would silently ignore: those the
/// scan found, and any the crate still reports.
fn parse(source: &str, mut unknown: Vec<String>) -> Result<liquid::Template, MappingError> {
    loop {
        let custom;
        let parser = if unknown.is_empty() {
            base_parser()
        } else {
            custom = builder(&unknown).build().ok();
            custom.as_ref()
        };
        let Some(parser) = parser else {
            return Err(runtime("liquid engine unavailable"));
        };
        let parsed = catch_unwind(AssertUnwindSafe(|| parser.parse(source)));
        let err = match parsed {
            Ok(Ok(template)) => return Ok(template),
            Ok(Err(err)) => err,
            Err(_) => return Err(runtime("liquid template could not be parsed")),
        };
        let text = err.to_string();
        match context(&text, "requested filter") {
            Some(name) if unknown.len() < MAX_UNKNOWN_FILTERS && !unknown.contains(&name) => {
                unknown.push(name);
            }
            _ => return Err(runtime(message_of(&err))),
        }
    }
}

/// A `key=value` context line of a `liquid` error.
fn context(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(str::trim_start)
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
}

/// The reference-style message of a `liquid` error: LiquidJS's wording where we know it.
fn message_of(err: &liquid::Error) -> String {
    let text = err.to_string();
    if let Some(name) = context(&text, "requested") {
        return format!("tag \"{name}\" not found");
    }
    let body = text.strip_prefix("liquid: ").unwrap_or(&text);
    // Parse errors carry a pest report whose last `= …` line is the reason.
    if let Some(reason) = body
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("= "))
    {
        return reason.to_owned();
    }
    body.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, data: serde_json::Value) -> Result<String, MappingError> {
        LiquidTemplate::compile(source)?.render(Payload::Json(&data))
    }

    #[test]
    fn lax_lookups_render_nothing() {
        let data = json!({"a": {"b": null}, "s": "x"});
        assert_eq!(
            render("[{{ a.b.c }}{{ nope.x.y }}{{ a.missing }}]", data).unwrap(),
            "[]"
        );
    }

    #[test]
    fn memory_budget_stops_doubling() {
        let mut source = String::from("{% assign x = \"aaaaaaaaaaaaaaaaaaaaaaaa\" %}");
        for _ in 0..30 {
            source.push_str("{% assign x = x | append: x %}");
        }
        let err = render(&source, json!({})).unwrap_err();
        assert_eq!(
            err,
            MappingError::Runtime {
                message: "memory alloc limit exceeded".into()
            }
        );
    }

    #[test]
    fn capture_doubling_is_bounded() {
        let mut source = String::from("{% capture x %}aaaaaaaaaaaaaaaa{% endcapture %}");
        for _ in 0..30 {
            source.push_str("{% capture x %}{{x}}{{x}}{% endcapture %}");
        }
        assert!(render(&source, json!({})).is_err());
    }

    #[test]
    fn stray_end_tag_is_not_found() {
        let err = LiquidTemplate::compile("{% if a %}{% endunless %}").unwrap_err();
        assert_eq!(
            err,
            MappingError::Runtime {
                message: "tag \"endunless\" not found".into()
            }
        );
    }

    #[test]
    fn huge_integer_literal_does_not_panic() {
        assert_eq!(
            render("{{ 99999999999999999999 | plus: 1 }}", json!({})).unwrap(),
            "100000000000000000000"
        );
    }

    #[test]
    fn filters_follow_liquidjs() {
        let data = json!({"n": 3, "s": "a,b,,", "o": {"a": 1}, "arr": [1, null, "x"], "big": 1e21});
        assert_eq!(
            render("{{ n | divided_by: 2 }}", data.clone()).unwrap(),
            "1.5"
        );
        assert_eq!(
            render("{{ s | split: ',' | size }}", data.clone()).unwrap(),
            "2"
        );
        assert_eq!(render("{{ o | json }}", data.clone()).unwrap(), "{\"a\":1}");
        assert_eq!(
            render("{{ arr | join: '-' }}", data.clone()).unwrap(),
            "1--x"
        );
        assert_eq!(
            render("{{ big }}|{{ big | plus: 0 }}", data.clone()).unwrap(),
            "1e+21|1e+21"
        );
        assert_eq!(render("{{ n | divided_by: 0 }}", data).unwrap(), "Infinity");
        let when = json!({"t": "2024-01-02T03:04:05.000Z", "n": 0});
        assert_eq!(
            render(
                "{{ t | date: '%Y-%m-%d %H:%M' }}|{{ n | date: '%Y' }}",
                when
            )
            .unwrap(),
            "2024-01-02 03:04|1970"
        );
    }
}
