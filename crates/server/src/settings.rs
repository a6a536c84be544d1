//! The server's settings once resolved (from flags, environment and config file, by the
//! binary): where it listens is the binary's business; this is how it behaves.

use std::time::Duration;

use sluice_store::Product;

use crate::auth::AuthSettings;

/// How the server behaves. [`Settings::default`] is what `sluice serve` runs with; tests
/// shrink the timings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The datacenter this node serves (Powerstream `localDcOnly`), `--datacenter`.
    pub datacenter: String,
    /// Silence after which a stream gets a `\r\n` heartbeat (docs/compatibility.md ("Decisions"): 10 s).
    pub heartbeat: Duration,
    /// Bytes a connection may have queued before it is closed as a slow consumer.
    pub outbox_bytes: usize,
    /// Upper bound on the message bytes written in one chunk.
    pub max_batch_bytes: usize,
    /// How long a stream may stay over its connection cap before the newest connection is
    /// closed (docs/compatibility.md ("Decisions"): 60 s).
    pub over_cap_grace: Duration,
    /// Connection cap of a stream whose operator did not set one, for every product (each
    /// product's row of the table says 2, the default; tests lower it).
    pub default_max_connections: u32,
    /// Rule cap of a stream the admin API creates without one (PowerTrack's row: 250,000).
    pub default_max_rules: u64,
    /// Largest rules API request body (spec: 5 MB).
    pub rules_body_limit: usize,
    /// Largest ingest request body (operator contract: 16 MiB).
    pub ingest_body_limit: usize,
    /// Largest admin API request body (64 KiB: the bodies are a few small fields).
    pub admin_body_limit: usize,
    /// How long a request body may take to arrive, counted from when the handler starts
    /// reading it (after authentication); past it the answer is 408 (docs/errors.md).
    pub body_read_timeout: Duration,
    /// The base URL printed in stream and rules URLs (`http://127.0.0.1:8080`).
    pub public_url: String,
    /// How long accepted posts stay in the post log for backfill, recovery and replay
    /// (`--post-log-retention`; default [`DEFAULT_POST_LOG_RETENTION`], at most
    /// [`MAX_POST_LOG_RETENTION`]).
    pub post_log_retention: Duration,
    /// The post log's disk budget in bytes (`--post-log-max-bytes`; default none: the
    /// retention alone bounds it). Over it, the oldest segments are dropped even if they are
    /// younger than the retention (docs/retention.md).
    pub post_log_max_bytes: Option<u64>,
    /// How often posts older than the retention are dropped from the post log (and the
    /// file-backed log is flushed to disk).
    pub post_log_trim_interval: Duration,
    /// Password check bounds and attempt budgets.
    pub auth: AuthSettings,
    /// How often the usage counts are stored ([`crate::usage::flush`]); they are also
    /// stored before every usage read and at shutdown.
    pub usage_flush_interval: Duration,
    /// Threads that match the posts of a batch and compress its gzip segments
    /// (`--match-threads`; default: the cores available). With 1 the pipeline thread does
    /// both itself.
    pub match_threads: usize,
    /// How old the end of a Replay window must be (`--replay-embargo`; X's 30 minutes by
    /// default, [`DEFAULT_REPLAY_EMBARGO`]); its start must be a minute older still.
    pub replay_embargo: Duration,
    /// How many logged posts per second a Replay job reads at most (`--replay-rate`):
    /// a job at full speed on a small machine slows live delivery (docs/performance.md,
    /// "Replay beside live delivery"); X's Replay runs "slightly slower than realtime".
    /// `None`: as fast as the client reads.
    pub replay_rate: Option<std::num::NonZeroU32>,
}

/// Default of [`Settings::replay_rate`], posts per second: about X's average rate, so a
/// window of X's firehose replays a little slower than it happened.
pub const DEFAULT_REPLAY_RATE: u32 = 5_000;

/// Default of [`Settings::replay_embargo`]: X's "toDate at least 30 minutes old".
pub const DEFAULT_REPLAY_EMBARGO: Duration = Duration::from_secs(30 * 60);

/// Default of [`Settings::post_log_retention`]: Recovery's window, 24 hours.
pub const DEFAULT_POST_LOG_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Longest [`Settings::post_log_retention`]: Replay's window, 5 days.
pub const MAX_POST_LOG_RETENTION: Duration = Duration::from_secs(5 * 24 * 3600);
/// Shortest retention `sluice serve` accepts: the longest backfill window (5 minutes).
pub const MIN_POST_LOG_RETENTION: Duration = Duration::from_secs(5 * 60);

impl Default for Settings {
    fn default() -> Self {
        Self {
            datacenter: "local".into(),
            heartbeat: Duration::from_secs(10),
            outbox_bytes: 16 << 20,
            max_batch_bytes: 256 << 10,
            over_cap_grace: Duration::from_secs(60),
            default_max_connections: Product::PowerTrack.spec().max_connections,
            default_max_rules: Product::PowerTrack
                .spec()
                .rules
                .map_or(0, |rules| rules.max_rules),
            rules_body_limit: 5_000_000,
            ingest_body_limit: 16 << 20,
            admin_body_limit: 64 << 10,
            body_read_timeout: Duration::from_secs(30),
            public_url: "http://127.0.0.1:8080".into(),
            post_log_retention: DEFAULT_POST_LOG_RETENTION,
            post_log_max_bytes: None,
            post_log_trim_interval: Duration::from_secs(10),
            auth: AuthSettings::default(),
            usage_flush_interval: crate::usage::flush::FLUSH_INTERVAL,
            match_threads: crate::workers::available_cores(),
            replay_embargo: DEFAULT_REPLAY_EMBARGO,
            replay_rate: std::num::NonZeroU32::new(DEFAULT_REPLAY_RATE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_default_connection_cap_is_every_products() {
        let settings = Settings::default();
        for product in Product::ALL {
            assert_eq!(
                product.spec().max_connections,
                settings.default_max_connections,
                "{product}"
            );
        }
        assert_eq!(settings.default_max_rules, 250_000);
    }
}
