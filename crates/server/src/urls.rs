//! The URLs a customer uses, as the "API help" view hands them out: the URL shapes of each
//! product's row of the table ([`sluice_store::ProductSpec`]) with the stream filled in,
//! and ready `curl` commands for them (credentials as placeholders: `USERNAME:PASSWORD`,
//! `TOKEN` for Powerstream, `APP_BEARER_TOKEN` for an app's v2 streams).

use serde_json::{Map, Value, json};
use sluice_rules::Dialect;
use sluice_store::{AuthScheme, Delivery, StreamLimits, StreamRef, Wire};

use crate::state::AppState;

/// A URL shape of the table with `{account}` and `{label}` filled in, under `base`.
fn fill(base: &str, shape: &str, stream: &StreamRef) -> String {
    let path = shape
        .replace("{account}", &stream.account)
        .replace("{label}", &stream.label);
    format!("{base}{path}")
}

/// The stream URL (without `partition`).
pub fn stream_url(base: &str, stream: &StreamRef) -> String {
    fill(base, stream.product.spec().stream_url, stream)
}

/// The rules URL (products with a rules API only).
pub fn rules_url(base: &str, stream: &StreamRef) -> Option<String> {
    let rules = stream.product.spec().rules?;
    Some(fill(base, rules.url, stream))
}

/// The rule validation URL (products with a rules API only): PowerTrack's
/// `…/{label}/validation.json`, the `/2/` rules URL with `dry_run=true` elsewhere.
pub fn validation_url(base: &str, stream: &StreamRef) -> Option<String> {
    let rules = stream.product.spec().rules?;
    let url = fill(base, rules.url, stream);
    Some(match rules.dialect {
        Dialect::PowerTrack => format!("{}/validation.json", url.trim_end_matches(".json")),
        Dialect::Powerstream | Dialect::V2 => format!("{url}?dry_run=true"),
    })
}

/// The stream URL of each partition of a volume stream (`?partition=1` …), oldest first;
/// empty for unpartitioned products.
pub fn partition_urls(base: &str, stream: &StreamRef) -> Vec<String> {
    let url = stream_url(base, stream);
    let partitions = stream.product.spec().partitions.unwrap_or(0);
    (1..=partitions)
        .map(|n| format!("{url}?partition={n}"))
        .collect()
}

/// What a connect URL needs beyond the stream URL: a replay's window (placeholders in X's
/// `yyyymmddhhmm` form); nothing for live streams.
pub fn connect_query(stream: &StreamRef) -> &'static str {
    match stream.product.spec().delivery {
        Delivery::Replay => "?fromDate=YYYYMMDDHHMM&toDate=YYYYMMDDHHMM",
        Delivery::Live => "",
    }
}

/// The `curl` options that authenticate as the stream's customer, with placeholders.
fn curl_auth(stream: &StreamRef) -> &'static str {
    let spec = stream.product.spec();
    match (spec.auth, spec.wire) {
        (AuthScheme::Basic, _) => "-u USERNAME:PASSWORD",
        (AuthScheme::Bearer, Wire::Native) => "-H 'Authorization: Bearer TOKEN'",
        (AuthScheme::Bearer, Wire::V2) => "-H 'Authorization: Bearer APP_BEARER_TOKEN'",
    }
}

/// Ready `curl` commands for the stream: connect (each partition of a volume stream), and
/// for rule-based products list, add, validate and delete a rule, in the body shape of
/// the product's rules API.
pub fn curl_commands(base: &str, stream: &StreamRef) -> Value {
    let auth = curl_auth(stream);
    let mut commands = Map::new();
    let partitions = partition_urls(base, stream);
    if partitions.is_empty() {
        let url = stream_url(base, stream);
        let query = connect_query(stream);
        commands.insert(
            "stream".into(),
            json!(format!("curl --compressed {auth} '{url}{query}'")),
        );
    } else {
        let each: Vec<String> = partitions
            .iter()
            .map(|url| format!("curl --compressed {auth} '{url}'"))
            .collect();
        commands.insert("stream_partitions".into(), json!(each));
    }
    let (Some(rules), Some(validation)) = (rules_url(base, stream), validation_url(base, stream))
    else {
        return Value::Object(commands);
    };
    let dialect = stream.product.spec().rules.map(|r| r.dialect);
    let (add, delete, delete_url) = match dialect {
        Some(Dialect::V2) => (
            r#"{"add":[{"value":"cat has:images","tag":"cats"}]}"#,
            r#"{"delete":{"values":["cat has:images"]}}"#,
            rules.clone(),
        ),
        _ => (
            r#"{"rules":[{"value":"cat has:images","tag":"cats"}]}"#,
            r#"{"rules":[{"value":"cat has:images"}]}"#,
            format!("{rules}?_method=delete"),
        ),
    };
    let post = |body: &str, url: &str| {
        format!("curl {auth} -H 'Content-Type: application/json' -d '{body}' '{url}'")
    };
    commands.insert("list_rules".into(), json!(format!("curl {auth} '{rules}'")));
    commands.insert("add_rule".into(), json!(post(add, &rules)));
    commands.insert("validate_rule".into(), json!(post(add, &validation)));
    commands.insert("delete_rule".into(), json!(post(delete, &delete_url)));
    Value::Object(commands)
}

