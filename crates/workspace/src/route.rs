//! Routing one event through a snapshot: for each enabled destination connected to its source,
//! the `integrations` object, then every enabled mapping. Every (destination, mapping) outcome is
//! returned, so that every fate can be stored and queried.

use junction_actions::{ActionError, HttpRequest};
use junction_store::{DiscardReason, JobUrl, NewDiscard, NewJob};
use serde_json::Value;

use crate::snapshot::{Destination, Snapshot, Source};

/// What routing decided for one destination, or one of its mappings.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteOutcome {
    /// A mapping matched and built a request: a delivery job.
    Job(RoutedJob),
    /// Nothing is sent, and why: the integrations object excluded the destination (no mapping
    /// concerned), a trigger did not match, or the matched mapping failed for this event.
    Discard(NewDiscard),
}

/// A request a mapping built for an event, ready to become a delivery job.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedJob {
    /// The destination instance.
    pub destination_id: String,
    /// The mapping that built it.
    pub mapping_id: String,
    /// The delivery lane: see [`endpoint_key`].
    pub endpoint: String,
    /// The exact request. Its URL may carry a secret: never log it.
    pub request: HttpRequest,
}

impl RoutedJob {
    /// The job as the store takes it: headers in order, body as the bytes sent on the wire.
    pub fn into_new_job(self) -> NewJob {
        let body = self.request.body_bytes();
        NewJob {
            destination_id: self.destination_id,
            subscription_id: self.mapping_id,
            endpoint: self.endpoint,
            method: self.request.method,
            url: match self.request.url_setting {
                Some(key) => JobUrl::Setting(key.to_owned()),
                None => JobUrl::Fixed(self.request.url),
            },
            headers: self.request.headers.into_iter().collect(),
            body,
        }
    }
}

/// Routes a normalised event (a JSON object) sent to `source`. Outcomes come in workspace order:
/// destinations, then their mappings. A destination the `integrations` object excludes yields
/// one discard and runs no mapping; disabled destinations and mappings yield nothing.
pub fn route(snapshot: &Snapshot, source: &Source, event: &Value) -> Vec<RouteOutcome> {
    let mut outcomes = Vec::new();
    for destination in snapshot.destinations_of(source) {
        route_destination(destination, event, &mut outcomes);
    }
    outcomes
}

/// Routes an event to one destination only, whatever sources it is connected to: how an
/// audience sync reaches the destination it is connected to. Nothing when that destination does
/// not exist or is disabled.
pub fn route_to(snapshot: &Snapshot, destination_id: &str, event: &Value) -> Vec<RouteOutcome> {
    let mut outcomes = Vec::new();
    if let Some(destination) = snapshot.destination(destination_id)
        && destination.enabled()
    {
        route_destination(destination, event, &mut outcomes);
    }
    outcomes
}

fn route_destination(destination: &Destination, event: &Value, outcomes: &mut Vec<RouteOutcome>) {
    let definition = destination.definition();
    if !definition.accepts_integrations(destination.id(), event.get("integrations")) {
        outcomes.push(RouteOutcome::Discard(NewDiscard {
            destination_id: destination.id().to_owned(),
            subscription_id: None,
            reason: DiscardReason::IntegrationsFiltered,
            message: format!(
                "the event's integrations object excludes \"{}\"",
                definition.name
            ),
        }));
        return;
    }
    for mapping in destination.mappings() {
        let subscription = mapping.subscription();
        if !subscription.enabled {
            continue;
        }
        let discard = |reason, message| {
            RouteOutcome::Discard(NewDiscard {
                destination_id: destination.id().to_owned(),
                subscription_id: Some(mapping.id().to_owned()),
                reason,
                message,
            })
        };
        if !subscription.matches(event) {
            let message = format!("trigger did not match: {}", subscription.trigger().source());
            outcomes.push(discard(DiscardReason::NotMatched, message));
            continue;
        }
        let outcome = match subscription.execute(destination.settings(), event) {
            Ok(request) => RouteOutcome::Job(RoutedJob {
                destination_id: destination.id().to_owned(),
                mapping_id: mapping.id().to_owned(),
                endpoint: endpoint_key(destination.id(), &request.url),
                request,
            }),
            Err(err) => discard(discard_reason(&err), err.to_string()),
        };
        outcomes.push(outcome);
    }
}

