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

/// What would make the page unusable without a mouse, for a screen reader or on a phone:
/// a field without a label, a button without a name, something taken out of the tab
/// order (every action here is a link, button or field, which take the keyboard), and a
/// page wider than the window. Empty when all is well.
const ACCESSIBILITY_CHECK: &str = r#"
const problems = [];
for (const el of document.querySelectorAll("input, select, textarea")) {
  if (el.type !== "hidden" && el.labels.length === 0 && !el.getAttribute("aria-label")) {
    problems.push("no label: " + (el.id || el.outerHTML.slice(0, 80)));
  }
}
for (const el of document.querySelectorAll("button")) {
  if (!(el.getAttribute("aria-label") || el.textContent.trim())) problems.push("unnamed button: " + el.outerHTML.slice(0, 80));
}
for (const el of document.querySelectorAll("[tabindex]")) {
  if (el.tabIndex < 0 && el.id !== "main") problems.push("out of the tab order: " + el.outerHTML.slice(0, 80));
}
if (/null|undefined|NaN/.test(document.body.innerText)) problems.push("a missing value shown: " + document.body.innerText);
const root = document.documentElement;
if (root.scrollWidth > root.clientWidth + 1) problems.push("wider than the window: " + root.scrollWidth + " > " + root.clientWidth);
return problems;
"#;

/// Checks the page with [`ACCESSIBILITY_CHECK`] at the laptop size, then at a phone's
/// 390 px (with a screenshot), and goes back to the laptop size.
async fn check_page(client: &Client, screens: &mut Screens, name: &str) {
    for (width, height) in [(1280, 1000), (390, 844)] {
        client.set_window_size(width, height).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let problems = client.execute(ACCESSIBILITY_CHECK, vec![]).await.unwrap();
        assert_eq!(
            problems,
            serde_json::json!([]),
            "{name} at {width} px; the page: {}",
            page_text(client).await
        );
        if width == 390 {
            screens.take(client, &format!("{name}-phone")).await;
        }
    }
    client.set_window_size(1280, 1000).await.unwrap();
}

