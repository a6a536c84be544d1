//! What compliance events mean for the posts streams (docs/compliance.md): once an event
//! has arrived, backfill, recovery and replay no longer send what it takes away.
//!
//! - `delete` (and `drop` until `undrop`): that post;
//! - `user_delete`, `user_suspend`, `user_protect` (until the matching `user_un…`): every
//!   post of that user;
//! - `scrub_geo`: the location fields (`geo`, `coordinates`, `place`) of that user's
//!   posts up to the named one are sent as `null`;
//! - `status_withheld`, `user_withheld`: the post (or every post of the user) is sent with
//!   the countries it is withheld in, in `withheld_in_countries` (on the user object for
//!   `user_withheld`), as X marks withheld posts; each event's list replaces the last;
//! - an edit (`tweet_edit`, or a post whose own `edit_history` names earlier versions):
//!   a Replay job sends the final version only, as X's Replay does; a delete of any
//!   version takes away every version of the post.
//!
//! Live delivery is concerned only where it lags: a post is normally delivered live
//! before any event about it can arrive (a post and its delete in one batch go out in
//! that order, as on X), but on a single node a batch that delivery reaches after a
//! later batch's events were taken in is sent as a replay would send it
//! ([`Compliance::events_logged_after`]). The compliance firehose itself carries the
//! events (see [`crate::delivery::select`]).
//!
//! Every event is handed to [`Compliance::receive`] before delivery sees its batch: on a
//! single node by the thread that appends it to the post log, before ingest answers
//! ([`Compliance::receive_logged`]); in cluster mode by the pipeline. So the state is the
//! same on every node. On a single node the events are also kept in the store, by a
//! writer thread of their own so the pipeline never waits on the disk, and read back at
//! start.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use sluice_model::compliance::{self, ComplianceEvent, EventKind};
use sluice_model::edit;
use sluice_model::enrich::{ComplianceRewrite, compliance_rewrite};
use sluice_model::{PostView, parse_post};
use sluice_store::Store;
use tokio::sync::mpsc;

use crate::clock::now_ms;

/// The reasons a user's posts are withheld from replays; each is lifted by its own event.
#[derive(Debug, Default, Clone, Copy)]
struct UserHold {
    deleted: bool,
    suspended: bool,
    protected: bool,
}

impl UserHold {
    fn any(self) -> bool {
        self.deleted || self.suspended || self.protected
    }
}

/// What the events received so far take away from replays.
#[derive(Debug, Default)]
struct Effects {
    deleted: HashSet<u64>,
    dropped: HashSet<u64>,
    users: HashMap<u64, UserHold>,
    /// Per user, the last post id whose location is scrubbed.
    scrubbed: HashMap<u64, u64>,
    /// Versions of edited posts that a later version replaced.
    superseded: HashSet<u64>,
    /// Every known version of an edited post → the post's first version.
    first_version: HashMap<u64, u64>,
    /// First versions of edited posts of which some version was deleted.
    deleted_chains: HashSet<u64>,
    /// Posts withheld by `status_withheld` → the countries of its last event.
    withheld_posts: HashMap<u64, Vec<String>>,
    /// Users withheld by `user_withheld` → the countries of its last event.
    withheld_users: HashMap<u64, Vec<String>>,
}

