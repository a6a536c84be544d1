//! The live view of a PowerTrack stream: its matching posts, each with its matching
//! rules, as server-sent events, from a tap on the stream ([`crate::delivery::tap`]). The
//! tap is not a connection: it does not count towards the stream's cap, and when the
//! browser cannot keep up it misses posts rather than slow delivery to the customer's
//! clients. The event stream ends when the session does or the stream is deleted (both
//! checked at every heartbeat), at shutdown, and when the browser goes away.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::customer::{as_customer, powertrack_stream};
use super::session::{Role, Session};
use super::{ConsoleError, session};
use crate::registry::LiveStream;
use crate::state::AppState;

/// Characters of a post's text the view gets.
const MAX_TEXT_CHARS: usize = 1_000;

/// `GET /console/api/streams/{label}/live`: `text/event-stream` of `post` events
/// (`{"id","text","user","created_at","matching_rules":[{"id","tag"}]}`); 429 when the
/// stream already has as many live views as it may.
pub(super) async fn live(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(label): Path<String>,
) -> Result<Response, ConsoleError> {
    let (account, _) = as_customer(&state, &headers, &method)?;
    let stream = powertrack_stream(&state, &account, &label)?;
    let tap = stream.taps.attach().ok_or_else(|| {
        ConsoleError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many live views are open on this stream: close one and try again.",
        )
    })?;
    let cookie = session::session_id(&headers).unwrap_or_default().to_owned();
    let feed = Feed {
        tap,
        state,
        cookie,
        stream,
        opened: false,
    };
    let events = stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok::<_, std::convert::Infallible>(event), feed))
    });
    let mut response = Response::new(Body::from_stream(events));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// What one live view reads from, and whose session it checks.
struct Feed {
    tap: mpsc::Receiver<Bytes>,
    state: AppState,
    cookie: String,
    /// The stream tapped: the view ends once it is deleted.
    stream: Arc<LiveStream>,
    opened: bool,
}

impl Feed {
    /// The next chunk of the event stream; `None` ends it.
    async fn next(&mut self) -> Option<Bytes> {
        if !self.opened {
            self.opened = true;
            return Some(Bytes::from_static(b": live\n\n"));
        }
        loop {
            tokio::select! {
                message = self.tap.recv() => {
                    let message = message?;
                    if let Some(event) = post_event(&message) {
                        return Some(Bytes::from(format!("event: post\ndata: {event}\n\n")));
                    }
                }
                // Silence after which a comment line keeps the event stream (and proxies on
                // the way) open: the streams' heartbeat.
                () = tokio::time::sleep(self.state.settings.heartbeat) => {
                    if !self.still_wanted() {
                        return None;
                    }
                    return Some(Bytes::from_static(b": heartbeat\n\n"));
                }
                () = self.state.shutdown.cancelled() => return None,
            }
        }
    }

    /// Whether the session is still signed in (and its user not revoked since) and the
    /// stream still exists.
    fn still_wanted(&self) -> bool {
        let signed_in = match self.state.console.get(&self.cookie, Instant::now()) {
            Some(Session {
                role:
                    Role::Customer {
                        account,
                        username,
                        generation,
                    },
                ..
            }) => {
                self.state
                    .sessions
                    .generation(&crate::sessions::Credential::user(&account, &username))
                    == generation
            }
            _ => false,
        };
        let current = self.state.registry.get(&self.stream.key);
        signed_in && current.is_some_and(|c| Arc::ptr_eq(&c, &self.stream))
    }
}

/// The event of one matched message (a post with `matching_rules`, as delivered): what
/// the view shows of it. `None` for a message that is not such a post.
fn post_event(message: &[u8]) -> Option<String> {
    let post: Value = serde_json::from_slice(message.trim_ascii()).ok()?;
    let text = post
        .pointer("/extended_tweet/full_text")
        .or_else(|| post.get("text"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
    let rules: Vec<Value> = post
        .get("matching_rules")?
        .as_array()?
        .iter()
        .map(|rule| {
            let id = match &rule["id"] {
                Value::Number(n) => n.to_string(),
                other => other.as_str().unwrap_or_default().to_owned(),
            };
            json!({ "id": id, "tag": rule["tag"] })
        })
        .collect();
    let id = match &post["id_str"] {
        Value::String(s) => s.clone(),
        _ => post["id"].to_string(),
    };
    Some(
        json!({
            "id": id,
            "text": text,
            "user": post.pointer("/user/screen_name"),
            "created_at": post.get("created_at"),
            "matching_rules": rules,
        })
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matched_post_becomes_an_event_with_exact_rule_ids() {
        let message = br#"{"id":1,"id_str":"1","text":"hello","user":{"screen_name":"ann"},"matching_rules":[{"tag":"greet","id":1801234567890123456}]}
"#;
        let event: Value = serde_json::from_str(&post_event(message).unwrap()).unwrap();
        assert_eq!(event["id"], "1");
        assert_eq!(event["text"], "hello");
        assert_eq!(event["user"], "ann");
        assert_eq!(event["matching_rules"][0]["id"], "1801234567890123456");
        assert_eq!(event["matching_rules"][0]["tag"], "greet");
        assert!(post_event(b"not json").is_none());
        assert!(post_event(br#"{"id":1,"text":"no rules"}"#).is_none());
        let long = format!(
            r#"{{"id":2,"text":"{}","matching_rules":[]}}"#,
            "x".repeat(5_000)
        );
        let event: Value = serde_json::from_str(&post_event(long.as_bytes()).unwrap()).unwrap();
        assert_eq!(event["text"].as_str().unwrap().len(), MAX_TEXT_CHARS);
    }
}
