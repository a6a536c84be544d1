//! What registering and unregistering stream connections costs the server as their number
//! grows: every connection is held in its stream's list ([`Connections`]) and under its
//! credential ([`Sessions`]), and both are updated under a lock on each connect and each
//! close. With one stream or one credential holding many connections (Powerstream with a
//! raised cap, one user's PowerTrack streams), a cost per operation that grows with the
//! number held would make opening or closing N connections cost N², under a lock every
//! connect of the server takes.
//!
//! `cargo bench -p sluice-server --bench connections` opens N connections on one stream
//! and one credential, then closes them in a scattered order, and prints the median time
//! per connection of each, for several N (`SLUICE_BENCH_SIZES=1000,10000`; rounds:
//! `SLUICE_BENCH_ROUNDS`). A cost that stays flat as N grows is what to expect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_server::delivery::{Encoding, Format, Outbox};
use sluice_server::registry::Connections;
use sluice_server::sessions::{Checked, Credential, Sessions};

fn main() {
    let sizes = env_list("SLUICE_BENCH_SIZES").unwrap_or_else(|| vec![1_000, 10_000, 40_000]);
    let rounds = env_list("SLUICE_BENCH_ROUNDS")
        .and_then(|r| r.first().copied())
        .unwrap_or(5)
        .max(1);
    println!("connections on one stream and one credential; median of {rounds} rounds");
    println!(
        "{:>10}  {:>18}  {:>18}",
        "held", "open, per conn.", "close, per conn."
    );
    for n in sizes {
        let mut opens = Vec::with_capacity(rounds);
        let mut closes = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let (open, close) = round(n);
            opens.push(open);
            closes.push(close);
        }
        println!(
            "{:>10}  {:>15.2} µs  {:>15.2} µs",
            n,
            per_connection(median(&mut opens), n),
            per_connection(median(&mut closes), n)
        );
    }
}

/// Opens `n` connections, then closes them all; returns how long each half took.
fn round(n: usize) -> (Duration, Duration) {
    let connections = Connections::default();
    let sessions = Sessions::default();
    let checked = Checked {
        credential: Credential::user("acme", "bench"),
        generation: 0,
    };
    let outboxes: Vec<Arc<Outbox>> = (0..n)
        .map(|_| Arc::new(Outbox::new(1 << 20, Encoding::Identity)))
        .collect();
    let started = Instant::now();
    let mut held: Vec<_> = outboxes
        .iter()
        .map(|outbox| {
            let guard = sessions.open(&checked, outbox);
            let (connection, _) = connections.open(outbox.clone(), None, false, Format::Native);
            (connection.id, guard)
        })
        .collect();
    let opened = started.elapsed();
    // Clients leave in no particular order: a fixed shuffle.
    held.sort_by_key(|(id, _)| id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let started = Instant::now();
    for (id, guard) in held {
        connections.close(id);
        drop(guard);
    }
    (opened, started.elapsed())
}

fn per_connection(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1e6 / n as f64
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// A comma-separated list of counts from the environment; a value that is not one is an
/// error rather than a silent fall back to the defaults.
fn env_list(name: &str) -> Option<Vec<usize>> {
    let value = std::env::var(name).ok()?;
    let parsed = value
        .split(',')
        .map(|s| s.trim().replace('_', "").parse().ok())
        .collect();
    match parsed {
        Some(list) => Some(list),
        None => panic!("{name}={value:?}: expected counts separated by commas, e.g. 1000,10000"),
    }
}