/// Why a stored event could not be mapped again for a replay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemapError {
    /// The job's destination is no longer configured.
    #[error("destination \"{0}\" is no longer configured")]
    UnknownDestination(String),
    /// The job's mapping is no longer configured.
    #[error("mapping \"{mapping}\" of destination \"{destination}\" is no longer configured")]
    UnknownMapping {
        /// The destination id.
        destination: String,
        /// The mapping id.
        mapping: String,
    },
    /// The mapping as it is now fails for this event (same messages as routing's discards).
    #[error("{0}")]
    Action(#[from] ActionError),
}

/// Maps a stored event again through one mapping as it is now, for a re-mapped replay (the
/// fix-the-mapping-then-redrive workflow). The trigger is not consulted: the operator chose this
/// event for this mapping. Disabled destinations and mappings still map, for the same reason.
pub fn remap(
    snapshot: &Snapshot,
    destination_id: &str,
    mapping_id: &str,
    event: &Value,
) -> Result<RoutedJob, RemapError> {
    let destination = snapshot
        .destination(destination_id)
        .ok_or_else(|| RemapError::UnknownDestination(destination_id.to_owned()))?;
    let mapping = destination
        .mapping(mapping_id)
        .ok_or_else(|| RemapError::UnknownMapping {
            destination: destination_id.to_owned(),
            mapping: mapping_id.to_owned(),
        })?;
    let request = mapping
        .subscription()
        .execute(destination.settings(), event)?;
    Ok(RoutedJob {
        destination_id: destination_id.to_owned(),
        mapping_id: mapping_id.to_owned(),
        endpoint: endpoint_key(destination_id, &request.url),
        request,
    })
}

fn discard_reason(err: &ActionError) -> DiscardReason {
    match err {
        ActionError::Mapping(_) => DiscardReason::Mapping,
        ActionError::Schema(_) => DiscardReason::Schema,
        ActionError::Payload { .. } => DiscardReason::Payload,
        // `Http` comes from a response, and routing sends nothing; should an action ever report
        // one while building, it is a failure of the request as a whole, like `Fetch`.
        ActionError::Fetch(_) | ActionError::Http { .. } => DiscardReason::Fetch,
    }
}

