//! The converter: one Jetstream message in, at most one ingest line out.

use hashlink::LruCache;
use serde::{Deserialize, Serialize};

use crate::at_uri::{AtUri, POST_COLLECTION};
use crate::created::{self, PostTime};
use crate::embed::{self, EmbedParts, Owner};
use crate::error::ConvertError;
use crate::facets;
use crate::ids::{post_id, post_id_at, user_id};
use crate::jetstream::{Commit, Event, PostRecord, ProfileRecord, Reply};
use crate::lang::x_lang;
use crate::tid::Tid;
use crate::x_post::{BlueskyOrigin, Entities, MediaList, XPost, XUser};

/// The collection of profile records (one per account, key `self`).
const PROFILE_COLLECTION: &str = "app.bsky.actor.profile";

/// Accounts remembered: handles, and display names and descriptions from profile records
/// (about 100 bytes each, more with a long description: some 10 to 30 MB).
pub const DEFAULT_HANDLES: usize = 100_000;
/// Converted posts remembered for quotes (about 2 KB each: some 20 MB).
pub const DEFAULT_RECENT_POSTS: usize = 10_000;

/// `source`: Bluesky does not say which client posted.
const SOURCE: &str = r#"<a href="https://bsky.app" rel="nofollow">Bluesky</a>"#;

/// Self-labels that mark a post's media as sensitive.
const SENSITIVE_LABELS: &[&str] = &["porn", "sexual", "nudity", "graphic-media", "gore"];

/// Converts Jetstream events (the JSON text of one WebSocket message, already
/// decompressed) into lines for sluice's ingest API.
///
/// It remembers, in bounded least-recently-used caches, what it learnt of each account
/// (the handle from `identity` events, for `screen_name`; the display name and description
/// from `app.bsky.actor.profile` records, for `name` and `description`) and the posts it
/// converted lately (by `at://` URI, so a quote of one carries it as `quoted_status`).
/// Nothing else is kept: ids are computed from the events alone ([`crate::post_id`]).
pub struct Converter {
    accounts: LruCache<String, Account>,
    recent: LruCache<String, RecentPost>,
}

/// What the converter learnt of one account. Dropped when it holds nothing.
#[derive(Debug, Default)]
struct Account {
    handle: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
}

impl Account {
    fn is_empty(&self) -> bool {
        self.handle.is_none() && self.display_name.is_none() && self.description.is_none()
    }
}

/// A post converted lately.
struct RecentPost {
    id: u64,
    /// The post as converted, without its own `quoted_status` (X nests one level).
    post: Box<XPost>,
}

/// One converted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// Jetstream's cursor for the event (microseconds since the UNIX epoch): where a
    /// consumer resumes from.
    pub time_us: u64,
    /// What the event becomes.
    pub output: Output,
}

/// What an event becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A new post: one NDJSON line (no newline) in X's native format.
    Post {
        /// The post's id ([`crate::post_id`]).
        id: u64,
        /// The line.
        line: Vec<u8>,
    },
    /// A deleted post: X's compliance `delete` event, as one line.
    Delete {
        /// The deleted post's id, the one its [`Output::Post`] had.
        id: u64,
        /// The line.
        line: Vec<u8>,
    },
    /// Nothing to ingest: `identity` events (after the handle is remembered), profile
    /// records (after the display name and description are), `account` events, other
    /// collections than posts, and updates of posts (Bluesky has no edits;
    /// an update cannot get a new id as an X edit would, as ids come from record keys).
    Nothing,
}

impl Default for Converter {
    fn default() -> Self {
        Self::new()
    }
}

impl Converter {
    /// A converter with the default cache sizes ([`DEFAULT_HANDLES`],
    /// [`DEFAULT_RECENT_POSTS`]).
    pub fn new() -> Self {
        Self::with_capacities(DEFAULT_HANDLES, DEFAULT_RECENT_POSTS)
    }

    /// A converter remembering at most `handles` accounts (handles and profiles) and
    /// `recent_posts` posts.
    pub fn with_capacities(handles: usize, recent_posts: usize) -> Self {
        Self {
            accounts: LruCache::new(handles.max(1)),
            recent: LruCache::new(recent_posts.max(1)),
        }
    }

