//! The syntax tree of a definition (`audiences.md` §2), as the parser leaves it: filters of a
//! stream already composed (one window, the `where` conditions, the excluded sources), durations
//! and dates already in milliseconds, every `trait()` with its column for the checks.

use serde_json::Value;

/// What a definition is: an audience (a boolean condition) or a computed trait (a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `audience`: membership, `true` or `false`.
    Audience,
    /// `trait`: a computed trait, `stream.reducer`.
    Trait,
}

/// A parsed definition: an audience's condition or a computed trait's stream and reducer, with
/// the streams it reads (numbered in order of appearance) and its `trait()` references.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// What the definition computes.
    pub body: Body,
    /// Every `event(…)` of the definition; [`Operand::Stream`] indexes this list.
    pub streams: Vec<Stream>,
    /// Every `trait(…)`, in text order (inside `where` included).
    pub references: Vec<TraitRef>,
    /// How many comparisons the definition has, those inside `where` included.
    pub comparisons: usize,
}

/// The top of a definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// An audience: a boolean condition.
    Audience(Expr),
    /// A computed trait: the value of one stream's reducer (an index into [`Query::streams`]).
    Trait(usize),
}

/// A boolean condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// True when any is.
    Or(Vec<Expr>),
    /// True when all are.
    And(Vec<Expr>),
    /// `NOT(…)`.
    Not(Box<Expr>),
    /// One comparison.
    Compare(Box<Comparison>),
}

/// `scalar comparator`, e.g. `trait('plan') = 'pro'`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The value compared.
    pub operand: Operand,
    /// How it is compared.
    pub comparator: Comparator,
}

/// A value in a comparison: what is compared, or a comparator's argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// The value of a stream's reducer (an index into [`Query::streams`]); never an argument.
    Stream(usize),
    /// A literal (`'pro'`, `1`, `true`, or `literal(…)` of one).
    Literal(Value),
    /// `trait('k')`: a definition's value or the profile's trait.
    Trait(TraitRef),
    /// `property(…)` or `context(…)` of the event being filtered (inside `where` only).
    Prop(Prop),
}

/// A `trait('k')` reference and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitRef {
    /// The key (a top-level name, never a path).
    pub key: String,
    /// The 1-based column of `trait`.
    pub column: usize,
}

/// Where a property lives in an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Root {
    /// `property('a.b')`: the event's `properties`.
    Properties,
    /// `context('a.b')`: the event's `context`.
    Context,
}

/// `property('a.b')` or `context('a.b')`: a dotted path in the event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prop {
    /// Which object of the event.
    pub root: Root,
    /// The path's segments (`a.b` → `["a", "b"]`).
    pub path: Vec<String>,
}

/// `event('X')` with its filters and reducer.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// The event name (`Page Viewed` and `Screen Viewed` also match page and screen calls).
    pub event: String,
    /// The time window all `within`/`between` filters leave; `None`: every event counts.
    pub window: Option<Window>,
    /// Every `where(…)` condition; an event counts when all hold.
    pub conditions: Vec<Expr>,
    /// Source ids of every `sources(exclude: …)`.
    pub excluded_sources: Vec<String>,
    /// What is computed over the events that count.
    pub reducer: Reducer,
}

/// A time window relative to `now`: an event at `t` counts when `now − to ≤ t ≤ now − from`
/// (empty when `from > to`). `within(N u)` is `from = 0, to = N u`; several filters intersect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Milliseconds before `now` where the window ends.
    pub from: i64,
    /// Milliseconds before `now` where the window starts.
    pub to: i64,
}

impl Window {
    /// The window both `self` and `other` leave.
    pub fn intersect(self, other: Window) -> Window {
        Window {
            from: self.from.max(other.from),
            to: self.to.min(other.to),
        }
    }

    /// Whether an event at `time` counts at `now`.
    pub fn contains(self, now: i64, time: i64) -> bool {
        now.saturating_sub(self.to) <= time && time <= now.saturating_sub(self.from)
    }
}

/// How a reducer reads its values: `as number` (the default) or `as string`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// Over JSON numbers.
    Number,
    /// Over JSON strings, by code point order.
    String,
}

/// What a stream computes over the events that count.
#[derive(Debug, Clone, PartialEq)]
pub enum Reducer {
    /// `count()`.
    Count,
    /// `sum(p)`.
    Sum(Prop),
    /// `avg(p)`.
    Avg(Prop),
    /// `min(p [as …])`.
    Min(Prop, As),
    /// `max(p [as …])`.
    Max(Prop, As),
    /// `mode(p [as …], d)`: the most frequent text occurring at least `d` times.
    Mode(Prop, u64),
    /// `first(p)`.
    First(Prop),
    /// `last(p)`.
    Last(Prop),
    /// `unique(p)`.
    Unique(Prop),
    /// `unique(p).count()`.
    UniqueCount(Prop),
}

