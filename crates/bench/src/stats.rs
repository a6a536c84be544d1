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
    fn one_sample_is_every_percentile_and_none_is_nothing() {
        let latency = Latency::of(&mut [7]).expect("one sample");
        assert_eq!(
            (latency.p50, latency.max),
            (Duration::from_micros(7), Duration::from_micros(7))
        );
        assert_eq!(Latency::of(&mut []), None);
    }
}