    /// Converts one event. An error names what is missing or malformed; the caller logs it
    /// and goes on with the next event.
    pub fn convert(&mut self, event: &[u8]) -> Result<Converted, ConvertError> {
        let event = read_event(event)?;
        if !event.did.starts_with("did:") {
            return Err(ConvertError::new(format!(
                "did {:?} is not a DID",
                short(&event.did)
            )));
        }
        let output = match event.kind.as_str() {
            "commit" => {
                let commit = event
                    .commit
                    .as_ref()
                    .ok_or_else(|| ConvertError::new("commit is missing (kind \"commit\")"))?;
                self.commit(&event, commit)?
            }
            "identity" => {
                let identity = event
                    .identity
                    .as_ref()
                    .ok_or_else(|| ConvertError::new("identity is missing (kind \"identity\")"))?;
                // No handle: the old one no longer resolves.
                let handle = identity.handle.clone().filter(|h| !h.is_empty());
                self.update_account(&event.did, |account| account.handle = handle);
                Output::Nothing
            }
            // `account` (activation, takedown, deletion) and kinds added later.
            _ => Output::Nothing,
        };
        Ok(Converted {
            time_us: event.time_us,
            output,
        })
    }

    /// The handle last seen for `did`, if remembered.
    pub fn handle(&self, did: &str) -> Option<&str> {
        self.accounts.peek(did).and_then(|a| a.handle.as_deref())
    }

    /// Changes what is remembered of `did`, forgetting the account when nothing is left.
    fn update_account(&mut self, did: &str, change: impl FnOnce(&mut Account)) {
        let mut account = self.accounts.remove(did).unwrap_or_default();
        change(&mut account);
        if !account.is_empty() {
            self.accounts.insert(did.to_owned(), account);
        }
    }

    fn commit(&mut self, event: &Event, commit: &Commit) -> Result<Output, ConvertError> {
        if commit.collection == PROFILE_COLLECTION && commit.rkey == "self" {
            self.profile(event, commit);
            return Ok(Output::Nothing);
        }
        if commit.collection != POST_COLLECTION {
            return Ok(Output::Nothing);
        }
        if commit.rkey.is_empty() {
            return Err(ConvertError::new("commit.rkey is empty"));
        }
        match commit.operation.as_str() {
            "create" => self.create(event, commit),
            "update" => Ok(Output::Nothing),
            "delete" => Ok(self.delete(event, commit)),
            other => Err(ConvertError::new(format!(
                "commit.operation {:?} is not create, update or delete",
                short(other)
            ))),
        }
    }

    /// Remembers an account's display name and description from its profile record (or
    /// forgets them when the record is deleted). A profile record of an unexpected shape
    /// reads as empty: it is not an error, as nothing is ingested from it.
    fn profile(&mut self, event: &Event, commit: &Commit) {
        let profile = match (commit.operation.as_str(), &commit.record) {
            ("create" | "update", Some(record)) => {
                ProfileRecord::deserialize(record).unwrap_or_default()
            }
            _ => ProfileRecord::default(),
        };
        let non_empty = |text: Option<String>| text.filter(|t| !t.trim().is_empty());
        self.update_account(&event.did, |account| {
            account.display_name = non_empty(profile.display_name);
            account.description = non_empty(profile.description);
        });
    }

    fn create(&mut self, event: &Event, commit: &Commit) -> Result<Output, ConvertError> {
        let record = commit
            .record
            .as_ref()
            .ok_or_else(|| ConvertError::new("commit.record is missing (operation \"create\")"))?;
        let record: PostRecord = serde_path_to_error::deserialize(record)
            .map_err(|e| ConvertError::at_path("commit.record", e))?;
        let did = event.did.as_str();
        let rkey = commit.rkey.as_str();
        let time = post_time(&record.created_at, rkey, event.time_us)?;
        let id = match Tid::parse(rkey) {
            Some(_) => post_id(did, rkey),
            None => post_id_at(did, rkey, time.unix_ms),
        };
        let uri = AtUri::post(did, rkey);
        let mut post = self.build(event, commit, &record, id, &uri, time);
        // Remember the post for quotes, without its own quoted post.
        let quoted = post.quoted_status.take();
        let remembered = Box::new(post.clone());
        post.quoted_status = quoted;
        self.recent.insert(
            uri,
            RecentPost {
                id,
                post: remembered,
            },
        );
        let line = sluice_model::json::to_vec(&post).expect("the post model serialises");
        Ok(Output::Post { id, line })
    }