impl Reducer {
    /// The property the reducer reads, if any.
    pub fn prop(&self) -> Option<&Prop> {
        match self {
            Reducer::Count => None,
            Reducer::Sum(p)
            | Reducer::Avg(p)
            | Reducer::Min(p, _)
            | Reducer::Max(p, _)
            | Reducer::Mode(p, _)
            | Reducer::First(p)
            | Reducer::Last(p)
            | Reducer::Unique(p)
            | Reducer::UniqueCount(p) => Some(p),
        }
    }
}

/// How a value is compared (the sugar `=`, `!=`, `>`, … maps onto the named forms).
#[derive(Debug, Clone, PartialEq)]
pub enum Comparator {
    /// `=`, `==`, `.equals(v)`.
    Equals(Operand),
    /// `!=`, `.differs(v)`.
    Differs(Operand),
    /// `>`, `.greater_than(v)`.
    GreaterThan(Operand),
    /// `>=`, `.at_least(v)`.
    AtLeast(Operand),
    /// `<`, `.less_than(v)`.
    LessThan(Operand),
    /// `<=`, `.at_most(v)`.
    AtMost(Operand),
    /// `.exists()`.
    Exists,
    /// `.absent()`.
    Absent,
    /// `.contains(s, …)`.
    Contains(Vec<String>),
    /// `.omits(s)`.
    Omits(String),
    /// `.starts_with(s)`.
    StartsWith(String),
    /// `.ends_with(s)`.
    EndsWith(String),
    /// `.one_of(v, …)`.
    OneOf(Vec<Operand>),
    /// `.before_date(T)`, `T` in Unix milliseconds.
    BeforeDate(i64),
    /// `.after_date(T)`.
    AfterDate(i64),
    /// `.within_last(N u)`, in milliseconds.
    WithinLast(i64),
    /// `.within_next(N u)`.
    WithinNext(i64),
    /// `.before_last(N u)`.
    BeforeLast(i64),
    /// `.after_next(N u)`.
    AfterNext(i64),
}

impl Comparator {
    /// The operands among the comparator's arguments.
    pub fn arguments(&self) -> &[Operand] {
        match self {
            Comparator::Equals(v)
            | Comparator::Differs(v)
            | Comparator::GreaterThan(v)
            | Comparator::AtLeast(v)
            | Comparator::LessThan(v)
            | Comparator::AtMost(v) => std::slice::from_ref(v),
            Comparator::OneOf(values) => values,
            _ => &[],
        }
    }

    /// Whether the comparator's result depends on `now` (the relative date comparators).
    pub fn reads_now(&self) -> bool {
        matches!(
            self,
            Comparator::WithinLast(_)
                | Comparator::WithinNext(_)
                | Comparator::BeforeLast(_)
                | Comparator::AfterNext(_)
        )
    }
}

impl Expr {
    /// Calls `f` on every comparison of the expression (not those inside streams' `where`).
    pub fn for_each_comparison<'a>(&'a self, f: &mut impl FnMut(&'a Comparison)) {
        match self {
            Expr::Or(items) | Expr::And(items) => {
                for item in items {
                    item.for_each_comparison(f);
                }
            }
            Expr::Not(inner) => inner.for_each_comparison(f),
            Expr::Compare(comparison) => f(comparison),
        }
    }

    /// Whether any comparison reads `trait()` or `now` (so the condition's result on an event
    /// can change after the event arrived).
    pub fn is_dynamic(&self) -> bool {
        let mut dynamic = false;
        self.for_each_comparison(&mut |comparison| {
            let reads_trait = std::iter::once(&comparison.operand)
                .chain(comparison.comparator.arguments())
                .any(|operand| matches!(operand, Operand::Trait(_)));
            dynamic |= reads_trait || comparison.comparator.reads_now();
        });
        dynamic
    }
}

impl Stream {
    /// Whether the events that count can change with `now` or with `trait()` values, so the
    /// stream's value cannot be folded as events arrive.
    pub fn is_dynamic(&self) -> bool {
        self.window.is_some() || self.conditions.iter().any(Expr::is_dynamic)
    }

    /// The properties the stream reads: its reducer's, then those of its conditions, each once.
    pub fn props(&self) -> Vec<Prop> {
        let mut props: Vec<Prop> = self.reducer.prop().cloned().into_iter().collect();
        for condition in &self.conditions {
            condition.for_each_comparison(&mut |comparison| {
                let operands =
                    std::iter::once(&comparison.operand).chain(comparison.comparator.arguments());
                for operand in operands {
                    if let Operand::Prop(prop) = operand
                        && !props.contains(prop)
                    {
                        props.push(prop.clone());
                    }
                }
            });
        }
        props
    }
}