impl Effects {
    fn apply(&mut self, event: &ComplianceEvent) {
        let status = event.status_id;
        let user = event.user_id;
        let mut hold = |change: fn(&mut UserHold)| {
            if let Some(user) = user {
                let hold = self.users.entry(user).or_default();
                change(hold);
                if !hold.any() {
                    self.users.remove(&user);
                }
            }
        };
        match event.kind {
            EventKind::Delete => {
                if let Some(status) = status {
                    self.deleted.insert(status);
                    if let Some(&first) = self.first_version.get(&status) {
                        self.deleted_chains.insert(first);
                    }
                }
            }
            EventKind::Drop => {
                self.dropped.extend(status);
            }
            EventKind::Undrop => {
                if let Some(status) = status {
                    self.dropped.remove(&status);
                }
            }
            EventKind::UserDelete => hold(|h| h.deleted = true),
            EventKind::UserUndelete => hold(|h| h.deleted = false),
            EventKind::UserSuspend => hold(|h| h.suspended = true),
            EventKind::UserUnsuspend => hold(|h| h.suspended = false),
            EventKind::UserProtect => hold(|h| h.protected = true),
            EventKind::UserUnprotect => hold(|h| h.protected = false),
            EventKind::ScrubGeo => {
                if let (Some(user), Some(up_to)) = (user, status) {
                    let last = self.scrubbed.entry(user).or_default();
                    *last = (*last).max(up_to);
                }
            }
            EventKind::TweetEdit => self.edited(&event.edit_ids),
            EventKind::StatusWithheld => {
                if let Some(status) = status {
                    self.withheld_posts.insert(status, event.countries.clone());
                }
            }
            EventKind::UserWithheld => {
                if let Some(user) = user {
                    self.withheld_users.insert(user, event.countries.clone());
                }
            }
        }
    }

    /// Takes in the versions of an edited post, oldest first: all but the last are
    /// superseded; a version deleted earlier takes the whole post away.
    fn edited(&mut self, versions: &[u64]) {
        // A later edit that arrived first has superseded the last version here already:
        // it stays superseded.
        let Some((_, earlier)) = versions.split_last() else {
            return;
        };
        let first = versions[0];
        self.superseded.extend(earlier);
        for &version in versions {
            self.first_version.insert(version, first);
            if self.deleted.contains(&version) {
                self.deleted_chains.insert(first);
            }
        }
    }

    /// Whether `post_id` was deleted, itself or as a version of an edited post.
    fn is_deleted(&self, post_id: u64) -> bool {
        self.deleted.contains(&post_id)
            || self
                .first_version
                .get(&post_id)
                .is_some_and(|first| self.deleted_chains.contains(first))
    }

    fn is_empty(&self) -> bool {
        self.deleted.is_empty()
            && self.dropped.is_empty()
            && self.users.is_empty()
            && self.scrubbed.is_empty()
            && self.superseded.is_empty()
            && self.withheld_posts.is_empty()
            && self.withheld_users.is_empty()
    }
}

/// What a replay does with one post, by [`Compliance::verdict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send it as it is.
    Send,
    /// Send it rewritten: location fields set to `null` (`scrub_geo`), withheld countries
    /// set (`status_withheld`, `user_withheld`).
    SendRewritten(ComplianceRewrite),
    /// Leave it out (deleted, dropped, or its author deleted, suspended or protected).
    Withhold,
}

/// The compliance state of a node: see the module doc.
pub struct Compliance {
    effects: RwLock<Effects>,
    /// Whether any effect is in force: replays skip every check while none is.
    active: AtomicBool,
    /// Where the post log ends after the last batch with events that were taken in by
    /// [`Compliance::receive_logged`] (0: none).
    events_logged_to: AtomicU64,
    writer: Mutex<Option<Writer>>,
}

/// The thread that keeps received events in the store.
struct Writer {
    tx: mpsc::UnboundedSender<Vec<Vec<u8>>>,
    thread: JoinHandle<()>,
}

impl Compliance {
    /// A state with nothing in force and nothing kept (cluster mode: every node receives
    /// every event from the backend; tests).
    pub fn in_memory() -> Arc<Self> {
        Arc::new(Self {
            effects: RwLock::default(),
            active: AtomicBool::new(false),
            events_logged_to: AtomicU64::new(0),
            writer: Mutex::new(None),
        })
    }