/// Clicks a button that asks for confirmation, and confirms.
async fn click_and_confirm(client: &Client, locator: Locator<'_>) {
    click(client, locator).await;
    for _ in 0..50 {
        if client.accept_alert().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no confirmation was asked for {locator:?}");
}

/// Presses Enter in the element: the keyboard's way to submit a form or press a button.
async fn press_enter(client: &Client, locator: Locator<'_>) {
    let element = wait_for(client, locator).await;
    element.send_keys("\u{E007}").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_and_customer_go_through_the_console_in_chromium() {
    // A short heartbeat: a live view notices its ended session within it.
    let settings = Settings {
        heartbeat: Duration::from_millis(500),
        ..Settings::default()
    };
    let server = TestServer::start(settings).await;
    let driver = start_chromedriver().await;
    // Two browsers, each with its own cookies: the operator's and the customer's.
    let client = browser(&driver).await;
    let customer = browser(&driver).await;
    let mut screens = Screens::new();
    // Bounded: every wait below gives up after 10 s; the whole path after two minutes.
    tokio::time::timeout(
        Duration::from_secs(120),
        whole_path(&server, &client, &customer, &mut screens),
    )
    .await
    .expect("the console's whole path took over two minutes");
    client.close().await.unwrap();
    customer.close().await.unwrap();
    server.stop().await;
}

async fn whole_path(
    server: &TestServer,
    client: &Client,
    customer: &Client,
    screens: &mut Screens,
) {
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
    fill(client, "operator-token", ADMIN).await;
    check_page(client, screens, "sign-in").await;
    press_enter(client, Locator::Id("operator-token")).await;
    text_until(client, "health", |t| {
        t.contains("Ingest rate") && t.contains("Post log holds")
    })
    .await;
    text_until(client, "accounts", |t| t.contains("No accounts yet.")).await;
    screens.take(client, "operator-node").await;
    check_page(client, screens, "operator-node").await;

    operator_sets_up_acme(server, client, screens).await;
    let (status, body) = server
        .admin(
            reqwest::Method::PUT,
            "/admin/accounts/acme/streams/prod",
            serde_json::json!({"product": "powertrack-replay"}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let stream = server
        .state
        .registry
        .all()
        .into_iter()
        .find(|s| s.key.label == "prod" && s.key.product == sluice_store::Product::PowerTrack)
        .unwrap();

    // The customer signs in (in the other browser) and sees the API help page.
    customer
        .goto(&format!("{}/console/", server.base))
        .await
        .unwrap();
    fill(customer, "customer-account", "acme").await;
    fill(customer, "customer-username", "alice").await;
    fill(customer, "customer-password", "s3cret").await;
    click(customer, Locator::Css("#customer-form button[type=submit]")).await;
    let help = wait_for(customer, Locator::Css("main")).await;
    wait_for(customer, Locator::Id("rules-link-prod")).await;
    wait_for(customer, Locator::Id("rules-link-powerstream")).await;
    wait_for(customer, Locator::Id("rules-link-replay-prod")).await;
    let help = help.text().await.unwrap();
    for url in [
        "/stream/powertrack/accounts/acme/publishers/twitter/prod.json",
        "/2/powerstream/rules",
        "/2/tweets/search/stream",
    ] {
        assert!(
            help.contains(&format!("{}{url}", server.base)),
            "{url}: {help}"
        );
    }
    assert!(
        help.contains("app dashboard · X API v2 filtered stream"),
        "{help}"
    );
    screens.take(customer, "customer-streams").await;
    check_page(customer, screens, "customer-streams").await;

    customer_rules(customer, screens, &stream).await;
    customer_powerstream_rules(customer, screens).await;
    customer_replay_rules(customer).await;

    // A client of the stream (the posts it gets are the usage counted).
    let response = reqwest::Client::new()
        .get(format!(
            "{}/stream/powertrack/accounts/acme/publishers/twitter/prod.json",
            server.base
        ))
        .basic_auth("alice", Some("s3cret"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let mut connection = sluice_testkit::StreamClient::new(response);

    // Opens the live view and sees an ingested post arrive with its matching rule.
    click(customer, Locator::Id("rules-link-prod")).await;
    click(customer, Locator::LinkText("Live view of prod")).await;
    text_until(customer, "live-state", |t| t.starts_with("Live")).await;
    server
        .ingest(&format!(
            "{}\n{}\n",
            post(1, "nothing to see"),
            post(2, "hello world from the browser test")
        ))
        .await;
    let item = wait_for(
        customer,
        Locator::XPath("//ul[@id='live-posts']/li[contains(., 'from the browser test')]"),
    )
    .await;
    let item = item.text().await.unwrap();
    assert!(item.contains("greeting: hello world"), "{item}");
    assert!(!item.contains("nothing to see"));
    screens.take(customer, "customer-live").await;
    check_page(customer, screens, "customer-live").await;
    assert_eq!(
        stream.connections.len(),
        1,
        "the live view is not a connection: the one is the client's"
    );
    // Pauses (the event stream is closed) and resumes.
    click(customer, Locator::Id("live-pause")).await;
    text_until(customer, "live-state", |t| t == "Paused.").await;
    click(customer, Locator::Id("live-pause")).await;
    text_until(customer, "live-state", |t| t.starts_with("Live")).await;

    assert_eq!(sluice_testkit::id_of(&connection.next_message().await), 2);

    // The usage page: posts delivered, connections, rules, the last hour's matches.
    click(customer, Locator::LinkText("Usage")).await;
    let usage = text_until(customer, "usage-powertrack-prod", |t| {
        t.contains("Matched most")
    })
    .await;
    for expected in [
        "Posts delivered\n1",
        "Connections now\n1",
        "Peak connections\n1",
        "Rules\n2",
        "1 matches by 1 rules; 1 rules never matched.",
    ] {
        assert!(usage.contains(expected), "{expected:?} in {usage}");
    }
    let top = text_until(customer, "usage-powertrack-prod-top", |t| !t.is_empty()).await;
    assert!(top.contains("hello world greeting 1"), "{top}");
    let never = text_until(customer, "usage-powertrack-prod-never", |t| !t.is_empty()).await;
    assert!(never.contains("dogs"), "{never}");
    let bars = customer
        .find_all(Locator::Css("#usage-powertrack-prod-chart rect"))
        .await
        .unwrap();
    assert_eq!(bars.len(), 24, "one bar per hour");
    let tallest = customer
        .execute(
            "return Math.max(...[...document.querySelectorAll('#usage-powertrack-prod-chart rect')].map((r) => Number(r.getAttribute('height'))));",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        tallest.as_f64().unwrap() > 100.0,
        "the hour with the post is drawn: {tallest}"
    );
    screens.take(customer, "customer-usage").await;
    check_page(customer, screens, "customer-usage").await;
    // By day, chosen from the keyboard.
    let period = wait_for(customer, Locator::Id("usage-bucket")).await;
    period.send_keys("\u{E015}").await.unwrap(); // arrow down: "By day"
    text_until(customer, "usage-powertrack-prod", |t| {
        t.contains("Posts delivered\n1")
    })
    .await;
    let days = customer
        .find_all(Locator::Css("#usage-powertrack-prod-chart rect"))
        .await
        .unwrap();
    assert_eq!(days.len(), 30, "one bar per day");
    click(customer, Locator::LinkText("Streams and API help")).await;
    click(customer, Locator::Id("live-link-prod")).await;
    text_until(customer, "live-state", |t| t.starts_with("Live")).await;

    // The operator deletes the user: the customer's live view ends, back to sign-in.
    click_and_confirm(
        client,
        Locator::Css("button[aria-label='Delete user alice']"),
    )
    .await;
    text_until(client, "users", |t| !t.contains("alice")).await;
    wait_for(customer, Locator::Id("customer-form")).await;
    text_until(customer, "status", |t| t.contains("Your session has ended")).await;
    screens.take(customer, "customer-signed-out").await;

    // Deletes the account: the name typed again is the confirmation.
    fill(client, "delete-account-confirm", "acm").await;
    click(client, Locator::Id("delete-account")).await;
    text_until(client, "delete-account-error", |t| {
        t.contains("Type the account's name")
    })
    .await;
    fill(client, "delete-account-confirm", "acme").await;
    click(client, Locator::Id("delete-account")).await;
    text_until(client, "status", |t| t == "Account acme deleted.").await;
    text_until(client, "accounts", |t| t.contains("No accounts yet.")).await;
    assert!(server.state.registry.all().is_empty());
    screens.take(client, "operator-account-deleted").await;

    // Many accounts: listed 20 to a page.
    for n in 0..21 {
        let (status, _) = server
            .admin(
                reqwest::Method::PUT,
                &format!("/admin/accounts/p{n:02}"),
                serde_json::json!({}),
            )
            .await;
        assert!(status.is_success());
    }
    client.refresh().await.unwrap();
    let first = text_until(client, "accounts", |t| t.contains("p19")).await;
    assert!(!first.contains("p20"), "{first}");
    click(client, Locator::Id("accounts-next")).await;
    let second = text_until(client, "accounts", |t| t.contains("p20")).await;
    assert!(!second.contains("p19"), "{second}");
    assert!(client.find(Locator::Id("accounts-next")).await.is_err());
    screens.take(client, "operator-accounts-page-2").await;
    click(client, Locator::Id("accounts-prev")).await;
    text_until(client, "accounts", |t| t.contains("p00")).await;
}

/// The operator creates the account `acme` with the user `alice`, the PowerTrack stream
/// `prod` (then edits its limits), a Powerstream token (created, listed, revoked) and the
/// v2 app `dashboard` (its limits edited); the account is listed on the node page.
async fn operator_sets_up_acme(server: &TestServer, client: &Client, screens: &mut Screens) {
    fill(client, "account-name", "acme").await;
    click(client, Locator::Id("create-account")).await;
    fill(client, "user-name", "alice").await;
    fill(client, "user-password", "s3cret").await;
    click(client, Locator::Css("#user-form button[type=submit]")).await;
    wait_for(
        client,
        Locator::XPath("//ul[@id='users']/li[contains(., 'alice')]"),
    )
    .await;
    fill(client, "stream-label", "prod").await;
    click(client, Locator::Css("#stream-form button[type=submit]")).await;
    wait_for(
        client,
        Locator::XPath("//table[@id='streams']//td[.='prod']"),
    )
    .await;
    // Its limits, edited from the keyboard.
    press_enter(
        client,
        Locator::Css("button[aria-label='Edit limits of stream prod (powertrack)']"),
    )
    .await;
    fill(client, "stream-max-rules", "50").await;
    press_enter(client, Locator::Id("stream-max-rules")).await;
    wait_for(
        client,
        Locator::XPath("//table[@id='streams']//td[contains(., '50 rules')]"),
    )
    .await;

    // A Powerstream token with a label: shown once, listed, revoked.
    fill(client, "token-label", "ci").await;
    click(client, Locator::Css("#token-form button[type=submit]")).await;
    let shown = text_until(client, "token-secret", |t| t.contains("sl_ps_")).await;
    assert!(shown.contains("Shown once"), "{shown}");
    let listed = text_until(client, "tokens", |t| t.contains("ci")).await;
    let prefix = listed.split_whitespace().next().unwrap().to_owned();
    assert!(prefix.starts_with("sl_ps_"), "{listed}");
    click_and_confirm(
        client,
        Locator::Css(&format!("button[aria-label='Revoke token {prefix}']")),
    )
    .await;
    text_until(client, "tokens", |t| t.is_empty()).await;

    // A v2 app: its secrets are shown once; its limits edited.
    fill(client, "app-name", "dashboard").await;
    click(client, Locator::Css("#app-form button[type=submit]")).await;
    let secrets = text_until(client, "app-secret", |t| t.contains("bearer_token")).await;
    assert!(secrets.contains("Shown once"), "{secrets}");
    let rules = wait_for(client, Locator::Css("input[id$='-max_rules']")).await;
    rules.clear().await.unwrap();
    rules.send_keys("7").await.unwrap();
    click(
        client,
        Locator::Css("button[aria-label='Save limits of app dashboard']"),
    )
    .await;
    text_until(client, "status", |t| t == "Done.").await;
    let (_, apps) = server
        .admin(
            reqwest::Method::GET,
            "/admin/accounts/acme/apps",
            serde_json::json!(null),
        )
        .await;
    assert_eq!(apps["apps"][0]["max_rules"], 7, "{apps}");
    screens.take(client, "operator-account").await;
    check_page(client, screens, "operator-account").await;

    // The node page lists the account.
    click(client, Locator::LinkText("All accounts")).await;
    text_until(client, "accounts", |t| t.contains("acme")).await;
    click(client, Locator::LinkText("acme")).await;
    wait_for(client, Locator::Id("delete-account-confirm")).await;
}

/// The customer's PowerTrack rules: an add, X's message for an invalid rule, a delete,
/// an import (all or nothing), a search.
async fn customer_rules(
    client: &Client,
    screens: &mut Screens,
    stream: &sluice_server::registry::LiveStream,
) {
    click(client, Locator::Id("rules-link-prod")).await;
    fill(client, "rule-value", "hello world").await;
    fill(client, "rule-tag", "greeting").await;
    press_enter(client, Locator::Id("rule-tag")).await;
    wait_for(
        client,
        Locator::XPath("//table[@id='rules-table']//code[.='hello world']"),
    )
    .await;
    fill(client, "rule-value", "(hello").await;
    click(client, Locator::Css("#rule-form button[type=submit]")).await;
    let message = text_until(client, "rule-error", |t| !t.is_empty()).await;
    assert_eq!(
        message,
        "mismatched input 'EOF' expecting ')' (at position 7)"
    );
    screens.take(client, "customer-rules").await;
    check_page(client, screens, "customer-rules").await;

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
    let import = wait_for(client, Locator::Id("rule-import")).await;
    import.send_keys(bad.to_str().unwrap()).await.unwrap();
    wait_for(
        client,
        Locator::XPath("//p[contains(., 'nothing was added') and contains(., 'dogs OR')]"),
    )
    .await;
    assert_eq!(stream.rules.len(), 1);
    import.clear().await.unwrap();
    import.send_keys(good.to_str().unwrap()).await.unwrap();
    text_until(client, "rule-count", |t| t == "3 of 3 rules").await;
    fill(client, "rule-search", "cat").await;
    text_until(client, "rule-count", |t| t == "1 of 3 rules").await;
    screens.take(client, "customer-rules-imported").await;
    // Deletes one.
    click(
        client,
        Locator::Css("button[aria-label='Delete rule cats']"),
    )
    .await;
    text_until(client, "rule-count", |t| t == "0 of 2 rules").await;
    assert_eq!(stream.rules.len(), 2);
}

/// The customer's Powerstream rules: an add, and Powerstream's message for an invalid
/// rule.
/// The customer adds a rule to the Replay stream `prod`, whose rules are its own.
async fn customer_replay_rules(client: &Client) {
    click(client, Locator::Id("rules-link-replay-prod")).await;
    wait_for(client, Locator::XPath("//h2[.='Replay rules of prod']")).await;
    text_until(client, "rule-count", |t| t == "0 of 0 rules").await;
    fill(client, "rule-value", "replayed cats").await;
    click(client, Locator::Css("#rule-form button[type=submit]")).await;
    text_until(client, "rule-count", |t| t == "1 of 1 rules").await;
    click(client, Locator::LinkText("Streams and API help")).await;
}

async fn customer_powerstream_rules(client: &Client, screens: &mut Screens) {
    click(client, Locator::LinkText("Streams and API help")).await;
    click(client, Locator::Id("rules-link-powerstream")).await;
    wait_for(client, Locator::XPath("//h2[.='Powerstream rules']")).await;
    fill(client, "rule-value", "cats has:media").await;
    click(client, Locator::Css("#rule-form button[type=submit]")).await;
    text_until(client, "rule-count", |t| t == "1 of 1 rules").await;
    fill(client, "rule-value", "(cats").await;
    click(client, Locator::Css("#rule-form button[type=submit]")).await;
    let message = text_until(client, "rule-error", |t| !t.is_empty()).await;
    assert!(message.ends_with("(at position 6)."), "{message}");
    screens.take(client, "customer-powerstream-rules").await;
    click(client, Locator::LinkText("Streams and API help")).await;
}
