//! Which runtime threads have just freed a connection's memory.
//!
//! The allocator keeps a cache of freed blocks per thread, and the binary hands a runtime
//! thread's cache back when the thread runs out of work, at most once a second so that a
//! busy thread does not refill it over and over. A burst of closing connections ends with
//! a thread parking within that second, and a thread with nothing more to do may not wake
//! again: its cache, holding the blocks of the connections it freed, kept their pages
//! resident indefinitely (in one day's series of `sluice bench connections`, about half
//! the runs ended with 5 to 7 MiB more than the rest). The server cannot see the
//! allocator, so it says here what happened on each thread, and the binary's park hook
//! returns the cache at once after a connection ended there.

use std::cell::Cell;

thread_local! {
    static CONNECTION_ENDED: Cell<bool> = const { Cell::new(false) };
}

/// Notes that a connection ended on the calling thread: its buffers and task were freed
/// here.
pub fn note_connection_ended() {
    CONNECTION_ENDED.with(|ended| ended.set(true));
}

/// Notes that a connection ended, on whichever thread drops it: held by a connection's
/// task, so that every way the task ends (served, a failed TLS handshake, a panic) is
/// noted.
#[derive(Debug, Default)]
pub struct EndGuard;

impl Drop for EndGuard {
    fn drop(&mut self) {
        note_connection_ended();
    }
}

/// Whether a connection ended on the calling thread since the last call (which resets it).
pub fn take_connection_ended() -> bool {
    CONNECTION_ENDED.with(|ended| ended.replace(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_notes_the_end_when_dropped() {
        let _ = take_connection_ended();
        let guard = EndGuard;
        assert!(!take_connection_ended());
        drop(guard);
        assert!(take_connection_ended());
    }

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
