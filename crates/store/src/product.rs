//! The products a stream can belong to, and what each one is: [`ProductSpec`], one row of
//! plain data per product ([`Product::spec`]). Code that needs a fact about a product (its
//! URLs, auth, rules dialect, partitions, limits, error shape) reads its row instead of
//! matching on the product, so adding a product is adding a row (and its wire module).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sluice_rules::Dialect;

/// Which API a stream serves. Part of a stream's identity: an account may have a PowerTrack
/// stream and a Decahose stream with the same label (`--demo` creates both as `prod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    /// PowerTrack: rules and a filtered stream.
    PowerTrack,
    /// Decahose: the 10 % sample, in 2 partitions.
    Decahose,
    /// Firehose: every post, in 20 partitions.
    Firehose,
    /// Powerstream: one rule set per account, reached with bearer tokens.
    Powerstream,
    /// The X API v2 filtered stream: one rule set per app (`/2/tweets/search/stream`).
    V2Filtered,
    /// The X API v2 1 % sample stream (`/2/tweets/sample/stream`).
    V2Sample,
    /// The X API v2 10 % sample in 2 partitions (`/2/tweets/sample10/stream`).
    V2Sample10,
    /// The X API v2 firehose in 20 partitions (`/2/tweets/firehose/stream`).
    V2Firehose,
    /// PowerTrack Replay: its own rules, and posts of a past window read from the post log
    /// (`/replay/powertrack/…`), never live ones.
    PowerTrackReplay,
    /// The compliance firehose: deletes, edits, protects, suspensions and withholdings, in
    /// 8 partitions (`/stream/compliance/…`).
    Compliance,
}

impl Product {
    /// Every product, in a stable order.
    pub const ALL: [Product; 10] = [
        Product::PowerTrack,
        Product::Decahose,
        Product::Firehose,
        Product::Powerstream,
        Product::V2Filtered,
        Product::V2Sample,
        Product::V2Sample10,
        Product::V2Firehose,
        Product::PowerTrackReplay,
        Product::Compliance,
    ];

    /// The X API v2 streams: every app has one of each.
    pub const V2: [Product; 4] = [
        Product::V2Filtered,
        Product::V2Sample,
        Product::V2Sample10,
        Product::V2Firehose,
    ];

