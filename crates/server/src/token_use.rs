//! When each Powerstream token was last used, for the operator's token list: kept in
//! memory by the node that served the request (a lookup table, no write to the store per
//! request), so it starts empty at each start and, in cluster mode, is each node's own.

use std::collections::HashMap;
use std::sync::Mutex;

/// The last use of each token seen by this node, by the token's hash, in epoch ms.
#[derive(Default)]
pub struct TokenUse {
    last: Mutex<HashMap<[u8; 32], i64>>,
}

impl TokenUse {
    fn last(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], i64>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token with this hash was accepted at `now_ms`.
    pub fn record(&self, hash: [u8; 32], now_ms: i64) {
        let mut last = self.last();
        let at = last.entry(hash).or_insert(now_ms);
        *at = (*at).max(now_ms);
    }

    /// When the token was last accepted on this node since it started.
    pub fn last_used(&self, hash: &[u8]) -> Option<i64> {
        let hash: [u8; 32] = hash.try_into().ok()?;
        self.last().get(&hash).copied()
    }

    /// The token is gone: forget it.
    pub fn forget(&self, hash: &[u8]) {
        if let Ok(hash) = <[u8; 32]>::try_from(hash) {
            self.last().remove(&hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_use_is_kept_until_forgotten() {
        let uses = TokenUse::default();
        assert_eq!(uses.last_used(&[1; 32]), None);
        uses.record([1; 32], 20);
        uses.record([1; 32], 10);
        assert_eq!(uses.last_used(&[1; 32]), Some(20));
        assert_eq!(uses.last_used(&[1; 3]), None);
        uses.forget(&[1; 32]);
        assert_eq!(uses.last_used(&[1; 32]), None);
    }
}
