//! Table tests of the v2 Post conversion: native posts shaped like X's documented
//! examples (native enriched post, edit metadata, entities, geo) → the exact v2 line.

use serde_json::{Value, json};
use sluice_wire::v2_post::{V2Fields, to_v2, to_v2_bytes, with_matching_rules};

/// A native post as X documents it: root fields, user, entities, edit metadata.
fn native() -> Value {
    json!({
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
        "id": 1_050_118_621_198_921_728_u64,
        "id_str": "1050118621198921728",
        "text": "To make room for more expression, we will now count all emojis as equal #Emoji $TWTR @TwitterDev https://t.co/abc",
        "source": "<a href=\"http://twitter.com\" rel=\"nofollow\">Twitter Web Client</a>",
        "truncated": false,
        "in_reply_to_status_id": null,
        "in_reply_to_status_id_str": null,
        "in_reply_to_user_id": null,
        "in_reply_to_user_id_str": null,
        "user": {
            "id": 6_253_282,
            "id_str": "6253282",
            "name": "Twitter API",
            "screen_name": "TwitterAPI",
            "location": "San Francisco, CA",
            "url": "https://developer.twitter.com",
            "description": "The Real Twitter API.",
            "protected": false,
            "verified": true,
            "followers_count": 6_129_794,
            "friends_count": 12,
            "listed_count": 12_899,
            "favourites_count": 31,
            "statuses_count": 3658,
            "created_at": "Wed May 23 06:01:13 +0000 2007",
            "profile_image_url_https": "https://pbs.twimg.com/profile_images/942858479592554497/BbazLO9L_normal.jpg",
            "utc_offset": null
        },
        "geo": null,
        "coordinates": null,
        "place": null,
        "contributors": null,
        "is_quote_status": false,
        "quote_count": 0,
        "reply_count": 0,
        "retweet_count": 0,
        "favorite_count": 0,
        "entities": {
            "hashtags": [{"text": "Emoji", "indices": [72, 78]}],
            "urls": [{
                "url": "https://t.co/abc",
                "expanded_url": "https://blog.twitter.com/emoji",
                "display_url": "blog.twitter.com/emoji",
                "indices": [97, 113],
                "unwound": {"url": "https://blog.twitter.com/emoji", "status": 200, "title": "Emoji", "description": "Count them"}
            }],
            "user_mentions": [{"screen_name": "TwitterDev", "name": "Twitter Dev", "id": 2_244_994_945_u64, "id_str": "2244994945", "indices": [85, 96]}],
            "symbols": [{"text": "TWTR", "indices": [79, 84]}]
        },
        "favorited": false,
        "retweeted": false,
        "possibly_sensitive": false,
        "filter_level": "low",
        "lang": "en",
        "timestamp_ms": "1539202764000",
        "edit_history": {"initial_tweet_id": "1050118621198921728", "edit_tweet_ids": ["1050118621198921728"]},
        "edit_controls": {"editable_until_ms": 1_660_155_761_384_u64, "edits_remaining": 4},
        "editable": true,
        "matching_rules": [{"tag": null, "id": 1_128_017_341_835_464_704_u64, "id_str": "1128017341835464704"}]
    })
}

const ID: &str = "1050118621198921728";

fn fields(query: &[(&str, &str)]) -> V2Fields {
    V2Fields::parse(query.iter().copied()).expect("known fields")
}

fn data(native: &Value, query: &[(&str, &str)]) -> Value {
    to_v2(native, &fields(query))["data"].clone()
}

#[test]
fn default_fields_are_id_text_and_edit_history() {
    let line = to_v2(&native(), &V2Fields::default());
    let text = native()["text"].clone();
    assert_eq!(
        line,
        json!({"data": {"id": ID, "text": text, "edit_history_tweet_ids": [ID]}})
    );
}