/// The delivery lane key of a request: `destination id|host[:port]`. One lane per destination
/// endpoint, so that one slow endpoint never delays another. Credentials in the URL's authority
/// are left out (the key is shown and logged); the path and query, which carry ChartMogul's
/// token, never take part.
pub fn endpoint_key(destination_id: &str, url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{destination_id}|{host}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::WorkspaceConfig;

    const WEBHOOK: &str = "https://chartmogul.example/api/webhooks/abc?token=secret";

    /// One source `web`, one ChartMogul destination with both default mappings, plus whatever
    /// `tweak` changes.
    fn snapshot_with(tweak: impl FnOnce(&mut Value)) -> Snapshot {
        let mut config = json!({
            "sources": [{"id": "web", "name": "Web", "write_keys": ["wk_web"]},
                        {"id": "ios", "write_keys": ["wk_ios"]}],
            "destinations": [{
                "id": "chartmogul", "name": "ChartMogul", "type": "actions-chartmogul",
                "settings": {"chartmogul_webhook_url": WEBHOOK},
                "sources": ["web"],
                "mappings": [
                    {"id": "contacts", "action": "sendContact", "name": "Send Contact",
                     "trigger": "type = \"identify\""},
                    {"id": "customers", "action": "sendCustomer", "name": "Send Customer",
                     "trigger": "type = \"group\""}
                ]
            }]
        });
        tweak(&mut config);
        let config = WorkspaceConfig::from_document(config).unwrap();
        Snapshot::compile(config).unwrap()
    }

    fn identify() -> Value {
        json!({
            "type": "identify", "userId": "user-42", "messageId": "msg-1",
            "timestamp": "2024-03-01T12:00:00.000Z", "sentAt": "2024-03-01T12:00:01.000Z",
            "receivedAt": "2024-03-01T12:00:01.000Z",
            "traits": {"email": "jane@example.com", "name": "Jane",
                       "company": {"id": "acme-1", "name": "Acme"}}
        })
    }

    fn group() -> Value {
        json!({
            "type": "group", "userId": "user-42", "groupId": "acme-1", "messageId": "msg-2",
            "timestamp": "2024-03-01T12:00:00.000Z", "sentAt": "2024-03-01T12:00:01.000Z",
            "traits": {"name": "Acme", "plan": "pro"}
        })
    }

    fn route_web(snapshot: &Snapshot, event: &Value) -> Vec<RouteOutcome> {
        let source = snapshot.source_for_write_key("wk_web").unwrap();
        route(snapshot, source, event)
    }

    fn job(outcome: &RouteOutcome) -> &RoutedJob {
        match outcome {
            RouteOutcome::Job(job) => job,
            RouteOutcome::Discard(discard) => panic!("expected a job, got {discard:?}"),
        }
    }

    fn discard(outcome: &RouteOutcome) -> &NewDiscard {
        match outcome {
            RouteOutcome::Discard(discard) => discard,
            RouteOutcome::Job(job) => panic!("expected a discard, got {job:?}"),
        }
    }

    #[test]
    fn identify_becomes_a_contact_and_a_not_matched_customer() {
        let snapshot = snapshot_with(|_| {});
        let outcomes = route_web(&snapshot, &identify());
        assert_eq!(outcomes.len(), 2);

        let contact = job(&outcomes[0]);
        assert_eq!(contact.destination_id, "chartmogul");
        assert_eq!(contact.mapping_id, "contacts");
        assert_eq!(contact.endpoint, "chartmogul|chartmogul.example");
        assert_eq!(contact.request.method, "POST");
        assert_eq!(contact.request.url, WEBHOOK);
        assert_eq!(
            contact.request.body,
            json!({"type": "Send Contact", "message_id": "msg-1",
                   "timestamp": "2024-03-01T12:00:00.000Z",
                   "sent_at": "2024-03-01T12:00:01.000Z", "user_id": "user-42",
                   "email": "jane@example.com", "name": "Jane",
                   "company": {"id": "acme-1", "name": "Acme"}})
        );

        let customer = discard(&outcomes[1]);
        assert_eq!(customer.subscription_id.as_deref(), Some("customers"));
        assert_eq!(customer.reason, DiscardReason::NotMatched);
        assert_eq!(customer.message, "trigger did not match: type = \"group\"");
    }

    #[test]
    fn group_becomes_a_customer() {
        let snapshot = snapshot_with(|_| {});
        let outcomes = route_web(&snapshot, &group());
        assert_eq!(discard(&outcomes[0]).reason, DiscardReason::NotMatched);
        let customer = job(&outcomes[1]);
        assert_eq!(customer.mapping_id, "customers");
        assert_eq!(customer.request.body["type"], "Send Customer");
        assert_eq!(customer.request.body["group_id"], "acme-1");
        assert_eq!(customer.request.body["name"], "Acme");

        let new_job = customer.clone().into_new_job();
        assert_eq!(
            new_job.headers,
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("user-agent".to_owned(), "Segment (Actions)".to_owned())
            ]
        );
        let body: Value = serde_json::from_slice(&new_job.body).unwrap();
        assert_eq!(body, customer.request.body);
    }

    #[test]
    fn the_integrations_object_decides_first() {
        let snapshot = snapshot_with(|_| {});
        let mut event = identify();

        event["integrations"] = json!({"All": false, "ChartMogul": true});
        let outcomes = route_web(&snapshot, &event);
        assert_eq!(job(&outcomes[0]).mapping_id, "contacts");

        event["integrations"] = json!({"All": false, "Chart Mogul": {"some": "option"}});
        assert!(matches!(
            route_web(&snapshot, &event)[0],
            RouteOutcome::Job(_)
        ));

        for integrations in [json!({"ChartMogul": false}), json!({"All": false})] {
            event["integrations"] = integrations;
            let outcomes = route_web(&snapshot, &event);
            assert_eq!(
                outcomes.len(),
                1,
                "one discard for the destination, no mapping run"
            );
            let filtered = discard(&outcomes[0]);
            assert_eq!(filtered.reason, DiscardReason::IntegrationsFiltered);
            assert_eq!(filtered.subscription_id, None);
            assert_eq!(
                filtered.message,
                "the event's integrations object excludes \"ChartMogul\""
            );
        }
    }

    #[test]
    fn failures_are_discards_with_their_reason_and_message() {
        let snapshot = snapshot_with(|config| {
            config["destinations"][0]["mappings"][0]["mapping"] =
                json!({"linked_in": {"@path": "$.traits.linkedIn"}});
        });
        // Nothing of interest beyond the ids: the action's own rule.
        let mut event = identify();
        event["traits"] = json!({});
        let outcomes = route_web(&snapshot, &event);
        let payload = discard(&outcomes[0]);
        assert_eq!(payload.reason, DiscardReason::Payload);
        assert_eq!(
            payload.message,
            "The event contains no information of interest to Chartmogul."
        );

        // A value the field schema refuses.
        event["traits"] = json!({"linkedIn": "not a uri", "email": "jane@example.com"});
        let outcomes = route_web(&snapshot, &event);
        let schema = discard(&outcomes[0]);
        assert_eq!(schema.reason, DiscardReason::Schema);
        assert_eq!(
            schema.message,
            "LinkedIn must be a valid URI string but it was not."
        );
    }

    #[test]
    fn disabled_parts_and_unconnected_sources_record_nothing() {
        let snapshot = snapshot_with(|config| {
            config["destinations"][0]["mappings"][1]["enabled"] = json!(false);
        });
        let outcomes = route_web(&snapshot, &identify());
        assert_eq!(outcomes.len(), 1);

        let ios = snapshot.source_for_write_key("wk_ios").unwrap();
        assert_eq!(route(&snapshot, ios, &identify()), Vec::new());

        let snapshot = snapshot_with(|config| {
            config["destinations"][0]["enabled"] = json!(false);
        });
        assert_eq!(route_web(&snapshot, &identify()), Vec::new());
    }

    #[test]
    fn lane_keys_name_the_destination_and_host_only() {
        assert_eq!(
            endpoint_key("cm", "https://h.example:8443/wh/x?token=1"),
            "cm|h.example:8443"
        );
        assert_eq!(
            endpoint_key("cm", "http://user:pw@h.example/"),
            "cm|h.example"
        );
        assert_eq!(endpoint_key("cm", "https://h.example"), "cm|h.example");
    }

    #[test]
    fn remap_runs_the_mapping_as_it_is_now_without_the_trigger() {
        let snapshot = snapshot_with(|config| {
            config["destinations"][0]["mappings"][0]["mapping"] =
                json!({"custom_attributes": {"plan": {"@literal": "fixed"}}});
            config["destinations"][0]["mappings"][0]["enabled"] = json!(false);
        });
        // A group event through the contact mapping: the trigger is not consulted.
        let job = remap(&snapshot, "chartmogul", "contacts", &identify()).unwrap();
        assert_eq!(job.mapping_id, "contacts");
        assert_eq!(job.endpoint, "chartmogul|chartmogul.example");
        assert_eq!(
            job.request.body["custom_attributes"],
            json!({"plan": "fixed"})
        );

        let gone = remap(&snapshot, "nope", "contacts", &identify()).unwrap_err();
        assert_eq!(
            gone.to_string(),
            "destination \"nope\" is no longer configured"
        );
        let gone = remap(&snapshot, "chartmogul", "nope", &identify()).unwrap_err();
        assert_eq!(
            gone.to_string(),
            "mapping \"nope\" of destination \"chartmogul\" is no longer configured"
        );
        let failing = remap(&snapshot, "chartmogul", "customers", &identify()).unwrap_err();
        assert!(matches!(failing, RemapError::Action(_)), "{failing}");
    }
}
