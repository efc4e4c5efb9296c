//! Audiences and computed traits (`shared/spec/audiences.md`): the definition language (a
//! subset of Segment's query language), identity resolution into profiles, and every
//! definition's value per profile — from scratch, and incrementally as events arrive and time
//! passes. Pure: no IO, no async.
//!
//! The layout follows the path of a definition and of an event:
//!
//! * text → [`parse`] (`lexer`, `parser`, `ast`) → [`Definitions::compile`] (`check`: keys,
//!   kinds, references, cycles; `key`: the key rule);
//! * event → [`identifiers_of`] and [`Identities::resolve`] (`identity`) → [`Event`] in a
//!   [`Profile`] (`profile`);
//! * values: [`evaluate`] from scratch (`eval`), or a [`ProfileState`] kept up to date
//!   (`state`), both through the same comparisons (`compare`, `scope`, `value`, `datetime`) and
//!   reducers (`reduce`);
//! * [`Engine`] ties identity and state together in memory, and [`run_case`] is the `eval`
//!   format of §5 on top of it.
//!
//! ```
//! use junction_audience::{DefinitionSpec, Definitions, Engine, Limits, parse_rfc3339};
//! use serde_json::json;
//!
//! let specs = [DefinitionSpec {
//!     key: None,
//!     name: Some("Big spender".into()),
//!     kind: json!("audience"),
//!     query: "event('Order Completed').within(30 days).sum(property('total')) >= 100".into(),
//! }];
//! let compiled = Definitions::compile(&specs);
//! assert!(compiled.refused.is_empty());
//!
//! let mut engine = Engine::new(compiled.definitions, Limits::default());
//! engine.ingest(&json!({"type": "track", "event": "Order Completed", "userId": "u1",
//!                       "timestamp": "2026-02-20T10:00:00Z", "properties": {"total": 120}}));
//! let changes = engine.refresh(parse_rfc3339("2026-03-01T00:00:00Z").unwrap());
//! assert_eq!(changes[0].1.key, "big_spender");
//! assert_eq!(changes[0].1.sent(), Some(&json!(true)));
//! ```

mod ast;
mod case;
mod check;
mod compare;
mod datetime;
mod engine;
mod error;
mod eval;
mod identity;
mod key;
mod lexer;
mod parser;
mod profile;
mod reduce;
mod scope;
mod state;
mod value;

pub use ast::{
    As, Body, Comparator, Comparison, Expr, Kind, Operand, Prop, Query, Reducer, Root, Stream,
    TraitRef, Window,
};
pub use case::{Method, run_case, run_case_with};
pub use check::{Compiled, Definition, DefinitionSpec, Definitions, Refusal};
pub use datetime::{DAY_MS, HOUR_MS, parse_rfc3339};
pub use engine::{Engine, feeds_profiles, takes_part};
pub use error::{DefinitionError, ParseError, ParseErrorKind};
pub use eval::evaluate;
pub use identity::{
    EventIdentifiers, IdType, Identifiers, Identities, Limits, ProfileId, Resolution,
    identifiers_of, is_blocked,
};
pub use key::{is_valid_key, key_from_name};
pub use parser::{MAX_COMPARISONS, MAX_NESTING, parse};
pub use profile::{Contribution, Event, PAGE_VIEWED, Profile, SCREEN_VIEWED};
pub use state::{Change, ProfileState};