    /// The state the events kept in `store` leave (those received before `kept_from_ms`
    /// are dropped first: the posts they were about have left the post log), keeping the
    /// events received from now on there too.
    pub fn kept_in(
        store: Arc<Store>,
        kept_from_ms: i64,
    ) -> Result<Arc<Self>, sluice_store::StoreError> {
        let pruned = store.prune_compliance_events(kept_from_ms)?;
        let lines = store.compliance_events()?;
        let state = Self::in_memory();
        {
            let mut effects = state.effects.write().expect("compliance lock");
            for line in &lines {
                if let Ok(event) = compliance::parse_event(line) {
                    effects.apply(&event);
                }
            }
            state.active.store(!effects.is_empty(), Ordering::Release);
        }
        tracing::info!(
            events = lines.len(),
            pruned,
            "compliance events loaded from the store"
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("sluice-compliance".into())
            .spawn(move || keep_events(&store, rx))
            .expect("spawning the compliance writer");
        *state.writer.lock().expect("compliance writer lock") = Some(Writer { tx, thread });
        Ok(state)
    }

    /// Takes in the events among `lines`, in order, and the versions an edited post's
    /// own `edit_history` names (as the `tweet_edit` event X would send for it, which is
    /// what is kept in the store for it); other posts are passed over. Returns whether
    /// any event was taken in.
    pub fn receive<'a>(&self, lines: impl IntoIterator<Item = &'a [u8]>) -> bool {
        let mut events = Vec::new();
        let mut kept = Vec::new();
        for line in lines {
            if compliance::is_event(line) {
                if let Ok(event) = compliance::parse_event(line) {
                    events.push(event);
                    kept.push(line.to_vec());
                }
            } else if let Some(versions) = edit::edit_versions(line) {
                let event = tweet_edit_event(&versions);
                if let Ok(parsed) = compliance::parse_event(&event) {
                    events.push(parsed);
                    kept.push(event);
                }
            }
        }
        if events.is_empty() {
            return false;
        }
        if let Some(writer) = &*self.writer.lock().expect("compliance writer lock") {
            let _ = writer.tx.send(kept);
        }
        let mut effects = self.effects.write().expect("compliance lock");
        for event in &events {
            effects.apply(event);
        }
        self.active.store(!effects.is_empty(), Ordering::Release);
        true
    }

