//! Converts the whole Jetstream fixture (tests/fixtures/jetstream.ndjson: every facet and
//! embed kind, replies, quotes, deletes, identity and account events, another collection)
//! and checks what each event became. The jetstream consumer's fake server replays the
//! same file.

use serde_json::Value;
use sluice_bluesky::{Converted, Converter, Output, post_id, user_id};
use sluice_model::compliance::{EventKind, parse_event};

const FIXTURE: &str = include_str!("fixtures/jetstream.ndjson");
const ALICE: &str = "did:plc:4qzn7cxlmx2bzvefqkhcqo3y";
const BOB: &str = "did:plc:ragtjsm2j2vknwkz3zp4oxrd";
const CAROL: &str = "did:plc:vwzwgnygau7ed7b7wt5ux7y2";

/// What each fixture line became: the post as JSON, a delete's id, or nothing.
#[derive(Debug)]
enum Got {
    Post(Value),
    Delete(u64),
    Nothing,
}

/// Converts every line in order with one converter, checking every line produced as the
/// ingest API would.
fn convert_fixture() -> Vec<Got> {
    let mut converter = Converter::new();
    FIXTURE
        .lines()
        .map(|line| {
            let Converted { time_us, output } = converter.convert(line.as_bytes()).expect(line);
            let event: Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                Some(time_us),
                event["time_us"].as_u64(),
                "the cursor passes through"
            );
            match output {
                Output::Post { id, line } => {
                    let post = sluice_model::check_line(&line).expect("ingest accepts the post");
                    assert_eq!(post.id(), Some(id));
                    Got::Post(serde_json::from_slice(&line).unwrap())
                }
                Output::Delete { id, line } => {
                    let event = parse_event(&line).expect("ingest accepts the delete");
                    assert_eq!(event.kind, EventKind::Delete);
                    assert_eq!(event.status_id, Some(id));
                    Got::Delete(id)
                }
                Output::Nothing => Got::Nothing,
            }
        })
        .collect()
}

fn post(got: &[Got], line: usize) -> &Value {
    match &got[line - 1] {
        Got::Post(post) => post,
        other => panic!("line {line}: {other:?}"),
    }
}

fn rkey(line: usize) -> String {
    let event: Value = serde_json::from_str(FIXTURE.lines().nth(line - 1).unwrap()).unwrap();
    event["commit"]["rkey"].as_str().unwrap().to_owned()
}

/// The characters of `text` at X's code-point `indices`.
fn at(text: &str, indices: &Value) -> String {
    let (start, end) = (indices[0].as_u64().unwrap(), indices[1].as_u64().unwrap());
    text.chars()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect()
}

#[test]
fn every_event_becomes_what_it_should() {
    let got = convert_fixture();
    let kinds: String = got
        .iter()
        .map(|g| match g {
            Got::Post(_) => 'P',
            Got::Delete(_) => 'D',
            Got::Nothing => '-',
        })
        .collect();
    // identity ×2, account, 9 posts, a like, an update, 2 posts, a delete, a like's
    // delete, identity, account, a post.
    assert_eq!(kinds, "---PPPPPPPPP--PPD---P");
}

#[test]
fn a_post_with_every_facet_kind() {
    let got = convert_fixture();
    let p = post(&got, 4);
    let id = post_id(ALICE, &rkey(4));
    assert_eq!(p["id"], id);
    assert_eq!(p["id_str"], id.to_string());
    assert_eq!(p["created_at"], "Wed Nov 20 10:26:57 +0000 2024");
    assert_eq!(p["timestamp_ms"], "1732098417610");
    assert_eq!(p["lang"], "en");
    assert_eq!(p["truncated"], false);
    assert_eq!(p["is_quote_status"], false);
    assert_eq!(p["in_reply_to_status_id"], Value::Null);
    assert_eq!(p["user"]["id"], user_id(ALICE));
    assert_eq!(p["user"]["id_str"], user_id(ALICE).to_string());
    assert_eq!(p["user"]["screen_name"], "alice.bsky.social");
    assert_eq!(
        p["bluesky"]["uri"],
        format!("at://{ALICE}/app.bsky.feed.post/{}", rkey(4))
    );
    assert_eq!(p["bluesky"]["did"], ALICE);
    assert!(p["bluesky"]["cid"].as_str().unwrap().starts_with("bafyrei"));

    let text = p["text"].as_str().unwrap();
    let entities = &p["entities"];
    let mention = &entities["user_mentions"][0];
    assert_eq!(mention["screen_name"], "bob.example.com");
    assert_eq!(mention["id"], user_id(BOB));
    assert_eq!(at(text, &mention["indices"]), "@bob.example.com");
    let url = &entities["urls"][0];
    assert_eq!(
        url["expanded_url"],
        "https://example.com/notes/2024/11/jetstream-and-powertrack"
    );
    assert_eq!(at(text, &url["indices"]), "example.com/notes…");
    let tags: Vec<(&str, String)> = entities["hashtags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["text"].as_str().unwrap(), at(text, &t["indices"])))
        .collect();
    assert_eq!(
        tags,
        [("日本", "#日本".to_owned()), ("rust", "#rust".to_owned())]
    );
    assert_eq!(entities["symbols"], serde_json::json!([]));
    assert!(entities.get("media").is_none());
}

#[test]
fn images_video_and_link_cards() {
    let got = convert_fixture();
    let images = post(&got, 5);
    let media = images["extended_entities"]["media"].as_array().unwrap();
    assert_eq!(media.len(), 2);
    assert_eq!(
        images["entities"]["media"],
        images["extended_entities"]["media"]
    );
    assert_eq!(media[0]["type"], "photo");
    let url = media[0]["media_url_https"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "https://cdn.bsky.app/img/feed_fullsize/plain/{BOB}/bafkrei"
        )) && url.ends_with("@jpeg"),
        "{url}"
    );
    assert_eq!(media[0]["ext_alt_text"], "Boats at dawn");
    assert_eq!(media[0]["sizes"]["large"]["w"], 2000);
    assert_eq!(media[1]["ext_alt_text"], Value::Null, "empty alt text");
    assert_ne!(media[0]["id"], media[1]["id"]);

    let video = post(&got, 6);
    let clip = &video["extended_entities"]["media"][0];
    assert_eq!(clip["type"], "video");
    assert_eq!(clip["ext_alt_text"], "Waves on rocks");
    let playlist = clip["video_info"]["variants"][0]["url"].as_str().unwrap();
    assert!(
        playlist.starts_with("https://video.bsky.app/watch/did%3Aplc%3A4qzn7cxlmx2bzvefqkhcqo3y/")
            && playlist.ends_with("/playlist.m3u8"),
        "{playlist}"
    );

    let card = post(&got, 7);
    let url = &card["entities"]["urls"][0];
    assert_eq!(
        url["expanded_url"],
        "https://news.example.org/2024/firehose"
    );
    assert_eq!(url["unwound"]["title"], "Drinking from the firehose");
    assert_eq!(
        url["unwound"]["description"],
        "How public posts flow to subscribers"
    );
}

