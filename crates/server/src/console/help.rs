//! The "API help" page of a stream: its URLs ([`crate::urls`]) and ready curl commands
//! for the signed-in user. The commands name the user and let curl ask for the password,
//! so no secret is ever shown.

use serde_json::{Value, json};
use sluice_store::{AuthScheme, Delivery, StreamRef};

/// The curl commands of `stream` for `username` (`url` is its description's
/// `stream_url`, `rules_url` its rules URL when it has one).
pub(super) fn commands(
    stream: &StreamRef,
    username: &str,
    stream_url: &str,
    rules_url: Option<&str>,
) -> Value {
    let curl = format!("curl --compressed -u '{username}'");
    let mut commands = Vec::new();
    match stream.product.spec().partitions {
        Some(n) => commands.push(json!({
            "what": format!("Connect to partition 1 (of 1 to {n})"),
            "command": format!("{curl} '{stream_url}?partition=1'"),
        })),
        None => commands.push(json!({
            "what": match stream.product.spec().delivery {
                Delivery::Replay => "Replay a past window (UTC minutes, toDate excluded)",
                Delivery::Live => "Connect to the stream",
            },
            "command": format!("{curl} '{stream_url}{}'", crate::urls::connect_query(stream)),
        })),
    }
    if let Some(rules) = rules_url {
        let add = r#"{"rules":[{"value":"cat has:images","tag":"cats"}]}"#;
        commands.push(json!({
            "what": "List the rules",
            "command": format!("{curl} '{rules}'"),
        }));
        commands.push(json!({
            "what": "Add a rule",
            "command": format!("{curl} -H 'Content-Type: application/json' -d '{add}' '{rules}'"),
        }));
        if stream.product.spec().dialect() == Some(sluice_rules::Dialect::PowerTrack)
            && let Some(base) = rules.strip_suffix(".json")
        {
            commands.push(json!({
                "what": "Validate a rule without adding it",
                "command": format!(
                    "{curl} -H 'Content-Type: application/json' -d '{add}' '{base}/validation.json'"
                ),
            }));
        }
        commands.push(json!({
            "what": "Delete a rule by value",
            "command": format!(
                "{curl} -H 'Content-Type: application/json' -d '{{\"rules\":[{{\"value\":\"cat has:images\"}}]}}' '{rules}?_method=delete'"
            ),
        }));
    }
    Value::Array(commands)
}

/// The curl commands the customer's page shows for a stream described by `described`
/// ([`crate::urls::describe_stream`]): for basic-auth products, [`commands`] for the
/// signed-in user; for bearer-token products (Powerstream, v2), the description's own
/// commands, whose token is a placeholder (the operator hands out tokens and apps).
pub(super) fn for_customer(stream: &StreamRef, username: &str, described: &Value) -> Value {
    if stream.product.spec().auth == AuthScheme::Basic {
        let stream_url = described["stream_url"].as_str().unwrap_or_default();
        return commands(
            stream,
            username,
            stream_url,
            described["rules_url"].as_str(),
        );
    }
    let named = [
        ("stream", "Connect to the stream"),
        ("list_rules", "List the rules"),
        ("add_rule", "Add a rule"),
        ("validate_rule", "Validate a rule without adding it"),
        ("delete_rule", "Delete a rule by value"),
    ];
    let mut listed: Vec<Value> = named
        .iter()
        .filter_map(|(key, what)| {
            let command = described["curl"][key].as_str()?;
            Some(json!({ "what": what, "command": command }))
        })
        .collect();
    if let (Some(first), Some(n)) = (
        described["curl"]["stream_partitions"][0].as_str(),
        stream.product.spec().partitions,
    ) {
        listed.insert(
            0,
            json!({ "what": format!("Connect to partition 1 (of 1 to {n})"), "command": first }),
        );
    }
    Value::Array(listed)
}

#[cfg(test)]
mod tests {
    use sluice_store::Product;

    use super::*;

    #[test]
    fn powertrack_gets_stream_and_rules_commands_and_volume_streams_a_partition() {
        let stream = |product| StreamRef {
            account: "acme".into(),
            product,
            label: "prod".into(),
        };
        let pt = commands(
            &stream(Product::PowerTrack),
            "alice",
            "http://h/stream/x/prod.json",
            Some("http://h/rules/x/prod.json"),
        );
        let pt: Vec<&str> = pt
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["command"].as_str().unwrap())
            .collect();
        assert_eq!(
            pt[0],
            "curl --compressed -u 'alice' 'http://h/stream/x/prod.json'"
        );
        assert!(
            pt.iter()
                .any(|c| c.ends_with("'http://h/rules/x/prod/validation.json'"))
        );
        assert_eq!(pt.len(), 5);
        let deca = commands(&stream(Product::Decahose), "alice", "http://h/s.json", None);
        assert_eq!(
            deca[0]["command"],
            "curl --compressed -u 'alice' 'http://h/s.json?partition=1'"
        );
        assert_eq!(deca.as_array().unwrap().len(), 1);
    }
}
