//! Parser: tokens → [`Query`]. Recursive descent over the subset of Segment's query language
//! in `audiences.md` §2: `AND` binds tighter than `OR`, `NOT` takes a parenthesised condition,
//! comparisons are `scalar comparator`. Everything outside the subset is an error naming the
//! column and the reason; funnels, `ANY`/`ALL` and `… as array` are refused by name.

use serde_json::Value;

use crate::ast::{
    As, Body, Comparator, Comparison, Expr, Kind, Operand, Prop, Query, Reducer, Root, Stream,
    TraitRef, Window,
};
use crate::datetime::{DAY_MS, HOUR_MS, parse_rfc3339};
use crate::error::{ParseError, ParseErrorKind};
use crate::lexer::{self, Kind as Tok, Token};

/// The most comparisons a definition may have, those inside `where` included.
pub const MAX_COMPARISONS: usize = 50;

/// How deep parentheses, `NOT` and `where` may nest; deeper text is refused rather than risking
/// the stack.
pub const MAX_NESTING: usize = 64;

/// Every function name of the language, for the "function names are lower-case" hint.
const FUNCTIONS: &[&str] = &[
    "event",
    "trait",
    "literal",
    "property",
    "context",
    "where",
    "within",
    "between",
    "sources",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "mode",
    "first",
    "last",
    "unique",
    "equals",
    "differs",
    "greater_than",
    "at_least",
    "less_than",
    "at_most",
    "exists",
    "absent",
    "contains",
    "omits",
    "starts_with",
    "ends_with",
    "one_of",
    "before_date",
    "after_date",
    "within_last",
    "within_next",
    "before_last",
    "after_next",
];

/// Parses a definition's text as the given kind: an audience is a condition, a computed trait
/// is `event(…)[.filters].reducer`.
pub fn parse(source: &str, kind: Kind) -> Result<Query> {
    let chars: Vec<char> = source.chars().collect();
    let tokens = lexer::lex(&chars)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
        in_where: false,
        streams: Vec::new(),
        references: Vec::new(),
        comparisons: Vec::new(),
    };
    let body = match kind {
        Kind::Audience => parser.audience()?,
        Kind::Trait => parser.computed_trait()?,
    };
    if let Some(&position) = parser.comparisons.get(MAX_COMPARISONS) {
        return Err(ParseError::new(
            ParseErrorKind::TooManyComparisons,
            position,
            format!(
                "too many comparisons ({}; at most {MAX_COMPARISONS})",
                parser.comparisons.len()
            ),
        ));
    }
    Ok(Query {
        body,
        streams: parser.streams,
        references: parser.references,
        comparisons: parser.comparisons.len(),
    })
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    /// Inside a `where(…)`: `property()` is allowed, `event()` is not.
    in_where: bool,
    streams: Vec<Stream>,
    references: Vec<TraitRef>,
    /// The position of every comparison, in the order they start.
    comparisons: Vec<usize>,
}

type Result<T> = std::result::Result<T, ParseError>;

fn error(kind: ParseErrorKind, token: &Token, reason: impl Into<String>) -> ParseError {
    let kind = if token.kind == Tok::Eos && kind == ParseErrorKind::UnexpectedToken {
        ParseErrorKind::UnexpectedEnd
    } else {
        kind
    };
    ParseError::new(kind, token.start, reason)
}

impl Parser {
    fn peek(&self) -> &Token {
        // The lexer always ends with `Eos`, and `bump` never moves past it.
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[self.pos.min(last)]
    }

    fn peek_second(&self) -> Option<&Token> {
        self.tokens.get(self.pos + 1)
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != Tok::Eos {
            self.pos += 1;
        }
        token
    }

    /// Consumes a token of `kind`, or fails with `what` and the token found.
    fn expect(&mut self, kind: Tok, what: impl FnOnce() -> String) -> Result<Token> {
        if self.peek().kind == kind {
            return Ok(self.bump());
        }
        let found = self.peek();
        Err(error(
            ParseErrorKind::UnexpectedToken,
            found,
            format!("{}, found {}", what(), found.describe()),
        ))
    }

