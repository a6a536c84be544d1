//! Low-priority threads for bulk work that must never slow live delivery.
//!
//! A Replay job reads, matches and compresses hours of the post log as fast as its client
//! takes them: on a small machine that is a whole core, taken from the pipeline, append
//! and connection threads that deliver live posts (docs/performance.md, "Replay beside
//! live delivery"). Its blocking sections run here instead of on tokio's blocking pool.
//! Each thread of this pool lowers its own scheduling priority when it starts (Linux
//! schedules threads, not processes, so the rest of the server keeps its priority).
//!
//! Two kinds of low priority ([`Priority`]):
//! - **idle** (the default, Linux's `SCHED_IDLE`): the thread weighs 3 against a normal
//!   thread's 1,024, so it gets almost nothing of a core another thread wants, and a
//!   live-delivery thread that wakes takes its core at once, as it would an idle one,
//!   instead of waiting for the scheduler's next turn; a replay makes progress whenever the
//!   server has spare CPU.
//! - **a nice value** (1 to 19): the thread shares the cores with live delivery in
//!   proportion (nice 10 gets about a tenth of what a nice-0 thread gets), so a replay
//!   never starves, at the cost of live latency on a busy machine. 0 is the server's own
//!   priority.
//!
//! The pool is rayon's (named threads, a queue, a panic handler); rayon has no say over
//! priorities, hence the one `sched_setscheduler` or `setpriority` call below.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

/// How the pool's threads are scheduled (`sluice serve --replay-priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Only on cores nothing else wants (Linux `SCHED_IDLE`).
    Idle,
    /// The normal policy at this nice value (0 to 19).
    Nice(i32),
}

impl Priority {
    /// The default: live delivery always first.
    pub const DEFAULT: Priority = Priority::Idle;
}

impl FromStr for Priority {
    type Err = String;

    /// `idle`, or a nice value from 0 to 19.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("idle") {
            return Ok(Priority::Idle);
        }
        match text.parse::<i32>() {
            Ok(nice) if (0..=19).contains(&nice) => Ok(Priority::Nice(nice)),
            _ => Err(format!(
                "{text:?} is neither `idle` nor a nice value from 0 to 19"
            )),
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Priority::Idle => f.write_str("idle"),
            Priority::Nice(nice) => write!(f, "{nice}"),
        }
    }
}

/// The priority the pool's threads take when they start.
static CONFIGURED: Mutex<Priority> = Mutex::new(Priority::DEFAULT);

/// Sets the priority of the pool's threads. Process-wide: call it before the first
/// [`run`], as `sluice serve` does at start; later calls do not change threads already
/// started.
pub fn set_priority(priority: Priority) {
    *CONFIGURED.lock().unwrap_or_else(|e| e.into_inner()) = priority;
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
            .start_handler(|_| {
                lower_own_priority(*CONFIGURED.lock().unwrap_or_else(|e| e.into_inner()));
            })
            .build()
            .expect("starting the background threads")
    })
}

/// Lowers the calling thread to `priority` (never raises its nice value: a server
/// started niced stays niced). On Linux both calls, given 0 or a thread id, apply to that
/// one thread.
#[cfg(target_os = "linux")]
fn lower_own_priority(priority: Priority) {
    let failed = match priority {
        Priority::Idle => {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is the
            // calling thread.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 }
        }
        Priority::Nice(wanted) if own_nice() >= wanted => false,
        // SAFETY: gettid and setpriority take and return plain integers and touch no memory.
        Priority::Nice(wanted) => unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, wanted) != 0
        },
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

/// Whether the calling thread runs under `SCHED_IDLE`.
#[cfg(all(test, target_os = "linux"))]
fn own_policy_is_idle() -> bool {
    // SAFETY: pid 0 is the calling thread; the call only returns an integer.
    unsafe { libc::sched_getscheduler(0) == libc::SCHED_IDLE }
}

/// Elsewhere priorities apply to the whole process, which must keep its own: the pool's
/// threads run at the normal one.
#[cfg(not(target_os = "linux"))]
fn lower_own_priority(_: Priority) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool is the process's: its threads take the default priority, idle.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn work_runs_on_an_idle_priority_thread_and_the_caller_keeps_its_own() {
        let (name, idle) = run(|| {
            let name = std::thread::current().name().map(str::to_owned);
            (name, own_policy_is_idle())
        })
        .await;
        assert!(name.unwrap().starts_with("sluice-background-"));
        assert!(idle, "a background thread runs under SCHED_IDLE");
        assert!(!own_policy_is_idle(), "the caller's thread kept its policy");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_nice_priority_raises_the_threads_nice_value_only() {
        let (nice, idle) = std::thread::spawn(|| {
            lower_own_priority(Priority::Nice(12));
            let first = own_nice();
            // Never raised back: a lower nice value than the thread has is left alone.
            lower_own_priority(Priority::Nice(3));
            assert_eq!(own_nice(), first);
            (first, own_policy_is_idle())
        })
        .join()
        .unwrap();
        assert_eq!(nice, 12.max(own_nice()));
        assert!(!idle);
    }

    #[test]
    fn a_priority_is_idle_or_a_nice_value_from_0_to_19() {
        assert_eq!("idle".parse(), Ok(Priority::Idle));
        assert_eq!(" IDLE ".parse(), Ok(Priority::Idle));
        assert_eq!("0".parse(), Ok(Priority::Nice(0)));
        assert_eq!("19".parse(), Ok(Priority::Nice(19)));
        for bad in ["20", "-1", "low", ""] {
            let error = bad.parse::<Priority>().unwrap_err();
            assert!(error.contains("idle"), "{bad}: {error}");
        }
        for priority in [Priority::Idle, Priority::Nice(7)] {
            assert_eq!(priority.to_string().parse(), Ok(priority));
        }
    }

    #[tokio::test]
    async fn a_panic_in_the_work_reaches_the_caller() {
        let joined = tokio::spawn(run(|| -> u32 { panic!("boom") })).await;
        assert!(joined.unwrap_err().is_panic());
        // The pool goes on.
        assert_eq!(run(|| 7).await, 7);
    }
}
