//! Metric names and the events that update them, in one place (Vector's "internal events"
//! idea): call sites say what happened, this module decides how it is counted.

use metrics::{counter, gauge};

/// Posts accepted by the ingest API.
pub fn posts_ingested(n: u64) {
    counter!("sluice_posts_ingested_total").increment(n);
}

/// Post lines rejected by the ingest API.
pub fn posts_rejected(n: u64) {
    counter!("sluice_posts_rejected_total").increment(n);
}

/// Posts appended to the post log.
pub fn posts_logged(n: u64) {
    counter!("sluice_posts_logged_total").increment(n);
}

/// Accepted posts dropped because a post with the same id was accepted within the
/// de-duplication window (they were stored and delivered once already).
pub fn posts_duplicate(n: u64) {
    if n > 0 {
        counter!("sluice_posts_duplicate_total").increment(n);
    }
}

/// Appending to, reading or trimming the post log failed (an append failure refuses the
/// batch).
pub fn post_log_error() {
    counter!("sluice_post_log_errors_total").increment(1);
}

/// The post log was over its disk budget: its oldest `segments`, holding `posts`, were
/// dropped.
pub fn post_log_budget_trimmed(segments: u64, posts: u64) {
    counter!("sluice_post_log_budget_trimmed_segments_total").increment(segments);
    counter!("sluice_post_log_budget_trimmed_posts_total").increment(posts);
}

/// The post log's files take `bytes` now (set at every trim round).
pub fn post_log_bytes(bytes: u64) {
    gauge!("sluice_post_log_bytes").set(bytes as f64);
}

/// Messages were queued for connections (`n` = messages × connections).
pub fn messages_queued(n: u64) {
    counter!("sluice_messages_queued_total").increment(n);
}

/// A connection overflowed its outbox and is being closed.
pub fn slow_consumer() {
    counter!("sluice_slow_consumer_disconnects_total").increment(1);
}

/// A streaming connection opened (`delta` = 1) or closed (`delta` = -1).
pub fn connections(product: &'static str, delta: f64) {
    gauge!("sluice_connections_open", "product" => product).increment(delta);
}

/// A password check (argon2) started.
pub fn password_check() {
    counter!("sluice_password_checks_total").increment(1);
}

/// A password check was refused without running: too many running or waiting.
pub fn password_check_refused(why: &'static str) {
    counter!("sluice_password_checks_refused_total", "reason" => why).increment(1);
}

/// An authentication attempt was refused because its user's or client's budget is spent.
pub fn auth_throttled() {
    counter!("sluice_auth_throttled_total").increment(1);
}

/// A rules API request was answered.
pub fn rules_request(product: &'static str, status: u16) {
    counter!("sluice_rules_requests_total", "product" => product, "status" => status.to_string())
        .increment(1);
}

/// The node-wide rule index now holds `n` rules (all streams).
pub fn rules_indexed(n: usize) {
    gauge!("sluice_rules_indexed").set(n as f64);
}

/// Whether the node can serve (`/healthz` is 200): 1 or 0. A clustered node is 0 while it
/// loads the shared state and while it cannot reach NATS.
pub fn ready(ready: bool) {
    gauge!("sluice_ready").set(if ready { 1.0 } else { 0.0 });
}

/// Cluster mode: posts read from the posts stream and handed to this node's pipeline.
pub fn cluster_posts_consumed(n: u64) {
    counter!("sluice_cluster_posts_consumed_total").increment(n);
}

/// Cluster mode: changes of the shared state applied on this node (`ok` = false: failed).
pub fn cluster_changes_applied(ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    counter!("sluice_cluster_changes_applied_total", "outcome" => outcome).increment(1);
}

/// A post source (`source` = its kind, e.g. `jetstream`) received `n` events from its
/// upstream, whatever they turned into.
pub fn source_events_received(source: &'static str, n: u64) {
    counter!("sluice_source_events_received_total", "source" => source).increment(n);
}

/// A post source's sink acknowledged `posts` posts and `deletes` delete events.
pub fn source_ingested(source: &'static str, posts: u64, deletes: u64) {
    counter!("sluice_source_posts_ingested_total", "source" => source).increment(posts);
    counter!("sluice_source_deletes_ingested_total", "source" => source).increment(deletes);
}

/// A post source's lines the ingest checks refused (logged; the cursor moves past them).
pub fn source_rejected(source: &'static str, n: u64) {
    counter!("sluice_source_lines_rejected_total", "source" => source).increment(n);
}

/// A post source lost its upstream connection (or could not open it) and will try again.
pub fn source_reconnect(source: &'static str) {
    counter!("sluice_source_reconnects_total", "source" => source).increment(1);
}

/// How far behind the wall clock the last event a post source saved its cursor at is.
pub fn source_cursor_lag(source: &'static str, seconds: f64) {
    gauge!("sluice_source_cursor_lag_seconds", "source" => source).set(seconds);
}

static PROMETHEUS: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
    std::sync::OnceLock::new();

/// Installs the Prometheus recorder (once per process; later calls are no-ops).
pub fn install() {
    PROMETHEUS.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| tracing::warn!("metrics disabled: {e}"))
            .ok()
    });
}

/// The current metrics in Prometheus text format.
pub fn render() -> String {
    install();
    match PROMETHEUS.get().and_then(Option::as_ref) {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}
