//! Fuzzes the trigger parser and evaluator: any text must parse or fail cleanly, and any parsed
//! trigger must evaluate against an event without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(trigger) = junction_trigger::parse(source) {
        let event = json!({
            "type": "identify", "event": "Signed Up", "userId": "u1", "anonymousId": "a1",
            "properties": {"total": 12.5, "plan": "pro", "tags": ["a", "b"], "zero": 0},
            "traits": {"email": "a@example.com", "company": {"id": "c1"}, "vip": true},
            "context": {"ip": "8.8.8.8", "library": {"name": "analytics.js"}}
        });
        let _ = trigger.matches(&event);
        let _ = trigger.matches(&json!({}));
        let _ = junction_trigger::generate(trigger.ast());
    }
});
