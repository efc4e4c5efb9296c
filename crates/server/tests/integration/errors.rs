//! Every 400 with the problem it names, and batches that mix valid and invalid events.

use reqwest::StatusCode;
use serde_json::json;

use crate::util::TestServer;

#[tokio::test]
async fn malformed_requests_are_400_with_the_problem_named() {
    let server = TestServer::start().await;
    // (path, body, code, field, error)
    type Case<'a> = (&'a str, &'a [u8], &'a str, Option<&'a str>, &'a str);
    let cases: [Case; 6] = [
        (
            "/v1/track",
            b"{\"userId\": ",
            "malformed_json",
            None,
            "malformed JSON: EOF while parsing a value at line 1 column 11",
        ),
        (
            "/v1/batch",
            b"[1, 2]",
            "not_an_object",
            None,
            "request body must be a JSON object, found an array",
        ),
        (
            "/v1/batch",
            b"{\"events\": []}",
            "missing_batch",
            Some("batch"),
            "batch is required",
        ),
        (
            "/v1/batch",
            b"{\"batch\": {}}",
            "wrong_type",
            Some("batch"),
            "batch must be an array, found an object",
        ),
        (
            "/v1/identify",
            b"{\"traits\": {}}",
            "missing_identity",
            None,
            "userId or anonymousId is required",
        ),
        (
            "/v1/track",
            b"{\"userId\": \"u\"}",
            "missing_field",
            Some("event"),
            "event is required for track calls",
        ),
    ];
    for (path, body, code, field, error) in cases {
        let (status, answer) = server.send_raw(path, body.to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {answer}");
        let mut expected =
            json!({"success": false, "code": code, "error": error, "message": error});
        if let Some(field) = field {
            expected["field"] = json!(field);
        }
        assert_eq!(answer, expected, "{path}");
    }

    for (path, field, kind) in [
        ("/v1/group", "groupId", "group"),
        ("/v1/alias", "previousId", "alias"),
    ] {
        let (status, answer) = server.send(path, &json!({"userId": "u"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["field"], field);
        assert_eq!(
            answer["error"],
            format!("{field} is required for {kind} calls")
        );
    }

    let counts = server.state.rejections();
    assert_eq!(counts.count(Some("web"), "missing_field"), 3);
    assert_eq!(counts.count(Some("web"), "malformed_json"), 1);
    assert_eq!(server.state.stats().rejected_requests, 8);
}

#[tokio::test]
async fn a_batch_keeps_its_valid_events_and_says_why_the_others_were_refused() {
    let server = TestServer::start().await;
    let batch = json!({"batch": [
        {"type": "identify", "userId": "u1", "messageId": "mix-0"},
        {"type": "identify", "messageId": "mix-1"},
        {"type": "track", "anonymousId": "a1", "event": "Clicked", "messageId": "mix-2"},
        {"type": "track", "userId": "u2", "messageId": "mix-3"},
        {"type": "purchase", "userId": "u3", "messageId": "mix-4"},
        {"userId": "u4", "messageId": "mix-5"},
        "not an event"
    ]});
    let (status, answer) = server.send("/v1/batch", &batch).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"success": true, "accepted": 2, "rejected": [
            {"index": 1, "code": "missing_identity", "error": "userId or anonymousId is required"},
            {"index": 3, "code": "missing_field", "field": "event",
             "error": "event is required for track calls"},
            {"index": 4, "code": "unknown_type", "field": "type",
             "error": "unknown type \"purchase\", expected one of identify, track, page, screen, group, alias"},
            {"index": 5, "code": "missing_type", "field": "type", "error": "type is required"},
            {"index": 6, "code": "not_an_object",
             "error": "event must be a JSON object, found a string"}
        ]})
    );
    server.record("mix-0").await;
    server.record("mix-2").await;
    for refused in ["mix-1", "mix-3", "mix-4", "mix-5"] {
        assert!(
            server.records_of("web", refused).await.is_empty(),
            "{refused}"
        );
    }

    let rejections = server.state.rejections();
    assert_eq!(rejections.count(Some("web"), "missing_identity"), 1);
    assert_eq!(rejections.count(Some("web"), "unknown_type"), 1);
    let recent = rejections.recent();
    assert_eq!(recent.len(), 5);
    assert_eq!(recent[0].index, Some(1));
    assert_eq!(recent[0].path, "/v1/batch");
    assert_eq!(server.state.stats().rejected_events, 5);
    assert_eq!(server.state.stats().stored, 2);
}

#[tokio::test]
async fn a_batch_without_any_valid_event_is_400_and_an_empty_one_is_200() {
    let server = TestServer::start().await;
    let batch = json!({"batch": [{"type": "track", "userId": "u", "messageId": "none-0"}]});
    let (status, answer) = server.send("/v1/batch", &batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer,
        json!({"success": false, "code": "no_valid_events",
               "error": "no event in the batch was accepted", "message": "no event in the batch was accepted", "accepted": 0,
               "rejected": [{"index": 0, "code": "missing_field", "field": "event",
                             "error": "event is required for track calls"}]})
    );

    let (status, answer) = server.send("/v1/batch", &json!({"batch": []})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"success": true, "accepted": 0, "rejected": []})
    );
}
