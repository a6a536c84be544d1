//! The "API help" page of a stream: its URLs ([`crate::urls`]) and ready curl commands
//! for the signed-in user. The commands name the user and let curl ask for the password,
//! so no secret is ever shown.

use serde_json::{Value, json};
use sluice_store::{Product, StreamRef};

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
            "what": "Connect to the stream",
            "command": format!("{curl} '{stream_url}'"),
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
        if stream.product == Product::PowerTrack
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

#[cfg(test)]
mod tests {
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
