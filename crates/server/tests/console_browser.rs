//! The console in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! through the operator's and the customer's whole path (docs/operator-interface.md,
//! "Console"). Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them);
//! without them the test fails. A screenshot of each page is written under the target
//! directory (`tmp/console-screenshots/`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use sluice_server::Settings;
use sluice_testkit::{ADMIN, TestServer, post};

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_chromedriver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver is missing: install Debian's chromium and chromium-driver \
             (.ci/run does)",
        );
    let driver = Driver { child, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start listening on port {port}");
}

async fn browser(driver: &Driver) -> Client {
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ];
    args.push("--lang=en-US");
    let mut options = serde_json::json!({ "args": args });
    if std::path::Path::new("/usr/bin/chromium").exists() {
        options["binary"] = "/usr/bin/chromium".into();
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session through chromedriver")
}

struct Screens {
    dir: PathBuf,
    n: u32,
}

impl Screens {
    fn new() -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        // Only this run's pages.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir, n: 0 }
    }

    async fn take(&mut self, client: &Client, name: &str) {
        self.n += 1;
        let png = client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = self.dir.join(format!("{:02}-{name}.png", self.n));
        std::fs::write(&path, png).unwrap();
    }
}

async fn wait_for(client: &Client, locator: Locator<'_>) -> Element {
    match client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(locator)
        .await
    {
        Ok(element) => element,
        Err(e) => panic!(
            "waiting for {locator:?}: {e}; the page: {}",
            page_text(client).await
        ),
    }
}

/// What the page shows, for failure messages.
async fn page_text(client: &Client) -> String {
    let url = client
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let text = match client.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(e) => e.to_string(),
    };
    format!("{url}\n{text}")
}

