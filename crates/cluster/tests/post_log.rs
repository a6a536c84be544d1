//! The [`PostLog`] contract (`sluice_testkit::post_log_contract`, the list every post log is
//! checked against) kept by the cluster's post log, the JetStream posts stream, against a
//! private `nats-server` per test.
//!
//! JetStream stamps posts itself, so the contract's time properties are checked against
//! the times it reports, and retention against the stream's `max_age`.
//!
//! [`PostLog`]: sluice_postlog::PostLog

use std::time::Duration;

use std::sync::Arc;

use futures_util::StreamExt as _;
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
        let stream = sluice_cluster::posts::ensure_stream(&js, max_age, None)
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

/// Not a PostLog property: what the posts stream carries besides the post, for consumers.
#[test]
fn a_published_post_carries_its_id_in_the_message_id_header_to_consumers() {
    let nats = Nats::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = sluice_cluster::posts::ensure_stream(&js, Duration::from_secs(3600), None)
            .await
            .unwrap();
        // The bytes say 9: the header must carry the id the post came with.
        let post = sluice_server::post::IngestedPost {
            body: bytes::Bytes::from_static(br#"{"id_str":"9","text":"x"}"#).into(),
            id: 7,
            datacenter: Arc::from("pdx"),
        };
        sluice_cluster::posts::publish(&js, vec![post])
            .await
            .unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the post is consumed")
            .unwrap()
            .unwrap();
        let header = message.headers.as_ref().unwrap().get("Nats-Msg-Id");
        assert_eq!(header.map(|v| v.as_str()), Some("7"));
        let consumed = sluice_cluster::posts::ingested(&message).unwrap();
        assert_eq!((consumed.id, &*consumed.datacenter), (7, "pdx"));
    });
}

/// The disk budget in cluster mode: the posts stream's `max_bytes` with discard-old. Past
/// it the oldest posts go, and the log then refuses windows from before its oldest post.
#[test]
fn a_stream_over_its_disk_budget_drops_its_oldest_posts() {
    const BUDGET: u64 = 64 << 10;
    let nats = Nats::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (log, first_sequence) = runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let hour = Duration::from_secs(3600);
        let mut stream = sluice_cluster::posts::ensure_stream(&js, hour, Some(BUDGET))
            .await
            .unwrap();
        let config = &stream.info().await.unwrap().config;
        assert_eq!(config.max_bytes, BUDGET as i64);
        assert_eq!(
            config.discard,
            async_nats::jetstream::stream::DiscardPolicy::Old
        );
        let text = "x".repeat(1_000);
        let posts = (1..=300u64)
            .map(|id| sluice_server::post::IngestedPost {
                body: bytes::Bytes::from(format!(r#"{{"id_str":"{id}","text":"{text}"}}"#)).into(),
                id,
                datacenter: Arc::from("pdx"),
            })
            .collect();
        sluice_cluster::posts::publish(&js, posts).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        assert!(state.bytes <= BUDGET, "{} bytes", state.bytes);
        assert_eq!(state.last_sequence, 300);
        let log = JetStreamLog::new(js, stream, tokio::runtime::Handle::current());
        (log, state.first_sequence)
    });
    assert!(first_sequence > 1, "nothing was dropped");
    // From a blocking thread, as the server asks.
    let oldest = sluice_postlog::held::oldest_held_ms(&log).unwrap().unwrap();
    assert_eq!(
        sluice_postlog::held::check_window(&log, oldest - 1).unwrap(),
        Err(sluice_postlog::held::NotHeld {
            oldest_ms: Some(oldest)
        })
    );
    assert_eq!(
        sluice_postlog::held::check_window(&log, oldest).unwrap(),
        Ok(())
    );
    drop(log);
    drop(runtime);
}
