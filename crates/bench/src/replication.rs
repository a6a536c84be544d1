//! Waiting for the nodes of a cluster to agree with what the bench provisioned through the
//! first node. Accounts, users, streams, tokens and rules reach the other nodes through
//! JetStream's KV bucket a moment later; a connection opened, or a post ingested, at a node
//! that has not applied them yet would be refused or matched against too few rules, and
//! the run would count posts as lost that the cluster simply had not been told to deliver.
//!
//! Each node is asked for the bench account's admin view (`GET /admin/accounts/{account}`:
//! users, streams with their live rule counts, token prefixes) until it shows everything
//! [`Expected`] lists. The rule counts are those of the node's live registry, the rules its
//! pipeline matches with.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::provision::ACCOUNT;
use super::target::Target;
use sluice_client::http::{Auth, HttpClient, Reply, Request};

/// How long the nodes may take to agree.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often each node is asked meanwhile.
const POLL: Duration = Duration::from_millis(50);

/// What every node must show in the bench account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Users that must exist.
    pub users: Vec<String>,
    /// Streams that must exist.
    pub streams: Vec<ExpectedStream>,
    /// A Powerstream bearer token that must be known (the view lists token prefixes).
    pub token: Option<String>,
}

/// One stream every node must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedStream {
    /// Its label.
    pub label: String,
    /// Its product, as the admin API names it (`powertrack`, `firehose`, `powerstream`).
    pub product: &'static str,
    /// How many rules its live registry must hold, when rules matter.
    pub rules: Option<usize>,
}

/// Waits until every node of `target` shows `expected` in the bench account; does nothing
/// for a single server (the one provisioned). `what` names the step in the error.
pub async fn wait(
    client: &HttpClient,
    target: &Target,
    expected: &Expected,
    what: &str,
) -> anyhow::Result<()> {
    if target.nodes.len() < 2 {
        return Ok(());
    }
    let admin = Auth::Bearer(target.admin_token.clone());
    let deadline = Instant::now() + TIMEOUT;
    for (n, node) in target.nodes.iter().enumerate() {
        let url = node
            .join(&format!("admin/accounts/{ACCOUNT}"))
            .context("building the admin URL")?;
        let request = Request::new(Method::GET, &url, &admin)?;
        loop {
            let reply = Reply::read(
                client
                    .send(&request)
                    .await
                    .with_context(|| format!("asking node {} for the bench account", n + 1))?,
            )
            .await?;
            let lacking = match reply.status {
                StatusCode::OK => {
                    let view: Value = serde_json::from_slice(&reply.body)
                        .context("the admin API's account view is not JSON")?;
                    lacks(&view, expected)
                }
                // The account itself has not arrived yet.
                StatusCode::NOT_FOUND => Some(format!("the account {ACCOUNT:?}")),
                status => bail!(
                    "asking node {} for the bench account: HTTP {status}: {}",
                    n + 1,
                    reply.error_message()
                ),
            };
            let Some(lacking) = lacking else { break };
            if Instant::now() > deadline {
                bail!(
                    "{what}: node {} ({node}) still lacks {lacking} {} s after it was \
                     provisioned through node 1",
                    n + 1,
                    TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

/// The first thing `expected` lists that the account view `view` does not show, or `None`
/// when it shows everything.
fn lacks(view: &Value, expected: &Expected) -> Option<String> {
    let strings = |key: &str| -> Vec<&str> {
        view[key]
            .as_array()
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let users = strings("users");
    if let Some(user) = expected.users.iter().find(|u| !users.contains(&u.as_str())) {
        return Some(format!("the user {user:?}"));
    }
    let streams = view["streams"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for want in &expected.streams {
        // Streams made on first use are listed before they exist (`"exists":false`).
        let found = streams.iter().find(|s| {
            s["label"].as_str() == Some(&want.label)
                && s["product"].as_str() == Some(want.product)
                && s["exists"].as_bool() != Some(false)
        });
        let Some(found) = found else {
            return Some(format!("the {} stream {:?}", want.product, want.label));
        };
        if let Some(rules) = want.rules {
            let has = found["rule_count"].as_u64().unwrap_or(0);
            if has != rules as u64 {
                return Some(format!(
                    "rules on the {} stream {:?} ({has} of {rules})",
                    want.product, want.label
                ));
            }
        }
    }
    if let Some(token) = &expected.token {
        let known = strings("tokens")
            .iter()
            .any(|prefix| !prefix.is_empty() && token.starts_with(prefix));
        if !known {
            return Some("the Powerstream token".to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expected() -> Expected {
        Expected {
            users: vec!["bench".to_owned()],
            streams: vec![
                ExpectedStream {
                    label: "bench-1".to_owned(),
                    product: "powertrack",
                    rules: Some(2),
                },
                ExpectedStream {
                    label: "powerstream".to_owned(),
                    product: "powerstream",
                    rules: None,
                },
            ],
            token: Some("sl_ps_abcdefgh".to_owned()),
        }
    }

    fn view(users: &[&str], bench_rules: u64, tokens: &[&str]) -> Value {
        json!({
            "account": "sluice-bench",
            "users": users,
            "streams": [
                {"label": "bench-1", "product": "powertrack", "rule_count": bench_rules,
                 "connections": 0},
                {"label": "powerstream", "product": "powerstream", "rule_count": 0},
                {"label": "other", "product": "firehose"},
            ],
            "tokens": tokens,
        })
    }

    #[test]
    fn a_node_that_shows_everything_lacks_nothing() {
        assert_eq!(
            lacks(&view(&["alice", "bench"], 2, &["sl_ps_abcd"]), &expected()),
            None
        );
        assert_eq!(lacks(&json!({}), &Expected::default()), None);
    }

    #[test]
    fn a_stream_listed_before_it_exists_is_not_there_yet() {
        let mut before = view(&["bench"], 2, &["sl_ps_abcd"]);
        before["streams"][1]["exists"] = json!(false);
        assert_eq!(
            lacks(&before, &expected()).as_deref(),
            Some("the powerstream stream \"powerstream\"")
        );
        before["streams"][1]["exists"] = json!(true);
        assert_eq!(lacks(&before, &expected()), None);
    }

    #[test]
    fn each_missing_part_is_named() {
        assert_eq!(
            lacks(&view(&["alice"], 2, &["sl_ps_abcd"]), &expected()).as_deref(),
            Some("the user \"bench\"")
        );
        assert_eq!(
            lacks(&view(&["bench"], 1, &["sl_ps_abcd"]), &expected()).as_deref(),
            Some("rules on the powertrack stream \"bench-1\" (1 of 2)")
        );
        // More rules than expected is not agreement either.
        assert!(lacks(&view(&["bench"], 3, &["sl_ps_abcd"]), &expected()).is_some());
        assert_eq!(
            lacks(&view(&["bench"], 2, &["sl_ps_zzzz", ""]), &expected()).as_deref(),
            Some("the Powerstream token")
        );
        let mut firehose = expected();
        firehose.streams[1].product = "firehose";
        assert_eq!(
            lacks(&view(&["bench"], 2, &["sl_ps_abcd"]), &firehose).as_deref(),
            Some("the firehose stream \"powerstream\"")
        );
        assert_eq!(
            lacks(&json!({"users": ["bench"]}), &expected()).as_deref(),
            Some("the powertrack stream \"bench-1\"")
        );
    }
}
