//! Recording the changes that remove state: a stream with its rule keys and count, a v2
//! app with its streams, an account with every key it owns.
//!
//! A stream is deleted key by key ([`crate::shared_state`] maps each deleted key to its
//! change). An app or an account first has its own key overwritten with the removal (a
//! tombstone): every node's watcher applies it at once, whole (closing the open streams as
//! a local delete does, before any of the keys under it go), and a request racing the
//! removal finds the credentials gone. Then the keys it owned are deleted, and last the
//! tombstone itself. A removal that fails half-way leaves the tombstone after the keys
//! that are left, so a node replaying the bucket still ends without them, and the removal
//! can be made again.

use async_nats::jetstream::kv;
use futures_util::{StreamExt, TryStreamExt};
use sluice_server::cluster::{Change, ClusterError, StreamKey};
use sluice_store::Product;

use crate::key_scan::keys_under;
use crate::names::{account_key, app_key, app_limits_key, stream_key, token};
use crate::rule_cap;
use crate::shared_state::parse_stream_key;

/// How many keys one removal deletes at once.
const CONCURRENT_KEYS: usize = 64;

fn cluster_error(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError(format!("{what}: {e}"))
}

/// Deletes `keys`, a bounded number at a time.
async fn delete_keys(kv: &kv::Store, keys: &[String], what: &str) -> Result<(), ClusterError> {
    let deletes: Vec<_> = keys.iter().map(|key| kv.delete(key)).collect();
    futures_util::stream::iter(deletes)
        .buffer_unordered(CONCURRENT_KEYS)
        .try_collect::<()>()
        .await
        .map_err(|e| cluster_error(what, e))
}

/// A stream's key, its rule keys and its rule count.
pub async fn delete_stream(
    kv: &kv::Store,
    client: &async_nats::Client,
    stream: &StreamKey,
) -> Result<(), ClusterError> {
    kv.delete(stream_key(stream))
        .await
        .map_err(|e| cluster_error("deleting a stream", e))?;
    let keys: Vec<String> = rule_cap::rule_keys(kv, client, stream)
        .await?
        .into_iter()
        .collect();
    delete_keys(kv, &keys, "deleting a rule").await?;
    rule_cap::remove(kv, stream).await?;
    Ok(())
}

/// The change a key holds, if it holds one.
async fn change_at(kv: &kv::Store, key: &str) -> Result<Option<Change>, ClusterError> {
    let value = kv
        .get(key)
        .await
        .map_err(|e| cluster_error("reading the shared state", e))?;
    Ok(value.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Overwrites `key` with the removal `change` (see the module's documentation).
async fn tombstone(kv: &kv::Store, key: &str, change: &Change) -> Result<(), ClusterError> {
    let value = serde_json::to_vec(change).expect("changes serialize to JSON");
    kv.put(key, value.into())
        .await
        .map_err(|e| cluster_error("writing a removal", e))?;
    Ok(())
}

/// A v2 app's key, its limits and its streams (the streams of its account labelled with
/// the app id).
pub async fn delete_app(
    kv: &kv::Store,
    client: &async_nats::Client,
    app_id: &str,
) -> Result<(), ClusterError> {
    let key = app_key(app_id);
    let account = match change_at(kv, &key).await? {
        Some(Change::AddApp { account, .. }) => Some(account),
        _ => None,
    };
    let removal = Change::DeleteApp {
        app_id: app_id.to_owned(),
    };
    tombstone(kv, &key, &removal).await?;
    if let Some(account) = account {
        for product in Product::V2 {
            let stream = StreamKey {
                account: account.clone(),
                product: product.as_str().to_owned(),
                label: app_id.to_owned(),
            };
            delete_stream(kv, client, &stream).await?;
        }
    }
    delete_keys(
        kv,
        &[app_limits_key(app_id), app_key(app_id)],
        "deleting an app",
    )
    .await
}

/// Every key the account owns (streams with their rules, users, tokens, apps), then the
/// account's own.
pub async fn delete_account(
    kv: &kv::Store,
    client: &async_nats::Client,
    account: &str,
) -> Result<(), ClusterError> {
    let removal = Change::DeleteAccount {
        account: account.to_owned(),
    };
    tombstone(kv, &account_key(account), &removal).await?;
    let streams = keys_under(
        kv,
        client,
        &format!("stream.{}.", token(account)),
        "listing streams",
    )
    .await?;
    for stream in streams.iter().filter_map(|key| parse_stream_key(key)) {
        delete_stream(kv, client, &stream).await?;
    }
    let users: Vec<String> = keys_under(
        kv,
        client,
        &format!("user.{}.", token(account)),
        "listing users",
    )
    .await?
    .into_iter()
    .collect();
    delete_keys(kv, &users, "deleting a user").await?;
    for key in keys_under(kv, client, "token.", "listing tokens").await? {
        if let Some(Change::AddToken { account: owner, .. }) = change_at(kv, &key).await?
            && owner == account
        {
            delete_keys(kv, &[key], "deleting a token").await?;
        }
    }
    for key in keys_under(kv, client, "app.", "listing apps").await? {
        if let Some(Change::AddApp {
            account: owner,
            app_id,
            ..
        }) = change_at(kv, &key).await?
            && owner == account
        {
            delete_app(kv, client, &app_id).await?;
        }
    }
    delete_keys(kv, &[account_key(account)], "deleting an account").await
}
