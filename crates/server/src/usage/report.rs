//! An account's usage over a range of buckets: the stored counts (after a flush, so what
//! was delivered a moment ago is included), per stream and bucket. Both usage endpoints
//! shape their answers from this.

use sluice_store::{StoreError, StreamRef};
use time::OffsetDateTime;

use super::bucket::{Range, hour_start};
use super::flush::flush;
use crate::state::AppState;

/// One stream's counts in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketCounts {
    /// Posts delivered live.
    pub activities: u64,
    /// Posts sent by backfill and recovery.
    pub replayed: u64,
    /// The most connections open at once in any hour of the bucket.
    pub peak_connections: u32,
}

impl BucketCounts {
    /// Adds one stored hour.
    fn add(&mut self, activities: u64, replayed: u64, peak_connections: u32) {
        self.activities += activities;
        self.replayed += replayed;
        self.peak_connections = self.peak_connections.max(peak_connections);
    }

    /// What X bills: live and replayed posts together.
    pub fn billed(&self) -> u64 {
        self.activities + self.replayed
    }
}

/// One stream's counts over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSeries {
    /// The stream.
    pub stream: StreamRef,
    /// One entry per bucket of the range, in order.
    pub buckets: Vec<BucketCounts>,
}

impl StreamSeries {
    /// The sum over the range (peak: the largest).
    pub fn total(&self) -> BucketCounts {
        let mut total = BucketCounts::default();
        for b in &self.buckets {
            total.add(b.activities, b.replayed, b.peak_connections);
        }
        total
    }
}

/// An account's usage over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUsage {
    /// The range.
    pub range: Range,
    /// The starts of its buckets.
    pub starts: Vec<OffsetDateTime>,
    /// Every stream the account has, and every stream that has counts in the range
    /// (deleted since), by product and label.
    pub streams: Vec<StreamSeries>,
}

impl AccountUsage {
    /// The account's counts per bucket, over all streams.
    pub fn totals(&self) -> Vec<BucketCounts> {
        let mut totals = vec![BucketCounts::default(); self.starts.len()];
        for series in &self.streams {
            for (total, b) in totals.iter_mut().zip(&series.buckets) {
                total.activities += b.activities;
                total.replayed += b.replayed;
                total.peak_connections += b.peak_connections;
            }
        }
        totals
    }
}

/// Stores the pending counts, then reads `account`'s usage over `range`.
pub async fn account_usage(
    state: &AppState,
    account: &str,
    range: Range,
) -> Result<AccountUsage, StoreError> {
    let registry = state.registry.clone();
    let account = account.to_owned();
    state
        .blocking(move |store| {
            flush(&registry, store)?;
            let hours = range.hours();
            let rows = store.usage(&account, hours.start, hours.end)?;
            let existing = store.streams(&account)?;
            let starts = range.starts();
            let mut streams: Vec<StreamSeries> = existing
                .into_iter()
                .map(|s| StreamSeries {
                    stream: s.stream,
                    buckets: vec![BucketCounts::default(); starts.len()],
                })
                .collect();
            for row in rows {
                let at = starts.partition_point(|s| *s <= hour_start(row.hour));
                let Some(index) = at.checked_sub(1) else {
                    continue;
                };
                let series = match streams.iter().position(|s| s.stream == row.stream) {
                    Some(i) => &mut streams[i],
                    None => {
                        streams.push(StreamSeries {
                            stream: row.stream.clone(),
                            buckets: vec![BucketCounts::default(); starts.len()],
                        });
                        streams.last_mut().expect("just pushed")
                    }
                };
                series.buckets[index].add(row.activities, row.replayed, row.peak_connections);
            }
            streams.sort_by(|a, b| {
                (a.stream.product.as_str(), &a.stream.label)
                    .cmp(&(b.stream.product.as_str(), &b.stream.label))
            });
            Ok(AccountUsage {
                range,
                starts,
                streams,
            })
        })
        .await
}
