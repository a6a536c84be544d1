//! [`MemoryLog`]: the post log in memory, for tests and servers without a data directory.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::{FIRST_SEQ, LogError, LoggedPost, NewPost, PostLog};

/// A post log held in memory: nothing survives the process. Trimming is exact (post by
/// post). Readers share a read lock that appends take only briefly to push.
#[derive(Debug)]
pub struct MemoryLog {
    inner: RwLock<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Retained posts, oldest first; their sequence numbers are consecutive.
    posts: VecDeque<LoggedPost>,
    next_seq: u64,
    last_ms: u64,
    /// Datacenter names are few: share one allocation per name.
    datacenters: Vec<Arc<str>>,
}

impl Default for MemoryLog {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLog {
    /// An empty log whose first post gets [`FIRST_SEQ`].
    pub fn new() -> Self {
        Self {
            inner: RwLock::new(Inner {
                posts: VecDeque::new(),
                next_seq: FIRST_SEQ,
                last_ms: 0,
                datacenters: Vec::new(),
            }),
        }
    }

    fn read_inner(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated (every mutation
        // is a single push or pop), so a poisoned lock is still consistent.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_inner(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn datacenter(&mut self, name: &str) -> Arc<str> {
        if let Some(dc) = self.datacenters.iter().find(|dc| &***dc == name) {
            return dc.clone();
        }
        let dc: Arc<str> = name.into();
        self.datacenters.push(dc.clone());
        dc
    }

    fn first_seq(&self) -> u64 {
        self.posts.front().map_or(self.next_seq, |p| p.seq)
    }
}

impl PostLog for MemoryLog {
    fn append(&self, posts: &[NewPost<'_>], now_ms: u64) -> Result<u64, LogError> {
        // Copy the bytes before taking the lock so that readers wait as little as possible.
        let copies: Vec<(Bytes, &str)> = posts
            .iter()
            .map(|p| (Bytes::copy_from_slice(p.bytes), p.datacenter))
            .collect();
        let mut inner = self.write_inner();
        let ms = now_ms.max(inner.last_ms);
        inner.last_ms = ms;
        for (bytes, dc) in copies {
            let datacenter = inner.datacenter(dc);
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.posts.push_back(LoggedPost {
                seq,
                appended_ms: ms,
                datacenter,
                bytes,
            });
        }
        Ok(inner.next_seq - 1)
    }

    fn next_seq(&self) -> u64 {
        self.read_inner().next_seq
    }

    fn seq_at_time(&self, ms: u64) -> Result<u64, LogError> {
        let inner = self.read_inner();
        let index = inner.posts.partition_point(|p| p.appended_ms < ms);
        Ok(inner.first_seq() + index as u64)
    }

    fn read(&self, from: u64, max: usize) -> Result<Vec<LoggedPost>, LogError> {
        let inner = self.read_inner();
        let skip = from.saturating_sub(inner.first_seq());
        let start = usize::try_from(skip)
            .unwrap_or(usize::MAX)
            .min(inner.posts.len());
        Ok(inner.posts.range(start..).take(max).cloned().collect())
    }

    fn trim_before(&self, ms: u64) -> Result<(), LogError> {
        let mut inner = self.write_inner();
        let old = inner.posts.partition_point(|p| p.appended_ms < ms);
        inner.posts.drain(..old);
        Ok(())
    }
}