#[test]
fn each_tweet_field_converts_as_x_documents() {
    let rows: &[(&str, Value)] = &[
        ("author_id", json!("6253282")),
        ("created_at", json!("2018-10-10T20:19:24.000Z")),
        ("lang", json!("en")),
        ("possibly_sensitive", json!(false)),
        (
            "source",
            json!("<a href=\"http://twitter.com\" rel=\"nofollow\">Twitter Web Client</a>"),
        ),
        (
            "public_metrics",
            json!({"retweet_count": 0, "reply_count": 0, "like_count": 0, "quote_count": 0}),
        ),
        (
            "edit_controls",
            json!({"is_edit_eligible": true, "editable_until": "2022-08-10T18:22:41.384Z", "edits_remaining": 4}),
        ),
        (
            "entities",
            json!({
                "hashtags": [{"start": 72, "end": 78, "tag": "Emoji"}],
                "cashtags": [{"start": 79, "end": 84, "tag": "TWTR"}],
                "mentions": [{"start": 85, "end": 96, "username": "TwitterDev", "id": "2244994945"}],
                "urls": [{
                    "start": 97, "end": 113, "url": "https://t.co/abc",
                    "expanded_url": "https://blog.twitter.com/emoji",
                    "display_url": "blog.twitter.com/emoji",
                    "status": 200, "title": "Emoji", "description": "Count them",
                    "unwound_url": "https://blog.twitter.com/emoji"
                }]
            }),
        ),
    ];
    for (field, expected) in rows {
        let data = data(&native(), &[("tweet.fields", field)]);
        assert_eq!(&data[*field], expected, "tweet.fields={field}");
        assert_eq!(
            data.as_object().unwrap().len(),
            4,
            "tweet.fields={field}: {data}"
        );
    }
}

#[test]
fn fields_the_native_post_does_not_carry_are_left_out() {
    let query = [(
        "tweet.fields",
        "in_reply_to_user_id,referenced_tweets,attachments,geo,context_annotations,reply_settings,withheld",
    )];
    let mut bare = native();
    for key in [
        "quote_count",
        "reply_count",
        "retweet_count",
        "favorite_count",
    ] {
        bare.as_object_mut().unwrap().remove(key);
    }
    let data = data(&bare, &query);
    let keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["edit_history_tweet_ids", "id", "text"]);
    let metrics = self::data(&bare, &[("tweet.fields", "public_metrics")]);
    assert!(metrics.get("public_metrics").is_none(), "{metrics}");
}

#[test]
fn the_conversation_is_the_payloads_else_a_non_replys_own_id() {
    let query = [("tweet.fields", "conversation_id")];
    let with = |extra: Value| {
        let mut post = native();
        for (k, v) in extra.as_object().unwrap() {
            post[k] = v.clone();
        }
        data(&post, &query).get("conversation_id").cloned()
    };
    assert_eq!(with(json!({"conversation_id_str": "3"})), Some(json!("3")));
    assert_eq!(with(json!({"conversation_id": 3})), Some(json!("3")));
    // A post that replies to nothing starts its conversation.
    assert_eq!(with(json!({})), Some(json!(ID)));
    // A reply that does not say: the start of its thread is not in the post.
    assert_eq!(with(json!({"in_reply_to_status_id_str": "9"})), None);
    assert_eq!(with(json!({"in_reply_to_status_id": 9})), None);
    assert_eq!(
        with(json!({"in_reply_to_status_id_str": "9", "conversation_id_str": "2"})),
        Some(json!("2"))
    );
}