#[test]
fn replies_name_their_parent_and_thread() {
    let got = convert_fixture();
    let reply = post(&got, 8);
    let parent = post_id(ALICE, &rkey(4));
    assert_eq!(reply["in_reply_to_status_id"], parent);
    assert_eq!(reply["in_reply_to_status_id_str"], parent.to_string());
    assert_eq!(reply["in_reply_to_user_id"], user_id(ALICE));
    assert_eq!(reply["in_reply_to_user_id_str"], user_id(ALICE).to_string());
    assert_eq!(reply["in_reply_to_screen_name"], "alice.bsky.social");
    assert_eq!(reply["conversation_id"], parent);
}

#[test]
fn quotes_carry_the_quoted_post_when_it_was_seen() {
    let got = convert_fixture();
    let quote = post(&got, 9);
    let quoted = post_id(ALICE, &rkey(4));
    assert_eq!(quote["is_quote_status"], true);
    assert_eq!(quote["quoted_status_id"], quoted);
    assert_eq!(quote["quoted_status_id_str"], quoted.to_string());
    assert_eq!(quote["quoted_status"]["id"], quoted);
    assert_eq!(quote["quoted_status"]["text"], post(&got, 4)["text"]);
    assert_eq!(
        quote["user"]["screen_name"], CAROL,
        "no identity event: the DID"
    );
    assert_eq!(quote["lang"], "pt");

    // A quote with media: both.
    let with_media = post(&got, 10);
    assert_eq!(with_media["is_quote_status"], true);
    assert_eq!(with_media["quoted_status"]["id"], post_id(BOB, &rkey(5)));
    assert_eq!(
        with_media["quoted_status"]["extended_entities"]["media"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        with_media["extended_entities"]["media"][0]["ext_alt_text"],
        "Harbour at night"
    );

    // A post never seen: its id from its URI, no copy.
    let unseen = post(&got, 11);
    assert_eq!(unseen["is_quote_status"], true);
    assert!(unseen["quoted_status_id"].as_u64().is_some());
    assert!(unseen.get("quoted_status").is_none());

    // A feed generator, not a post: a quote without an id.
    let feed = post(&got, 12);
    assert_eq!(feed["is_quote_status"], true);
    assert!(feed.get("quoted_status_id").is_none());
}

#[test]
fn labels_languages_and_unplaceable_facets() {
    let got = convert_fixture();
    let labelled = post(&got, 15);
    assert_eq!(labelled["possibly_sensitive"], true);
    assert_eq!(labelled["lang"], "iw");
    assert!(
        labelled.get("extended_entities").is_none(),
        "unknown embed kind"
    );

    let facets = post(&got, 16);
    let tags = facets["entities"]["hashtags"].as_array().unwrap();
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert_eq!(tags[0]["text"], "ok");
    assert_eq!(tags[0]["indices"], serde_json::json!([6, 9]));
}

#[test]
fn deletes_name_the_post_they_delete() {
    let got = convert_fixture();
    assert!(matches!(got[16], Got::Delete(id) if id == post_id(ALICE, &rkey(4))));
    assert!(matches!(got[17], Got::Nothing), "a like's delete");
}

#[test]
fn a_handle_that_became_invalid_is_forgotten() {
    let got = convert_fixture();
    assert_eq!(post(&got, 21)["user"]["screen_name"], ALICE);
}

#[test]
fn ids_sort_by_creation_time() {
    let got = convert_fixture();
    let mut by_time: Vec<(u64, u64)> = got
        .iter()
        .filter_map(|g| match g {
            Got::Post(p) => Some((
                p["timestamp_ms"].as_str().unwrap().parse().unwrap(),
                p["id"].as_u64().unwrap(),
            )),
            _ => None,
        })
        .collect();
    by_time.sort();
    assert!(by_time.windows(2).all(|w| w[0].1 < w[1].1), "{by_time:?}");
}
