//! The post log as the server uses it: every ingested post is logged in order, the log
//! survives a restart of a server with a data directory, and retention trims it.

use std::time::Duration;

use sluice_postlog::{FIRST_SEQ, LoggedPost};
use sluice_server::Settings;
use sluice_testkit as common;
use sluice_testkit::{TestServer, post};

/// Waits until the pipeline has logged posts up to (not including) `next_seq`.
async fn logged_until(server: &TestServer, next_seq: u64) -> Vec<LoggedPost> {
    for _ in 0..500 {
        if server.state.post_log.next_seq() >= next_seq {
            return server.state.post_log.read(0, usize::MAX).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the post log did not reach {next_seq}");
}

fn ids(posts: &[LoggedPost]) -> Vec<u64> {
    posts
        .iter()
        .map(|p| {
            let json: serde_json::Value = serde_json::from_slice(&p.bytes).unwrap();
            json["id"].as_u64().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingested_posts_are_logged_in_order_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), Settings::default()).await;
    let batch = [post(11, "one"), post(12, "two"), post(13, "three")].join("\n");
    server.ingest(&batch).await;
    server.ingest(&post(14, "four")).await;
    let logged = logged_until(&server, FIRST_SEQ + 4).await;
    assert_eq!(ids(&logged), [11, 12, 13, 14]);
    let seqs: Vec<u64> = logged.iter().map(|p| p.seq).collect();
    assert_eq!(
        seqs,
        [FIRST_SEQ, FIRST_SEQ + 1, FIRST_SEQ + 2, FIRST_SEQ + 3]
    );
    assert!(logged.iter().all(|p| &*p.datacenter == "local"));
    assert!(
        logged
            .windows(2)
            .all(|w| w[0].appended_ms <= w[1].appended_ms)
    );
    server.stop().await;

    let server = TestServer::start_in(dir.path(), Settings::default()).await;
    server.ingest(&post(15, "five")).await;
    let logged = logged_until(&server, FIRST_SEQ + 5).await;
    assert_eq!(ids(&logged), [11, 12, 13, 14, 15]);
    assert_eq!(logged[4].seq, FIRST_SEQ + 4);
    assert!(dir.path().join("postlog").is_dir());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_older_than_the_retention_are_trimmed() {
    let server = TestServer::start(Settings {
        post_log_retention: Duration::from_millis(300),
        post_log_trim_interval: Duration::from_millis(50),
        ..Settings::default()
    })
    .await;
    server.ingest(&post(21, "old")).await;
    assert_eq!(ids(&logged_until(&server, FIRST_SEQ + 1).await), [21]);
    let mut remaining = usize::MAX;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        remaining = server.state.post_log.read(0, 10).unwrap().len();
        if remaining == 0 {
            break;
        }
    }
    assert_eq!(remaining, 0, "the post outlived its retention");
    // Numbering goes on after the trim.
    server.ingest(&post(22, "new")).await;
    let logged = logged_until(&server, FIRST_SEQ + 2).await;
    assert_eq!(ids(&logged), [22]);
    assert_eq!(logged[0].seq, FIRST_SEQ + 1);
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_dir_and_its_secrets_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    sluice_server::auth::AdminToken::load_or_generate(&data).unwrap();
    sluice_server::tls::self_signed(&data).unwrap();
    let server = TestServer::start_in(&data, Settings::default()).await;
    server.provision("powertrack").await;
    server.ingest(&common::post(1, "hello")).await;
    let mode = |rel: &str| {
        let meta = std::fs::metadata(data.join(rel)).unwrap();
        meta.permissions().mode() & 0o777
    };
    for dir in ["", "tls", "postlog"] {
        assert_eq!(mode(dir), 0o700, "{dir}/");
    }
    for file in ["admin-token", "tls/key.pem", "sluice.db", "sluice.db-wal"] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    for entry in std::fs::read_dir(data.join("postlog")).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    server.stop().await;
}
