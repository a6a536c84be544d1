//! Matching the posts of a batch on every core: live delivery's costly step (walking the
//! node-wide index with the fields rules read, which ingest parsed already, or which are
//! parsed here for posts that come from the cluster) done ahead of routing
//! by named worker threads (`sluice-match-0`, `sluice-match-1`, …), each with its own
//! reader of the index, on chunks of the batch; the matches come back in post order and
//! the pipeline thread routes and frames the batch with them
//! ([`super::select::Selector::post_matched`]), so every connection still receives its
//! posts in ingest order.
//!
//! Why it is correct against the delivery mark ([`crate::delivery_mark`]): the pipeline
//! moves the mark, then [`super::fanout::Fanout::fan_out`] takes the streams with
//! connections, then the batch is matched here restricted to those streams
//! ([`super::select::Selector::only`]), then routed. Matching one post sees the rules
//! published when it starts, as the pipeline thread's own matching did; only the thread
//! changed, not the order of the steps. Nothing is matched across batches.
//!
//! Small batches are matched on the pipeline thread as before: waking the workers costs
//! more than matching a few posts.
//!
//! The same threads then compress the batch's large gzip segments, several at a time
//! ([`MatchWorkers::deflate`]; which ones: `fanout::queue_segments`), the other costly
//! step, which was about half of the pipeline thread's time: each segment is an
//! independent deflate stream ([`super::gzip`]), so they can be made in any order on any
//! thread, and the pipeline thread queues them in order once they are back.

use bytes::Bytes;
use sluice_matcher::{MatcherReader, Scratch};
use sluice_model::compliance::is_event;

use super::fanout::BatchPost;
use super::gzip::{Deflated, Deflater};
use super::select::{View, match_view};
use crate::registry::{NodeRuleKey, NodeRules};
use crate::workers::Workers;

/// Fewest posts in a chunk handed to a worker (and so, twice this, the smallest batch
/// matched on the workers).
const MIN_CHUNK: usize = 4;
/// Chunks per worker in a large batch, so that a worker that finishes early takes more.
const CHUNKS_PER_WORKER: usize = 4;

/// The matching threads of the pipeline: see the module doc.
pub struct MatchWorkers {
    workers: Workers<Worker>,
}

/// One matching thread's own state.
struct Worker {
    reader: MatcherReader<NodeRuleKey>,
    scratch: Scratch,
    /// One post's matches.
    found: Vec<NodeRuleKey>,
    /// This thread's compressor, for the batch's segments; made on first use (about 300
    /// KB), so a server without gzip connections has none.
    deflater: Option<Deflater>,
}

/// The matches of every post of a batch, in post order.
#[derive(Debug, Default)]
pub struct BatchMatches {
    /// Every post's matches, one after the other.
    keys: Vec<NodeRuleKey>,
    /// Where each post's matches end in `keys`.
    ends: Vec<usize>,
}

impl BatchMatches {
    /// The matches of post `index` of the batch, sorted.
    pub fn of(&self, index: usize) -> &[NodeRuleKey] {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.keys[start..self.ends[index]]
    }
}

impl MatchWorkers {
    /// `threads` matching threads reading `rules`; `None` for fewer than 2 (the pipeline
    /// thread then matches every post itself, as a single core would anyway).
    pub fn new(rules: &NodeRules, threads: usize) -> Option<Self> {
        if threads < 2 {
            return None;
        }
        let states = (0..threads)
            .map(|_| Worker {
                reader: rules.reader(),
                scratch: Scratch::default(),
                found: Vec::new(),
                deflater: None,
            })
            .collect();
        let workers = Workers::new("sluice-match", states).expect("spawning the matching threads");
        Some(Self { workers })
    }

    /// Matches every post of `posts` against the rules of the streams in `only` (sorted),
    /// on the workers, into `out`; `false` (and `out` untouched) when the batch is too small
    /// to be worth handing over.
    pub fn match_batch(
        &self,
        posts: &[BatchPost<'_>],
        only: &[u32],
        out: &mut BatchMatches,
    ) -> bool {
        if posts.len() < 2 * MIN_CHUNK {
            return false;
        }
        let chunk = posts
            .len()
            .div_ceil(self.workers.threads() * CHUNKS_PER_WORKER)
            .max(MIN_CHUNK);
        let chunks = self.workers.map_chunks(posts, chunk, |worker, posts| {
            let mut matches = BatchMatches::default();
            for post in posts {
                // The view ingest parsed, else the post parsed here (posts from the
                // cluster). Posts are validated at ingest; one that does not parse
                // matches nothing, and compliance events are never matched (ingest
                // gives them no view).
                let mut slot = View::new(post.view);
                let view = if post.view.is_some() || !is_event(post.raw) {
                    slot.get(post.raw)
                } else {
                    None
                };
                if let Some(view) = view {
                    match_view(
                        &worker.reader,
                        &mut worker.scratch,
                        view,
                        Some(only),
                        &mut worker.found,
                    );
                    matches.keys.extend_from_slice(&worker.found);
                }
                matches.ends.push(matches.keys.len());
            }
            matches
        });
        out.keys.clear();
        out.ends.clear();
        for chunk in chunks {
            let base = out.keys.len();
            out.keys.extend_from_slice(&chunk.keys);
            out.ends.extend(chunk.ends.iter().map(|end| base + end));
        }
        true
    }

    /// Compresses each of `segments` on the workers, one segment at a time per thread;
    /// returns them in the order given. The bytes are the same as one deflater would make
    /// of them in turn: every segment starts from a fresh compressor state.
    pub fn deflate(&self, segments: &[Bytes]) -> Vec<Deflated> {
        self.workers.map_chunks(segments, 1, |worker, chunk| {
            let deflater = worker.deflater.get_or_insert_with(Deflater::new);
            deflater.deflate(&chunk[0])
        })
    }
}
