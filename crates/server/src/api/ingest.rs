//! The ingest API (docs/operator-interface.md, "Ingest API"): NDJSON posts in, matched and delivered as
//! soon as they are accepted; compliance events (`delete`, `tweet_edit`, …) in the same
//! body go to the compliance streams (docs/compliance.md).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sluice_model::{check_line, compliance, edit, parse_post};

use super::admin::require_admin;
use super::body::UnreadBody;
use super::error::{ApiError, json_response};
use crate::pipeline::{IngestedPost, PublishError};
use crate::post::{ParsedPost, PostBody};
use crate::state::AppState;
use crate::telemetry;

/// The query of an ingest request: the datacenter the posts came from.
#[derive(Deserialize)]
pub struct IngestQuery {
    datacenter: Option<String>,
}

/// What one ingest body came to: the posts and events accepted (stored, or duplicates of
/// ones stored before) and the lines refused with their reasons.
#[derive(Debug, Serialize)]
pub struct IngestOutcome {
    /// Lines accepted.
    pub accepted: usize,
    /// Lines refused, each with its 1-based number in the body.
    pub rejected: Vec<Rejected>,
}

/// One refused line of an ingest body.
#[derive(Debug, Serialize)]
pub struct Rejected {
    /// Its number in the body, from 1.
    pub line: usize,
    /// Why it was refused.
    pub error: String,
}

/// `POST /ingest[?datacenter=NAME]`.
pub async fn ingest(
    State(state): State<AppState>,
    Query(query): Query<IngestQuery>,
    headers: HeaderMap,
    body: UnreadBody,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let settings = &state.settings;
    let body = body
        .read_chunks(settings.ingest_body_limit, settings.body_read_timeout)
        .await?;
    let outcome = ingest_lines(&state, &body, query.datacenter.as_deref())
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(json_response(
        StatusCode::OK,
        sluice_wire::to_vec(&outcome),
        false,
    ))
}

/// What the ingest API does with a body of NDJSON lines once the caller is authorized:
/// checks every line, publishes the accepted ones and returns once they are stored (see
/// [`crate::pipeline::PostBus::publish`]). The one way in for posts from outside, shared
/// by `POST /ingest` and the in-process post sources (`sluice serve --source`). `body` is
/// the body in the pieces it arrived in (one piece is fine).
/// `datacenter`: where the posts came from (`None` or empty: this server's own). An error
/// means none of the accepted lines was stored.
pub async fn ingest_lines(
    state: &AppState,
    body: &[Bytes],
    datacenter: Option<&str>,
) -> Result<IngestOutcome, PublishError> {
    let datacenter: Arc<str> = match datacenter {
        Some(dc) if !dc.is_empty() => dc.into(),
        _ => state.settings.datacenter.as_str().into(),
    };
    let (posts, rejected) = split_posts(body, &datacenter);
    telemetry::posts_ingested(posts.len() as u64);
    telemetry::posts_rejected(rejected.len() as u64);
    let accepted = posts.len();
    state.bus.publish(posts).await?;
    Ok(IngestOutcome { accepted, rejected })
}

/// Validates each line; returns the accepted posts and the rejected lines (1-based). This is
/// the one parse of a post on its way through sluice (a post given edit metadata is stored
/// as a copy, which is parsed too): the id it reads travels with the post
/// ([`IngestedPost::id`]), so the pipeline and the cluster backend need not read it again,
/// and so does the view it parsed ([`IngestedPost::view`]), which this node's matching
/// uses instead of parsing the post again.
fn split_posts(body: &[Bytes], datacenter: &Arc<str>) -> (Vec<IngestedPost>, Vec<Rejected>) {
    let mut posts = Vec::new();
    let mut rejected = Vec::new();
    for_each_line(body, |index, bytes| match check(bytes) {
        Ok((body, id)) => posts.push(IngestedPost {
            body,
            id,
            datacenter: datacenter.clone(),
        }),
        Err(error) => rejected.push(Rejected {
            line: index + 1,
            error,
        }),
    });
    (posts, rejected)
}

/// One line: a compliance event (checked in full) or a post (checked, and given X's edit
/// metadata of an unedited post when it has none: docs/compliance.md). Returns the bytes
/// to store, for a post with the view parsed to check it, which goes on to the matching
/// threads, and the id they route by (the post's; the event's post or user).
fn check(bytes: Bytes) -> Result<(PostBody, u64), String> {
    if compliance::is_event(&bytes) {
        let event = compliance::parse_event(&bytes).map_err(|e| e.to_string())?;
        return Ok((PostBody::Raw(bytes), event.routing_id()));
    }
    let parsed =
        ParsedPost::try_new(bytes, |bytes| check_line(bytes)).map_err(|e| e.to_string())?;
    let post = parsed.borrow_dependent();
    // `check_line` refuses a post without an id; the id read here travels with the post.
    let id = post
        .id()
        .ok_or_else(|| "post has no numeric id/id_str".to_owned())?;
    match edit::with_unedited_metadata(parsed.borrow_owner(), post) {
        None => Ok((PostBody::Parsed(parsed), id)),
        Some(with_metadata) => {
            // The post to store is now a copy. The view of the original would keep its
            // piece of the request body alive until delivery, so the copy is parsed
            // instead: the view is always of the bytes stored.
            let copy = Bytes::from(with_metadata);
            let body = match ParsedPost::try_new_or_recover(copy, |bytes| parse_post(bytes)) {
                Ok(parsed) => PostBody::Parsed(parsed),
                Err((copy, _)) => PostBody::Raw(copy),
            };
            Ok((body, id))
        }
    }
}