    /// [`Compliance::receive`] for a batch the post log holds up to `next_seq` (the
    /// sequence number after its last line): remembered, so that delivery can tell a
    /// post logged before an event in force ([`Compliance::events_logged_after`]).
    pub fn receive_logged<'a>(&self, lines: impl IntoIterator<Item = &'a [u8]>, next_seq: u64) {
        if self.receive(lines) {
            self.events_logged_to.fetch_max(next_seq, Ordering::AcqRel);
        }
    }

    /// Whether events logged after the batch that ends at `next_seq` are in force: live
    /// delivery of that batch lags behind them and must send its posts as a replay
    /// would. False in the usual case, where delivery keeps up with the log. (A batch's
    /// own events follow its posts: they do not hold the posts back.)
    pub fn events_logged_after(&self, next_seq: u64) -> bool {
        self.events_logged_to.load(Ordering::Acquire) > next_seq
    }

    /// A logged line as compliance lets it be sent now: as it is, rewritten (scrubbed of
    /// location by `scrub_geo`, marked with the countries it is withheld in), or not at
    /// all (deleted, or its author deleted, suspended or protected; with `final_edits`, a
    /// Replay job's, also a version of an edited post that a later one replaced). Events
    /// and posts while no event is in force pass as they are, unparsed. `view`, the view
    /// ingest parsed of `raw` if there is one, spares parsing it again.
    pub fn sendable<'a>(
        &self,
        raw: &'a [u8],
        view: Option<&PostView<'_>>,
        final_edits: bool,
    ) -> Option<Cow<'a, [u8]>> {
        if !self.is_active() || compliance::is_event(raw) {
            return Some(Cow::Borrowed(raw));
        }
        let parsed;
        let view = match view {
            Some(view) => view,
            // Posts were checked at ingest; one that does not parse is for the router to
            // refuse.
            None => match parse_post(raw) {
                Ok(post) => {
                    parsed = post;
                    &parsed
                }
                Err(_) => return Some(Cow::Borrowed(raw)),
            },
        };
        let Some(id) = view.id() else {
            return Some(Cow::Borrowed(raw));
        };
        let author = view.user.as_ref().and_then(|u| u.id_str.or(u.id));
        match self.verdict(id, author, final_edits) {
            Verdict::Send => Some(Cow::Borrowed(raw)),
            Verdict::Withhold => None,
            Verdict::SendRewritten(rewrite) => Some(
                compliance_rewrite(raw, &rewrite)
                    .map(Cow::Owned)
                    .unwrap_or(Cow::Borrowed(raw)),
            ),
        }
    }

    /// Whether any event takes anything away from replays now.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// What a replay does with the post `post_id` by `user_id`; `final_edits` (a Replay
    /// job) also leaves out a version of an edited post that a later one replaced.
    pub fn verdict(&self, post_id: u64, user_id: Option<u64>, final_edits: bool) -> Verdict {
        if !self.is_active() {
            return Verdict::Send;
        }
        let effects = self.effects.read().expect("compliance lock");
        if effects.is_deleted(post_id)
            || effects.dropped.contains(&post_id)
            || (final_edits && effects.superseded.contains(&post_id))
        {
            return Verdict::Withhold;
        }
        if user_id.is_some_and(|user| effects.users.contains_key(&user)) {
            return Verdict::Withhold;
        }
        let scrubbed = user_id.and_then(|user| effects.scrubbed.get(&user));
        let rewrite = ComplianceRewrite {
            scrub_location: scrubbed.is_some_and(|&up_to| post_id <= up_to),
            withheld_in: effects.withheld_posts.get(&post_id).cloned(),
            user_withheld_in: user_id.and_then(|user| effects.withheld_users.get(&user).cloned()),
        };
        if rewrite == ComplianceRewrite::default() {
            Verdict::Send
        } else {
            Verdict::SendRewritten(rewrite)
        }
    }

    /// Stops the writer once it has kept every event received (shutdown).
    pub fn close(&self) {
        let writer = self.writer.lock().expect("compliance writer lock").take();
        if let Some(Writer { tx, thread }) = writer {
            drop(tx);
            let _ = thread.join();
        }
    }
}

/// The `tweet_edit` event of the post whose versions are `versions` (oldest first).
fn tweet_edit_event(versions: &[u64]) -> Vec<u8> {
    let ids: Vec<String> = versions.iter().map(u64::to_string).collect();
    let event = serde_json::json!({"tweet_edit": {
        "id": ids.last(),
        "initial_tweet_id": ids.first(),
        "edit_tweet_ids": ids,
        "timestamp_ms": now_ms().to_string(),
    }});
    serde_json::to_vec(&event).expect("a JSON value serializes")
}

