//! # sluice-wire: the JSON bodies of X's PowerTrack APIs
//!
//! Pure serde types for what goes over the wire, shared by the server, the CLI and the
//! tests, so that field names, field order and null handling are decided once and match
//! X's documented bodies byte for byte (docs/compatibility.md §2). Everything is serialised through
//! [`to_vec`], which applies sluice's wire escaping (U+2028/U+2029/U+0085 as `\u` escapes,
//! `sluice_model::json`).
//!
//! ## Layout
//! - [`request`]: the add/validate body `{"rules":[…]}` and the `{"rule_ids":[…]}` body.
//! - [`rule`]: the rule object (`value`, `tag`, `id`, `id_str`) and the `matching_rules`
//!   entry.
//! - [`add`]: the add endpoint's response (`summary`/`detail` with `created`).
//! - [`delete`]: the delete request (by value or id) and response.
//! - `object`: request bodies and rule entries are read from JSON objects only, never
//!   from arrays by position.
//! - [`list`]: the list/get response `{"rules":[…],"sent":…}`.
//! - [`validation`]: the validation endpoint's response.
//! - [`error`]: the Gnip error body `{"error":{"message","sent"}}` and X's messages.
//! - [`info`]: the `{"info":{…}}` message that ends a finite stream (recovery).
//! - [`sent`]: the two `sent` timestamp formats.
//! - [`v2`]: the `/2/` bodies (Powerstream rules, problems, in-band errors, metadata).
//! - [`v2_post`]: the public v2 Post line built from the native post (fields, expansions).
//! - [`v2_rules`]: the v2 filtered stream's rules requests and responses (string ids, `data`/`meta`/`errors`).

#![deny(missing_docs)]

pub mod add;
pub mod delete;
pub mod error;
pub mod info;
pub mod list;
mod object;
pub mod request;
pub mod rule;
pub mod sent;
pub mod v2;
pub mod v2_post;
pub mod v2_rules;
pub mod validation;

pub use add::{AddDetail, AddResponse, AddSummary, EchoedRule};
pub use delete::{
    DeleteDetail, DeleteEntry, DeleteRequest, DeleteResponse, DeleteSummary, DeleteTarget,
};
pub use error::{ErrorBody, ErrorMessage, INVALID_JSON_MESSAGE, InvalidJson};
pub use info::{InfoBody, InfoMessage, UnprocessedRange};
pub use list::RulesResponse;
pub use request::{RuleIdsRequest, RuleInput, RulesRequest};
pub use rule::{MatchingRule, Rule, RuleValue};
pub use validation::{ValidationDetail, ValidationResponse, ValidationSummary};

/// Serialises one of this crate's bodies (or any other value) as compact JSON with the
/// wire escaping applied.
///
/// # Panics
/// Only if `value`'s `Serialize` fails, which this crate's types never do (they have no
/// maps with non-string keys and no fallible custom serialisers).
pub fn to_vec<T: ?Sized + serde::Serialize>(value: &T) -> Vec<u8> {
    sluice_model::json::to_vec(value).expect("wire bodies always serialise")
}

/// [`to_vec`] as a `String`.
pub fn to_string<T: ?Sized + serde::Serialize>(value: &T) -> String {
    String::from_utf8(to_vec(value)).expect("serde_json writes UTF-8")
}
