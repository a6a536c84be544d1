//! The server's shutdown as its parts wait for it: a cancellation token, plus a flag that
//! the thousands of open streaming bodies can read without a lock.
//!
//! A body polls its shutdown wait every time it is polled (twice per post it sends), and a
//! poll of a token's wait locks the token's state and its waiter list. With 10,000 bodies
//! that was some 6 % of the server's CPU while delivering. [`ShutdownWait`] registers with
//! the token once and afterwards only reads the flag, which is written once, by
//! [`Shutdown::begin`], before the token is cancelled (docs/performance.md, "The
//! shutdown wait of a body").

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use tokio_util::sync::{
    CancellationToken, WaitForCancellationFuture, WaitForCancellationFutureOwned,
};

/// The server's shutdown: begun once, waited for by streams, tunnels and background tasks.
/// Only [`begin`](Self::begin) starts it, so the flag and the token cannot disagree.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    begun: Arc<AtomicBool>,
}

impl Shutdown {
    /// A shutdown not begun.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown: the flag first, then the token, whose cancellation wakes every
    /// wait (a waiter woken by it therefore sees the flag).
    pub fn begin(&self) {
        self.begun.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether the shutdown has begun.
    pub fn has_begun(&self) -> bool {
        self.begun.load(Ordering::Acquire)
    }

    /// Completes when the shutdown begins.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// A token cancelled when the shutdown begins, for parts that take a token; cancelling
    /// it does not begin the shutdown.
    pub fn token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// A wait for one long-lived task, cheap to poll again and again: see [`ShutdownWait`].
    pub fn wait(&self) -> ShutdownWait {
        ShutdownWait {
            begun: self.begun.clone(),
            // A child of the server's token, one per wait: registering locks the token's
            // waiter list, which no other wait then shares.
            wait: Box::pin(self.token.child_token().cancelled_owned()),
            registered: None,
        }
    }
}

/// Completes when the shutdown begins. Once its first poll has registered the task's
/// waker with the token, a later poll from the same task only reads the flag: the token
/// wakes that waker when it is cancelled, after the flag was set.
pub struct ShutdownWait {
    begun: Arc<AtomicBool>,
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    registered: Option<Waker>,
}

impl Future for ShutdownWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let begun = this.begun.load(Ordering::Acquire);
        if !begun
            && this
                .registered
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let polled = this.wait.as_mut().poll(cx);
        if polled.is_pending() {
            this.registered = Some(cx.waker().clone());
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_registered_wait_is_woken_by_the_shutdown_and_then_completes() {
        let shutdown = Shutdown::new();
        let mut wait = shutdown.wait();
        let counter = Arc::new(Counting(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
        assert!(
            Pin::new(&mut wait).poll(&mut cx).is_pending(),
            "polled again"
        );
        assert!(!shutdown.has_begun());
        shutdown.begin();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "woken once");
        assert!(shutdown.has_begun());
        assert!(Pin::new(&mut wait).poll(&mut cx).is_ready());
    }

    #[test]
    fn a_wait_polled_from_another_task_registers_that_task() {
        let shutdown = Shutdown::new();
        let mut wait = shutdown.wait();
        let first = Arc::new(Counting(AtomicUsize::new(0)));
        let second = Arc::new(Counting(AtomicUsize::new(0)));
        let first_waker = Waker::from(first.clone());
        let second_waker = Waker::from(second.clone());
        assert!(
            Pin::new(&mut wait)
                .poll(&mut Context::from_waker(&first_waker))
                .is_pending()
        );
        assert!(
            Pin::new(&mut wait)
                .poll(&mut Context::from_waker(&second_waker))
                .is_pending()
        );
        shutdown.begin();
        assert_eq!(second.0.load(Ordering::SeqCst), 1, "the last task is woken");
        assert!(
            Pin::new(&mut wait)
                .poll(&mut Context::from_waker(&second_waker))
                .is_ready()
        );
    }

    #[test]
    fn a_wait_made_after_the_shutdown_is_ready_at_once() {
        let shutdown = Shutdown::new();
        shutdown.begin();
        let waker = Waker::from(Arc::new(Counting(AtomicUsize::new(0))));
        let mut wait = shutdown.wait();
        assert!(
            Pin::new(&mut wait)
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
        );
        assert!(shutdown.token().is_cancelled());
    }

    #[test]
    fn cancelling_a_handed_out_token_does_not_begin_the_shutdown() {
        let shutdown = Shutdown::new();
        shutdown.token().cancel();
        assert!(!shutdown.has_begun());
        assert!(!shutdown.token().is_cancelled());
    }
}