/// The writer thread: keeps each batch of event lines, everything queued in one
/// transaction.
fn keep_events(store: &Store, mut rx: mpsc::UnboundedReceiver<Vec<Vec<u8>>>) {
    while let Some(first) = rx.blocking_recv() {
        let mut lines = first;
        while let Ok(more) = rx.try_recv() {
            lines.extend(more);
        }
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        if let Err(e) = store.add_compliance_events(&refs, now_ms()) {
            tracing::error!(
                events = refs.len(),
                "keeping compliance events in the store failed; replays after a restart \
                 may send what they took away: {e}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> Vec<u8> {
        line.as_bytes().to_vec()
    }

    fn receive(state: &Compliance, lines: &[Vec<u8>]) {
        state.receive(lines.iter().map(Vec::as_slice));
    }

    #[test]
    fn deletes_drops_and_user_holds_withhold_until_lifted() {
        let state = Compliance::in_memory();
        assert!(!state.is_active());
        assert_eq!(state.verdict(1, Some(10), false), Verdict::Send);
        receive(
            &state,
            &[
                event(r#"{"created_at":"x","id":99}"#),
                event(r#"{"delete":{"status":{"id":1,"user_id":10},"timestamp_ms":"1"}}"#),
                event(r#"{"drop":{"status":{"id":2,"user_id":10},"timestamp_ms":"1"}}"#),
                event(r#"{"user_suspend":{"id":20,"timestamp_ms":"1"}}"#),
                event(r#"{"user_protect":{"id":20,"timestamp_ms":"1"}}"#),
            ],
        );
        assert!(state.is_active());
        assert_eq!(state.verdict(1, Some(10), false), Verdict::Withhold);
        assert_eq!(state.verdict(2, Some(10), false), Verdict::Withhold);
        assert_eq!(state.verdict(3, Some(10), false), Verdict::Send);
        assert_eq!(state.verdict(4, Some(20), false), Verdict::Withhold);
        // Each hold is lifted by its own event.
        receive(
            &state,
            &[
                event(r#"{"undrop":{"status":{"id":2},"timestamp_ms":"1"}}"#),
                event(r#"{"user_unsuspend":{"id":20,"timestamp_ms":"1"}}"#),
            ],
        );
        assert_eq!(state.verdict(2, Some(10), false), Verdict::Send);
        assert_eq!(state.verdict(4, Some(20), false), Verdict::Withhold);
        receive(
            &state,
            &[event(r#"{"user_unprotect":{"id":20,"timestamp_ms":"1"}}"#)],
        );
        assert_eq!(state.verdict(4, Some(20), false), Verdict::Send);
        // A delete is for good.
        assert_eq!(state.verdict(1, None, false), Verdict::Withhold);
    }

    #[test]
    fn scrub_geo_covers_a_users_posts_up_to_the_named_one() {
        let state = Compliance::in_memory();
        receive(
            &state,
            &[event(
                r#"{"scrub_geo":{"user_id":5,"up_to_status_id":100,"timestamp_ms":"1"}}"#,
            )],
        );
        let scrubbed = Verdict::SendRewritten(ComplianceRewrite {
            scrub_location: true,
            ..ComplianceRewrite::default()
        });
        assert_eq!(state.verdict(100, Some(5), false), scrubbed);
        assert_eq!(state.verdict(101, Some(5), false), Verdict::Send);
        assert_eq!(state.verdict(50, Some(6), false), Verdict::Send);
    }

    #[test]
    fn withheld_events_mark_the_post_or_every_post_of_the_user_with_the_last_list() {
        let state = Compliance::in_memory();
        receive(
            &state,
            &[
                event(
                    r#"{"status_withheld":{"status":{"id":1,"user_id":5},"withheld_in_countries":["XY"],"timestamp_ms":"1"}}"#,
                ),
                event(
                    r#"{"status_withheld":{"status":{"id":1,"user_id":5},"withheld_in_countries":["DE","FR"],"timestamp_ms":"2"}}"#,
                ),
                event(
                    r#"{"user_withheld":{"user":{"id":6},"withheld_in_countries":["TR"],"timestampMs":"2014-08-27T23:49:41.839+00:00"}}"#,
                ),
            ],
        );
        let countries = |list: &[&str]| Some(list.iter().map(|c| (*c).to_owned()).collect());
        let post = Verdict::SendRewritten(ComplianceRewrite {
            withheld_in: countries(&["DE", "FR"]),
            ..ComplianceRewrite::default()
        });
        assert_eq!(state.verdict(1, Some(5), false), post);
        assert_eq!(state.verdict(2, Some(5), false), Verdict::Send);
        let user = Verdict::SendRewritten(ComplianceRewrite {
            user_withheld_in: countries(&["TR"]),
            ..ComplianceRewrite::default()
        });
        assert_eq!(state.verdict(3, Some(6), true), user);
        // An empty list is kept as said: withheld nowhere any more.
        receive(
            &state,
            &[event(
                r#"{"user_withheld":{"user":{"id":6},"withheld_in_countries":[],"timestampMs":"2014-08-28T23:49:41.839+00:00"}}"#,
            )],
        );
        let none = Verdict::SendRewritten(ComplianceRewrite {
            user_withheld_in: countries(&[]),
            ..ComplianceRewrite::default()
        });
        assert_eq!(state.verdict(3, Some(6), true), none);
    }

    #[test]
    fn a_replay_job_sends_an_edited_posts_final_version_only() {
        let state = Compliance::in_memory();
        receive(
            &state,
            &[event(
                r#"{"tweet_edit":{"id":"3","initial_tweet_id":"1","edit_tweet_ids":["1","2","3"],"timestamp_ms":"1"}}"#,
            )],
        );
        for superseded in [1, 2] {
            assert_eq!(state.verdict(superseded, None, true), Verdict::Withhold);
            // Backfill and recovery send what was delivered: every version.
            assert_eq!(state.verdict(superseded, None, false), Verdict::Send);
        }
        assert_eq!(state.verdict(3, None, true), Verdict::Send);
        // A version whose own history names earlier ones counts as the same event.
        receive(
            &state,
            &[event(
                r#"{"id":6,"edit_history":{"initial_tweet_id":"5","edit_tweet_ids":["5","6"]}}"#,
            )],
        );
        assert_eq!(state.verdict(5, None, true), Verdict::Withhold);
        assert_eq!(state.verdict(6, None, true), Verdict::Send);
        // So does an edited Quote whose quoted post, unedited, comes first in its bytes.
        receive(
            &state,
            &[event(
                r#"{"id":32,"quoted_status":{"id":9,"edit_history":{"initial_tweet_id":"9","edit_tweet_ids":["9"]}},"edit_history":{"initial_tweet_id":"31","edit_tweet_ids":["31","32"]}}"#,
            )],
        );
        assert_eq!(state.verdict(31, None, true), Verdict::Withhold);
        assert_eq!(state.verdict(32, None, true), Verdict::Send);
        assert_eq!(state.verdict(9, None, true), Verdict::Send);
    }

    #[test]
    fn deleting_any_version_deletes_every_version() {
        let state = Compliance::in_memory();
        receive(
            &state,
            &[
                event(r#"{"delete":{"status":{"id":11},"timestamp_ms":"1"}}"#),
                event(
                    r#"{"tweet_edit":{"id":"12","initial_tweet_id":"11","edit_tweet_ids":["11","12"],"timestamp_ms":"1"}}"#,
                ),
                event(
                    r#"{"tweet_edit":{"id":"22","initial_tweet_id":"21","edit_tweet_ids":["21","22"],"timestamp_ms":"1"}}"#,
                ),
                event(r#"{"delete":{"status":{"id":22},"timestamp_ms":"1"}}"#),
            ],
        );
        for id in [11, 12, 21, 22] {
            assert_eq!(state.verdict(id, None, false), Verdict::Withhold, "{id}");
        }
    }

    #[test]
    fn an_edit_read_from_a_post_is_kept_as_its_tweet_edit_event() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let state = Compliance::kept_in(store.clone(), 0).unwrap();
        receive(
            &state,
            &[event(
                r#"{"id":9,"edit_history":{"initial_tweet_id":"8","edit_tweet_ids":["8","9"]}}"#,
            )],
        );
        state.close();
        let again = Compliance::kept_in(store, 0).unwrap();
        assert_eq!(again.verdict(8, None, true), Verdict::Withhold);
        assert_eq!(again.verdict(9, None, true), Verdict::Send);
        again.close();
    }

    #[test]
    fn kept_events_are_in_force_again_after_a_restart_unless_too_old() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let state = Compliance::kept_in(store.clone(), 0).unwrap();
        receive(
            &state,
            &[event(
                r#"{"delete":{"status":{"id":7},"timestamp_ms":"1"}}"#,
            )],
        );
        state.close();
        let again = Compliance::kept_in(store.clone(), 0).unwrap();
        assert_eq!(again.verdict(7, None, false), Verdict::Withhold);
        again.close();
        let later = Compliance::kept_in(store, now_ms() + 1).unwrap();
        assert_eq!(later.verdict(7, None, false), Verdict::Send);
        later.close();
    }
}
