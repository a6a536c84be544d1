//! The process's allocator: jemalloc, with background threads that give freed pages back
//! to the system within seconds. With glibc's malloc a server that had held thousands of
//! connections kept their memory after they closed (docs/performance.md, "Connections").
//! Chosen here, in the binary: the libraries leave the allocator to whoever links them.
//!
//! jemalloc also keeps a cache of freed blocks per thread, trimmed a little on each of the
//! thread's later allocations. A server thread that goes quiet after a burst (10,000
//! connections closing) allocates nothing more, so its cache keeps the blocks, and the
//! pages under them stay resident. [`return_thread_cache`] hands a parking runtime
//! thread's cache back to the shared arenas, so the background threads can purge the
//! pages: at once when a connection ended on the thread since its last park (the thread
//! may not wake again after the last of a burst of closes), otherwise at most once a
//! second (`sluice_server::connection_ends`).
//!
//! Two size classes hold a connection's largest blocks: 8 KiB (hyper's read and write
//! buffers, two per connection) and 7 KiB (a TLS connection's handshake and stream, boxed
//! apart from its task; a plain connection's task is about 2 KiB, docs/performance.md,
//! "A plain connection's task"). By default jemalloc
//! gives each 8 KiB block a slab of its own, so 10,000 connections make 20,000 slabs, each
//! with a descriptor and entries in jemalloc's page map: metadata that jemalloc keeps for
//! reuse and never returns, about 5 MiB after 10,000 connections closed. [`MALLOC_CONF`]
//! packs eight blocks per slab for both classes instead (docs/performance.md,
//! "Connections").

use std::cell::Cell;
use std::time::{Duration, Instant};

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's compiled-in options, read at its start (the way tikv-jemallocator documents:
/// a NUL-terminated string under this symbol name); `_RJEM_MALLOC_CONF` in the environment
/// still adds to them. `slab_sizes` is `first-last:pages` per range of size classes: 8 KiB
/// blocks in 16-page (64 KiB) slabs, 7 KiB blocks in 14-page (56 KiB) slabs, eight each.
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8] = b"slab_sizes:8192-8192:16|7168-7168:14\0";

/// How often a thread's cache is returned at most: rare enough that a busy thread, which
/// parks between bursts of work, does not refill its cache from the arenas noticeably.
const RETURN_EVERY: Duration = Duration::from_secs(1);

thread_local! {
    /// When this thread last returned its cache.
    static LAST_RETURN: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Returns the calling thread's cache of freed blocks to the shared arenas when a
/// connection ended on this thread since its last park, or else unless it did so less
/// than a second ago. For tokio's `on_thread_park`: it runs when a runtime thread runs
/// out of work.
pub fn return_thread_cache() {
    let connection_ended = sluice_server::connection_ends::take_connection_ended();
    let now = Instant::now();
    let due = LAST_RETURN.with(|last| {
        let due = connection_ended
            || last
                .get()
                .is_none_or(|at| now.duration_since(at) >= RETURN_EVERY);
        if due {
            last.set(Some(now));
        }
        due
    });
    if due {
        flush_thread_cache();
    }
}

/// jemalloc's `thread.tcache.flush`. tikv-jemallocator has no method for it, and
/// tikv-jemalloc-ctl's `raw::write` passes a value pointer, which this control refuses: it
/// takes none.
#[cfg(not(target_env = "msvc"))]
fn flush_thread_cache() {
    // SAFETY: the name is a NUL-terminated static string; this control reads and writes
    // nothing, so the four pointers and the length are null and 0, as jemalloc requires.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"thread.tcache.flush".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}

#[cfg(target_env = "msvc")]
fn flush_thread_cache() {}

#[cfg(all(test, not(target_env = "msvc")))]
mod tests {
    use super::*;

    #[test]
    fn the_options_are_one_nul_terminated_string() {
        assert_eq!(MALLOC_CONF.iter().filter(|&&b| b == 0).count(), 1);
        assert_eq!(MALLOC_CONF.last(), Some(&0));
    }

    #[test]
    fn a_thread_returns_its_cache_at_most_once_a_second_unless_a_connection_ended_there() {
        // A fresh thread, with a clock of its own.
        std::thread::spawn(|| {
            assert_eq!(LAST_RETURN.with(Cell::get), None);
            drop((0..64).map(|_| vec![1u8; 4096]).collect::<Vec<_>>());
            return_thread_cache();
            let first = LAST_RETURN
                .with(Cell::get)
                .expect("the first call returns it");
            return_thread_cache();
            assert_eq!(
                LAST_RETURN.with(Cell::get),
                Some(first),
                "not again so soon"
            );
            // Unless a connection ended here meanwhile.
            std::thread::sleep(Duration::from_millis(2));
            sluice_server::connection_ends::note_connection_ended();
            return_thread_cache();
            let after_close = LAST_RETURN.with(Cell::get).expect("returned");
            assert!(
                after_close > first,
                "returned again after a connection ended"
            );
            // Blocks freed after the return are served as usual.
            assert_eq!(
                vec![7u8; 4096]
                    .iter()
                    .map(|&b| usize::from(b))
                    .sum::<usize>(),
                7 * 4096
            );
        })
        .join()
        .unwrap();
    }
}
