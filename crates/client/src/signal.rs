//! Waiting for the signals that ask a long-running client to stop: SIGINT (Ctrl-C) and,
//! on Unix, SIGTERM (what service managers and `kill` send).

/// Completes when SIGINT or SIGTERM arrives. If a handler cannot be installed, that
/// signal keeps its default action (the process ends), which is the next best thing.
pub async fn stop_requested() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = async {
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    term.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await;
}