#[test]
fn untruncated_text_and_edit_history_come_from_the_native_post() {
    let mut post = native();
    post["truncated"] = json!(true);
    post["text"] = json!("short… https://t.co/x");
    post["extended_tweet"] = json!({
        "full_text": "the whole long text #Long",
        "display_text_range": [0, 25],
        "entities": {"hashtags": [{"text": "Long", "indices": [20, 25]}], "urls": [], "user_mentions": [], "symbols": []}
    });
    post["edit_history"] = json!({"initial_tweet_id": "1", "edit_tweet_ids": ["1", ID]});
    let data = data(&post, &[("tweet.fields", "entities,display_text_range")]);
    assert_eq!(
        data,
        json!({
            "id": ID,
            "text": "the whole long text #Long",
            "edit_history_tweet_ids": ["1", ID],
            "display_text_range": [0, 25],
            "entities": {"hashtags": [{"start": 20, "end": 25, "tag": "Long"}]}
        })
    );
}

#[test]
fn a_post_without_edit_history_has_its_own_id() {
    let mut post = native();
    post.as_object_mut().unwrap().remove("edit_history");
    assert_eq!(data(&post, &[])["edit_history_tweet_ids"], json!([ID]));
}

fn retweet_of_a_quote() -> Value {
    let mut quoted = native();
    quoted["id_str"] = json!("300");
    quoted["user"]["id_str"] = json!("30");
    quoted["user"]["screen_name"] = json!("quoted_author");
    let mut original = native();
    original["id_str"] = json!("200");
    original["text"] = json!("original text");
    original["user"]["id_str"] = json!("20");
    original["user"]["screen_name"] = json!("original_author");
    original["quoted_status_id_str"] = json!("300");
    original["quoted_status"] = quoted;
    let mut rt = native();
    rt["text"] = json!("RT @original_author: original text");
    rt["retweeted_status"] = original;
    rt["in_reply_to_status_id_str"] = json!("100");
    rt
}

#[test]
fn referenced_tweets_and_their_expansion() {
    let post = retweet_of_a_quote();
    let line = to_v2(
        &post,
        &fields(&[
            ("tweet.fields", "referenced_tweets"),
            (
                "expansions",
                "referenced_tweets.id,referenced_tweets.id.author_id",
            ),
        ]),
    );
    assert_eq!(line["data"]["text"], "RT @original_author: original text");
    assert_eq!(
        line["data"]["referenced_tweets"],
        json!([{"type": "replied_to", "id": "100"}, {"type": "retweeted", "id": "200"}])
    );
    // The replied-to post is not in the native post: not in includes either.
    assert_eq!(
        line["includes"]["tweets"],
        json!([{
            "id": "200",
            "text": "original text",
            "edit_history_tweet_ids": [ID],
            "referenced_tweets": [{"type": "quoted", "id": "300"}]
        }])
    );
    assert_eq!(
        line["includes"]["users"],
        json!([{"id": "20", "name": "Twitter API", "username": "original_author"}])
    );
}

#[test]
fn author_expansion_with_user_fields() {
    let line = to_v2(
        &native(),
        &fields(&[
            ("expansions", "author_id"),
            (
                "user.fields",
                "created_at,description,location,verified,protected,public_metrics,profile_image_url,url,pinned_tweet_id",
            ),
        ]),
    );
    assert_eq!(
        line["includes"],
        json!({"users": [{
            "id": "6253282",
            "name": "Twitter API",
            "username": "TwitterAPI",
            "created_at": "2007-05-23T06:01:13.000Z",
            "description": "The Real Twitter API.",
            "location": "San Francisco, CA",
            "verified": true,
            "protected": false,
            "public_metrics": {"followers_count": 6_129_794, "following_count": 12, "tweet_count": 3658, "listed_count": 12_899},
            "profile_image_url": "https://pbs.twimg.com/profile_images/942858479592554497/BbazLO9L_normal.jpg",
            "url": "https://developer.twitter.com"
        }]})
    );
}

