//! Compliance over real HTTP (docs/compliance.md): X's event shapes go through the ingest
//! API beside posts with a per-line error for each malformed one; the compliance firehose
//! carries them in 8 partitions (and no posts), no other stream carries them; what they
//! take away is no longer sent by backfill or recovery, also after a restart; withheld
//! posts are sent marked with their countries; and posts
//! without edit metadata are delivered with the metadata X gives an unedited post.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_model::sampling::partition;
use sluice_server::Settings;
use sluice_testkit::{TestServer, error_message, error_response, id_of, post};

const COMPLIANCE: &str = "/stream/compliance/accounts/acme/publishers/twitter/prod.json";
const POWERTRACK: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";
const FIREHOSE: &str = "/stream/firehose/accounts/acme/publishers/twitter/prod.json";
const RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";

/// Short heartbeats: a heartbeat after the last message proves nothing more is queued.
fn quick() -> Settings {
    Settings {
        heartbeat: Duration::from_millis(300),
        ..Settings::default()
    }
}

/// Account `acme`, user `alice`, and streams labelled `prod` of each product given.
async fn started(products: &[&str], server: TestServer) -> TestServer {
    server.provision(products[0]).await;
    for product in &products[1..] {
        let (status, body) = server
            .admin(
                Method::PUT,
                "/admin/accounts/acme/streams/prod",
                json!({ "product": product }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    server
}

async fn add_rule(server: &TestServer, value: &str) {
    let response = server
        .http
        .post(format!("{}{RULES}", server.base))
        .basic_auth("alice", Some("secret"))
        .json(&json!({"rules": [{"value": value}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

fn delete(post_id: u64, user_id: u64) -> String {
    json!({"delete": {"status": {"id": post_id, "id_str": post_id.to_string(),
        "user_id": user_id, "user_id_str": user_id.to_string()}, "timestamp_ms": "1432228155593"}})
    .to_string()
}

fn user_event(kind: &str, user_id: u64) -> String {
    json!({ kind: {"id": user_id, "timestamp_ms": "1432228153548"} }).to_string()
}

/// `post` by user `user`, with a location.
fn located_post(id: u64, user: u64, text: &str) -> String {
    let mut value: Value = serde_json::from_str(&post(id, text)).unwrap();
    value["user"] = json!({"id": user, "id_str": user.to_string(), "screen_name": "u"});
    value["place"] = json!({"id": "01", "full_name": "Paris, France", "country_code": "FR"});
    value["coordinates"] = json!({"type": "Point", "coordinates": [2.35, 48.85]});
    value["geo"] = json!({"type": "Point", "coordinates": [48.85, 2.35]});
    value.to_string()
}

/// What a PowerTrack connection asking for a minute of backfill gets before its first
/// heartbeat.
async fn backfilled(server: &TestServer) -> Vec<Value> {
    let mut client = server
        .gnip_connect(&format!("{POWERTRACK}?backfillMinutes=1"))
        .await;
    client.until_heartbeat().await
}

/// Every message until a heartbeat, per partition of the compliance firehose.
async fn compliance_partitions(server: &TestServer, query: &str) -> BTreeMap<u32, Vec<Value>> {
    let mut clients = Vec::new();
    for p in 1..=8u32 {
        clients.push((
            p,
            server
                .gnip_connect(&format!("{COMPLIANCE}?partition={p}{query}"))
                .await,
        ));
    }
    let mut got = BTreeMap::new();
    for (p, mut client) in clients {
        got.insert(p, client.until_heartbeat().await);
    }
    got
}

#[tokio::test]
async fn events_go_through_ingest_to_the_compliance_firehose_only() {
    let server = started(
        &["compliance", "powertrack", "firehose"],
        TestServer::start(quick()).await,
    )
    .await;
    add_rule(&server, "hello").await;
    let mut powertrack = server.gnip_connect(POWERTRACK).await;
    let mut firehose = Vec::new();
    for p in 1..=20 {
        firehose.push(
            server
                .gnip_connect(&format!("{FIREHOSE}?partition={p}"))
                .await,
        );
    }
    let mut partitions = Vec::new();
    for p in 1..=8u32 {
        partitions.push(
            server
                .gnip_connect(&format!("{COMPLIANCE}?partition={p}"))
                .await,
        );
    }

    let events = [
        delete(1_000_001, 77),
        user_event("user_protect", 78),
        json!({"tweet_edit": {"id": "1557445923210514432", "initial_tweet_id": "1557433858676740098",
            "edit_tweet_ids": ["1557433858676740098", "1557445923210514432"],
            "timestamp_ms": "1660155761384"}})
        .to_string(),
        json!({"user_withheld": {"user": {"id": 79, "id_str": "79"},
            "withheld_in_countries": ["XY"], "timestampMs": "2014-08-27T23:49:41.839+00:00"}})
        .to_string(),
    ];
    let body = [
        post(1_000_001, "hello there"),
        events[0].clone(),
        r#"{"delete":{"status":{"id":"x"},"timestamp_ms":"1"}}"#.to_owned(),
        events[1].clone(),
        r#"{"user_suspend":{"timestamp_ms":"1"}}"#.to_owned(),
        events[2].clone(),
        events[3].clone(),
        r#"{"scrub_geo":{"user_id":1,"timestamp_ms":"1","extra":1},"more":2}"#.to_owned(),
    ]
    .join("\n");
    let answer = server.ingest(&body).await;
    assert_eq!(answer["accepted"], 5, "{answer}");
    assert_eq!(
        answer["rejected"],
        json!([
            {"line": 3, "error": "delete event: status.id is not an id"},
            {"line": 5, "error": "user_suspend event: id is missing"},
            {"line": 8, "error": "scrub_geo event: the event's object must be its only key (also found [\"more\"])"},
        ]),
        "{answer}"
    );

    // Each event reaches the partition of its post (or user), as ingested.
    let routing = [1_000_001, 78, 1_557_445_923_210_514_432, 79];
    let mut expected: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
    for (event, id) in events.iter().zip(routing) {
        expected
            .entry(partition(id, 8))
            .or_default()
            .push(serde_json::from_str(event).unwrap());
    }
    for (p, mut client) in (1..=8u32).zip(partitions) {
        let got = client.until_heartbeat().await;
        assert_eq!(
            got,
            expected.remove(&p).unwrap_or_default(),
            "partition {p}"
        );
    }
    // The posts streams carry the post and nothing else.
    let matched = powertrack.until_heartbeat().await;
    assert_eq!(matched.iter().map(id_of).collect::<Vec<_>>(), [1_000_001]);
    let mut firehose_posts = Vec::new();
    for mut client in firehose {
        firehose_posts.extend(client.until_heartbeat().await);
    }
    assert_eq!(
        firehose_posts.iter().map(id_of).collect::<Vec<_>>(),
        [1_000_001]
    );

    // Backfill on the compliance firehose finds the events again.
    let backfilled = compliance_partitions(&server, "&backfillMinutes=1").await;
    assert_eq!(backfilled.values().map(Vec::len).sum::<usize>(), 4);
    server.stop().await;
}

#[tokio::test]
async fn the_compliance_firehose_is_provisioned_and_partitioned_like_the_others() {
    let server = TestServer::start(quick()).await;
    let stream = server.provision("compliance").await;
    assert_eq!(stream["product"], "compliance", "{stream}");
    assert!(
        stream.to_string().contains(COMPLIANCE),
        "the stream's URL is listed: {stream}"
    );
    for bad in ["", "?partition=0", "?partition=9", "?partition=x"] {
        let response = server
            .gnip_get(&format!("{COMPLIANCE}{bad}"))
            .send()
            .await
            .unwrap();
        let (status, body) = error_response(response).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{bad}: {body}");
        assert!(error_message(&body).contains('8'), "{bad}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn deleted_posts_and_held_users_are_not_backfilled_and_scrub_geo_removes_location() {
    let server = started(&["powertrack"], TestServer::start(quick()).await).await;
    add_rule(&server, "hello").await;
    let posts = [
        located_post(2_000_001, 50, "hello one"),
        located_post(2_000_002, 50, "hello two"),
        located_post(2_000_003, 51, "hello three"),
        located_post(2_000_004, 52, "hello four"),
    ];
    server.ingest(&posts.join("\n")).await;
    let events = [
        delete(2_000_001, 50),
        user_event("user_suspend", 52),
        json!({"scrub_geo": {"user_id": 51, "user_id_str": "51", "up_to_status_id": 2_000_003,
            "up_to_status_id_str": "2000003", "timestamp_ms": "1432228180345"}})
        .to_string(),
    ];
    let answer = server.ingest(&events.join("\n")).await;
    assert_eq!(answer["accepted"], 3, "{answer}");

    let got = backfilled(&server).await;
    assert_eq!(
        got.iter().map(id_of).collect::<Vec<_>>(),
        [2_000_002, 2_000_003],
        "the deleted post and the suspended user's are left out"
    );
    assert_eq!(got[0]["place"]["full_name"], "Paris, France");
    let scrubbed = &got[1];
    assert!(
        scrubbed["place"].is_null()
            && scrubbed["coordinates"].is_null()
            && scrubbed["geo"].is_null(),
        "{scrubbed}"
    );
    assert_eq!(scrubbed["text"], "hello three");
    assert_eq!(scrubbed["matching_rules"][0]["tag"], Value::Null);

    // Lifting the suspension lets the user's posts back in; a delete is for good.
    server.ingest(&user_event("user_unsuspend", 52)).await;
    let got = backfilled(&server).await;
    assert_eq!(
        got.iter().map(id_of).collect::<Vec<_>>(),
        [2_000_002, 2_000_003, 2_000_004]
    );
    server.stop().await;
}

#[tokio::test]
async fn withheld_events_mark_backfilled_posts_in_native_and_v2_shapes() {
    let server = started(&["powertrack"], TestServer::start(quick()).await).await;
    add_rule(&server, "hello").await;
    let posts = [
        located_post(4_000_001, 60, "hello withheld post"),
        located_post(4_000_002, 61, "hello withheld user"),
        located_post(4_000_003, 62, "hello plain"),
    ];
    server.ingest(&posts.join("\n")).await;
    let events = [
        json!({"status_withheld": {"status": {"id": 4_000_001, "id_str": "4000001",
            "user_id": 60, "user_id_str": "60"}, "withheld_in_countries": ["DE", "FR"],
            "timestamp_ms": "1432228155593"}})
        .to_string(),
        json!({"user_withheld": {"user": {"id": 61, "id_str": "61"},
            "withheld_in_countries": ["TR"], "timestampMs": "2014-08-27T23:49:41.839+00:00"}})
        .to_string(),
    ];
    let answer = server.ingest(&events.join("\n")).await;
    assert_eq!(answer["accepted"], 2, "{answer}");

    let got = backfilled(&server).await;
    assert_eq!(
        got.iter().map(id_of).collect::<Vec<_>>(),
        [4_000_001, 4_000_002, 4_000_003]
    );
    assert_eq!(got[0]["withheld_in_countries"], json!(["DE", "FR"]));
    assert!(got[0]["user"].get("withheld_in_countries").is_none());
    assert_eq!(got[1]["user"]["withheld_in_countries"], json!(["TR"]));
    assert!(got[1].get("withheld_in_countries").is_none());
    assert!(got[2].get("withheld_in_countries").is_none());
    assert_eq!(got[1]["matching_rules"][0]["tag"], Value::Null);

    // The v2 filtered stream's backfill says the same in v2's `withheld`.
    let app = server.new_app("acme", "v2").await;
    let token = app["bearer_token"].as_str().unwrap();
    let rules = server
        .http
        .post(format!("{}/2/tweets/search/stream/rules", server.base))
        .bearer_auth(token)
        .json(&json!({"add": [{"value": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(rules.status(), StatusCode::OK);
    let response = server
        .http
        .get(format!(
            "{}/2/tweets/search/stream?backfill_minutes=1&tweet.fields=withheld\
             &expansions=author_id&user.fields=withheld",
            server.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let got = sluice_testkit::StreamClient::new(response)
        .until_heartbeat()
        .await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(
        got[0]["data"]["withheld"],
        json!({"copyright": false, "country_codes": ["DE", "FR"], "scope": "tweet"})
    );
    assert_eq!(
        got[1]["includes"]["users"][0]["withheld"],
        json!({"country_codes": ["TR"], "scope": "user"})
    );
    assert!(got[2]["data"].get("withheld").is_none(), "{}", got[2]);
    server.stop().await;
}

#[tokio::test]
async fn a_delete_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = started(
        &["powertrack"],
        TestServer::start_in(dir.path(), quick()).await,
    )
    .await;
    add_rule(&server, "hello").await;
    server
        .ingest(&[post(3_000_001, "hello a"), post(3_000_002, "hello b")].join("\n"))
        .await;
    server.ingest(&delete(3_000_002, 12)).await;
    server.stop().await;

    let server = TestServer::start_in(dir.path(), quick()).await;
    let mut client = server
        .gnip_connect(&format!("{POWERTRACK}?backfillMinutes=5"))
        .await;
    let got = client.until_heartbeat().await;
    assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), [3_000_001]);
    server.stop().await;
}

#[tokio::test]
async fn posts_are_delivered_with_edit_metadata_their_own_or_an_unedited_posts() {
    let server = started(&["powertrack"], TestServer::start(quick()).await).await;
    add_rule(&server, "hello").await;
    let mut client = server.gnip_connect(POWERTRACK).await;
    let mut edited: Value = serde_json::from_str(&post(4_000_002, "hello again")).unwrap();
    edited["edit_history"] =
        json!({"initial_tweet_id": "4000001", "edit_tweet_ids": ["4000001", "4000002"]});
    edited["edit_controls"] =
        json!({"edits_remaining": 4, "editable_until_ms": 1_539_204_564_000u64});
    edited["editable"] = json!(true);
    server
        .ingest(&[post(4_000_001, "hello"), edited.to_string()].join("\n"))
        .await;
    let got = client.until_heartbeat().await;
    assert_eq!(got.len(), 2);
    // Created Wed Oct 10 20:19:24 UTC 2018: editable for 30 minutes after.
    assert_eq!(
        got[0]["edit_history"],
        json!({"initial_tweet_id": "4000001", "edit_tweet_ids": ["4000001"]})
    );
    assert_eq!(
        got[0]["edit_controls"],
        json!({"edits_remaining": 5, "editable_until_ms": 1_539_202_764_000u64 + 1_800_000})
    );
    assert_eq!(got[0]["editable"], true);
    // A later version is a post of its own, with its producer's metadata as it came.
    for key in ["edit_history", "edit_controls", "editable"] {
        assert_eq!(got[1][key], edited[key], "{key}");
    }
    server.stop().await;
}