    /// X's post for a record.
    fn build(
        &mut self,
        event: &Event,
        commit: &Commit,
        record: &PostRecord,
        id: u64,
        uri: &str,
        time: PostTime,
    ) -> XPost {
        let did = event.did.as_str();
        let text = record.text.clone();
        let text_end = text.chars().count();
        let web_url = format!("https://bsky.app/profile/{did}/post/{}", commit.rkey);
        let mut entities = facets::entities(&text, &record.facets);
        let parts = match &record.embed {
            Some(embed) => embed::parts(
                embed,
                &Owner {
                    did,
                    post_id: id,
                    web_url: &web_url,
                    text_end,
                },
            ),
            None => EmbedParts::default(),
        };
        add_card(&mut entities, parts.card);
        let (quoted_status_id, quoted_status) = match &parts.quoted_uri {
            Some(quoted) => self.quoted(quoted),
            None => (None, None),
        };
        let reply = self.reply_fields(record.reply.as_ref());
        let author = self.accounts.get(did);
        let screen_name = author
            .and_then(|a| a.handle.clone())
            .unwrap_or_else(|| did.to_owned());
        let name = author
            .and_then(|a| a.display_name.clone())
            .unwrap_or_else(|| screen_name.clone());
        let description = author.and_then(|a| a.description.clone());
        let user_id = user_id(did);
        let extended_entities = (!parts.media.is_empty()).then(|| MediaList {
            media: parts.media.clone(),
        });
        entities.media = parts.media;
        let possibly_sensitive = record.labels.as_ref().and_then(|labels| {
            labels
                .values
                .iter()
                .any(|l| SENSITIVE_LABELS.contains(&l.val.as_str()))
                .then_some(true)
        });
        XPost {
            created_at: time.created_at,
            id,
            id_str: id.to_string(),
            text,
            display_text_range: [0, text_end],
            source: SOURCE,
            truncated: false,
            in_reply_to_status_id: reply.status,
            in_reply_to_status_id_str: reply.status.map(|id| id.to_string()),
            in_reply_to_user_id: reply.user,
            in_reply_to_user_id_str: reply.user.map(|id| id.to_string()),
            in_reply_to_screen_name: reply.screen_name,
            user: XUser {
                id: user_id,
                id_str: user_id.to_string(),
                name,
                screen_name,
                location: (),
                url: (),
                description,
                protected: false,
                verified: false,
                followers_count: None,
                friends_count: None,
                listed_count: None,
                favourites_count: None,
                statuses_count: None,
                created_at: (),
                default_profile_image: false,
            },
            geo: (),
            coordinates: (),
            place: (),
            contributors: (),
            quoted_status_id,
            quoted_status_id_str: quoted_status_id.map(|id| id.to_string()),
            quoted_status,
            is_quote_status: parts.is_quote,
            conversation_id: reply.conversation,
            conversation_id_str: reply.conversation.map(|id| id.to_string()),
            quote_count: 0,
            reply_count: 0,
            retweet_count: 0,
            favorite_count: 0,
            entities,
            extended_entities,
            favorited: false,
            retweeted: false,
            possibly_sensitive,
            lang: x_lang(record.langs.as_deref()),
            timestamp_ms: time.unix_ms.to_string(),
            bluesky: BlueskyOrigin {
                uri: uri.to_owned(),
                cid: commit.cid.clone(),
                did: did.to_owned(),
            },
        }
    }

    /// The quoted post's id (when its URI names a post) and the post itself (when it was
    /// converted lately).
    fn quoted(&mut self, uri: &str) -> (Option<u64>, Option<Box<XPost>>) {
        let Some(post) = AtUri::parse(uri).filter(AtUri::is_post) else {
            return (None, None);
        };
        match self.recent.get(uri) {
            Some(recent) => (Some(recent.id), Some(recent.post.clone())),
            None => (Some(post_id(post.authority, post.rkey)), None),
        }
    }

