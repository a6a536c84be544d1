//! The changes that take credentials and what they own away: an account with everything
//! it owns, a Powerstream token, a v2 app with its streams. Each closes the open
//! connections that depended on what went: an account's with the operational message (as
//! a stream's delete does), a token's and an app's with the credentials-revoked message.

use sluice_store::{Product, StoreError, StoredApp};

use super::{Applied, ChangeError, commit, from_hex, revoke_user, to_hex, unregister};
use crate::cluster::Change;
use crate::delivery::CloseReason;
use crate::sessions::Credential;
use crate::state::AppState;

/// Deletes an account with its users, streams (closing their connections with the
/// operational message), rules, tokens and apps. Returns whether it existed.
pub async fn delete_account(state: &AppState, account: &str) -> Result<bool, ChangeError> {
    let _gate = state.changes_gate.lock().await;
    let name = account.to_owned();
    if !state.blocking(move |s| s.account_exists(&name)).await? {
        return Ok(false);
    }
    let change = Change::DeleteAccount {
        account: account.to_owned(),
    };
    Ok(commit(state, change).await?.changed)
}

/// Revokes the account's Powerstream token with this stored prefix: refused from now on,
/// its open streams closed. Returns false when the account has no such token.
pub async fn revoke_token(
    state: &AppState,
    account: &str,
    prefix: &str,
) -> Result<bool, ChangeError> {
    let _gate = state.changes_gate.lock().await;
    let a = account.to_owned();
    let tokens = state.blocking(move |s| s.tokens(&a)).await?;
    let Some(token) = tokens.into_iter().find(|t| t.prefix == prefix) else {
        return Ok(false);
    };
    let change = Change::RevokeToken {
        hash_hex: to_hex(&token.hash),
    };
    commit(state, change).await?;
    Ok(true)
}

/// Deletes a v2 app of the account with its streams and their rules; the app's bearer
/// token is refused from now on and its open streams are closed. Returns false when the
/// account has no such app.
pub async fn delete_app(
    state: &AppState,
    account: &str,
    app_id: &str,
) -> Result<bool, ChangeError> {
    let _gate = state.changes_gate.lock().await;
    let id = app_id.to_owned();
    let app = state.blocking(move |s| s.app(&id)).await?;
    if app.is_none_or(|app| app.account != account) {
        return Ok(false);
    }
    let change = Change::DeleteApp {
        app_id: app_id.to_owned(),
    };
    commit(state, change).await?;
    Ok(true)
}

/// Applies [`Change::DeleteAccount`]: the store's cascade, then every live stream of the
/// account closed and unregistered, its users' and tokens' sessions revoked.
pub(super) async fn apply_delete_account(
    state: &AppState,
    account: String,
) -> Result<Applied, StoreError> {
    let a = account.clone();
    let (users, tokens, existed) = state
        .blocking(move |s| {
            let users = s.usernames(&a)?;
            let tokens = s.tokens(&a)?;
            Ok::<_, StoreError>((users, tokens, s.delete_account(&a)?))
        })
        .await?;
    for live in state.registry.all() {
        if live.key.account == account {
            unregister(state, &live.key);
        }
    }
    for username in users {
        revoke_user(state, &account, &username);
    }
    for token in tokens {
        forget_token(state, &token.hash);
    }
    Ok(Applied {
        changed: existed,
        ..Applied::default()
    })
}

/// Applies [`Change::RevokeToken`].
pub(super) async fn apply_revoke_token(
    state: &AppState,
    hash_hex: &str,
) -> Result<Applied, StoreError> {
    let Some(hash) = from_hex(hash_hex) else {
        tracing::warn!("replicated token hash is not hex");
        return Ok(Applied::default());
    };
    let h = hash.clone();
    let account = state.blocking(move |s| s.delete_token(&h)).await?;
    forget_token(state, &hash);
    Ok(Applied {
        changed: account.is_some(),
        ..Applied::default()
    })
}

/// A token is gone: its streams closed as revoked, its last use forgotten.
fn forget_token(state: &AppState, hash: &[u8]) {
    state.token_use.forget(hash);
    let Ok(hash) = <[u8; 32]>::try_from(hash) else {
        return;
    };
    let closed = state.sessions.revoke(&Credential::Token { hash });
    if closed > 0 {
        tracing::info!(closed, "closed the streams of a revoked token");
    }
}

/// Applies [`Change::DeleteApp`]: the app, then its v2 streams with their rules, their
/// connections closed as revoked.
pub(super) async fn apply_delete_app(
    state: &AppState,
    app_id: String,
) -> Result<Applied, StoreError> {
    let Some(app) = state.blocking(move |s| s.delete_app(&app_id)).await? else {
        return Ok(Applied::default());
    };
    for product in Product::V2 {
        delete_app_stream(state, &app, product).await?;
    }
    Ok(Applied {
        changed: true,
        ..Applied::default()
    })
}

async fn delete_app_stream(
    state: &AppState,
    app: &StoredApp,
    product: Product,
) -> Result<(), StoreError> {
    let key = app.stream(product);
    let k = key.clone();
    state
        .blocking(move |s| s.delete_streams(&k.account, &k.label, Some(k.product)))
        .await?;
    if let Some(live) = state.registry.remove(&key) {
        live.connections
            .for_each(|c| c.outbox.close(CloseReason::CredentialsRevoked));
    }
    Ok(())
}
