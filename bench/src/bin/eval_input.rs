//! `eval-input`: writes the input of `bench/eval.sh` on stdout. `eval-input lines N` writes N
//! `junction eval` lines, each carrying the stock ChartMogul configuration (the sample
//! workspace's settings and both default mappings) and a realistic identify event; `eval-input
//! events N` writes the same N events alone, one per line, for `junction eval --workspace`.

use std::io::{self, BufWriter, Write};

use junction_bench::{SAMPLE_WORKSPACE, identify_event};
use serde_json::{Map, Value, json};

fn usage() -> String {
    "usage: eval-input lines|events COUNT".to_owned()
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, count] = args.as_slice() else {
        return Err(usage());
    };
    let count: usize = count
        .parse()
        .map_err(|_| format!("not a count: {count}\n{}", usage()))?;
    let configuration = match mode.as_str() {
        "lines" => Some(stock_configuration()?),
        "events" => None,
        _ => return Err(usage()),
    };
    let mut out = BufWriter::new(io::stdout().lock());
    for i in 0..count {
        let event = event(i);
        let line = match &configuration {
            Some((settings, subscriptions)) => json!({
                "id": i,
                "settings": settings,
                "subscriptions": subscriptions,
                "event": event,
            }),
            None => event,
        };
        serde_json::to_writer(&mut out, &line).map_err(|err| err.to_string())?;
        out.write_all(b"\n").map_err(|err| err.to_string())?;
    }
    out.flush().map_err(|err| err.to_string())
}

/// The `i`-th event: the realistic identify call as `junction serve` stores it (`sentAt`,
/// `receivedAt` and `originalTimestamp` added by normalisation), with its own message and user.
fn event(i: usize) -> Value {
    let mut event = identify_event(&format!("eval-{i:08}"), i);
    if let Value::Object(map) = &mut event {
        map.insert("sentAt".into(), json!("2024-03-01T12:00:01.000Z"));
        map.insert("receivedAt".into(), json!("2024-03-01T12:00:01.250Z"));
        map.insert(
            "originalTimestamp".into(),
            json!("2024-03-01T11:59:59.750Z"),
        );
    }
    event
}

/// The sample workspace's ChartMogul destination as `junction eval` takes it: its settings and
/// its mappings written as subscriptions.
fn stock_configuration() -> Result<(Value, Vec<Value>), String> {
    let workspace: Value = serde_json::from_str(SAMPLE_WORKSPACE).map_err(|e| e.to_string())?;
    let destination = &workspace["destinations"][0];
    let subscriptions = destination["mappings"]
        .as_array()
        .ok_or("the sample workspace has no mappings")?
        .iter()
        .map(|mapping| {
            let mut subscription = Map::new();
            subscription.insert("partnerAction".into(), mapping["action"].clone());
            subscription.insert("name".into(), mapping["name"].clone());
            subscription.insert("enabled".into(), mapping["enabled"].clone());
            subscription.insert("subscribe".into(), mapping["trigger"].clone());
            subscription.insert("use_defaults".into(), mapping["use_defaults"].clone());
            Value::Object(subscription)
        })
        .collect();
    Ok((destination["settings"].clone(), subscriptions))
}
