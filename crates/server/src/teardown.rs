//! Which runtime threads have just freed a connection's memory.
//!
//! The allocator keeps a cache of freed blocks per thread, and the binary hands a runtime
//! thread's cache back when the thread runs out of work, at most once a second so that a
//! busy thread does not refill it over and over. A burst of closing connections ends with
//! a thread parking within that second, and a thread with nothing more to do may not wake
//! again: its cache, holding the blocks of the connections it freed, kept their pages
//! resident indefinitely (about a third of the runs of `sluice bench connections` ended
//! with 7 to 9 MiB more than the rest). The server cannot see the allocator, so it says
//! here what happened on each thread, and the binary's park hook returns the cache at once
//! after a connection ended there.

use std::cell::Cell;

thread_local! {
    static CONNECTION_ENDED: Cell<bool> = const { Cell::new(false) };
}

/// Notes that a connection ended on the calling thread: its buffers and task were freed
/// here.
pub fn note_connection_ended() {
    CONNECTION_ENDED.with(|ended| ended.set(true));
}

/// Whether a connection ended on the calling thread since the last call (which resets it).
pub fn take_connection_ended() -> bool {
    CONNECTION_ENDED.with(|ended| ended.replace(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_connection_is_reported_once_and_only_on_its_thread() {
        assert!(!take_connection_ended());
        note_connection_ended();
        std::thread::spawn(|| assert!(!take_connection_ended()))
            .join()
            .unwrap();
        assert!(take_connection_ended());
        assert!(!take_connection_ended());
    }
}
