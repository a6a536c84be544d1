//! The time of a recorded line, and the rewriting that lets a recorded firehose be sent
//! again and again (`sluice ingest --pace … --loop`).
//!
//! A line's time is, in this order: its `timestamp_ms` (X's epoch milliseconds, a string or
//! a number), its `created_at` in X's format, a v2 line's `data.created_at` (ISO 8601), or
//! a compliance event's `timestamp_ms` (`user_withheld`: `timestampMs`, ISO 8601).
//!
//! The server drops a post whose id it saw in the last few minutes, so a second pass over
//! the same file must carry new ids. [`Shift`] moves every time of a line by the same
//! number of milliseconds and every post id by the same amount in its time bits: X's ids
//! are Snowflakes, milliseconds since X's epoch above 22 bits of machine and sequence, so
//! adding `ms << 22` re-timestamps an id, keeps its low 22 bits, and keeps ids distinct
//! and in time order whatever they were. Post ids are rewritten wherever a line names one
//! (the post, its reply and quote references, its edit history, nested quoted and
//! retweeted posts, compliance events); user ids and media ids are left alone. The
//! rewriting works on a `serde_json::Value`: simple and exact (ids up to 2^64 stay
//! integers). A plain native post takes a faster path with the same result ([`raw`]):
//! only the members that change are parsed and written, the rest copied as they are, so
//! the post keeps its key order. Other lines (events, v2 lines) come out of the `Value`
//! with their keys in alphabetical order.

mod raw;

use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_model::compliance::{EventKind, is_event};
use sluice_model::ingest_line::parse_created_at;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

/// X's `created_at` layout (always UTC).
const X_CREATED_AT: &[time::format_description::FormatItem<'static>] = format_description!(
    "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] +0000 [year]"
);
/// The v2 API's `created_at`, with milliseconds, e.g. `2022-10-10T20:19:24.000Z`.
const V2_CREATED_AT: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
/// Bits below a Snowflake's timestamp.
const SNOWFLAKE_LOW_BITS: u32 = 22;

/// The time of a line as it is read from the file: [`line_time_ms`] without building a
/// `Value` of the whole line (only the time fields are kept; everything else is skipped),
/// which more than doubles the rate of a first pass over 4 KB posts.
pub fn raw_line_time_ms(line: &[u8]) -> Option<i64> {
    /// The top-level fields that can hold a post's time.
    #[derive(Deserialize)]
    struct Times {
        timestamp_ms: Option<Value>,
        created_at: Option<Value>,
        data: Option<DataTimes>,
    }
    #[derive(Deserialize)]
    struct DataTimes {
        created_at: Option<Value>,
    }
    if is_event(line) {
        // Small, and timed inside their one key: read whole.
        return line_time_ms(&serde_json::from_slice(line).ok()?);
    }
    let times: Times = serde_json::from_slice(line).ok()?;
    if let Some(ms) = times.timestamp_ms.as_ref().and_then(epoch_ms) {
        return Some(ms);
    }
    if let Some(text) = times.created_at.as_ref().and_then(Value::as_str) {
        return x_time_ms(text);
    }
    times.data?.created_at?.as_str().and_then(iso_ms)
}

/// The time of a line in epoch milliseconds, if it has a readable one.
pub fn line_time_ms(line: &Value) -> Option<i64> {
    let object = line.as_object()?;
    if let Some(ms) = object.get("timestamp_ms").and_then(epoch_ms) {
        return Some(ms);
    }
    if let Some(text) = object.get("created_at").and_then(Value::as_str) {
        return x_time_ms(text);
    }
    if let Some(data) = object.get("data").and_then(Value::as_object) {
        return data
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(iso_ms);
    }
    let (_, body) = event(object)?;
    body.get("timestamp_ms").and_then(epoch_ms).or_else(|| {
        body.get("timestampMs")
            .and_then(Value::as_str)
            .and_then(iso_ms)
    })
}

