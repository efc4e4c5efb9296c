//! Fuzzes the mapping engine: the input is split into a mapping and an event, both JSON; any
//! mapping must compile or fail cleanly, and any compiled mapping must apply without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (mapping, event) = text.split_once('\u{0}').unwrap_or((text, "{}"));
    let Ok(mapping) = serde_json::from_str::<Value>(mapping) else {
        return;
    };
    let event = serde_json::from_str::<Value>(event).unwrap_or(Value::Null);
    if let Ok(compiled) = junction_mapping::compile(&mapping) {
        let _ = compiled.apply(&event);
    }
});
