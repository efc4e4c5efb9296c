//! One typical identify event (20 traits, nested company) through the default ChartMogul
//! configuration: both triggers, the matching mapping, field validation and the request body.

// criterion_group! generates public functions that cannot carry doc comments.
#![allow(missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use junction_actions::{Settings, Subscription, SubscriptionConfig, registry};
use serde_json::{Value, json};

// The same allocator as the `junction` binary, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn identify_event() -> Value {
    json!({
        "type": "identify",
        "messageId": "ajs-next-1711980000000-4f8b2c1e-8d3a-4b6f-9c2d-1e5f7a9b3c4d",
        "userId": "user-4217",
        "anonymousId": "6f1c9a4e-2b7d-4e3f-8a5c-9d0e1f2a3b4c",
        "timestamp": "2024-03-01T12:00:00.000Z",
        "sentAt": "2024-03-01T12:00:01.000Z",
        "receivedAt": "2024-03-01T12:00:01.250Z",
        "originalTimestamp": "2024-03-01T11:59:59.750Z",
        "context": {
            "ip": "203.0.113.9",
            "library": {"name": "analytics-node", "version": "3.1.0"},
            "locale": "en-US",
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15"
        },
        "integrations": {},
        "traits": {
            "email": "jane.doe@example.com",
            "first_name": "Jane",
            "last_name": "Doe",
            "name": "Jane Doe",
            "title": "CTO",
            "phone": "+1 555 0100",
            "linkedIn": "https://www.linkedin.com/in/janedoe",
            "twitter": "@janedoe",
            "company": {"id": "acme-1", "name": "Acme Inc.", "industry": "Software", "employees": 120},
            "plan": "enterprise",
            "createdAt": "2023-06-15T08:30:00.000Z",
            "logins": 342,
            "verified": true,
            "city": "Berlin",
            "country": "DE",
            "language": "de",
            "timezone": "Europe/Berlin",
            "referrer": "newsletter",
            "avatar": "https://cdn.example.com/a/4217.png",
            "role": "admin"
        }
    })
}

fn default_subscriptions() -> Vec<Subscription> {
    let Ok(registry) = registry() else {
        return Vec::new();
    };
    let Some(chartmogul) = registry.get("actions-chartmogul") else {
        return Vec::new();
    };
    chartmogul
        .actions
        .iter()
        .filter_map(|action| {
            let config: SubscriptionConfig = serde_json::from_value(json!({
                "partnerAction": action.slug,
                "subscribe": action.default_trigger,
            }))
            .ok()?;
            Subscription::compile(chartmogul, &config).ok()
        })
        .collect()
}

fn settings() -> Option<Settings> {
    registry()
        .ok()?
        .get("actions-chartmogul")?
        .validate_settings(&json!({"chartmogul_webhook_url": "https://app.chartmogul.com/api/webhooks/abc?token=t"}))
        .ok()
}

/// Routes one event through every subscription and returns the bodies it would send.
fn route(subscriptions: &[Subscription], settings: &Settings, event: &Value) -> Vec<Vec<u8>> {
    subscriptions
        .iter()
        .filter(|subscription| subscription.matches(event))
        .filter_map(|subscription| subscription.execute(settings, event).ok())
        .map(|request| request.body_bytes())
        .collect()
}

fn pipeline(c: &mut Criterion) {
    let subscriptions = default_subscriptions();
    let (Some(settings), 2) = (settings(), subscriptions.len()) else {
        eprintln!("the default ChartMogul configuration did not compile");
        std::process::exit(1);
    };
    let event = identify_event();
    // The benchmark is worthless if the event is not actually delivered.
    let sent = route(&subscriptions, &settings, &event);
    if sent.len() != 1 {
        eprintln!("expected exactly one request, got {}", sent.len());
        std::process::exit(1);
    }
    c.bench_function("identify_default_chartmogul", |b| {
        b.iter(|| route(black_box(&subscriptions), &settings, black_box(&event)))
    });
}

/// The same work split by stage, to see where the time goes.
fn stages(c: &mut Criterion) {
    let Some(contact) = registry()
        .ok()
        .and_then(|r| r.get("actions-chartmogul"))
        .and_then(|d| d.action("sendContact"))
    else {
        return;
    };
    let event = identify_event();
    let Ok(mapping) = junction_mapping::compile(&Value::Object(contact.default_mapping())) else {
        return;
    };
    let Ok(Some(resolved)) = mapping.apply(&event) else {
        return;
    };
    let Ok(trigger) = junction_trigger::parse(contact.default_trigger) else {
        return;
    };
    c.bench_function("stage_trigger", |b| {
        b.iter(|| trigger.matches(black_box(&event)))
    });
    c.bench_function("stage_mapping", |b| {
        b.iter(|| mapping.apply(black_box(&event)))
    });
    c.bench_function("stage_validation", |b| {
        b.iter(|| contact.schema().process(black_box(resolved.clone())))
    });
    c.bench_function("stage_clone_payload", |b| {
        b.iter(|| black_box(resolved.clone()))
    });
    c.bench_function("stage_body", |b| {
        b.iter(|| serde_json::to_vec(black_box(&resolved)))
    });
}

/// Parsing an event's text into a `Value`: serde_json's own parse and the one ingest and the
/// profile worker use (`junction_event::value_from_str`: containers allocated at their final
/// size).
fn parse(c: &mut Criterion) {
    let text = identify_event().to_string();
    c.bench_function("parse_event_serde_json", |b| {
        b.iter(|| serde_json::from_str::<Value>(black_box(&text)))
    });
    c.bench_function("parse_event_sized", |b| {
        b.iter(|| junction_event::value_from_str(black_box(&text)))
    });
}

criterion_group!(benches, pipeline, stages, parse);
criterion_main!(benches);
