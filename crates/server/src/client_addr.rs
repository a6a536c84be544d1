//! The address of the client whose request is being served, for the per-client budget of
//! authentication attempts ([`crate::auth::throttle`]).
//!
//! [`serve`](crate::serve) runs each request of a connection inside [`scope`] with the
//! connection's peer address; code handling the request reads it with [`current`]. This
//! keeps the address out of every handler's signature (only authentication needs it);
//! outside a served request (a router driven directly, as some tests do) it is unknown.

use std::future::Future;
use std::net::IpAddr;

tokio::task_local! {
    static CLIENT: IpAddr;
}

/// Runs `request` as the handling of a request from `client`.
pub fn scope<F: Future>(client: IpAddr, request: F) -> impl Future<Output = F::Output> {
    CLIENT.scope(client, request)
}

/// The address of the client of the request being handled, if known.
pub fn current() -> Option<IpAddr> {
    CLIENT.try_with(|client| *client).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn known_inside_a_scope_only() {
        assert_eq!(current(), None);
        let here = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(scope(here, async { current() }).await, Some(here));
    }
}