/// A compliance event's kind and body: an object whose one key names an event.
fn event(object: &Map<String, Value>) -> Option<(EventKind, &Map<String, Value>)> {
    if object.len() != 1 {
        return None;
    }
    let (key, body) = object.iter().next()?;
    let kind = EventKind::ALL.into_iter().find(|k| k.key() == key)?;
    Some((kind, body.as_object()?))
}

/// Epoch milliseconds written as a number or a string of digits.
fn epoch_ms(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn x_time_ms(text: &str) -> Option<i64> {
    let at = parse_created_at(text)?.assume_utc();
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

fn iso_ms(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

fn utc_at_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Moves every time of a line by `ms` milliseconds and every post id by `ms` in its
/// Snowflake time bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    /// Milliseconds added to every time.
    pub ms: i64,
}

impl Shift {
    /// Rewrites a post, a v2 line or a compliance event in place. Fields that are not
    /// there, or not readable, are left as they are.
    pub fn apply(self, line: &mut Value) {
        let Some(object) = line.as_object_mut() else {
            return;
        };
        if let Some((kind, _)) = event(object) {
            if let Some(body) = object.values_mut().next().and_then(Value::as_object_mut) {
                self.event(kind, body);
            }
        } else if object.get("data").is_some_and(Value::is_object) {
            self.v2_line(object);
        } else {
            self.post(object);
        }
    }

    /// A native post and the posts nested in it.
    fn post(self, post: &mut Map<String, Value>) {
        self.id_pair(post, "id", "id_str");
        self.id_pair(post, "in_reply_to_status_id", "in_reply_to_status_id_str");
        self.id_pair(post, "quoted_status_id", "quoted_status_id_str");
        self.timestamp(post, "timestamp_ms");
        if let Some(Value::String(text)) = post.get_mut("created_at")
            && let Some(moved) = x_time_ms(text).and_then(|ms| self.x_time(ms))
        {
            *text = moved;
        }
        if let Some(Value::Object(history)) = post.get_mut("edit_history") {
            self.ids_in(history.get_mut("initial_tweet_id"));
            self.ids_in(history.get_mut("edit_tweet_ids"));
        }
        if let Some(Value::Object(controls)) = post.get_mut("edit_controls") {
            self.timestamp(controls, "editable_until_ms");
        }
        for nested in ["quoted_status", "retweeted_status"] {
            if let Some(Value::Object(inner)) = post.get_mut(nested) {
                self.post(inner);
            }
        }
    }

    /// A v2 line: `data` and the posts in `includes.tweets`.
    fn v2_line(self, line: &mut Map<String, Value>) {
        if let Some(Value::Object(data)) = line.get_mut("data") {
            self.v2_post(data);
        }
        if let Some(Value::Array(tweets)) = line
            .get_mut("includes")
            .and_then(|includes| includes.get_mut("tweets"))
        {
            for tweet in tweets.iter_mut().filter_map(Value::as_object_mut) {
                self.v2_post(tweet);
            }
        }
    }

    fn v2_post(self, post: &mut Map<String, Value>) {
        self.ids_in(post.get_mut("id"));
        self.ids_in(post.get_mut("conversation_id"));
        self.ids_in(post.get_mut("edit_history_tweet_ids"));
        if let Some(Value::Array(references)) = post.get_mut("referenced_tweets") {
            for reference in references.iter_mut().filter_map(Value::as_object_mut) {
                self.ids_in(reference.get_mut("id"));
            }
        }
        if let Some(Value::String(text)) = post.get_mut("created_at")
            && let Some(moved) = iso_ms(text).and_then(|ms| self.v2_time(ms))
        {
            *text = moved;
        }
    }

    /// A compliance event's body: the post ids it names and its time. User events name a
    /// user, whose id stays.
    fn event(self, kind: EventKind, body: &mut Map<String, Value>) {
        match kind {
            EventKind::Delete | EventKind::Drop | EventKind::Undrop | EventKind::StatusWithheld => {
                if let Some(Value::Object(status)) = body.get_mut("status") {
                    self.id_pair(status, "id", "id_str");
                }
            }
            EventKind::ScrubGeo => {
                self.id_pair(body, "up_to_status_id", "up_to_status_id_str");
            }
            EventKind::TweetEdit => {
                self.ids_in(body.get_mut("id"));
                self.ids_in(body.get_mut("initial_tweet_id"));
                self.ids_in(body.get_mut("edit_tweet_ids"));
            }
            EventKind::UserWithheld => {
                if let Some(Value::String(text)) = body.get_mut("timestampMs")
                    && let Some(moved) = iso_ms(text).and_then(|ms| self.v2_time(ms))
                {
                    *text = moved;
                }
            }
            EventKind::UserDelete
            | EventKind::UserUndelete
            | EventKind::UserProtect
            | EventKind::UserUnprotect
            | EventKind::UserSuspend
            | EventKind::UserUnsuspend => {}
        }
        self.timestamp(body, "timestamp_ms");
    }

    /// A post id moved in its time bits; `None` when it would leave X's positive 63 bits.
    fn id(self, id: u64) -> Option<u64> {
        let moved = i64::try_from(id)
            .ok()?
            .checked_add(self.ms.checked_mul(1 << SNOWFLAKE_LOW_BITS)?)?;
        u64::try_from(moved).ok().filter(|&id| id > 0)
    }

    /// An id written as a number or a string of digits, or an array of them, rewritten in
    /// the same form.
    fn ids_in(self, value: Option<&mut Value>) {
        match value {
            Some(Value::Array(ids)) => {
                for id in ids {
                    self.ids_in(Some(id));
                }
            }
            Some(value) => {
                if let Some(moved) = read_id(value).and_then(|id| self.id(id)) {
                    write_id(value, moved);
                }
            }
            None => {}
        }
    }

    /// An id given as a number and a string: both get the same new id (read from the
    /// string when there is one, as X tells clients to).
    fn id_pair(self, object: &mut Map<String, Value>, number: &str, string: &str) {
        let id = object
            .get(string)
            .and_then(read_id)
            .or_else(|| object.get(number).and_then(read_id));
        let Some(moved) = id.and_then(|id| self.id(id)) else {
            return;
        };
        for key in [number, string] {
            if let Some(value) = object.get_mut(key)
                && !value.is_null()
            {
                write_id(value, moved);
            }
        }
    }

    /// Epoch milliseconds, kept as a string or a number as they came.
    fn timestamp(self, object: &mut Map<String, Value>, key: &str) {
        let Some(value) = object.get_mut(key) else {
            return;
        };
        let Some(moved) = epoch_ms(value).and_then(|ms| ms.checked_add(self.ms)) else {
            return;
        };
        *value = match value {
            Value::String(_) => Value::String(moved.to_string()),
            _ => Value::from(moved),
        };
    }

    fn moved(self, ms: i64) -> Option<OffsetDateTime> {
        utc_at_ms(ms)?.checked_add(Duration::milliseconds(self.ms))
    }

    fn x_time(self, ms: i64) -> Option<String> {
        self.moved(ms)?.format(X_CREATED_AT).ok()
    }

    fn v2_time(self, ms: i64) -> Option<String> {
        self.moved(ms)?.format(V2_CREATED_AT).ok()
    }
}

/// An id from a JSON number or a string of digits.
fn read_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Writes `id` in the form `value` had (a number stays a number, a string a string).
fn write_id(value: &mut Value, id: u64) {
    *value = match value {
        Value::String(_) => Value::String(id.to_string()),
        _ => Value::from(id),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2018-10-10T20:19:24Z.
    const AT: i64 = 1_539_202_764_000;

    #[test]
    fn times_come_from_timestamp_ms_created_at_v2_or_the_event() {
        let cases = [
            (
                json!({"created_at": "Wed Oct 10 20:19:24 +0000 2018", "timestamp_ms": "1539202764123"}),
                Some(AT + 123),
            ),
            (json!({"timestamp_ms": AT}), Some(AT)),
            (
                json!({"created_at": "Wed Oct 10 20:19:24 +0000 2018"}),
                Some(AT),
            ),
            (
                json!({"data": {"id": "1", "created_at": "2018-10-10T20:19:24.500Z"}}),
                Some(AT + 500),
            ),
            (
                json!({"delete": {"status": {"id": 1}, "timestamp_ms": "1539202764000"}}),
                Some(AT),
            ),
            (
                json!({"user_withheld": {"user": {"id": 1}, "timestampMs": "2018-10-10T20:19:24.000Z"}}),
                Some(AT),
            ),
            (json!({"created_at": "2018-10-10T20:19:24Z"}), None),
            (json!({"id": 1}), None),
            (json!([1, 2]), None),
        ];
        for (line, want) in cases {
            assert_eq!(line_time_ms(&line), want, "{line}");
            assert_eq!(
                raw_line_time_ms(line.to_string().as_bytes()),
                want,
                "{line}"
            );
        }
        assert_eq!(raw_line_time_ms(b"not json"), None);
    }

    #[test]
    fn the_raw_reading_agrees_with_the_value_reading_on_realistic_posts() {
        let mut posts = sluice_synth::PostGenerator::new(3).with_clock(AT as u64, 50.0);
        for _ in 0..200 {
            let post = posts.next_post();
            let value: Value = serde_json::from_str(&post).expect("JSON");
            let time = line_time_ms(&value);
            assert!(time.is_some(), "{post}");
            assert_eq!(raw_line_time_ms(post.as_bytes()), time, "{post}");
        }
    }

    #[test]
    fn a_shift_retimes_ids_and_times_of_a_post_consistently() {
        let id: u64 = 1_050_118_621_198_921_728;
        let reply: u64 = 1_050_118_000_000_000_001;
        let mut post = json!({
            "created_at": "Wed Oct 10 20:19:24 +0000 2018",
            "id": id, "id_str": id.to_string(),
            "timestamp_ms": "1539202764000",
            "in_reply_to_status_id": reply, "in_reply_to_status_id_str": reply.to_string(),
            "quoted_status_id": null,
            "user": {"id": 12, "id_str": "12"},
            "edit_history": {"initial_tweet_id": id.to_string(), "edit_tweet_ids": [id.to_string()]},
            "edit_controls": {"edits_remaining": 5, "editable_until_ms": AT + 1_800_000},
            "quoted_status": {"id": 7u64 << 22, "id_str": (7u64 << 22).to_string(),
                              "created_at": "Wed Oct 10 20:19:24 +0000 2018"}
        });
        let shift = Shift { ms: 61_000 };
        shift.apply(&mut post);
        let moved = id + (61_000 << 22);
        assert_eq!(post["id"], json!(moved));
        assert_eq!(post["id_str"], json!(moved.to_string()));
        assert_eq!(
            moved & ((1 << 22) - 1),
            id & ((1 << 22) - 1),
            "low bits kept"
        );
        assert_eq!(post["in_reply_to_status_id"], json!(reply + (61_000 << 22)));
        assert_eq!(
            post["in_reply_to_status_id_str"],
            json!((reply + (61_000 << 22)).to_string())
        );
        assert_eq!(post["quoted_status_id"], Value::Null);
        assert_eq!(post["created_at"], "Wed Oct 10 20:20:25 +0000 2018");
        assert_eq!(post["timestamp_ms"], "1539202825000");
        assert_eq!(post["user"]["id"], 12, "user ids stay");
        assert_eq!(post["edit_history"]["initial_tweet_id"], moved.to_string());
        assert_eq!(post["edit_history"]["edit_tweet_ids"][0], moved.to_string());
        assert_eq!(
            post["edit_controls"]["editable_until_ms"],
            json!(AT + 1_800_000 + 61_000)
        );
        assert_eq!(post["quoted_status"]["id"], json!((7 + 61_000u64) << 22));
        assert_eq!(
            post["quoted_status"]["created_at"],
            "Wed Oct 10 20:20:25 +0000 2018"
        );
        assert_eq!(line_time_ms(&post), Some(AT + 61_000));
    }

    #[test]
    fn a_shift_retimes_the_post_ids_of_events_but_not_user_ids() {
        let shift = Shift { ms: 1 };
        let mut delete = json!({"delete": {"status": {"id": 4194304, "id_str": "4194304", "user_id": 9},
                                          "timestamp_ms": "1000"}});
        shift.apply(&mut delete);
        assert_eq!(
            delete,
            json!({"delete": {"status": {"id": 8388608, "id_str": "8388608", "user_id": 9},
                              "timestamp_ms": "1001"}})
        );
        let mut protect = json!({"user_protect": {"id": 4194304, "timestamp_ms": "1000"}});
        shift.apply(&mut protect);
        assert_eq!(
            protect,
            json!({"user_protect": {"id": 4194304, "timestamp_ms": "1001"}})
        );
        let mut edit = json!({"tweet_edit": {"id": "8388609", "initial_tweet_id": "4194305",
                                             "edit_tweet_ids": ["4194305", "8388609"], "timestamp_ms": "5"}});
        shift.apply(&mut edit);
        assert_eq!(
            edit,
            json!({"tweet_edit": {"id": "12582913", "initial_tweet_id": "8388609",
                                  "edit_tweet_ids": ["8388609", "12582913"], "timestamp_ms": "6"}})
        );
        let mut scrub = json!({"scrub_geo": {"user_id": 3, "up_to_status_id": 4194304,
                                             "up_to_status_id_str": "4194304", "timestamp_ms": "1"}});
        shift.apply(&mut scrub);
        assert_eq!(scrub["scrub_geo"]["up_to_status_id_str"], "8388608");
        assert_eq!(scrub["scrub_geo"]["user_id"], 3);
    }

    #[test]
    fn a_shift_retimes_v2_lines() {
        let mut line = json!({
            "data": {"id": "4194304", "created_at": "2018-10-10T20:19:24.000Z",
                     "edit_history_tweet_ids": ["4194304"],
                     "referenced_tweets": [{"type": "quoted", "id": "4194305"}]},
            "includes": {"tweets": [{"id": "4194305"}], "users": [{"id": "4194304"}]}
        });
        Shift { ms: 1000 }.apply(&mut line);
        let moved = (4194304u64 + (1000 << 22)).to_string();
        assert_eq!(line["data"]["id"], moved);
        assert_eq!(line["data"]["edit_history_tweet_ids"][0], moved);
        assert_eq!(line["data"]["created_at"], "2018-10-10T20:19:25.000Z");
        assert_eq!(
            line["data"]["referenced_tweets"][0]["id"],
            (4194305u64 + (1000 << 22)).to_string()
        );
        assert_eq!(
            line["includes"]["tweets"][0]["id"],
            line["data"]["referenced_tweets"][0]["id"]
        );
        assert_eq!(line["includes"]["users"][0]["id"], "4194304", "users stay");
    }

    #[test]
    fn ids_that_would_overflow_are_left_alone() {
        let mut post = json!({"id": i64::MAX as u64, "id_str": i64::MAX.to_string()});
        Shift { ms: 1 }.apply(&mut post);
        assert_eq!(post["id"], json!(i64::MAX as u64));
        let mut post = json!({"id": 1, "id_str": "1"});
        Shift { ms: -1 }.apply(&mut post);
        assert_eq!(post["id_str"], "1");
    }
}
