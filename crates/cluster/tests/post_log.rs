//! The [`PostLog`] contract (`sluice_testkit::post_log_contract`, the list every post log is
//! checked against) kept by the cluster's post log, the JetStream posts stream, against a
//! private `nats-server` per test.
//!
//! JetStream stamps posts itself, so the contract's time properties are checked against
//! the times it reports, and retention against the stream's `max_age`.
//!
//! [`PostLog`]: sluice_postlog::PostLog

use std::time::Duration;

use sluice_cluster::post_log::JetStreamLog;
use sluice_testkit::Nats;
use sluice_testkit::post_log_contract::{Fresh, Retention, Subject};

/// A log on a fresh `nats-server` whose posts stream keeps posts for `max_age`. The log is
/// called from the (non-async) test thread, as the server calls it from blocking ones.
fn open(max_age: Duration) -> Fresh {
    let nats = Nats::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = nats.url();
    let log = runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = sluice_cluster::posts::ensure_stream(&js, max_age)
            .await
            .unwrap();
        JetStreamLog::new(js, stream, tokio::runtime::Handle::current())
    });
    // Dropped after the log: the runtime, then the server.
    Fresh::keeping(log, (runtime, nats))
}

sluice_testkit::post_log_contract!(stamped by the log: Subject {
    open,
    retention: Retention::Expiring,
    concurrent_posts: 800,
});