    /// The name used in the admin API and in the database.
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// What the product is: its row of [`PRODUCTS`] (a `const fn`, so constants elsewhere
    /// are read from the table).
    pub const fn spec(self) -> &'static ProductSpec {
        match self {
            Product::PowerTrack => &POWERTRACK,
            Product::Decahose => &DECAHOSE,
            Product::Firehose => &FIREHOSE,
            Product::Powerstream => &POWERSTREAM,
            Product::V2Filtered => &V2_FILTERED,
            Product::V2Sample => &V2_SAMPLE,
            Product::V2Sample10 => &V2_SAMPLE10,
            Product::V2Firehose => &V2_FIREHOSE,
            Product::PowerTrackReplay => &POWERTRACK_REPLAY,
            Product::Compliance => &COMPLIANCE,
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A product name that is not one of [`Product::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown product {0:?}: expected powertrack, decahose, firehose, powerstream, v2-filtered, \
     v2-sample, v2-sample10, v2-firehose, powertrack-replay or compliance"
)]
pub struct UnknownProduct(pub String);

impl FromStr for Product {
    type Err = UnknownProduct;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Product::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProduct(s.to_owned()))
    }
}

/// How the streams and rules of a product are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// HTTP basic auth as a user of the account named in the path (Gnip-style APIs).
    Basic,
    /// An OAuth 2.0 bearer token issued by the admin API; the token names the account.
    Bearer,
}

/// The shape of a product's error bodies and in-band closing lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDialect {
    /// `{"error":{"message":…,"sent":…}}`, with X's Gnip texts.
    Gnip,
    /// v2 problem JSON; in-band lines are `{"errors":[{"title":"operational-disconnect",…}]}`.
    Problem,
}

/// Which posts a rule-less (volume) product delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// Every post.
    All,
    /// The Decahose's deterministic 10 % of post ids (`sluice_model::sampling::in_decahose`).
    Decahose,
    /// The v2 sample stream's deterministic 1 % (`sluice_model::sampling::in_one_percent`),
    /// a subset of the Decahose's 10 %.
    OnePercent,
}

/// How a product writes a post on its streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// X's native enriched post, as ingested (with `matching_rules` on rules streams).
    Native,
    /// The X API v2 line `{"data":…,"includes":…,"matching_rules":…}`, with the fields and
    /// expansions each connection asked for.
    V2,
}

/// What a product's streams carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Posts.
    Posts,
    /// Compliance events (`delete`, `tweet_edit`, `user_protect`, …), never posts; posts
    /// streams never carry them.
    Compliance,
}

/// How a product's streams are fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Live, as posts are ingested (with backfill and recovery from the post log).
    Live,
    /// Only by replay jobs over a past window of the post log: live delivery never
    /// evaluates their rules.
    Replay,
}

/// A fixed-window rate limit: `limit` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    /// Requests allowed per window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
}

const MINUTE: Duration = Duration::from_secs(60);
const QUARTER_HOUR: Duration = Duration::from_secs(15 * 60);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The rules API of a product that filters with rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesSpec {
    /// The rules URL under the public base URL (`{account}`/`{label}` filled in).
    pub url: &'static str,
    /// The rule language it accepts.
    pub dialect: Dialect,
    /// Rules a stream may hold unless its operator set a cap (the admin API's
    /// `max_rules`); Powerstream's cap is fixed.
    pub max_rules: u64,
    /// Longest rule, in characters (the rules crate enforces it for every dialect).
    pub max_rule_chars: usize,
    /// Rules one add request may carry; `None`: only the body size bounds it.
    pub max_rules_per_add: Option<usize>,
    /// Rules API requests per stream, account or app: all methods together, or only the
    /// changes when `reads` is set.
    pub rate: RateWindow,
    /// A separate limit for listing rules (the v2 API counts reads and writes apart);
    /// `None`: reads count against `rate`.
    pub reads: Option<RateWindow>,
}

/// One product as data: everything that differs between products, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductSpec {
    /// The product.
    pub product: Product,
    /// The name in the admin API and the database.
    pub name: &'static str,
    /// The stream URL under the public base URL (`{account}`/`{label}` filled in; without
    /// `partition`).
    pub stream_url: &'static str,
    /// How requests authenticate.
    pub auth: AuthScheme,
    /// The rules API, for products that deliver what their rules match.
    pub rules: Option<RulesSpec>,
    /// Partitions of a volume product (a connection reads one, `partition=N`).
    pub partitions: Option<u32>,
    /// Which posts a volume product delivers.
    pub sample: Sample,
    /// Connections a stream allows unless its operator set a cap.
    pub max_connections: u32,
    /// Stream connects per stream (and partition); `None`: not limited.
    pub connect_rate: Option<RateWindow>,
    /// The shape of error bodies and closing lines.
    pub errors: ErrorDialect,
    /// Whether the admin API creates streams of it (`PUT …/streams/{label}`); Powerstream's
    /// one rule set per account and the v2 streams of each app are created on first use
    /// instead.
    pub admin_created: bool,
    /// How posts are written on its streams.
    pub wire: Wire,
    /// What its streams carry.
    pub content: Content,
    /// How its streams are fed.
    pub delivery: Delivery,
}

impl ProductSpec {
    /// The rules dialect; `None` for volume products.
    pub fn dialect(&self) -> Option<Dialect> {
        self.rules.map(|r| r.dialect)
    }
}

/// Every product's row, in [`Product::ALL`] order. The limits are the ones X documents
/// for each API (ARCHITECTURE.md, "Products").
pub static PRODUCTS: [ProductSpec; 10] = [
    POWERTRACK,
    DECAHOSE,
    FIREHOSE,
    POWERSTREAM,
    V2_FILTERED,
    V2_SAMPLE,
    V2_SAMPLE10,
    V2_FIREHOSE,
    POWERTRACK_REPLAY,
    COMPLIANCE,
];

const POWERTRACK: ProductSpec = ProductSpec {
    product: Product::PowerTrack,
    name: "powertrack",
    stream_url: "/stream/powertrack/accounts/{account}/publishers/twitter/{label}.json",
    auth: AuthScheme::Basic,
    rules: Some(powertrack_rules(
        "/rules/powertrack/accounts/{account}/publishers/twitter/{label}.json",
    )),
    partitions: None,
    sample: Sample::All,
    max_connections: 2,
    connect_rate: Some(RateWindow {
        limit: 60,
        window: MINUTE,
    }),
    errors: ErrorDialect::Gnip,
    admin_created: true,
    wire: Wire::Native,
    content: Content::Posts,
    delivery: Delivery::Live,
};

const DECAHOSE: ProductSpec = ProductSpec {
    product: Product::Decahose,
    name: "decahose",
    stream_url: "/stream/sample10/accounts/{account}/publishers/twitter/{label}.json",
    auth: AuthScheme::Basic,
    rules: None,
    partitions: Some(2),
    sample: Sample::Decahose,
    max_connections: 2,
    connect_rate: Some(RateWindow {
        limit: 10,
        window: MINUTE,
    }),
    errors: ErrorDialect::Gnip,
    admin_created: true,
    wire: Wire::Native,
    content: Content::Posts,
    delivery: Delivery::Live,
};

const FIREHOSE: ProductSpec = ProductSpec {
    product: Product::Firehose,
    name: "firehose",
    stream_url: "/stream/firehose/accounts/{account}/publishers/twitter/{label}.json",
    auth: AuthScheme::Basic,
    rules: None,
    partitions: Some(20),
    sample: Sample::All,
    max_connections: 2,
    connect_rate: Some(RateWindow {
        limit: 10,
        window: MINUTE,
    }),
    errors: ErrorDialect::Gnip,
    admin_created: true,
    wire: Wire::Native,
    content: Content::Posts,
    delivery: Delivery::Live,
};

const POWERSTREAM: ProductSpec = ProductSpec {
    product: Product::Powerstream,
    name: "powerstream",
    stream_url: "/2/powerstream",
    auth: AuthScheme::Bearer,
    rules: Some(RulesSpec {
        url: "/2/powerstream/rules",
        dialect: Dialect::Powerstream,
        max_rules: 1_000,
        max_rule_chars: sluice_rules::MAX_RULE_CHARS,
        max_rules_per_add: Some(100),
        rate: RateWindow {
            limit: 50,
            window: DAY,
        },
        reads: None,
    }),
    partitions: None,
    sample: Sample::All,
    max_connections: 2,
    // X: "no limit on streams".
    connect_rate: None,
    errors: ErrorDialect::Problem,
    admin_created: false,
    wire: Wire::Native,
    content: Content::Posts,
    delivery: Delivery::Live,
};

/// X's v2 connect limit: 50 per 15 minutes per app and endpoint.
const V2_CONNECTS: RateWindow = RateWindow {
    limit: 50,
    window: QUARTER_HOUR,
};

const V2_FILTERED: ProductSpec = ProductSpec {
    product: Product::V2Filtered,
    name: "v2-filtered",
    stream_url: "/2/tweets/search/stream",
    auth: AuthScheme::Bearer,
    rules: Some(RulesSpec {
        url: "/2/tweets/search/stream/rules",
        dialect: Dialect::V2,
        // X's Enterprise figures (pay-per-use: 1,000 rules of 1,024 characters).
        max_rules: 25_000,
        max_rule_chars: sluice_rules::MAX_RULE_CHARS,
        max_rules_per_add: None,
        // 100 changes and 450 reads per 15 minutes per app.
        rate: RateWindow {
            limit: 100,
            window: QUARTER_HOUR,
        },
        reads: Some(RateWindow {
            limit: 450,
            window: QUARTER_HOUR,
        }),
    }),
    partitions: None,
    sample: Sample::All,
    max_connections: 2,
    connect_rate: Some(V2_CONNECTS),
    errors: ErrorDialect::Problem,
    admin_created: false,
    wire: Wire::V2,
    content: Content::Posts,
    delivery: Delivery::Live,
};

const V2_SAMPLE: ProductSpec = ProductSpec {
    product: Product::V2Sample,
    name: "v2-sample",
    stream_url: "/2/tweets/sample/stream",
    auth: AuthScheme::Bearer,
    rules: None,
    // One partition: the whole 1 % on every connection, no `partition` parameter.
    partitions: Some(1),
    sample: Sample::OnePercent,
    max_connections: 2,
    connect_rate: Some(V2_CONNECTS),
    errors: ErrorDialect::Problem,
    admin_created: false,
    wire: Wire::V2,
    content: Content::Posts,
    delivery: Delivery::Live,
};

const V2_SAMPLE10: ProductSpec = ProductSpec {
    product: Product::V2Sample10,
    name: "v2-sample10",
    stream_url: "/2/tweets/sample10/stream",
    auth: AuthScheme::Bearer,
    rules: None,
    partitions: Some(2),
    sample: Sample::Decahose,
    max_connections: 2,
    connect_rate: Some(V2_CONNECTS),
    errors: ErrorDialect::Problem,
    admin_created: false,
    wire: Wire::V2,
    content: Content::Posts,
    delivery: Delivery::Live,
};

const V2_FIREHOSE: ProductSpec = ProductSpec {
    product: Product::V2Firehose,
    name: "v2-firehose",
    stream_url: "/2/tweets/firehose/stream",
    auth: AuthScheme::Bearer,
    rules: None,
    partitions: Some(20),
    sample: Sample::All,
    max_connections: 2,
    connect_rate: Some(V2_CONNECTS),
    errors: ErrorDialect::Problem,
    admin_created: false,
    wire: Wire::V2,
    content: Content::Posts,
    delivery: Delivery::Live,
};

/// The rules API of PowerTrack, at `url`: the same language, limits and rate.
const fn powertrack_rules(url: &'static str) -> RulesSpec {
    RulesSpec {
        url,
        dialect: Dialect::PowerTrack,
        max_rules: 250_000,
        max_rule_chars: sluice_rules::MAX_RULE_CHARS,
        max_rules_per_add: None,
        rate: RateWindow {
            limit: 60,
            window: MINUTE,
        },
        reads: None,
    }
}

/// Replay: its own rule set (X does not copy the realtime stream's), 5 connects per
/// 5 minutes.
const POWERTRACK_REPLAY: ProductSpec = ProductSpec {
    product: Product::PowerTrackReplay,
    name: "powertrack-replay",
    stream_url: "/replay/powertrack/accounts/{account}/publishers/twitter/{label}.json",
    auth: AuthScheme::Basic,
    rules: Some(powertrack_rules(
        "/rules/powertrack-replay/accounts/{account}/publishers/twitter/{label}.json",
    )),
    partitions: None,
    sample: Sample::All,
    max_connections: 2,
    connect_rate: Some(RateWindow {
        limit: 5,
        window: Duration::from_secs(5 * 60),
    }),
    errors: ErrorDialect::Gnip,
    admin_created: true,
    wire: Wire::Native,
    content: Content::Posts,
    delivery: Delivery::Replay,
};

/// The compliance firehose: every compliance event, in 8 partitions.
const COMPLIANCE: ProductSpec = ProductSpec {
    product: Product::Compliance,
    name: "compliance",
    stream_url: "/stream/compliance/accounts/{account}/publishers/twitter/{label}.json",
    auth: AuthScheme::Basic,
    rules: None,
    partitions: Some(8),
    sample: Sample::All,
    max_connections: 2,
    connect_rate: Some(RateWindow {
        limit: 10,
        window: MINUTE,
    }),
    errors: ErrorDialect::Gnip,
    admin_created: true,
    wire: Wire::Native,
    content: Content::Compliance,
    delivery: Delivery::Live,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_has_its_own_row_in_order() {
        for (i, product) in Product::ALL.into_iter().enumerate() {
            assert_eq!(product.spec().product, product);
            assert_eq!(PRODUCTS[i].product, product);
            assert_eq!(product.as_str().parse::<Product>(), Ok(product));
        }
    }

    #[test]
    fn rows_are_consistent() {
        for spec in &PRODUCTS {
            // A product filters with rules or is split into partitions, never both.
            assert_ne!(
                spec.rules.is_some(),
                spec.partitions.is_some(),
                "{}",
                spec.name
            );
            assert!(spec.partitions.is_some() || spec.sample == Sample::All);
            // Compliance events are bulk: no rules, no sample; replay streams have rules.
            if spec.content == Content::Compliance {
                assert!(spec.rules.is_none() && spec.sample == Sample::All);
            }
            if spec.delivery == Delivery::Replay {
                assert!(spec.rules.is_some(), "{}", spec.name);
            }
            // Bearer-token products are reached without an account in the path.
            let named = spec.stream_url.contains("{account}");
            assert_eq!(named, spec.auth == AuthScheme::Basic, "{}", spec.name);
            if let Some(rules) = spec.rules {
                assert_eq!(rules.url.contains("{account}"), named, "{}", spec.name);
                // The rules crate enforces one length for every dialect.
                let longest = "a".repeat(rules.max_rule_chars);
                assert!(sluice_rules::parse_with(&longest, rules.dialect).is_ok());
                let longer = "a".repeat(rules.max_rule_chars + 1);
                assert!(sluice_rules::parse_with(&longer, rules.dialect).is_err());
            }
        }
    }
}
