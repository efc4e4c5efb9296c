//! Tags and blocks `@liquid` adds to the `liquid` crate's: the disabled tags, outputs rendered the
//! LiquidJS way, a `capture` that respects the memory budget, and LiquidJS's `echo` and `block`.

use std::io::{self, Write};

use liquid_core::error::{Error, Result};
use liquid_core::model::{Value as LiquidValue, ValueView};
use liquid_core::parser::FilterChain;
use liquid_core::{
    BlockReflection, Language, ParseBlock, ParseTag, Renderable, Runtime, TagBlock, TagReflection,
    TagTokenIter, Template,
};

use super::filters::{self, MEMORY_MESSAGE};

/// A writer that refuses to grow past a limit, and remembers that it did.
#[derive(Debug)]
pub(crate) struct LimitedWriter {
    buffer: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl LimitedWriter {
    /// A writer accepting at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        LimitedWriter {
            buffer: Vec::new(),
            limit,
            exceeded: false,
        }
    }

    /// Whether a write went past the limit.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// Bytes written.
    pub(crate) fn len(&self) -> usize {
        self.buffer.len()
    }

    /// The text written (templates only write UTF-8).
    pub(crate) fn into_string(self) -> String {
        String::from_utf8_lossy(&self.buffer).into_owned()
    }
}

impl Write for LimitedWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buffer.len().saturating_add(bytes.len()) > self.limit {
            self.exceeded = true;
            return Err(io::Error::other(MEMORY_MESSAGE));
        }
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A tag LiquidJS has and `@liquid` refuses.
#[derive(Debug, Clone)]
pub(crate) struct DisabledTag {
    name: &'static str,
}

impl DisabledTag {
    /// Refuses `name`.
    pub(crate) fn new(name: &'static str) -> Self {
        DisabledTag { name }
    }
}

impl TagReflection for DisabledTag {
    fn tag(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        "disabled"
    }
}

impl ParseTag for DisabledTag {
    fn parse(
        &self,
        _arguments: TagTokenIter<'_>,
        _options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        Err(Error::with_msg(format!(
            "tag \"{}\" is disabled",
            self.name
        )))
    }

    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

/// `{% capture name %}…{% endcapture %}`, counted against the memory budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CaptureBlock;

impl BlockReflection for CaptureBlock {
    fn start_tag(&self) -> &str {
        "capture"
    }

    fn end_tag(&self) -> &str {
        "endcapture"
    }

    fn description(&self) -> &str {
        ""
    }
}

impl ParseBlock for CaptureBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut block: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let name = arguments
            .expect_next("Identifier expected")?
            .expect_identifier()
            .into_result()?
            .to_owned();
        arguments.expect_nothing()?;
        let template = Template::new(block.parse_all(options)?);
        Ok(Box::new(Capture { name, template }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

#[derive(Debug)]
struct Capture {
    name: String,
    template: Template,
}

impl Renderable for Capture {
    fn render_to(&self, _writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let mut captured = LimitedWriter::new(filters::remaining(runtime));
        let rendered = self.template.render_to(&mut captured, runtime);
        if captured.exceeded() {
            return Err(Error::with_msg(MEMORY_MESSAGE));
        }
        rendered?;
        filters::charge(runtime, captured.len())?;
        runtime.set_global(
            self.name.clone().into(),
            LiquidValue::scalar(captured.into_string()),
        );
        Ok(())
    }
}

/// `{% echo value | filters %}`: an output written as a tag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EchoTag;

impl TagReflection for EchoTag {
    fn tag(&self) -> &str {
        "echo"
    }

    fn description(&self) -> &str {
        ""
    }
}

#[derive(Debug)]
struct Nothing;

/// `{{ value | filters }}` (rewritten to a tag by the scan): rendered with LiquidJS's `stringify`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputTag;

impl TagReflection for OutputTag {
    fn tag(&self) -> &str {
        super::scan::OUTPUT_TAG
    }

    fn description(&self) -> &str {
        ""
    }
}

impl ParseTag for OutputTag {
    fn parse(
        &self,
        arguments: TagTokenIter<'_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        EchoTag.parse(arguments, options)
    }

    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

#[derive(Debug)]
struct Output {
    chain: FilterChain,
}

impl Renderable for Output {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        let value = self.chain.evaluate(runtime)?;
        let mut text = String::new();
        push_rendered(value.as_view(), &mut text);
        writer
            .write_all(text.as_bytes())
            .map_err(|_| Error::with_msg(MEMORY_MESSAGE))
    }
}

/// LiquidJS `stringify` of a Liquid value: nil is nothing, arrays are concatenated, objects are
/// `[object Object]`, numbers print as in JS.
fn push_rendered(value: &dyn ValueView, out: &mut String) {
    if let Some(array) = value.as_array() {
        array.values().for_each(|item| push_rendered(item, out));
        return;
    }
    if value.is_nil() || value.as_state().is_some() {
        return;
    }
    if value.as_object().is_some() {
        out.push_str("[object Object]");
        return;
    }
    let Some(scalar) = value.as_scalar() else {
        return;
    };
    match value.type_name() {
        "whole number" => match scalar.to_integer() {
            Some(i) => junction_js::push_number(&serde_json::Number::from(i), out),
            None => out.push_str(&scalar.to_kstr()),
        },
        "fractional number" => junction_js::push_f64(scalar.to_float().unwrap_or(f64::NAN), out),
        _ => out.push_str(&scalar.to_kstr()),
    }
}

impl Renderable for Nothing {
    fn render_to(&self, _writer: &mut dyn Write, _runtime: &dyn Runtime) -> Result<()> {
        Ok(())
    }
}

impl ParseTag for EchoTag {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let Some(token) = arguments.next() else {
            return Ok(Box::new(Nothing));
        };
        let chain: FilterChain = token.expect_filter_chain(options).into_result()?;
        arguments.expect_nothing()?;
        Ok(Box::new(Output { chain }))
    }

    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

/// `{% block name %}…{% endblock %}`: outside a layout LiquidJS renders the content.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockBlock;

impl BlockReflection for BlockBlock {
    fn start_tag(&self) -> &str {
        "block"
    }

    fn end_tag(&self) -> &str {
        "endblock"
    }

    fn description(&self) -> &str {
        ""
    }
}

impl ParseBlock for BlockBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut block: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        // The block's name only matters to layouts, which are disabled.
        while arguments.next().is_some() {}
        Ok(Box::new(Template::new(block.parse_all(options)?)))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}
