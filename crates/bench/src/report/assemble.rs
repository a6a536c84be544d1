//! Putting a finished run's measurements together into its [`Report`]: latencies from the
//! ingest send times and the readers' arrival times, the sums over connections, the rates,
//! and the verdict.

use std::time::Duration;

use super::{Cpu, Delivered, Ingested, Loss, Machine, Report, Server, Setup, Verdict, Workload};
use crate::config::Pacing;
use crate::ingest::IngestReport;
use crate::reader::ReaderReport;
use crate::stats::{Latency, p99_by_second};
use crate::verdict::{Achieved, Goal, checks};
use crate::workload::Posts;

/// What a run measured, with what it needs to be described.
pub(crate) struct Measured<'a> {
    /// The benchmark's name.
    pub benchmark: &'static str,
    /// Its goal.
    pub goal: Goal,
    /// Its setup.
    pub setup: Setup,
    /// The pacing asked for.
    pub pacing: Pacing,
    /// The machine.
    pub machine: Machine,
    /// The server under test.
    pub server: Server,
    /// The posts sent.
    pub posts: &'a Posts,
    /// The ingest side.
    pub ingested: &'a IngestReport,
    /// What each connection saw.
    pub readers: &'a [ReaderReport],
    /// CPU use over the window.
    pub cpu: Cpu,
}

/// The report of a run that measured `m`.
pub(crate) fn assemble(m: Measured<'_>) -> Report {
    let started = m.ingested.started_us;
    let (timed, last_arrival) = latencies(m.posts, m.ingested, m.readers);
    let p99_by_second = p99_by_second(timed.iter().copied(), m.ingested.seconds_sending());
    let mut latencies: Vec<u64> = timed.into_iter().map(|(_, latency)| latency).collect();
    let errors: Vec<&str> = m.ingested.errors().collect();
    let span = Duration::from_micros(
        m.ingested
            .last_answer_us()
            .unwrap_or(0)
            .saturating_sub(started),
    );
    let ingested = Ingested::new(m.ingested.accepted(), m.ingested.rejected(), span, &errors);
    let span = Duration::from_micros(last_arrival.saturating_sub(started));
    let delivered = Delivered::new(m.readers.iter().map(|r| r.lines).sum(), span);
    let sum = |count: fn(&ReaderReport) -> u64| m.readers.iter().map(count).sum::<u64>();
    let loss = Loss::new(
        sum(|r| r.expected.saturating_sub(r.received)),
        sum(|r| r.duplicates),
        sum(|r| r.unexpected),
        m.posts.len(),
        &ingested,
    );
    let mut report = Report {
        benchmark: m.benchmark,
        machine: m.machine,
        server: m.server,
        workload: Workload {
            posts: m.posts.len(),
            bytes: m.posts.bytes(),
            expected: m.posts.expected_count(),
            deliveries: sum(|r| r.expected),
        },
        setup: m.setup,
        pacing: m.pacing,
        ingested,
        delivered,
        latency: Latency::of(&mut latencies),
        p99_by_second,
        loss,
        disconnects: m
            .readers
            .iter()
            .filter_map(|r| r.disconnect.clone())
            .collect(),
        system_messages: m
            .readers
            .iter()
            .flat_map(|r| r.system_messages.iter().cloned())
            .collect(),
        cpu: m.cpu,
        goal: m.goal,
        targets: Vec::new(),
        verdict: Verdict::Miss,
    };
    report.judge();
    report
}

impl Report {
    /// Checks the figures against the goal: fills in [`Report::targets`] and
    /// [`Report::verdict`].
    pub(crate) fn judge(&mut self) {
        self.targets = checks(
            &self.goal,
            &Achieved {
                rate: self.ingested.rate,
                setup: &self.setup,
                latency: self.latency.as_ref(),
                loss: &self.loss,
            },
        );
        self.verdict = if self.targets.iter().all(|c| c.pass) {
            Verdict::Pass
        } else {
            Verdict::Miss
        };
    }
}

impl Ingested {
    /// The ingest figures: `accepted` and `rejected` posts in `span`, and the errors of
    /// the requests that failed.
    pub(crate) fn new(accepted: u64, rejected: u64, span: Duration, errors: &[&str]) -> Self {
        Self {
            rate: per_second(accepted, span),
            accepted,
            rejected,
            span,
            failed_requests: errors.len(),
            first_error: errors.first().map(|e| (*e).to_owned()),
        }
    }
}

impl Delivered {
    /// `posts` received in `span`.
    pub(crate) fn new(posts: u64, span: Duration) -> Self {
        Self {
            rate: per_second(posts, span),
            posts,
            span,
        }
    }
}

impl Loss {
    /// The losses of a run that sent `posts` posts and got `ingested` back: exact when
    /// nothing was lost, duplicated or unexpected and the server took every post.
    pub(crate) fn new(
        lost: u64,
        duplicates: u64,
        unexpected: u64,
        posts: usize,
        ingested: &Ingested,
    ) -> Self {
        let posts = posts as u64;
        Self {
            lost,
            duplicates,
            unexpected,
            not_ingested: posts.saturating_sub(ingested.accepted),
            exact: lost == 0
                && duplicates == 0
                && unexpected == 0
                && ingested.rejected == 0
                && ingested.failed_requests == 0
                && ingested.accepted == posts,
        }
    }
}

/// For the first copy of every expected post on every connection: when its ingest
/// request started (µs since the start of sending) and how long until it arrived (µs);
/// and the last arrival (µs since the epoch).
fn latencies(
    posts: &Posts,
    ingested: &IngestReport,
    readers: &[ReaderReport],
) -> (Vec<(u64, u64)>, u64) {
    let started = ingested.started_us;
    let send_times = ingested.send_times(posts.len());
    let mut latencies = Vec::with_capacity(readers.iter().map(|r| r.arrivals.len()).sum());
    let mut last_arrival = 0;
    for report in readers {
        for &(index, arrived) in &report.arrivals {
            last_arrival = last_arrival.max(arrived);
            if let Some(sent) = send_times[index as usize] {
                latencies.push((sent.saturating_sub(started), arrived.saturating_sub(sent)));
            }
        }
    }
    (latencies, last_arrival)
}

fn per_second(count: u64, span: Duration) -> f64 {
    if span.is_zero() {
        0.0
    } else {
        count as f64 / span.as_secs_f64()
    }
}