    /// The `in_reply_to_*` and conversation fields of a reply.
    fn reply_fields(&mut self, reply: Option<&Reply>) -> ReplyFields {
        let mut fields = ReplyFields::default();
        let Some(reply) = reply else {
            return fields;
        };
        let uri_of = |r: &Option<crate::jetstream::StrongRef>| r.as_ref().map(|r| r.uri.clone());
        if let Some(parent) = uri_of(&reply.parent)
            && let Some(at) = AtUri::parse(&parent).filter(AtUri::is_post)
        {
            fields.status = Some(self.reference_id(&parent, at));
            fields.user = Some(user_id(at.authority));
            fields.screen_name = self.handle(at.authority).map(str::to_owned);
        }
        if let Some(root) = uri_of(&reply.root)
            && let Some(at) = AtUri::parse(&root).filter(AtUri::is_post)
        {
            fields.conversation = Some(self.reference_id(&root, at));
        }
        fields
    }

    /// The id of the post at `uri`: the one it was given when converted, if remembered
    /// (which differs from [`post_id`] only for keys that are not TIDs), else [`post_id`].
    fn reference_id(&self, uri: &str, at: AtUri<'_>) -> u64 {
        self.recent
            .peek(uri)
            .map(|recent| recent.id)
            .unwrap_or_else(|| post_id(at.authority, at.rkey))
    }

    fn delete(&mut self, event: &Event, commit: &Commit) -> Output {
        let did = event.did.as_str();
        let uri = AtUri::post(did, &commit.rkey);
        let id = match self.recent.remove(&uri) {
            Some(recent) => recent.id,
            None => post_id(did, &commit.rkey),
        };
        let user_id = user_id(did);
        let event = DeleteEvent {
            delete: DeleteBody {
                status: DeletedStatus {
                    id,
                    id_str: id.to_string(),
                    user_id,
                    user_id_str: user_id.to_string(),
                },
                timestamp_ms: (event.time_us / 1000).to_string(),
            },
        };
        let line = sluice_model::json::to_vec(&event).expect("the delete event serialises");
        Output::Delete { id, line }
    }
}

/// The reply fields of a post.
#[derive(Default)]
struct ReplyFields {
    status: Option<u64>,
    user: Option<u64>,
    screen_name: Option<String>,
    conversation: Option<u64>,
}

/// X's compliance `delete` event (docs/compliance.md).
#[derive(Serialize)]
struct DeleteEvent {
    delete: DeleteBody,
}

#[derive(Serialize)]
struct DeleteBody {
    status: DeletedStatus,
    timestamp_ms: String,
}

#[derive(Serialize)]
struct DeletedStatus {
    id: u64,
    id_str: String,
    user_id: u64,
    user_id_str: String,
}

/// Reads one message, naming the field at fault.
fn read_event(bytes: &[u8]) -> Result<Event, ConvertError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let event: Event = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        if e.inner().is_syntax() || e.inner().is_eof() {
            ConvertError::new(format!("invalid JSON: {}", e.inner()))
        } else {
            ConvertError::at_path("", e)
        }
    })?;
    de.end()
        .map_err(|e| ConvertError::new(format!("invalid JSON: {e}")))?;
    Ok(event)
}

/// The post's time: its `createdAt`; when that is not an RFC 3339 time X's format can
/// hold, the record key's (a TID's), else when Jetstream saw it.
fn post_time(created_at: &str, rkey: &str, time_us: u64) -> Result<PostTime, ConvertError> {
    created::parse_created_at(created_at)
        .or_else(|| Tid::parse(rkey).and_then(|tid| created::from_unix_micros(tid.micros)))
        .or_else(|| created::from_unix_micros(time_us))
        .ok_or_else(|| {
            ConvertError::new(format!(
                "commit.record.createdAt {:?} is not a time, and neither the record key nor time_us is one",
                short(created_at)
            ))
        })
}

/// A link card joins the URL entities: its title and description go to the link of the
/// same URL in the text, or it is added as a link of its own.
fn add_card(entities: &mut Entities, card: Option<crate::x_post::UrlEntity>) {
    let Some(card) = card else { return };
    match entities
        .urls
        .iter_mut()
        .find(|u| u.expanded_url == card.expanded_url)
    {
        Some(existing) => existing.unwound = card.unwound,
        None => entities.urls.push(card),
    }
}

/// The start of `text` (40 bytes at most, on a character boundary), for messages.
fn short(text: &str) -> &str {
    let mut end = text.len().min(40);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