async fn fill(client: &Client, id: &str, text: &str) {
    let input = wait_for(client, Locator::Id(id)).await;
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn click(client: &Client, locator: Locator<'_>) {
    wait_for(client, locator).await.click().await.unwrap();
}

/// Waits until the element's text satisfies `ok`; returns the text.
async fn text_until(client: &Client, id: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(element) = client.find(Locator::Id(id)).await {
            last = element.text().await.unwrap_or_default();
            if ok(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "#{id} never had the expected text; last: {last:?}; the page: {}",
        page_text(client).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_and_customer_go_through_the_console_in_chromium() {
    let server = TestServer::start(Settings::default()).await;
    let driver = start_chromedriver().await;
    let client = browser(&driver).await;
    let mut screens = Screens::new();

    // The operator signs in with the admin token.
    client.goto(&format!("{}/", server.base)).await.unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/console/")
    );
    fill(&client, "operator-token", ADMIN).await;
    screens.take(&client, "sign-in").await;
    click(&client, Locator::Css("#operator-form button[type=submit]")).await;
    text_until(&client, "health", |t| t.contains("Ingest rate")).await;
    screens.take(&client, "operator-node").await;

    // Creates an account, a user and a PowerTrack stream.
    fill(&client, "account-name", "acme").await;
    click(&client, Locator::Id("create-account")).await;
    fill(&client, "user-name", "alice").await;
    fill(&client, "user-password", "s3cret").await;
    click(&client, Locator::Css("#user-form button[type=submit]")).await;
    wait_for(
        &client,
        Locator::XPath("//ul[@id='users']/li[contains(., 'alice')]"),
    )
    .await;
    fill(&client, "stream-label", "prod").await;
    click(&client, Locator::Css("#stream-form button[type=submit]")).await;
    wait_for(
        &client,
        Locator::XPath("//table[@id='streams']//td[.='prod']"),
    )
    .await;
    // A v2 app: its secrets are shown once.
    fill(&client, "app-name", "dashboard").await;
    click(&client, Locator::Css("#app-form button[type=submit]")).await;
    let secrets = text_until(&client, "app-secret", |t| t.contains("bearer_token")).await;
    assert!(secrets.contains("Shown once"), "{secrets}");
    screens.take(&client, "operator-account").await;
    click(&client, Locator::Id("sign-out")).await;

    // The customer signs in and sees the API help page.
    fill(&client, "customer-account", "acme").await;
    fill(&client, "customer-username", "alice").await;
    fill(&client, "customer-password", "s3cret").await;
    click(&client, Locator::Css("#customer-form button[type=submit]")).await;
    let help = wait_for(&client, Locator::Css("main")).await;
    wait_for(&client, Locator::Id("rules-link-prod")).await;
    let help = help.text().await.unwrap();
    assert!(
        help.contains(&format!(
            "{}/stream/powertrack/accounts/acme/publishers/twitter/prod.json",
            server.base
        )),
        "{help}"
    );
    screens.take(&client, "customer-streams").await;
    // The same page on a phone-sized window.
    client.set_window_size(390, 844).await.unwrap();
    screens.take(&client, "customer-streams-phone").await;
    client.set_window_size(1280, 1000).await.unwrap();

    // Adds a rule, and sees X's message for an invalid one.
    click(&client, Locator::Id("rules-link-prod")).await;
    fill(&client, "rule-value", "hello world").await;
    fill(&client, "rule-tag", "greeting").await;
    click(&client, Locator::Css("#rule-form button[type=submit]")).await;
    wait_for(
        &client,
        Locator::XPath("//table[@id='rules-table']//code[.='hello world']"),
    )
    .await;
    fill(&client, "rule-value", "(hello").await;
    click(&client, Locator::Css("#rule-form button[type=submit]")).await;
    let message = text_until(&client, "rule-error", |t| !t.is_empty()).await;
    assert_eq!(
        message,
        "mismatched input 'EOF' expecting ')' (at position 7)"
    );
    screens.take(&client, "customer-rules").await;

    // Opens the live view and sees an ingested post arrive with its matching rule.
    click(&client, Locator::LinkText("Live view of prod")).await;
    text_until(&client, "live-state", |t| t.starts_with("Live")).await;
    server
        .ingest(&format!(
            "{}\n{}\n",
            post(1, "nothing to see"),
            post(2, "hello world from the browser test")
        ))
        .await;
    let item = wait_for(
        &client,
        Locator::XPath("//ul[@id='live-posts']/li[contains(., 'from the browser test')]"),
    )
    .await;
    let item = item.text().await.unwrap();
    assert!(item.contains("greeting: hello world"), "{item}");
    assert!(!item.contains("nothing to see"));
    screens.take(&client, "customer-live").await;
    let stream = server
        .state
        .registry
        .all()
        .into_iter()
        .find(|s| s.key.label == "prod")
        .unwrap();
    assert!(
        stream.connections.is_empty(),
        "the live view is not a connection"
    );

    // Pauses (the event stream is closed), then deletes the rule.
    click(&client, Locator::Id("live-pause")).await;
    text_until(&client, "live-state", |t| t == "Paused.").await;
    click(&client, Locator::LinkText("Rules of prod")).await;
    click(
        &client,
        Locator::Css("button[aria-label='Delete rule hello world']"),
    )
    .await;
    text_until(&client, "rule-count", |t| t == "0 of 0 rules").await;
    assert!(stream.rules.is_empty());
    screens.take(&client, "customer-rule-deleted").await;

    // Imports rules from a JSON file: all of them, or none when one is invalid.
    let files = tempfile::tempdir().unwrap();
    let bad = files.path().join("bad.json");
    std::fs::write(&bad, r#"{"rules":[{"value":"cats"},{"value":"dogs OR"}]}"#).unwrap();
    let good = files.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"rules":[{"value":"cats","tag":"c"},{"value":"dogs"}]}"#,
    )
    .unwrap();
    let import = wait_for(&client, Locator::Id("rule-import")).await;
    import.send_keys(bad.to_str().unwrap()).await.unwrap();
    wait_for(
        &client,
        Locator::XPath("//p[contains(., 'nothing was added') and contains(., 'dogs OR')]"),
    )
    .await;
    assert!(stream.rules.is_empty());
    import.clear().await.unwrap();
    import.send_keys(good.to_str().unwrap()).await.unwrap();
    text_until(&client, "rule-count", |t| t == "2 of 2 rules").await;
    assert_eq!(stream.rules.len(), 2);
    fill(&client, "rule-search", "cat").await;
    text_until(&client, "rule-count", |t| t == "1 of 2 rules").await;
    screens.take(&client, "customer-rules-imported").await;

    client.close().await.unwrap();
    server.stop().await;
}
