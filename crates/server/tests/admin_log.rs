//! The one log line of every admin change (`log_admin_change!`), captured from the server.
//!
//! In a test binary of its own: the capture is a thread-scoped tracing subscriber, and
//! tests of other servers running beside it in one process could race with it over
//! tracing's per-callsite interest cache, so a change's line was sometimes not seen.

use reqwest::Method;
use serde_json::json;
use sluice_server::Settings;
use sluice_testkit::TestServer;

/// A log sink for [`tracing_subscriber`]: every line written, kept.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: the server's handlers run on this thread, under the
// subscriber set for it.
#[tokio::test(flavor = "current_thread")]
async fn every_admin_change_is_logged_with_its_actor() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = TestServer::start(Settings::default()).await;
    server.provision("powertrack").await;
    let token = server.powerstream_token("acme").await;
    let prefix = &token[.."sl_ps_".len() + 8];
    let calls: &[(Method, String, serde_json::Value)] = &[
        (
            Method::PUT,
            "/admin/accounts/acme/users/alice".into(),
            json!({"password": "new"}),
        ),
        (
            Method::DELETE,
            format!("/admin/accounts/acme/tokens/{prefix}"),
            json!(null),
        ),
        (
            Method::DELETE,
            "/admin/accounts/acme/streams/prod".into(),
            json!(null),
        ),
        (
            Method::DELETE,
            "/admin/accounts/acme/users/alice".into(),
            json!(null),
        ),
    ];
    for (method, path, body) in calls {
        let (s, answer) = server.admin(method.clone(), path, body.clone()).await;
        assert!(s.is_success(), "{method} {path}: {answer}");
    }
    let app = server.new_app("acme", "r").await;
    let app_path = format!(
        "/admin/accounts/acme/apps/{}",
        app["app_id"].as_str().unwrap()
    );
    for (method, path, body) in [
        (Method::PUT, app_path.as_str(), json!({"max_rules": 5})),
        (Method::DELETE, app_path.as_str(), json!(null)),
        (Method::DELETE, "/admin/accounts/acme", json!(null)),
    ] {
        let (s, answer) = server.admin(method.clone(), path, body).await;
        assert!(s.is_success(), "{method} {path}: {answer}");
    }
    server.stop().await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for change in [
        "account created",
        "user created",
        "stream created",
        "powerstream token created",
        "user password set",
        "powerstream token revoked",
        "stream deleted",
        "user deleted",
        "app created",
        "app limits set",
        "app deleted",
        "account deleted",
    ] {
        let line = log
            .lines()
            .find(|line| line.contains(&format!(" {change}")))
            .unwrap_or_else(|| panic!("no {change:?} line in:\n{log}"));
        assert!(line.contains("actor=\"admin\""), "{line}");
        assert!(line.contains("account=\"acme\""), "{line}");
    }
}
