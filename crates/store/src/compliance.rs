//! The compliance events a node received, kept as their lines: the server reads them back
//! at start to know again which posts replays must leave out (a deleted post, a suspended
//! user's posts) and which to scrub of location. The store does not interpret the lines
//! (the model crate does); it keeps them in arrival order and drops the old ones.

use rusqlite::params;

use crate::store::{Store, StoreError};

impl Store {
    /// Appends compliance event lines received at `received_ms`, in order.
    pub fn add_compliance_events(
        &self,
        lines: &[&[u8]],
        received_ms: i64,
    ) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut add = tx.prepare_cached(
                "INSERT INTO compliance_events (received_ms, line) VALUES (?1, ?2)",
            )?;
            for line in lines {
                add.execute(params![received_ms, line])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every kept compliance event line, oldest first.
    pub fn compliance_events(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare_cached("SELECT line FROM compliance_events ORDER BY seq")?;
        let lines = query
            .query_map([], |row| row.get::<_, Vec<u8>>(0))?
            .collect::<Result<_, _>>()?;
        Ok(lines)
    }

    /// Drops the events received before `before_ms`; how many went.
    pub fn prune_compliance_events(&self, before_ms: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        Ok(conn.execute(
            "DELETE FROM compliance_events WHERE received_ms < ?1",
            params![before_ms],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn events_come_back_in_order_and_old_ones_are_pruned() {
        let store = Store::open_in_memory().unwrap();
        store.add_compliance_events(&[b"a", b"b"], 10).unwrap();
        store.add_compliance_events(&[b"c"], 20).unwrap();
        store.add_compliance_events(&[], 30).unwrap();
        assert_eq!(
            store.compliance_events().unwrap(),
            [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(store.prune_compliance_events(20).unwrap(), 2);
        assert_eq!(store.compliance_events().unwrap(), [b"c".to_vec()]);
    }
}
