//! The URLs a customer uses, as the "API help" view hands them out.

use serde_json::{Value, json};
use sluice_store::{Product, StreamLimits, StreamRef};

use crate::pipeline::{DECAHOSE_PARTITIONS, FIREHOSE_PARTITIONS};
use crate::state::AppState;

/// The path segment of a Gnip-style product (`/stream/{it}/accounts/…`).
pub fn stream_type(product: Product) -> &'static str {
    match product {
        Product::PowerTrack => "powertrack",
        Product::Decahose => "sample10",
        Product::Firehose => "firehose",
        Product::Powerstream => "powerstream",
    }
}

/// The stream URL (without `partition`).
pub fn stream_url(base: &str, stream: &StreamRef) -> String {
    if stream.product == Product::Powerstream {
        return format!("{base}/2/powerstream");
    }
    format!(
        "{base}/stream/{}/accounts/{}/publishers/twitter/{}.json",
        stream_type(stream.product),
        stream.account,
        stream.label
    )
}

/// The rules URL (PowerTrack and Powerstream only).
pub fn rules_url(base: &str, stream: &StreamRef) -> Option<String> {
    match stream.product {
        Product::PowerTrack => Some(format!(
            "{base}/rules/powertrack/accounts/{}/publishers/twitter/{}.json",
            stream.account, stream.label
        )),
        Product::Powerstream => Some(format!("{base}/2/powerstream/rules")),
        Product::Decahose | Product::Firehose => None,
    }
}

/// Partitions of a volume stream.
pub fn partitions(product: Product) -> Option<u32> {
    match product {
        Product::Decahose => Some(DECAHOSE_PARTITIONS),
        Product::Firehose => Some(FIREHOSE_PARTITIONS),
        Product::PowerTrack | Product::Powerstream => None,
    }
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
    if let Some(n) = partitions(stream.product) {
        v["partitions"] = json!(n);
    }
    v
}
