//! The in-memory usage counts of one stream: posts delivered and replayed per hour until
//! they are stored, and rule matches per minute for the last hour.

use std::collections::HashMap;
use std::sync::Mutex;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section below leaves its data whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Minutes a rule's matches are kept for ("the last hour").
pub const RULE_MINUTES: usize = 60;

/// Counts of one hour not yet in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingHour {
    /// The UTC hour, in hours since the UNIX epoch.
    pub hour: i64,
    /// Posts delivered live (once per stream, whatever the number of connections).
    pub activities: u64,
    /// Posts sent by backfill and recovery.
    pub replayed: u64,
}

/// One stream's usage counts in memory. Writers (the pipeline, replays) add whole batches;
/// [`super::flush`] takes the hours away into the store.
#[derive(Default)]
pub struct StreamUsage {
    /// Usually one hour; two around the turn of an hour.
    hours: Mutex<Vec<PendingHour>>,
    rules: Mutex<RuleMinutes>,
}

impl StreamUsage {
    /// Adds a batch's counts to `hour`.
    pub fn add(&self, hour: i64, activities: u64, replayed: u64) {
        if activities == 0 && replayed == 0 {
            return;
        }
        let mut hours = lock(&self.hours);
        match hours.iter_mut().find(|h| h.hour == hour) {
            Some(h) => {
                h.activities += activities;
                h.replayed += replayed;
            }
            None => hours.push(PendingHour {
                hour,
                activities,
                replayed,
            }),
        }
    }

    /// Takes the counts not yet stored.
    pub fn take_pending(&self) -> Vec<PendingHour> {
        std::mem::take(&mut *lock(&self.hours))
    }

    /// Adds a batch's rule matches, `(rule id, matches)`, to `minute` (minutes since the
    /// UNIX epoch).
    pub fn add_rule_matches(&self, minute: i64, matches: &[(u64, u32)]) {
        if matches.is_empty() {
            return;
        }
        lock(&self.rules).add(minute, matches);
    }

    /// Matches per rule id in the [`RULE_MINUTES`] minutes up to and including
    /// `now_minute`; rules that did not match are absent.
    pub fn rule_matches_last_hour(&self, now_minute: i64) -> HashMap<u64, u64> {
        lock(&self.rules).sum(now_minute)
    }
}

/// A ring of per-minute match counts: slot `minute % 60` holds that minute's counts until
/// the same slot is needed an hour later. A slot is updated for every rule a delivered
/// post matched: hashbrown's hasher, not std's SipHash (the ids are the server's own).
#[derive(Default)]
struct RuleMinutes {
    slots: Vec<(i64, hashbrown::HashMap<u64, u32>)>,
}

impl RuleMinutes {
    fn add(&mut self, minute: i64, matches: &[(u64, u32)]) {
        if self.slots.is_empty() {
            self.slots = (0..RULE_MINUTES)
                .map(|_| (i64::MIN, hashbrown::HashMap::new()))
                .collect();
        }
        let slot = &mut self.slots[minute.rem_euclid(RULE_MINUTES as i64) as usize];
        if slot.0 != minute {
            slot.0 = minute;
            slot.1.clear();
        }
        for &(id, n) in matches {
            *slot.1.entry(id).or_default() += n;
        }
    }

    fn sum(&self, now_minute: i64) -> HashMap<u64, u64> {
        let oldest = now_minute - RULE_MINUTES as i64 + 1;
        let mut total: HashMap<u64, u64> = HashMap::new();
        for (minute, counts) in &self.slots {
            if (oldest..=now_minute).contains(minute) {
                for (&id, &n) in counts {
                    *total.entry(id).or_default() += u64::from(n);
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_kept_apart_until_taken() {
        let usage = StreamUsage::default();
        usage.add(10, 3, 0);
        usage.add(10, 2, 1);
        usage.add(11, 1, 0);
        usage.add(12, 0, 0);
        let pending = usage.take_pending();
        let hour = |hour, activities, replayed| PendingHour {
            hour,
            activities,
            replayed,
        };
        assert_eq!(pending, [hour(10, 5, 1), hour(11, 1, 0)]);
        assert!(usage.take_pending().is_empty());
    }

    #[test]
    fn rule_matches_cover_the_last_sixty_minutes_only() {
        let usage = StreamUsage::default();
        usage.add_rule_matches(100, &[(1, 2), (2, 1)]);
        usage.add_rule_matches(100, &[(1, 1)]);
        usage.add_rule_matches(130, &[(2, 5)]);
        usage.add_rule_matches(159, &[(3, 1)]);
        let at = |minute| {
            let mut v: Vec<(u64, u64)> = usage.rule_matches_last_hour(minute).into_iter().collect();
            v.sort_unstable();
            v
        };
        assert_eq!(at(159), [(1, 3), (2, 6), (3, 1)]);
        // Minute 100 drops out of the window at 160.
        assert_eq!(at(160), [(2, 5), (3, 1)]);
        // Minute 160 reuses minute 100's slot: the old counts are gone, not added.
        usage.add_rule_matches(160, &[(1, 1)]);
        assert_eq!(at(160), [(1, 1), (2, 5), (3, 1)]);
        assert_eq!(at(219), [(1, 1)]);
        assert!(at(220).is_empty());
        assert!(at(300).is_empty());
        // A future minute is not counted now.
        assert_eq!(at(99), []);
    }
}
