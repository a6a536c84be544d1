//! Usage per stream and UTC hour: posts delivered live, posts replayed (backfill and
//! recovery) and the peak number of open connections. The server counts in memory and
//! adds its counts here every few seconds; the Usage API and the console read them back.

use rusqlite::params;

use crate::product::Product;
use crate::store::{Store, StoreError, StreamRef};

/// One stream's usage in one UTC hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageHour {
    /// The stream.
    pub stream: StreamRef,
    /// The hour, as whole hours since the UNIX epoch (UTC).
    pub hour: i64,
    /// Posts delivered live, each counted once per stream however many connections got it.
    pub activities: u64,
    /// Posts sent by backfill and recovery.
    pub replayed: u64,
    /// The most connections open at once during the hour.
    pub peak_connections: u32,
}

impl Store {
    /// Adds counts to the stored ones: activities and replays are summed, the peak is the
    /// larger. Rows of accounts that no longer exist are dropped. One transaction.
    pub fn add_usage(&self, rows: &[UsageHour]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut add = tx.prepare_cached(
                "INSERT INTO usage_hours
                     (account, product, label, hour, activities, replayed, peak_connections)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
                 WHERE EXISTS (SELECT 1 FROM accounts WHERE name = ?1)
                 ON CONFLICT (account, hour, product, label) DO UPDATE SET
                     activities = activities + excluded.activities,
                     replayed = replayed + excluded.replayed,
                     peak_connections = max(peak_connections, excluded.peak_connections)",
            )?;
            for row in rows {
                add.execute(params![
                    row.stream.account,
                    row.stream.product.as_str(),
                    row.stream.label,
                    row.hour,
                    i64::try_from(row.activities).unwrap_or(i64::MAX),
                    i64::try_from(row.replayed).unwrap_or(i64::MAX),
                    row.peak_connections,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The account's usage rows for hours in `from_hour..to_hour`, by hour, then product
    /// and label.
    pub fn usage(
        &self,
        account: &str,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<UsageHour>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare_cached(
            "SELECT product, label, hour, activities, replayed, peak_connections
             FROM usage_hours
             WHERE account = ?1 AND hour >= ?2 AND hour < ?3
             ORDER BY hour, product, label",
        )?;
        let rows = query.query_map(params![account, from_hour, to_hour], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, u32>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (product, label, hour, activities, replayed, peak_connections) = row?;
            // A product this build does not know (written by a newer one) is left out.
            let Ok(product) = product.parse::<Product>() else {
                continue;
            };
            out.push(UsageHour {
                stream: StreamRef {
                    account: account.to_owned(),
                    product,
                    label,
                },
                hour,
                activities: u64::try_from(activities).unwrap_or(0),
                replayed: u64::try_from(replayed).unwrap_or(0),
                peak_connections,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, hour: i64, activities: u64, peak: u32) -> UsageHour {
        UsageHour {
            stream: StreamRef {
                account: "acme".into(),
                product: Product::PowerTrack,
                label: label.into(),
            },
            hour,
            activities,
            replayed: 1,
            peak_connections: peak,
        }
    }

    #[test]
    fn counts_add_up_peaks_take_the_larger_and_ranges_are_half_open() {
        let store = Store::open_in_memory().unwrap();
        store.put_account("acme", 0).unwrap();
        store
            .add_usage(&[row("prod", 10, 5, 2), row("dev", 11, 1, 1)])
            .unwrap();
        store
            .add_usage(&[row("prod", 10, 7, 1), row("prod", 12, 3, 4)])
            .unwrap();
        // Unknown accounts are dropped, not an error.
        let mut stray = row("prod", 10, 100, 9);
        stray.stream.account = "gone".into();
        store.add_usage(&[stray]).unwrap();

        let got = store.usage("acme", 10, 12).unwrap();
        let mut prod = row("prod", 10, 12, 2);
        prod.replayed = 2;
        assert_eq!(got, [prod, row("dev", 11, 1, 1)]);
        assert!(store.usage("gone", 0, 100).unwrap().is_empty());
        assert_eq!(
            store.usage("acme", 12, 13).unwrap(),
            [row("prod", 12, 3, 4)]
        );
    }
}
