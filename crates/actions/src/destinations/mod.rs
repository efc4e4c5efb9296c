//! The built-in destinations, one module each.

pub mod chartmogul;