/// Calls `each` with the index (from 0) and the bytes of every line of a body that arrived
/// in `chunks` that is not blank, trimmed of surrounding whitespace (a CR before the LF
/// included). Lines end at `\n`; the last one is what follows the last `\n`. A line is a
/// slice of its chunk when it lies in one, and a copy of its pieces only when it spans
/// chunks: gathering the whole body into one buffer first copied every post once more
/// (docs/performance.md, "The ingest body in its pieces"), and a chunk's end cuts a line
/// a few times per request.
fn for_each_line(chunks: &[Bytes], mut each: impl FnMut(usize, Bytes)) {
    // The start of the line a chunk's end cut, as a slice of that chunk until a later
    // chunk adds to it.
    enum Head {
        Empty,
        Slice(Bytes),
        Joined(BytesMut),
    }
    impl Head {
        /// The line so far with `more` of it after: one buffer, made on the first join.
        fn join(self, more: &[u8]) -> BytesMut {
            let mut joined = match self {
                Head::Empty => BytesMut::new(),
                Head::Slice(line) => BytesMut::from(&line[..]),
                Head::Joined(joined) => joined,
            };
            joined.extend_from_slice(more);
            joined
        }
    }
    /// A line that was cut (a slice of one chunk, or joined from several), trimmed.
    fn emit(each: &mut impl FnMut(usize, Bytes), index: usize, line: Bytes) {
        let range = trim(&line, 0, line.len());
        if !range.is_empty() {
            each(index, line.slice(range));
        }
    }
    let mut head = Head::Empty;
    let mut index = 0;
    for chunk in chunks {
        let mut start = 0;
        // memchr finds the line ends a word at a time: splitting byte by byte was most of
        // the splitting's time at 20,000 posts/s (about 1.5 µs a 4 KB post).
        for end in memchr::memchr_iter(b'\n', chunk) {
            match std::mem::replace(&mut head, Head::Empty) {
                Head::Empty => {
                    // The usual line: trimmed, then sliced once.
                    let range = trim(chunk, start, end);
                    if !range.is_empty() {
                        each(index, chunk.slice(range));
                    }
                }
                // The chunk adds nothing before the line end: the slice is the line.
                Head::Slice(line) if end == 0 => emit(&mut each, index, line),
                head => emit(&mut each, index, head.join(&chunk[..end]).freeze()),
            }
            index += 1;
            start = end + 1;
        }
        if start == chunk.len() {
            continue;
        }
        head = match head {
            Head::Empty => Head::Slice(chunk.slice(start..)),
            head => Head::Joined(head.join(&chunk[start..])),
        };
    }
    match head {
        Head::Empty => {}
        Head::Slice(line) => emit(&mut each, index, line),
        Head::Joined(joined) => emit(&mut each, index, joined.freeze()),
    }
}