/// A stream as the admin API describes it: its URLs (stream, each partition, rules,
/// validation), its limits and counts, and ready `curl` commands.
pub fn describe_stream(
    state: &AppState,
    stream: &StreamRef,
    rules: usize,
    connections: usize,
    limits: StreamLimits,
) -> Value {
    let base = state.settings.public_url.as_str();
    let mut v = json!({
        "account": stream.account,
        "label": stream.label,
        "product": stream.product.as_str(),
        "stream_url": stream_url(base, stream),
        "max_connections": limits.max_connections,
        "connections": connections,
    });
    if let Some(rules_url) = rules_url(base, stream) {
        v["rules_url"] = json!(rules_url);
        v["validation_url"] = json!(validation_url(base, stream));
        v["rule_count"] = json!(rules);
        v["max_rules"] = json!(limits.max_rules);
    }
    if let Some(n) = stream.product.spec().partitions {
        v["partitions"] = json!(n);
        v["partition_urls"] = json!(partition_urls(base, stream));
    }
    v["curl"] = curl_commands(base, stream);
    v
}

#[cfg(test)]
mod tests {
    use sluice_store::Product;

    use super::*;

    #[test]
    fn urls_are_the_shapes_of_the_table_filled_in() {
        let stream = |product| StreamRef {
            account: "acme".into(),
            product,
            label: "prod".into(),
        };
        let base = "https://h";
        #[rustfmt::skip]
        let cases = [
            (Product::PowerTrack,
             "https://h/stream/powertrack/accounts/acme/publishers/twitter/prod.json",
             Some("https://h/rules/powertrack/accounts/acme/publishers/twitter/prod.json")),
            (Product::Decahose,
             "https://h/stream/sample10/accounts/acme/publishers/twitter/prod.json", None),
            (Product::Firehose,
             "https://h/stream/firehose/accounts/acme/publishers/twitter/prod.json", None),
            (Product::Powerstream, "https://h/2/powerstream", Some("https://h/2/powerstream/rules")),
        ];
        for (product, stream_want, rules_want) in cases {
            assert_eq!(stream_url(base, &stream(product)), stream_want);
            assert_eq!(rules_url(base, &stream(product)).as_deref(), rules_want);
        }
    }

    #[test]
    fn validation_urls_follow_each_rules_api() {
        let stream = |product| StreamRef {
            account: "acme".into(),
            product,
            label: "prod".into(),
        };
        let base = "https://h";
        #[rustfmt::skip]
        let cases = [
            (Product::PowerTrack,
             Some("https://h/rules/powertrack/accounts/acme/publishers/twitter/prod/validation.json")),
            (Product::Powerstream, Some("https://h/2/powerstream/rules?dry_run=true")),
            (Product::V2Filtered, Some("https://h/2/tweets/search/stream/rules?dry_run=true")),
            (Product::Decahose, None),
        ];
        for (product, want) in cases {
            assert_eq!(validation_url(base, &stream(product)).as_deref(), want);
        }
        assert_eq!(
            partition_urls(base, &stream(Product::Decahose)),
            [
                "https://h/stream/sample10/accounts/acme/publishers/twitter/prod.json?partition=1",
                "https://h/stream/sample10/accounts/acme/publishers/twitter/prod.json?partition=2",
            ]
        );
        assert_eq!(partition_urls(base, &stream(Product::V2Firehose)).len(), 20);
        assert!(partition_urls(base, &stream(Product::PowerTrack)).is_empty());
    }

    #[test]
    fn curl_commands_use_each_products_credentials_and_bodies() {
        let stream = |product| StreamRef {
            account: "acme".into(),
            product,
            label: "prod".into(),
        };
        let base = "https://h";
        let pt = curl_commands(base, &stream(Product::PowerTrack));
        assert_eq!(
            pt["stream"],
            "curl --compressed -u USERNAME:PASSWORD \
             'https://h/stream/powertrack/accounts/acme/publishers/twitter/prod.json'"
        );
        assert_eq!(
            pt["delete_rule"],
            "curl -u USERNAME:PASSWORD -H 'Content-Type: application/json' \
             -d '{\"rules\":[{\"value\":\"cat has:images\"}]}' \
             'https://h/rules/powertrack/accounts/acme/publishers/twitter/prod.json?_method=delete'"
        );
        let ps = curl_commands(base, &stream(Product::Powerstream));
        assert_eq!(
            ps["list_rules"],
            "curl -H 'Authorization: Bearer TOKEN' 'https://h/2/powerstream/rules'"
        );
        let v2 = curl_commands(base, &stream(Product::V2Filtered));
        assert!(v2["add_rule"].as_str().unwrap().contains(
            "Bearer APP_BEARER_TOKEN' -H 'Content-Type: application/json' -d '{\"add\":["
        ));
        let deca = curl_commands(base, &stream(Product::Decahose));
        assert_eq!(deca["stream_partitions"].as_array().unwrap().len(), 2);
        assert!(deca.get("add_rule").is_none());
        let compliance = curl_commands(base, &stream(Product::Compliance));
        assert_eq!(
            compliance["stream_partitions"][7],
            "curl --compressed -u USERNAME:PASSWORD \
             'https://h/stream/compliance/accounts/acme/publishers/twitter/prod.json?partition=8'"
        );
        let replay = curl_commands(base, &stream(Product::PowerTrackReplay));
        assert_eq!(
            replay["stream"],
            "curl --compressed -u USERNAME:PASSWORD \
             'https://h/replay/powertrack/accounts/acme/publishers/twitter/prod.json\
             ?fromDate=YYYYMMDDHHMM&toDate=YYYYMMDDHHMM'"
        );
        assert!(replay["validate_rule"].as_str().unwrap().ends_with(
            "/rules/powertrack-replay/accounts/acme/publishers/twitter/prod/validation.json'"
        ));
    }
}
