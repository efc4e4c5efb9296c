//! Destinations and their actions: for one event and one destination configuration, decide which
//! subscriptions apply and build exactly the HTTP request each one sends, or say exactly why not.
//!
//! Pure: no IO. Sending requests and storing outcomes belong to the callers (`junction eval`, the
//! router and the delivery engine).

mod definition;
pub mod destinations;
mod error;
mod evaluate;
mod request;
mod subscription;

pub use definition::{
    ActionDefinition, DefinitionError, DestinationDefinition, MappingPreset, PerformInput,
    Registry, Settings, TestAuthentication, registry,
};
pub use error::{ActionError, AuthError, is_retryable_status};
pub use evaluate::{ErrorReport, Evaluation, Outcome, evaluate};
pub use request::{
    FetchError, HttpRequest, USER_AGENT, check_status, normalise_url, reason_phrase,
};
pub use subscription::{Subscription, SubscriptionConfig, SubscriptionError};