fn trim(body: &[u8], mut start: usize, mut end: usize) -> std::ops::Range<usize> {
    while start < end && body[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && body[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_validated_and_numbered_from_one() {
        let body = Bytes::from_static(
            b"{\"id\":1,\"created_at\":\"Wed Oct 10 20:19:24 +0000 2018\"}\r\n\n not json\n{\"id_str\":\"2\"}\n{\"id\":3,\"created_at\":\"Thu Oct 11 20:19:24 +0000 2018\"}\n{\"user_protect\":{\"id\":9,\"timestamp_ms\":\"1\"}}\n{\"delete\":{\"status\":{}}}",
        );
        let (posts, rejected) = split_posts(&[body], &Arc::from("local"));
        assert_eq!(posts.len(), 3);
        // A post keeps its bytes, with X's edit metadata of an unedited post added.
        let first = &posts[0].bytes()[..];
        let original = b"{\"id\":1,\"created_at\":\"Wed Oct 10 20:19:24 +0000 2018\"";
        assert!(first.starts_with(original));
        assert!(first[original.len()..].starts_with(b",\"edit_history\":"));
        // An event routes by its user (or post), and keeps its bytes.
        assert_eq!((posts[0].id, posts[1].id, posts[2].id), (1, 3, 9));
        // A post goes on with its view, of the bytes stored (with the metadata added); an
        // event with none.
        for post in &posts[..2] {
            let view = post.view().expect("a post's view");
            assert_eq!(view.id(), Some(post.id));
            assert!(view.edit_history.is_some());
        }
        assert!(posts[2].view().is_none());
        assert_eq!(
            &posts[2].bytes()[..],
            b"{\"user_protect\":{\"id\":9,\"timestamp_ms\":\"1\"}}"
        );
        let lines: Vec<usize> = rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4, 7]);
        assert!(rejected[1].error.contains("created_at"));
        assert_eq!(rejected[2].error, "delete event: status.id is missing");
    }

    /// A body of posts that already carry their edit metadata (so each is stored as sent),
    /// with blank lines, CRLF, a bad line and no final line end.
    fn body_in_pieces_test_body() -> Vec<u8> {
        let mut body = Vec::new();
        for id in 1..=6 {
            body.extend_from_slice(
                format!(
                    "{{\"id\":{id},\"created_at\":\"Wed Oct 10 20:19:24 +0000 2018\",\"edit_history\":null}}{}",
                    if id % 2 == 0 { "\r\n\n" } else { "\n" }
                )
                .as_bytes(),
            );
            if id == 3 {
                body.extend_from_slice(b"not a post\n");
            }
        }
        // No line end after the last post.
        body.truncate(body.len() - 3);
        body
    }

    /// `whole` cut at each of `cuts` (ascending), each piece in memory of its own, as
    /// separate reads would give it.
    fn pieces(whole: &[u8], cuts: &[usize]) -> Vec<Bytes> {
        let mut chunks = Vec::new();
        let mut from = 0;
        for &at in cuts.iter().chain([&whole.len()]) {
            chunks.push(Bytes::from(whole[from..at].to_vec()));
            from = at;
        }
        chunks
    }

    #[test]
    fn a_body_in_pieces_gives_the_posts_of_the_whole_without_copying_them() {
        let whole = body_in_pieces_test_body();
        let local = Arc::from("local");
        let (want, want_rejected) = split_posts(&[Bytes::from(whole.clone())], &local);
        assert_eq!(want.len(), 6);
        let bytes = |posts: &[IngestedPost]| -> Vec<Vec<u8>> {
            posts.iter().map(|p| p.bytes().to_vec()).collect()
        };
        let lines =
            |rejected: &[Rejected]| -> Vec<usize> { rejected.iter().map(|r| r.line).collect() };
        // Every cut into two pieces, and into three at every pair of cuts a few bytes
        // apart: the same posts and the same rejected line numbers.
        let mut cuts: Vec<Vec<usize>> = (0..=whole.len()).map(|at| vec![at]).collect();
        for first in (0..whole.len()).step_by(7) {
            for second in (first..=whole.len()).step_by(11) {
                cuts.push(vec![first, second]);
            }
        }
        for cut in cuts {
            let chunks = pieces(&whole, &cut);
            let (posts, rejected) = split_posts(&chunks, &local);
            assert_eq!(bytes(&posts), bytes(&want), "cut at {cut:?}");
            assert_eq!(lines(&rejected), lines(&want_rejected), "cut at {cut:?}");
        }
        // A post inside one piece is that piece's bytes, not a copy.
        let chunks = pieces(&whole, &[whole.len() / 2]);
        let (posts, _) = split_posts(&chunks, &local);
        let first = chunks[0].as_ptr_range();
        assert!(first.contains(&posts[0].bytes().as_ptr()));
        let last = chunks[1].as_ptr_range();
        assert!(last.contains(&posts[5].bytes().as_ptr()));
        // Nor is one whose LF the next piece begins with, after its CR or not (the first
        // post ends with an LF, the second with CR LF).
        let lf = whole.iter().position(|&b| b == b'\n').unwrap();
        let cr_lf = whole.windows(2).position(|w| w == b"\r\n").unwrap() + 1;
        for (at, post) in [(lf, 0), (cr_lf, 1)] {
            let chunks = pieces(&whole, &[at]);
            let (posts, _) = split_posts(&chunks, &local);
            let first = chunks[0].as_ptr_range();
            assert!(first.contains(&posts[post].bytes().as_ptr()), "cut at {at}");
        }
    }

    #[test]
    fn a_post_with_a_null_edit_history_is_stored_as_sent() {
        // Given the metadata too, it would hold the member twice and parse nowhere again:
        // matched live (on its view), never on replay.
        let line =
            b"{\"id\":4,\"created_at\":\"Wed Oct 10 20:19:24 +0000 2018\",\"edit_history\":null}";
        let (posts, rejected) = split_posts(&[Bytes::from_static(line)], &Arc::from("local"));
        assert!(rejected.is_empty());
        assert_eq!(&posts[0].bytes()[..], &line[..]);
        assert!(sluice_model::parse_post(posts[0].bytes()).is_ok());
        assert!(posts[0].view().is_some(), "a post's view");
    }
}