    fn open(&mut self, function: &str) -> Result<()> {
        self.expect(Tok::LParen, || format!("expected '(' after {function}"))?;
        Ok(())
    }

    fn close(&mut self, function: &str) -> Result<()> {
        self.expect(Tok::RParen, || format!("expected ')' to close {function}("))?;
        Ok(())
    }

    fn nest(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(error(
                ParseErrorKind::TooDeep,
                self.peek(),
                format!("nested more than {MAX_NESTING} levels deep"),
            ));
        }
        Ok(())
    }

    fn audience(&mut self) -> Result<Body> {
        let expr = self.expr()?;
        let next = self.peek();
        if next.kind != Tok::Eos {
            return Err(error(
                ParseErrorKind::UnexpectedToken,
                next,
                format!(
                    "unexpected {} after the end of the expression",
                    next.describe()
                ),
            ));
        }
        Ok(Body::Audience(expr))
    }

    fn computed_trait(&mut self) -> Result<Body> {
        let first = self.peek();
        if !first.is_word("event") {
            return Err(error(
                ParseErrorKind::UnexpectedToken,
                first,
                format!(
                    "a computed trait must be event(...)[.filters].reducer, found {}",
                    first.describe()
                ),
            ));
        }
        let stream = self.stream()?;
        let next = self.peek();
        if next.kind != Tok::Eos {
            return Err(error(
                ParseErrorKind::UnexpectedToken,
                next,
                format!(
                    "unexpected {} after the reducer (a computed trait is event(...)[.filters].reducer, without a comparator)",
                    next.describe()
                ),
            ));
        }
        Ok(Body::Trait(stream))
    }

    fn expr(&mut self) -> Result<Expr> {
        let mut items = vec![self.term()?];
        while self.peek().is_keyword("or") {
            self.bump();
            items.push(self.term()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn term(&mut self) -> Result<Expr> {
        let mut items = vec![self.factor()?];
        while self.peek().is_keyword("and") {
            self.bump();
            items.push(self.factor()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn factor(&mut self) -> Result<Expr> {
        let token = self.peek().clone();
        if token.is_keyword("not") {
            self.bump();
            self.expect(Tok::LParen, || "NOT must be followed by '('".to_owned())?;
            let inner = self.parenthesised()?;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if token.kind == Tok::LParen {
            self.bump();
            return self.parenthesised();
        }
        if token.is_keyword("any") || token.is_keyword("all") {
            return Err(error(
                ParseErrorKind::Unsupported,
                &token,
                "ANY/ALL account-level audiences are not supported in this version",
            ));
        }
        if token.kind == Tok::Eos {
            return Err(error(
                ParseErrorKind::UnexpectedEnd,
                &token,
                "unexpected end of definition (expected a comparison)",
            ));
        }
        self.comparison()
    }

    /// The rest of `( expr )`, after the `(`.
    fn parenthesised(&mut self) -> Result<Expr> {
        self.nest()?;
        let inner = self.expr()?;
        self.depth -= 1;
        self.expect(Tok::RParen, || "expected ')' to close '('".to_owned())?;
        Ok(inner)
    }

    fn comparison(&mut self) -> Result<Expr> {
        self.comparisons.push(self.peek().start);
        let operand = self.operand()?;
        let comparator = self.comparator(&operand)?;
        Ok(Expr::Compare(Box::new(Comparison {
            operand,
            comparator,
        })))
    }

    /// The value compared: a stream's reducer, `trait()`, a literal, or a property in `where`.
    fn operand(&mut self) -> Result<Operand> {
        let token = self.peek().clone();
        match token.kind {
            Tok::Word if token.value == "event" => {
                let stream = self.stream()?;
                if self.in_where {
                    return Err(error(
                        ParseErrorKind::Misplaced,
                        &token,
                        "event() cannot be used inside where()",
                    ));
                }
                Ok(Operand::Stream(stream))
            }
            Tok::Word | Tok::Str | Tok::Number => {
                if let Some(operand) = self.value()? {
                    return Ok(operand);
                }
                if token.kind == Tok::Word
                    && self.peek_second().is_some_and(|t| t.kind == Tok::LParen)
                {
                    return Err(unknown_function(&token));
                }
                Err(error(
                    ParseErrorKind::UnexpectedToken,
                    &token,
                    format!("expected a comparison, found {}", token.describe()),
                ))
            }
            _ => Err(error(
                ParseErrorKind::UnexpectedToken,
                &token,
                format!("expected a comparison, found {}", token.describe()),
            )),
        }
    }

    /// A value: a literal, `literal(…)`, `trait(…)`, or `property(…)`/`context(…)` inside
    /// `where`. `None` (nothing consumed) when the next token starts none of them.
    fn value(&mut self) -> Result<Option<Operand>> {
        let token = self.peek().clone();
        if let Some(literal) = literal_of(&token)? {
            self.bump();
            return Ok(Some(Operand::Literal(literal)));
        }
        if token.kind != Tok::Word {
            return Ok(None);
        }
        match token.value.as_str() {
            "literal" => {
                self.bump();
                self.open("literal")?;
                let inner = self.peek().clone();
                let Some(literal) = literal_of(&inner)? else {
                    return Err(error(
                        ParseErrorKind::InvalidArgument,
                        &inner,
                        format!(
                            "literal(): expected a literal (string, number, true or false), found {}",
                            inner.describe()
                        ),
                    ));
                };
                self.bump();
                self.close("literal")?;
                Ok(Some(Operand::Literal(literal)))
            }
            "trait" => Ok(Some(Operand::Trait(self.trait_ref()?))),
            "property" | "context" => {
                let prop = self.prop("a comparison")?;
                if !self.in_where {
                    return Err(error(
                        ParseErrorKind::Misplaced,
                        &token,
                        format!(
                            "{}() can only be used inside where() or a reducer",
                            token.value
                        ),
                    ));
                }
                Ok(Some(Operand::Prop(prop)))
            }
            _ => Ok(None),
        }
    }

    /// A comparator's argument: a value, or an error naming the comparator.
    fn argument(&mut self, comparator: &str) -> Result<Operand> {
        if let Some(operand) = self.value()? {
            return Ok(operand);
        }
        let found = self.peek();
        Err(error(
            ParseErrorKind::InvalidArgument,
            found,
            format!(
                "{comparator}: expected a value (a literal, literal(…), trait(…)), found {}",
                found.describe()
            ),
        ))
    }

    fn trait_ref(&mut self) -> Result<TraitRef> {
        let token = self.bump();
        self.open("trait")?;
        let key = self.string_argument("trait()")?;
        self.close("trait")?;
        let reference = TraitRef {
            key,
            column: token.start + 1,
        };
        self.references.push(reference.clone());
        Ok(reference)
    }

    /// A quoted string argument of `function`.
    fn string_argument(&mut self, function: &str) -> Result<String> {
        let token = self.peek();
        if token.kind != Tok::Str {
            return Err(error(
                ParseErrorKind::InvalidArgument,
                token,
                format!(
                    "{function} takes a quoted string, found {}",
                    token.describe()
                ),
            ));
        }
        Ok(self.bump().value)
    }

    /// `property('a.b')` or `context('a.b')`; `what` names the place for an error.
    fn prop(&mut self, what: &str) -> Result<Prop> {
        let token = self.peek().clone();
        let root = match token.value.as_str() {
            _ if token.kind != Tok::Word => None,
            "property" => Some(Root::Properties),
            "context" => Some(Root::Context),
            _ => None,
        };
        let Some(root) = root else {
            return Err(error(
                ParseErrorKind::InvalidArgument,
                &token,
                format!(
                    "{what} takes property(…) or context(…), found {}",
                    token.describe()
                ),
            ));
        };
        self.bump();
        self.open(&token.value)?;
        let path = self.string_argument(&format!("{}()", token.value))?;
        self.close(&token.value)?;
        Ok(Prop {
            root,
            path: path.split('.').map(str::to_owned).collect(),
        })
    }

    /// `event('X')` with its filters and reducer; returns the stream's index.
    fn stream(&mut self) -> Result<usize> {
        self.bump();
        self.open("event")?;
        let event = self.string_argument("event()")?;
        self.close("event")?;
        let mut window: Option<Window> = None;
        let mut conditions = Vec::new();
        let mut excluded_sources = Vec::new();
        let reducer = loop {
            self.expect(Tok::Dot, || {
                "expected '.' and a reducer after event(...)".to_owned()
            })?;
            let name = self.peek().clone();
            if name.kind != Tok::Word {
                return Err(error(
                    ParseErrorKind::UnexpectedToken,
                    &name,
                    format!("expected a filter or a reducer, found {}", name.describe()),
                ));
            }
            self.bump();
            match name.value.as_str() {
                "where" => {
                    self.open("where")?;
                    self.nest()?;
                    let outer = std::mem::replace(&mut self.in_where, true);
                    let condition = self.expr();
                    self.in_where = outer;
                    conditions.push(condition?);
                    self.depth -= 1;
                    self.close("where")?;
                }
                "within" => {
                    self.open("within")?;
                    let next = self.peek();
                    if next.is_word("parent") {
                        return Err(error(
                            ParseErrorKind::Unsupported,
                            next,
                            "funnels (within(parent: …)) are not supported in this version",
                        ));
                    }
                    let to = self.duration("within()")?;
                    self.close("within")?;
                    let filter = Window { from: 0, to };
                    window = Some(window.map_or(filter, |w| w.intersect(filter)));
                }
                "between" => {
                    self.open("between")?;
                    let from = self.duration("between()")?;
                    self.expect(Tok::Comma, || "expected ',' in between()".to_owned())?;
                    let to = self.duration("between()")?;
                    self.close("between")?;
                    let filter = Window { from, to };
                    window = Some(window.map_or(filter, |w| w.intersect(filter)));
                }
                "sources" => {
                    self.open("sources")?;
                    let keyword = self.peek();
                    if !keyword.is_word("exclude") {
                        return Err(error(
                            ParseErrorKind::InvalidArgument,
                            keyword,
                            format!(
                                "sources() takes exclude: and quoted source ids, found {}",
                                keyword.describe()
                            ),
                        ));
                    }
                    self.bump();
                    self.expect(Tok::Colon, || "expected ':' after exclude".to_owned())?;
                    loop {
                        excluded_sources.push(self.string_argument("sources(exclude: …)")?);
                        if self.peek().kind != Tok::Comma {
                            break;
                        }
                        self.bump();
                    }
                    self.close("sources")?;
                }
                _ => break self.reducer(&name)?,
            }
        };
        self.streams.push(Stream {
            event,
            window,
            conditions,
            excluded_sources,
            reducer,
        });
        Ok(self.streams.len() - 1)
    }

    /// `N unit` as milliseconds.
    fn duration(&mut self, function: &str) -> Result<i64> {
        let number = self.peek().clone();
        let digits = number.kind == Tok::Number && number.value.bytes().all(|b| b.is_ascii_digit());
        if !digits {
            return Err(error(
                ParseErrorKind::InvalidArgument,
                &number,
                format!(
                    "{function}: expected a whole number >= 0 in digits, found {}",
                    number.describe()
                ),
            ));
        }
        self.bump();
        let unit = self.peek().clone();
        let unit_ms = match unit.value.as_str() {
            _ if unit.kind != Tok::Word => None,
            "hour" | "hours" => Some(HOUR_MS),
            "day" | "days" => Some(DAY_MS),
            _ => None,
        };
        let Some(unit_ms) = unit_ms else {
            return Err(error(
                ParseErrorKind::InvalidArgument,
                &unit,
                format!(
                    "{function}: expected a time unit (hour, hours, day, days), found {}",
                    unit.describe()
                ),
            ));
        };
        self.bump();
        number
            .value
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_ms))
            .ok_or_else(|| {
                error(
                    ParseErrorKind::InvalidArgument,
                    &number,
                    format!("{function}: the duration {} is too long", number.describe()),
                )
            })
    }

    /// A whole number ≥ 0 written in digits (`mode`'s minimum count).
    fn whole_number(&mut self, function: &str) -> Result<u64> {
        let number = self.peek().clone();
        let value = (number.kind == Tok::Number
            && number.value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| number.value.parse::<u64>().ok())
        .flatten();
        let Some(value) = value else {
            return Err(error(
                ParseErrorKind::InvalidArgument,
                &number,
                format!(
                    "{function}: expected a whole number >= 0 in digits, found {}",
                    number.describe()
                ),
            ));
        };
        self.bump();
        Ok(value)
    }

    /// The reducer named by `name` (already consumed), with `.count()` after `unique(…)`.
    fn reducer(&mut self, name: &Token) -> Result<Reducer> {
        let function = name.value.as_str();
        let reducer = match function {
            "count" => {
                self.open("count")?;
                self.expect(Tok::RParen, || {
                    "expected ')' (count() takes no argument)".to_owned()
                })?;
                Reducer::Count
            }
            "sum" | "avg" | "first" | "last" | "unique" => {
                self.open(function)?;
                let prop = self.prop(&format!("{function}()"))?;
                self.close(function)?;
                match function {
                    "sum" => Reducer::Sum(prop),
                    "avg" => Reducer::Avg(prop),
                    "first" => Reducer::First(prop),
                    "last" => Reducer::Last(prop),
                    _ => Reducer::Unique(prop),
                }
            }
            "min" | "max" => {
                self.open(function)?;
                let prop = self.prop(&format!("{function}()"))?;
                let read_as = self.read_as(function)?.unwrap_or(As::Number);
                self.close(function)?;
                if function == "min" {
                    Reducer::Min(prop, read_as)
                } else {
                    Reducer::Max(prop, read_as)
                }
            }
            "mode" => {
                self.open("mode")?;
                let prop = self.prop("mode()")?;
                // Both `as number` and `as string` mean text for mode.
                self.read_as("mode")?;
                self.expect(Tok::Comma, || {
                    "expected ',' and a minimum count in mode()".to_owned()
                })?;
                let minimum = self.whole_number("mode()")?;
                self.close("mode")?;
                Reducer::Mode(prop, minimum)
            }
            _ => return Err(unknown_function(name)),
        };
        let Reducer::Unique(prop) = reducer else {
            return Ok(reducer);
        };
        let then_count =
            self.peek().kind == Tok::Dot && self.peek_second().is_some_and(|t| t.is_word("count"));
        if !then_count {
            return Ok(Reducer::Unique(prop));
        }
        self.bump();
        self.bump();
        self.open("count")?;
        self.expect(Tok::RParen, || {
            "expected ')' (count() takes no argument)".to_owned()
        })?;
        Ok(Reducer::UniqueCount(prop))
    }

    /// An optional `as number` / `as string`; `as array` is refused.
    fn read_as(&mut self, function: &str) -> Result<Option<As>> {
        let keyword = self.peek().clone();
        if !keyword.is_word("as") {
            return Ok(None);
        }
        self.bump();
        let kind = self.peek().clone();
        let read_as = match kind.value.as_str() {
            _ if kind.kind != Tok::Word => None,
            "number" => Some(As::Number),
            "string" => Some(As::String),
            "array" => {
                return Err(error(
                    ParseErrorKind::Unsupported,
                    &keyword,
                    format!("{function}(… as array) is not supported in this version"),
                ));
            }
            _ => None,
        };
        let Some(read_as) = read_as else {
            return Err(error(
                ParseErrorKind::InvalidArgument,
                &kind,
                format!(
                    "{function}(… as <type>): expected 'number' or 'string', found {}",
                    kind.describe()
                ),
            ));
        };
        self.bump();
        Ok(Some(read_as))
    }

    fn comparator(&mut self, operand: &Operand) -> Result<Comparator> {
        let token = self.peek().clone();
        let sugar = match token.kind {
            Tok::Eq => Some(Comparator::Equals as fn(Operand) -> Comparator),
            Tok::Ne => Some(Comparator::Differs as fn(Operand) -> Comparator),
            Tok::Gt => Some(Comparator::GreaterThan as fn(Operand) -> Comparator),
            Tok::Ge => Some(Comparator::AtLeast as fn(Operand) -> Comparator),
            Tok::Lt => Some(Comparator::LessThan as fn(Operand) -> Comparator),
            Tok::Le => Some(Comparator::AtMost as fn(Operand) -> Comparator),
            _ => None,
        };
        if let Some(build) = sugar {
            self.bump();
            let argument = self.argument(&format!("'{}'", token.raw))?;
            return Ok(build(argument));
        }
        if token.kind != Tok::Dot {
            return Err(error(
                ParseErrorKind::UnexpectedToken,
                &token,
                format!(
                    "expected a comparator (e.g. '= 1' or '.exists()'), found {}",
                    token.describe()
                ),
            ));
        }
        self.bump();
        let name = self.peek().clone();
        if name.kind != Tok::Word {
            return Err(error(
                ParseErrorKind::UnexpectedToken,
                &name,
                format!("expected a comparator after '.', found {}", name.describe()),
            ));
        }
        self.bump();
        let function = name.value.as_str();
        let comparator = match function {
            "equals" | "differs" | "greater_than" | "at_least" | "less_than" | "at_most" => {
                self.open(function)?;
                let argument = self.argument(&format!("{function}()"))?;
                self.close(function)?;
                match function {
                    "equals" => Comparator::Equals(argument),
                    "differs" => Comparator::Differs(argument),
                    "greater_than" => Comparator::GreaterThan(argument),
                    "at_least" => Comparator::AtLeast(argument),
                    "less_than" => Comparator::LessThan(argument),
                    _ => Comparator::AtMost(argument),
                }
            }
            "exists" | "absent" => {
                self.open(function)?;
                self.expect(Tok::RParen, || {
                    format!("expected ')' ({function}() takes no argument)")
                })?;
                if function == "exists" {
                    Comparator::Exists
                } else {
                    Comparator::Absent
                }
            }
            "contains" => {
                self.open(function)?;
                let mut needles = vec![self.string_argument("contains()")?];
                while self.peek().kind == Tok::Comma {
                    self.bump();
                    needles.push(self.string_argument("contains()")?);
                }
                self.close(function)?;
                Comparator::Contains(needles)
            }
            "omits" | "starts_with" | "ends_with" => {
                self.open(function)?;
                let text = self.string_argument(&format!("{function}()"))?;
                self.close(function)?;
                match function {
                    "omits" => Comparator::Omits(text),
                    "starts_with" => Comparator::StartsWith(text),
                    _ => Comparator::EndsWith(text),
                }
            }
            "one_of" => {
                self.open(function)?;
                let mut values = vec![self.argument("one_of()")?];
                while self.peek().kind == Tok::Comma {
                    self.bump();
                    values.push(self.argument("one_of()")?);
                }
                self.close(function)?;
                Comparator::OneOf(values)
            }
            "before_date" | "after_date" => {
                self.open(function)?;
                let date = self.peek().clone();
                let text = self.string_argument(&format!("{function}()"))?;
                let Some(millis) = parse_rfc3339(&text) else {
                    return Err(error(
                        ParseErrorKind::InvalidArgument,
                        &date,
                        format!(
                            "{function}(): {text:?} is not an RFC 3339 date-time with Z or an offset"
                        ),
                    ));
                };
                self.close(function)?;
                if function == "before_date" {
                    Comparator::BeforeDate(millis)
                } else {
                    Comparator::AfterDate(millis)
                }
            }
            "within_last" | "within_next" | "before_last" | "after_next" => {
                self.open(function)?;
                let duration = self.duration(&format!("{function}()"))?;
                self.close(function)?;
                match function {
                    "within_last" => Comparator::WithinLast(duration),
                    "within_next" => Comparator::WithinNext(duration),
                    "before_last" => Comparator::BeforeLast(duration),
                    _ => Comparator::AfterNext(duration),
                }
            }
            other if FUNCTIONS.contains(&other) => {
                let _ = operand;
                return Err(error(
                    ParseErrorKind::UnexpectedToken,
                    &name,
                    format!("'{other}' cannot follow this value (expected a comparator)"),
                ));
            }
            _ => return Err(unknown_function(&name)),
        };
        Ok(comparator)
    }
}

/// The literal a token stands for: a string, a number, `true` or `false`.
fn literal_of(token: &Token) -> Result<Option<Value>> {
    match token.kind {
        Tok::Str => Ok(Some(Value::String(token.value.clone()))),
        Tok::Number => serde_json::from_str::<Value>(&token.value)
            .map(Some)
            .map_err(|_| {
                error(
                    ParseErrorKind::InvalidNumber,
                    token,
                    format!("invalid number {}", token.describe()),
                )
            }),
        Tok::Word if token.value == "true" => Ok(Some(Value::Bool(true))),
        Tok::Word if token.value == "false" => Ok(Some(Value::Bool(false))),
        _ => Ok(None),
    }
}

fn unknown_function(name: &Token) -> ParseError {
    let lower = name.value.to_ascii_lowercase();
    let reason = if lower != name.value && FUNCTIONS.contains(&lower.as_str()) {
        format!(
            "unknown function '{}' (function names are lower-case: '{lower}')",
            name.value
        )
    } else {
        format!("unknown function '{}'", name.value)
    };
    error(ParseErrorKind::UnknownFunction, name, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn audience(text: &str) -> Query {
        parse(text, Kind::Audience).unwrap()
    }

    fn refused(text: &str, kind: Kind) -> String {
        parse(text, kind).unwrap_err().to_string()
    }

    #[test]
    fn and_binds_tighter_than_or_and_keywords_ignore_case() {
        let query = audience("trait('a') = 1 or trait('b') = 2 And trait('c') = 3");
        let Body::Audience(Expr::Or(items)) = query.body else {
            panic!("expected OR at the top");
        };
        assert!(matches!(items[1], Expr::And(_)));
        assert_eq!(query.comparisons, 3);
        assert_eq!(query.references.len(), 3);
    }

    #[test]
    fn streams_compose_their_filters() {
        let query = audience(
            "event('Order Completed').within(30 days).between(1 day, 60 days).sources(exclude: 'a', \"b\").where(property('x') > 1).sum(property('total')) >= 100",
        );
        let stream = &query.streams[0];
        assert_eq!(stream.event, "Order Completed");
        assert_eq!(
            stream.window,
            Some(Window {
                from: DAY_MS,
                to: 30 * DAY_MS
            })
        );
        assert_eq!(stream.excluded_sources, ["a", "b"]);
        assert_eq!(stream.conditions.len(), 1);
        assert_eq!(query.comparisons, 2);
    }

    #[test]
    fn unique_then_count_is_one_reducer() {
        let query = parse("event('x').unique(property('sku')).count()", Kind::Trait).unwrap();
        assert!(matches!(query.streams[0].reducer, Reducer::UniqueCount(_)));
        assert_eq!(query.body, Body::Trait(0));
    }

    #[test]
    fn literals_on_either_side() {
        let query = audience("'a'.one_of(literal('b'), 'a') AND 1 == 1.0");
        assert_eq!(query.comparisons, 2);
        let query = audience("literal(0).absent()");
        let Body::Audience(Expr::Compare(comparison)) = query.body else {
            panic!("expected a comparison");
        };
        assert_eq!(comparison.operand, Operand::Literal(json!(0)));
    }

    #[test]
    fn refusals_name_column_and_reason() {
        use Kind::{Audience as A, Trait as T};
        let cases = [
            (
                "event('Order Completed').median(property('total')) > 1",
                A,
                "column 26: unknown function 'median'",
            ),
            (
                "trait('plan').Exists()",
                A,
                "column 15: unknown function 'Exists' (function names are lower-case: 'exists')",
            ),
            (
                "event('Order Completed').within(parent: 5 days).count() >= 1",
                A,
                "column 33: funnels (within(parent: …)) are not supported in this version",
            ),
            (
                "ALL NOT event('x').count() >= 1",
                A,
                "column 1: ANY/ALL account-level audiences are not supported in this version",
            ),
            (
                "event('Order Completed').mode(property('sku') as array, 2)",
                T,
                "column 47: mode(… as array) is not supported in this version",
            ),
            (
                "trait('x').within_last(2.0 days)",
                A,
                "column 24: within_last(): expected a whole number >= 0 in digits, found '2.0'",
            ),
            (
                "event('Order Completed').count(property('total'))",
                T,
                "column 32: expected ')' (count() takes no argument), found 'property'",
            ),
            (
                "trait('plan').one_of('pro', null)",
                A,
                "column 29: one_of(): expected a value (a literal, literal(…), trait(…)), found 'null'",
            ),
            (
                "not trait('vip') = true",
                A,
                "column 5: NOT must be followed by '(', found 'trait'",
            ),
            (
                "trait('created_at').after_date('yesterday')",
                A,
                "column 32: after_date(): \"yesterday\" is not an RFC 3339 date-time with Z or an offset",
            ),
            (
                "event('x').where(event('y').count() > 1).count() > 1",
                A,
                "column 18: event() cannot be used inside where()",
            ),
            (
                "trait('plan') = property('plan')",
                A,
                "column 17: property() can only be used inside where() or a reducer",
            ),
            (
                "event('x').unique(property('s')).count().count() > 1",
                A,
                "column 42: 'count' cannot follow this value (expected a comparator)",
            ),
            (
                "event('x').within(30 days)",
                A,
                "column 27: expected '.' and a reducer after event(...), found end of definition",
            ),
            (
                "event('x').count()",
                A,
                "column 19: expected a comparator (e.g. '= 1' or '.exists()'), found end of definition",
            ),
            (
                "trait('x') = true",
                T,
                "column 1: a computed trait must be event(...)[.filters].reducer, found 'trait'",
            ),
            (
                "event('x').first(property('p') as string)",
                T,
                "column 32: expected ')' to close first(, found 'as'",
            ),
            (
                "event('x').count() > 1)",
                A,
                "column 23: unexpected ')' after the end of the expression",
            ),
            (
                "",
                A,
                "column 1: unexpected end of definition (expected a comparison)",
            ),
        ];
        for (text, kind, expected) in cases {
            assert_eq!(refused(text, kind), expected, "{text}");
        }
    }

    #[test]
    fn at_most_fifty_comparisons_counting_those_in_where() {
        let inner = vec!["property('a') = 1"; 30].join(" OR ");
        let text = format!(
            "event('x').where({inner}).count() > 1 AND {}",
            vec!["trait('a') = 1"; 20].join(" AND ")
        );
        let error = parse(&text, Kind::Audience).unwrap_err();
        assert_eq!(error.kind(), ParseErrorKind::TooManyComparisons);
        assert!(error.reason().starts_with("too many comparisons (51;"));
        let text = format!("event('x').where({inner}).count() > 1");
        assert!(parse(&text, Kind::Audience).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}trait('a') = 1{}", "(".repeat(100), ")".repeat(100));
        let error = parse(&text, Kind::Audience).unwrap_err();
        assert_eq!(error.kind(), ParseErrorKind::TooDeep);
    }
}
