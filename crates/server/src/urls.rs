//! The URLs a customer uses, as the "API help" view hands them out: the URL shapes of each
//! product's row of the table ([`sluice_store::ProductSpec`]) with the stream filled in.

use serde_json::{Value, json};
use sluice_store::{StreamLimits, StreamRef};

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

/// A stream as the admin API describes it.
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
        v["rule_count"] = json!(rules);
        v["max_rules"] = json!(limits.max_rules);
    }
    if let Some(n) = stream.product.spec().partitions {
        v["partitions"] = json!(n);
    }
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
}