#[test]
fn mentions_expand_to_users_without_duplicates() {
    let mut post = native();
    post["entities"]["user_mentions"] = json!([
        {"screen_name": "TwitterAPI", "name": "Twitter API", "id_str": "6253282", "indices": [0, 11]},
        {"screen_name": "TwitterDev", "name": "Twitter Dev", "id_str": "2244994945", "indices": [12, 23]}
    ]);
    let line = to_v2(
        &post,
        &fields(&[("expansions", "author_id,entities.mentions.username")]),
    );
    assert_eq!(
        line["includes"]["users"],
        json!([
            {"id": "6253282", "name": "Twitter API", "username": "TwitterAPI"},
            {"id": "2244994945", "name": "Twitter Dev", "username": "TwitterDev"}
        ])
    );
}

fn with_media_and_place() -> Value {
    let mut post = native();
    let photo = json!({
        "id": 1_050_118_000_000_000_001_u64, "id_str": "1050118000000000001", "indices": [114, 137],
        "media_url_https": "https://pbs.twimg.com/media/a.jpg", "url": "https://t.co/m",
        "display_url": "pic.twitter.com/m", "expanded_url": "https://twitter.com/TwitterAPI/status/1/photo/1",
        "type": "photo", "ext_alt_text": "a cat", "original_info": {"width": 1200, "height": 800}
    });
    let video = json!({
        "id_str": "1050118000000000002", "indices": [114, 137], "media_url_https": "https://pbs.twimg.com/thumb/b.jpg",
        "url": "https://t.co/m", "display_url": "pic.twitter.com/m", "expanded_url": "https://twitter.com/x",
        "type": "video",
        "video_info": {"duration_millis": 15_000, "variants": [{"bitrate": 832_000, "content_type": "video/mp4", "url": "https://video.twimg.com/b.mp4"}]}
    });
    post["entities"]["media"] = json!([photo.clone()]);
    post["extended_entities"] = json!({"media": [photo, video]});
    post["place"] = json!({
        "id": "5a110d312052166f", "url": "https://api.twitter.com/1.1/geo/id/5a110d312052166f.json",
        "place_type": "city", "name": "San Francisco", "full_name": "San Francisco, CA",
        "country_code": "US", "country": "United States",
        "bounding_box": {"type": "Polygon", "coordinates": [[[-122.514926, 37.708075], [-122.514926, 37.833238], [-122.357031, 37.833238], [-122.357031, 37.708075]]]},
        "attributes": {}
    });
    post["coordinates"] = json!({"type": "Point", "coordinates": [-122.4, 37.7]});
    post
}

#[test]
fn media_attachments_and_their_expansion() {
    let line = to_v2(
        &with_media_and_place(),
        &fields(&[
            ("tweet.fields", "attachments"),
            ("expansions", "attachments.media_keys"),
            (
                "media.fields",
                "url,preview_image_url,width,height,alt_text,duration_ms,variants",
            ),
        ]),
    );
    assert_eq!(
        line["data"]["attachments"],
        json!({"media_keys": ["3_1050118000000000001", "7_1050118000000000002"]})
    );
    assert_eq!(
        line["includes"]["media"],
        json!([
            {"media_key": "3_1050118000000000001", "type": "photo", "url": "https://pbs.twimg.com/media/a.jpg",
             "width": 1200, "height": 800, "alt_text": "a cat"},
            {"media_key": "7_1050118000000000002", "type": "video",
             "preview_image_url": "https://pbs.twimg.com/thumb/b.jpg", "duration_ms": 15_000,
             "variants": [{"bitrate": 832_000, "content_type": "video/mp4", "url": "https://video.twimg.com/b.mp4"}]}
        ])
    );
}

#[test]
fn media_urls_carry_their_media_key_in_entities() {
    let data = data(&with_media_and_place(), &[("tweet.fields", "entities")]);
    let urls = data["entities"]["urls"].as_array().unwrap();
    assert_eq!(urls.len(), 2);
    assert_eq!(urls[1]["media_key"], "3_1050118000000000001");
    assert_eq!(urls[1]["start"], 114);
}

