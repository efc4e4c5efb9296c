//! The `junction` binary.

fn main() {}
