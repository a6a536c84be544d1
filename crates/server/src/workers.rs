//! A fixed set of named worker threads, each with its own state, that map the chunks of a
//! slice in parallel and hand the results back in slice order: how the pipeline matches
//! the posts of a batch and compresses its segments on every core
//! ([`crate::delivery::fanout`]) and how `sluice match` matches a file.
//!
//! The threads are a rayon pool; what rayon does not give is state owned by one thread for
//! the pool's life. A matcher reader ([`sluice_matcher::MatcherReader`]) is `Send` but not
//! `Sync`, and a matcher's [`sluice_matcher::Scratch`] grows with the rule set, so neither
//! can be shared by the threads nor made afresh per chunk. Each thread therefore has a slot
//! of its own, indexed by its place in the pool, that only it locks (never contended: the
//! lock only makes the slot `Sync`), and the threads claim chunks from a shared counter, so
//! a slow chunk does not hold back the others.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Named worker threads with one `W` each: see the module doc.
pub struct Workers<W> {
    pool: rayon::ThreadPool,
    /// One per thread of `pool`, at its index.
    slots: Vec<Mutex<W>>,
}

impl<W: Send> Workers<W> {
    /// One thread per state in `states` (at least one), named `{name}-0`, `{name}-1`, …
    /// (so per-thread CPU reports, such as `sluice bench`'s, show each). Fails when a
    /// thread cannot be spawned.
    pub fn new(name: &str, states: Vec<W>) -> Result<Self, rayon::ThreadPoolBuildError> {
        assert!(!states.is_empty(), "a worker pool needs a thread");
        let name = name.to_owned();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(states.len())
            .thread_name(move |i| format!("{name}-{i}"))
            .build()?;
        Ok(Self {
            pool,
            slots: states.into_iter().map(Mutex::new).collect(),
        })
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.slots.len()
    }

    /// Runs `f` on every chunk of `chunk_len` items of `items` (the last may be shorter),
    /// on the worker threads, each call with the state of the thread it runs on; returns
    /// the results in the order of the chunks. The calling thread waits meanwhile. A panic
    /// in `f` is raised again here.
    pub fn map_chunks<T, R>(
        &self,
        items: &[T],
        chunk_len: usize,
        f: impl Fn(&mut W, &[T]) -> R + Sync,
    ) -> Vec<R>
    where
        T: Sync,
        R: Send,
    {
        let chunk_len = chunk_len.max(1);
        let chunks = items.len().div_ceil(chunk_len);
        let next = AtomicUsize::new(0);
        let done: Vec<Vec<(usize, R)>> = self.pool.broadcast(|context| {
            // A panic elsewhere leaves the slot's state as usable as it was.
            let mut state = self.slots[context.index()]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut done = Vec::new();
            loop {
                let chunk = next.fetch_add(1, Ordering::Relaxed);
                if chunk >= chunks {
                    return done;
                }
                let start = chunk * chunk_len;
                let end = (start + chunk_len).min(items.len());
                done.push((chunk, f(&mut state, &items[start..end])));
            }
        });
        let mut results: Vec<(usize, R)> = done.into_iter().flatten().collect();
        results.sort_unstable_by_key(|&(chunk, _)| chunk);
        debug_assert_eq!(results.len(), chunks);
        results.into_iter().map(|(_, result)| result).collect()
    }
}

/// The number of cores available to this process (at least 1): the default number of
/// matching threads.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_back_in_order_each_mapped_with_its_threads_own_state() {
        let workers = Workers::new("test-worker", vec![Vec::new(), Vec::new()]).unwrap();
        assert_eq!(workers.threads(), 2);
        let items: Vec<u32> = (0..1_000).collect();
        // Chunk 0 waits until chunk 1 is done and chunk 2 until chunk 3 is, so the two
        // threads take part and each finishes chunks out of order with the other's.
        let finished = Mutex::new(vec![false; 1_000usize.div_ceil(7)]);
        let changed = std::sync::Condvar::new();
        let sums = workers.map_chunks(&items, 7, |seen: &mut Vec<u32>, chunk| {
            let index = chunk[0] as usize / 7;
            if index == 0 || index == 2 {
                let finished = finished.lock().unwrap();
                drop(changed.wait_while(finished, |f| !f[index + 1]).unwrap());
            }
            seen.extend_from_slice(chunk);
            finished.lock().unwrap()[index] = true;
            changed.notify_all();
            let name = std::thread::current().name().unwrap().to_owned();
            (chunk.to_vec(), name)
        });
        assert_eq!(sums.len(), 1_000usize.div_ceil(7));
        let flat: Vec<u32> = sums.iter().flat_map(|(chunk, _)| chunk.clone()).collect();
        assert_eq!(flat, items, "every item once, in order");
        assert!(
            sums.iter()
                .all(|(_, name)| name == "test-worker-0" || name == "test-worker-1"),
            "ran on the named workers"
        );
        // Every item went through exactly one thread's state, and both threads worked.
        let per_thread: Vec<Vec<u32>> = workers
            .slots
            .iter()
            .map(|slot| slot.lock().unwrap().clone())
            .collect();
        assert!(per_thread.iter().all(|seen| !seen.is_empty()));
        let mut seen: Vec<u32> = per_thread.concat();
        seen.sort_unstable();
        assert_eq!(seen, items);
        assert!(
            workers
                .map_chunks(&[] as &[u32], 4, |_, c| c.len())
                .is_empty()
        );
    }
}