#[test]
fn geo_and_place_expansion() {
    let line = to_v2(
        &with_media_and_place(),
        &fields(&[
            ("tweet.fields", "geo"),
            ("expansions", "geo.place_id"),
            (
                "place.fields",
                "country,country_code,name,place_type,geo,contained_within",
            ),
        ]),
    );
    assert_eq!(
        line["data"]["geo"],
        json!({"place_id": "5a110d312052166f", "coordinates": {"type": "Point", "coordinates": [-122.4, 37.7]}})
    );
    assert_eq!(
        line["includes"]["places"],
        json!([{
            "id": "5a110d312052166f", "full_name": "San Francisco, CA", "country": "United States",
            "country_code": "US", "name": "San Francisco", "place_type": "city",
            "geo": {"type": "Feature", "bbox": [-122.514926, 37.708075, -122.357031, 37.833238], "properties": {}}
        }])
    );
}

#[test]
fn expansions_with_nothing_to_expand_leave_no_includes() {
    let line = to_v2(
        &native(),
        &fields(&[(
            "expansions",
            "referenced_tweets.id,attachments.media_keys,geo.place_id,attachments.poll_ids",
        )]),
    );
    assert!(line.get("includes").is_none(), "{line}");
}

#[test]
fn matching_rules_always_carry_a_tag() {
    let line = with_matching_rules(
        to_v2_bytes(br#"{"id_str":"1","text":"hi"}"#, &V2Fields::default()).unwrap(),
        &[("11", None), ("12", Some("cats"))],
    );
    assert_eq!(
        sluice_wire::to_string(&line),
        r#"{"data":{"edit_history_tweet_ids":["1"],"id":"1","text":"hi"},"matching_rules":[{"id":"11","tag":""},{"id":"12","tag":"cats"}]}"#
    );
}

#[test]
fn unknown_field_names_give_x_invalid_request_problem() {
    let err = V2Fields::parse([
        ("tweet.fields", "author_id,bogus"),
        ("user.fields", "nope"),
        ("backfill_minutes", "2"),
    ])
    .unwrap_err();
    let problem = err.to_problem();
    assert_eq!(problem["title"], "Invalid Request");
    assert_eq!(
        problem["detail"],
        "One or more parameters to your request was invalid."
    );
    assert_eq!(
        problem["type"],
        "https://api.x.com/2/problems/invalid-request"
    );
    let errors = problem["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["parameters"], json!({"tweet.fields": ["bogus"]}));
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("The `tweet.fields` query parameter value [bogus] is not one of [article,attachments,author_id,"),
        "{message}"
    );
    assert!(message.ends_with(",text,withheld]"), "{message}");
    assert_eq!(errors[1]["parameters"], json!({"user.fields": ["nope"]}));
}

#[test]
fn known_names_parse_and_repeat_once() {
    let fields = fields(&[("tweet.fields", "lang,lang,,created_at")]);
    let data = to_v2(&native(), &fields)["data"].clone();
    assert_eq!(data["lang"], "en");
    assert_eq!(data["created_at"], "2018-10-10T20:19:24.000Z");
}

/// Every field and expansion the conversion fills.
const ALL: &[(&str, &str)] = &[
    (
        "tweet.fields",
        "author_id,created_at,lang,source,possibly_sensitive,conversation_id,in_reply_to_user_id,display_text_range,public_metrics,referenced_tweets,entities,attachments,geo,edit_controls",
    ),
    (
        "expansions",
        "author_id,entities.mentions.username,referenced_tweets.id,referenced_tweets.id.author_id,attachments.media_keys,geo.place_id",
    ),
    (
        "user.fields",
        "created_at,description,location,verified,protected,public_metrics,profile_image_url,url",
    ),
    (
        "media.fields",
        "url,preview_image_url,width,height,alt_text,duration_ms,variants",
    ),
    ("place.fields", "country,country_code,name,place_type,geo"),
];

#[test]
fn converting_bytes_skips_only_members_the_conversion_never_reads() {
    let all = fields(ALL);
    let mut generator = sluice_synth::PostGenerator::new(7);
    let synthetic = (0..300).map(|_| generator.next_post().into_bytes());
    let documented = [native(), retweet_of_a_quote(), with_media_and_place()]
        .map(|post| serde_json::to_vec(&post).unwrap());
    // Each field and expansion alone, too: what is skipped depends on what is asked.
    let mut queries = vec![V2Fields::default(), all];
    for (parameter, names) in &ALL[..2] {
        for name in names.split(',') {
            queries.push(fields(&[(parameter, name), ALL[2], ALL[3], ALL[4]]));
        }
    }
    for bytes in documented.into_iter().chain(synthetic) {
        let whole: Value = serde_json::from_slice(&bytes).unwrap();
        for query in &queries {
            assert_eq!(
                to_v2_bytes(&bytes, query).unwrap(),
                to_v2(&whole, query),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[test]
fn converting_bytes_refuses_what_is_not_a_post() {
    assert!(to_v2_bytes(b"[1]", &V2Fields::default()).is_err());
    assert!(to_v2_bytes(br#"{"id_str":"1"} x"#, &V2Fields::default()).is_err());
}

#[test]
fn an_expansion_puts_the_field_it_is_made_from_in_data() {
    let native = native();
    let author = native["user"]["id_str"].clone();
    let data = data(&native, &[("expansions", "author_id")]);
    assert_eq!(data["author_id"], author, "{data}");
    let keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["author_id", "edit_history_tweet_ids", "id", "text"]);
    let data = self::data(&native, &[("expansions", "entities.mentions.username")]);
    assert!(data.get("entities").is_some(), "{data}");
    // Asked for in both places, the field is written once.
    let both = self::data(
        &native,
        &[("expansions", "author_id"), ("tweet.fields", "author_id")],
    );
    assert_eq!(both["author_id"], author);
}

#[test]
fn withheld_comes_from_the_native_countries_of_the_post_and_of_its_author() {
    let mut post = native();
    // Withheld nowhere: no `withheld` at all.
    let plain = to_v2(
        &post,
        &fields(&[
            ("tweet.fields", "withheld"),
            ("expansions", "author_id"),
            ("user.fields", "withheld"),
        ]),
    );
    assert!(plain["data"].get("withheld").is_none(), "{plain}");
    assert!(plain["includes"]["users"][0].get("withheld").is_none());
    post["withheld_in_countries"] = json!(["DE", "FR"]);
    post["user"]["withheld_in_countries"] = json!(["TR"]);
    let line = to_v2(
        &post,
        &fields(&[
            ("tweet.fields", "withheld"),
            ("expansions", "author_id"),
            ("user.fields", "withheld"),
        ]),
    );
    assert_eq!(
        line["data"]["withheld"],
        json!({"copyright": false, "country_codes": ["DE", "FR"], "scope": "tweet"})
    );
    assert_eq!(
        line["includes"]["users"][0]["withheld"],
        json!({"country_codes": ["TR"], "scope": "user"})
    );
    post["withheld_copyright"] = json!(true);
    post["withheld_in_countries"] = json!([]);
    assert_eq!(
        data(&post, &[("tweet.fields", "withheld")])["withheld"],
        json!({"copyright": true, "country_codes": [], "scope": "tweet"})
    );
    // v1.1's scopes: `status` is v2's `tweet`; `user` says the author is withheld.
    post["withheld_scope"] = json!("status");
    assert_eq!(
        data(&post, &[("tweet.fields", "withheld")])["withheld"]["scope"],
        "tweet"
    );
    post["withheld_scope"] = json!("user");
    assert_eq!(
        data(&post, &[("tweet.fields", "withheld")])["withheld"]["scope"],
        "user"
    );
    // Not asked for: not there.
    assert!(data(&post, &[]).get("withheld").is_none());
}
