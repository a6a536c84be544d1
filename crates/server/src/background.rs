//! Low-priority threads for bulk work that must never slow live delivery.
//!
//! A Replay job reads, matches and compresses hours of the post log as fast as its client
//! takes them: on a small machine that is a whole core, taken from the pipeline, append
//! and connection threads that deliver live posts (docs/performance.md, "Replay beside
//! live delivery"). Its blocking sections run here instead of on tokio's blocking pool.
//! Each thread of this pool lowers its own scheduling priority when it starts (Linux
//! schedules threads, not processes, so the rest of the server keeps its priority): when
//! live delivery and a replay both want a core, live delivery gets most of it, and a replay
//! still gets the rest, so it never starves outright.
//!
//! The pool is rayon's (named threads, a queue, a panic handler); rayon has no say over
//! priorities, hence the one `setpriority` call below.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

/// The default nice value of the pool's threads (`sluice serve --replay-nice`): the
/// scheduler gives a nice-10 thread about a tenth of the CPU a nice-0 thread gets when
/// both are runnable on one core.
pub const NICE: i32 = 10;

/// The nice value the pool's threads take when they start.
static CONFIGURED_NICE: AtomicI32 = AtomicI32::new(NICE);

/// Sets the nice value of the pool's threads (0 to 19; 0 keeps the server's own
/// priority). Process-wide: call it before the first [`run`], as `sluice serve` does at
/// start; later calls do not change threads already started.
pub fn set_nice(nice: i32) {
    CONFIGURED_NICE.store(nice.clamp(0, 19), Ordering::Relaxed);
}

/// Runs `work` on a low-priority thread and returns what it returned. A panic in `work`
/// is resumed here, as `spawn_blocking(..).await.expect(..)` would report it.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool().spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(work)));
    });
    match rx
        .await
        .expect("the background pool runs every job it is given")
    {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(std::thread::available_parallelism().map_or(1, usize::from))
            .thread_name(|i| format!("sluice-background-{i}"))
            .start_handler(|_| lower_own_priority())
            .build()
            .expect("starting the background threads")
    })
}

/// Raises the calling thread's nice value to the configured one (never lowers it: a
/// server started niced stays niced). On Linux `setpriority` with `PRIO_PROCESS` and a
/// thread id applies to that one thread.
#[cfg(target_os = "linux")]
fn lower_own_priority() {
    let wanted = CONFIGURED_NICE.load(Ordering::Relaxed);
    if own_nice() >= wanted {
        return;
    }
    // SAFETY: gettid and setpriority take and return plain integers and touch no memory.
    let failed = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, wanted) != 0
    };
    if failed {
        tracing::warn!(
            "could not lower a background thread's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The calling thread's nice value.
#[cfg(target_os = "linux")]
fn own_nice() -> i32 {
    // SAFETY: plain integers in and out. (-1 is both a valid value and the error return;
    // for the calling thread the call cannot fail.)
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

/// Elsewhere nice applies to the whole process, which must keep its priority: the pool's
/// threads run at the normal one.
#[cfg(not(target_os = "linux"))]
fn lower_own_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn work_runs_on_a_thread_of_lower_priority_than_the_callers() {
        let (name, nice) = run(|| {
            let name = std::thread::current().name().map(str::to_owned);
            (name, own_nice())
        })
        .await;
        assert!(name.unwrap().starts_with("sluice-background-"));
        assert_eq!(nice, NICE.max(own_nice()));
        // The caller's thread kept its own.
        assert!(own_nice() < NICE || own_nice() == nice);
    }

    #[tokio::test]
    async fn a_panic_in_the_work_reaches_the_caller() {
        let joined = tokio::spawn(run(|| -> u32 { panic!("boom") })).await;
        assert!(joined.unwrap_err().is_panic());
        // The pool goes on.
        assert_eq!(run(|| 7).await, 7);
    }
}
