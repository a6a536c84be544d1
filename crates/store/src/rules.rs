//! The rules queries of [`Store`]: a stream's rules, adding them against its cap, deleting
//! them by id or value, and the rolled-back previews the APIs' dry runs answer from. Kept
//! apart from the other queries because they are the only ones with per-item outcomes.

use rusqlite::{OptionalExtension, params};

use crate::store::{AddOutcome, FoundRules, NewRule, Store, StoreError, StoredRule};

impl Store {
    /// The stream's rules, oldest first.
    pub fn rules(&self, stream_id: i64) -> Result<Vec<StoredRule>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, value, tag, created_ms FROM rules WHERE stream_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([stream_id], read_rule)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many rules the stream has.
    pub fn rule_count(&self, stream_id: i64) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM rules WHERE stream_id = ?1",
            [stream_id],
            |r| r.get(0),
        )?;
        Ok(n.unsigned_abs())
    }

    /// The stream's rules with these ids, in the order asked; unknown ids are skipped.
    pub fn rules_by_ids(&self, stream_id: i64, ids: &[u64]) -> Result<Vec<StoredRule>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, value, tag, created_ms FROM rules WHERE stream_id = ?1 AND id = ?2",
        )?;
        let mut out = Vec::new();
        for &id in ids {
            let Ok(id) = i64::try_from(id) else { continue };
            if let Some(rule) = stmt
                .query_row(params![stream_id, id], read_rule)
                .optional()?
            {
                out.push(rule);
            }
        }
        Ok(out)
    }

    /// Adds rules in one transaction: each value either creates a rule or names the rule
    /// that already has it (the earlier one within the batch too). If the new distinct
    /// rules would take the stream over `max_rules`, nothing is added.
    pub fn add_rules(
        &self,
        stream_id: i64,
        rules: &[NewRule],
        max_rules: u64,
        now_ms: i64,
    ) -> Result<Vec<AddOutcome>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let outcomes = add_rules_in(&tx, stream_id, rules, max_rules, now_ms)?;
        tx.commit()?;
        Ok(outcomes)
    }

    /// What [`Store::add_rules`] would answer now, changing nothing (a dry run): the same
    /// transaction, rolled back.
    pub fn preview_add_rules(
        &self,
        stream_id: i64,
        rules: &[NewRule],
        max_rules: u64,
        now_ms: i64,
    ) -> Result<Vec<AddOutcome>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        // Dropping the transaction rolls it back.
        add_rules_in(&tx, stream_id, rules, max_rules, now_ms)
    }

    /// Deletes the stream's rules with these exact values (case-sensitive). Returns, per
    /// value, the deleted rule or `None` when no rule had it.
    pub fn delete_rules_by_values(
        &self,
        stream_id: i64,
        values: &[&str],
    ) -> Result<Vec<Option<StoredRule>>, StoreError> {
        self.delete_where(stream_id, values, "value = ?2")
    }

    /// Deletes the stream's rules with these ids. Returns, per id, the deleted rule or
    /// `None` when the stream had no rule with it.
    pub fn delete_rules_by_ids(
        &self,
        stream_id: i64,
        ids: &[u64],
    ) -> Result<Vec<Option<StoredRule>>, StoreError> {
        self.delete_where(stream_id, &ids_as_sql(ids), "id = ?2")
    }

    /// What deleting these ids, then these values, would find now, changing nothing (a
    /// dry run): per id and per value, the rule that would be deleted or `None` (as
    /// [`Store::delete_rules_by_ids`] then [`Store::delete_rules_by_values`] would answer:
    /// a rule named twice is found once).
    pub fn preview_delete_rules(
        &self,
        stream_id: i64,
        ids: &[u64],
        values: &[&str],
    ) -> Result<(FoundRules, FoundRules), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let by_id = delete_in(&tx, stream_id, &ids_as_sql(ids), "id = ?2")?;
        let by_value = delete_in(&tx, stream_id, values, "value = ?2")?;
        // Dropping the transaction rolls it back.
        Ok((by_id, by_value))
    }

    fn delete_where<K: rusqlite::ToSql>(
        &self,
        stream_id: i64,
        keys: &[K],
        condition: &str,
    ) -> Result<Vec<Option<StoredRule>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let out = delete_in(&tx, stream_id, keys, condition)?;
        tx.commit()?;
        Ok(out)
    }
}

/// The body of [`Store::add_rules`], inside the caller's transaction.
fn add_rules_in(
    tx: &rusqlite::Transaction<'_>,
    stream_id: i64,
    rules: &[NewRule],
    max_rules: u64,
    now_ms: i64,
) -> Result<Vec<AddOutcome>, StoreError> {
    let existing: i64 = tx.query_row(
        "SELECT COUNT(*) FROM rules WHERE stream_id = ?1",
        [stream_id],
        |r| r.get(0),
    )?;
    let existing = existing.unsigned_abs();
    let mut outcomes = Vec::with_capacity(rules.len());
    let mut adding = 0u64;
    let mut find = tx.prepare_cached(
        "SELECT id, value, tag, created_ms FROM rules WHERE stream_id = ?1 AND value = ?2",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO rules (id, stream_id, value, tag, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for rule in rules {
        if let Some(found) = find
            .query_row(params![stream_id, rule.value], read_rule)
            .optional()?
        {
            outcomes.push(AddOutcome::Existing(found));
            continue;
        }
        let id = i64::try_from(rule.id)
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, i64::MAX))?;
        insert.execute(params![id, stream_id, rule.value, rule.tag, now_ms])?;
        adding += 1;
        outcomes.push(AddOutcome::Created(StoredRule {
            id: rule.id,
            value: rule.value.clone(),
            tag: rule.tag.clone(),
            created_ms: now_ms,
        }));
    }
    if existing + adding > max_rules {
        return Err(StoreError::RuleLimit {
            existing,
            adding,
            limit: max_rules,
        });
    }
    Ok(outcomes)
}

/// Rule ids as SQLite integers; one that does not fit names no rule.
fn ids_as_sql(ids: &[u64]) -> Vec<i64> {
    ids.iter()
        .map(|&id| i64::try_from(id).unwrap_or(-1))
        .collect()
}

/// Deletes, per key, the stream's rule matching `condition` (`?2` is the key), inside the
/// caller's transaction; returns each deleted rule or `None`.
fn delete_in<K: rusqlite::ToSql>(
    tx: &rusqlite::Transaction<'_>,
    stream_id: i64,
    keys: &[K],
    condition: &str,
) -> Result<Vec<Option<StoredRule>>, StoreError> {
    let mut delete = tx.prepare(&format!(
        "DELETE FROM rules WHERE stream_id = ?1 AND {condition}
         RETURNING id, value, tag, created_ms"
    ))?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        out.push(
            delete
                .query_row(params![stream_id, key], read_rule)
                .optional()?,
        );
    }
    Ok(out)
}

fn read_rule(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRule> {
    let id: i64 = row.get(0)?;
    Ok(StoredRule {
        id: id as u64,
        value: row.get(1)?,
        tag: row.get(2)?,
        created_ms: row.get(3)?,
    })
}
