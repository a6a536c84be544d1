//! Latency percentiles over every sample of a run: the samples are few enough (millions at
//! most) to sort, which gives exact percentiles without a histogram's rounding.

use std::time::Duration;

use serde::Serialize;

use crate::report::as_ms;

/// The latency figures the bench prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Number of samples.
    #[serde(rename = "samples")]
    pub count: usize,
    /// Median.
    #[serde(rename = "p50_ms", serialize_with = "as_ms")]
    pub p50: Duration,
    /// 99th percentile.
    #[serde(rename = "p99_ms", serialize_with = "as_ms")]
    pub p99: Duration,
    /// 99.9th percentile.
    #[serde(rename = "p999_ms", serialize_with = "as_ms")]
    pub p999: Duration,
    /// Largest sample.
    #[serde(rename = "max_ms", serialize_with = "as_ms")]
    pub max: Duration,
}

impl Latency {
    /// Summarises samples in microseconds (reordered in place); `None` when there are none.
    pub fn of(samples_us: &mut [u64]) -> Option<Latency> {
        if samples_us.is_empty() {
            return None;
        }
        samples_us.sort_unstable();
        let at = |q: f64| Duration::from_micros(percentile(samples_us, q));
        Some(Latency {
            count: samples_us.len(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        })
    }
}

/// The 99th percentile of the latencies of the posts sent in each of the first `seconds`
/// seconds of the run (more if a sample was sent later), from `(sent, latency)` pairs in
/// microseconds (`sent` counted from the start of sending); `None` for a second none of
/// whose posts arrived, the last ones included.
///
/// One run's p99 can come from one stall or from a slowness spread over the whole run, and
/// only this tells them apart: a p99 missed because the first second was slow, or because
/// of one pause, looks like this `[90, 8, 7, …]` and not like `[40, 41, 39, …]`.
pub fn p99_by_second(
    samples: impl IntoIterator<Item = (u64, u64)>,
    seconds: usize,
) -> Vec<Option<Duration>> {
    let mut by_second: Vec<Vec<u64>> = vec![Vec::new(); seconds];
    for (sent_us, latency_us) in samples {
        let second = (sent_us / 1_000_000) as usize;
        if by_second.len() <= second {
            by_second.resize_with(second + 1, Vec::new);
        }
        by_second[second].push(latency_us);
    }
    by_second
        .into_iter()
        .map(|mut latencies| {
            (!latencies.is_empty()).then(|| {
                latencies.sort_unstable();
                Duration::from_micros(percentile(&latencies, 0.99))
            })
        })
        .collect()
}

/// The nearest-rank percentile `q` (0 < q ≤ 1) of sorted, non-empty samples: the smallest
/// sample with at least `q` of all samples at or below it.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<u64> = (1..=1000).rev().collect();
        let latency = Latency::of(&mut samples).expect("samples");
        assert_eq!(latency.count, 1000);
        assert_eq!(latency.p50, Duration::from_micros(500));
        assert_eq!(latency.p99, Duration::from_micros(990));
        assert_eq!(latency.p999, Duration::from_micros(999));
        assert_eq!(latency.max, Duration::from_micros(1000));
    }

    #[test]
    fn each_second_of_sending_has_its_own_p99() {
        // Second 0: 1..=100 ms; second 1: nothing arrived; second 2: one slow post.
        let mut samples: Vec<(u64, u64)> = (1..=100).map(|ms| (ms * 5_000, ms * 1_000)).collect();
        samples.push((2_500_000, 70_000));
        samples.reverse();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(p99_by_second(samples.clone(), 0), [ms(99), None, ms(70)]);
        // Posts were sent for five seconds: the last two lost every post.
        assert_eq!(
            p99_by_second(samples, 5),
            [ms(99), None, ms(70), None, None]
        );
        assert_eq!(p99_by_second([], 2), [None, None]);
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_is_nothing() {
        let latency = Latency::of(&mut [7]).expect("one sample");
        assert_eq!(
            (latency.p50, latency.max),
            (Duration::from_micros(7), Duration::from_micros(7))
        );
        assert_eq!(Latency::of(&mut []), None);
    }
}
