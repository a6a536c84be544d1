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
//! A connection's blocks come in a few size classes, one or two blocks each: 8 KiB (hyper's
//! read and write buffers), 2.5 KiB, 768, 512 and 256 bytes, and 7 KiB for a TLS
//! connection's handshake and stream (boxed apart from its task, docs/performance.md, "A
//! plain connection's task"). jemalloc keeps a descriptor for every slab that existed at
//! the peak, for reuse, and never returns them. With one 8 KiB block per slab (jemalloc's
//! default), 10,000 connections left about 5 MiB of such metadata; with eight, and the
//! other classes at jemalloc's eight or sixteen, they made about 6,300 slabs of these
//! classes (8,500 in all) and left about 1 MB of descriptors (docs/performance.md,
//! "Memory given back, second pass"). [`MALLOC_CONF`] now gives the five classes slabs of
//! 16 to 64 blocks (the 7 KiB class stays at eight): 0.49 MB of descriptors kept. Larger
//! slabs for other classes, or for every small class, lost more to partly used slabs than
//! they saved; other block counts for these five were not tried (docs/performance.md,
//! "Fewer slabs for a connection's blocks"). A side effect: jemalloc sizes a thread's
//! cache of a class from its blocks per slab (twice as many, within 20 to 200), so a
//! thread may cache more of these blocks, until its park returns them.

use std::cell::Cell;
use std::time::{Duration, Instant};

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's compiled-in options, read at its start (the way tikv-jemallocator documents:
/// a NUL-terminated string under this symbol name); `_RJEM_MALLOC_CONF` in the environment
/// still adds to them. `slab_sizes` is `first-last:pages` per range of size classes, the
/// counts written for 4 KiB pages (x86-64's and most arm64 Linux kernels'): 8 KiB blocks
/// sixteen to a slab, 2.5 KiB blocks 32, 768, 512 and 256-byte blocks 64, and 7 KiB blocks
/// eight.
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8] =
    b"slab_sizes:8192-8192:32|2560-2560:20|768-768:12|512-512:8|256-256:4|7168-7168:14\0";

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

    /// The blocks per slab that each size class named in [`MALLOC_CONF`] is meant to get
    /// (what the comments above say).
    const BLOCKS_PER_SLAB: [(usize, u32); 6] = [
        (8192, 16),
        (2560, 32),
        (768, 64),
        (512, 64),
        (256, 64),
        (7168, 8),
    ];

    /// The size ranges of [`MALLOC_CONF`]'s `slab_sizes` option: (first size, last size).
    fn slab_ranges() -> Vec<(usize, usize)> {
        let conf = std::str::from_utf8(&MALLOC_CONF[..MALLOC_CONF.len() - 1]).unwrap();
        let option = conf
            .split(',')
            .find_map(|option| option.strip_prefix("slab_sizes:"))
            .expect("the options set slab sizes");
        option
            .split('|')
            .map(|range| {
                let (sizes, _pages) = range.split_once(':').unwrap();
                let (first, last) = sizes.split_once('-').unwrap();
                (first.parse().unwrap(), last.parse().unwrap())
            })
            .collect()
    }

    /// Reads jemalloc's statistic or setting `name` with `mallctl`.
    ///
    /// # Safety
    /// `T` must be the type jemalloc documents for `name`.
    unsafe fn mallctl_read<T: Default>(name: &str) -> T {
        let name = std::ffi::CString::new(name).unwrap();
        let mut value = T::default();
        let mut len = std::mem::size_of::<T>();
        // SAFETY: `value` and `len` describe a writable `T`, the type the caller promises
        // jemalloc writes for `name`.
        let failed = unsafe {
            tikv_jemalloc_sys::mallctl(
                name.as_ptr(),
                (&raw mut value).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(failed, 0, "mallctl {name:?}");
        value
    }

    /// A `size_t` of jemalloc's (`arenas.bin.N.size`, `arenas.bin.N.slab_size`).
    fn read_size(name: &str) -> usize {
        // SAFETY: the names passed here are jemalloc's `size_t` ones.
        unsafe { mallctl_read(name) }
    }

    /// An `unsigned` or `uint32_t` of jemalloc's (`arenas.nbins`, `arenas.bin.N.nregs`).
    fn read_count(name: &str) -> u32 {
        // SAFETY: the names passed here are jemalloc's 32-bit unsigned ones.
        unsafe { mallctl_read(name) }
    }

    /// Fails when jemalloc does not apply the options (a wrong symbol name, a string it
    /// does not parse), and also when `_RJEM_MALLOC_CONF` in the environment sets other
    /// slab sizes for these classes.
    #[test]
    fn jemalloc_gives_each_listed_size_class_the_blocks_per_slab_meant_for_it() {
        let ranges = slab_ranges();
        assert_eq!(ranges.len(), BLOCKS_PER_SLAB.len());
        for (first, last) in ranges {
            assert_eq!(first, last, "a range of one size class");
            assert!(BLOCKS_PER_SLAB.iter().any(|&(size, _)| size == first));
        }
        let bins = read_count("arenas.nbins");
        for (size, blocks) in BLOCKS_PER_SLAB {
            let bin = (0..bins)
                .find(|bin| read_size(&format!("arenas.bin.{bin}.size")) == size)
                .unwrap_or_else(|| panic!("jemalloc has a {size}-byte class"));
            let nregs = read_count(&format!("arenas.bin.{bin}.nregs"));
            let slab = read_size(&format!("arenas.bin.{bin}.slab_size"));
            assert_eq!(nregs, blocks, "blocks in a slab of {size}-byte blocks");
            assert_eq!(
                slab,
                size * nregs as usize,
                "a slab of {size}-byte blocks wastes nothing"
            );
        }
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
