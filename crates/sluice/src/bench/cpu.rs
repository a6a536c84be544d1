//! CPU time of a process and of its threads, from Linux's `/proc`, to show where the time
//! of a run goes: the server's pipeline thread (matching, enrichment) against its workers
//! (HTTP, gzip, ingest parsing), and the bench itself. Elsewhere nothing is measured and
//! the report says so.
//!
//! `/proc` counts in clock ticks of `USER_HZ`, which is 100 on every Linux architecture
//! the project builds for.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time used so far by one process.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The whole process, exited threads included (ticks).
    pub total: u64,
    /// Live threads: id → (name, ticks).
    threads: HashMap<u32, (String, u64)>,
}

impl Snapshot {
    /// Reads process `pid` (`None` for this process); `None` when `/proc` cannot be read.
    pub fn take(pid: Option<u32>) -> Option<Snapshot> {
        let dir = match pid {
            Some(pid) => format!("/proc/{pid}"),
            None => "/proc/self".to_owned(),
        };
        let (_, total) = parse_stat(&std::fs::read_to_string(format!("{dir}/stat")).ok()?)?;
        let mut threads = HashMap::new();
        for entry in std::fs::read_dir(format!("{dir}/task")).ok()?.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            // A thread may end between listing and reading.
            if let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
            {
                threads.insert(tid, stat);
            }
        }
        Some(Snapshot { total, threads })
    }
}

/// CPU used between two snapshots of one process.
#[derive(Debug, Clone)]
pub struct Usage {
    /// The whole process.
    pub total: Duration,
    /// By thread name, largest first (threads of one name, e.g. a pool, summed).
    pub by_name: Vec<(String, Duration)>,
}

impl Usage {
    /// What `after` used since `before`.
    pub fn between(before: &Snapshot, after: &Snapshot) -> Usage {
        let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
        for (tid, (name, ticks)) in &after.threads {
            let earlier = before
                .threads
                .get(tid)
                .map_or(0, |(_, earlier)| *earlier);
            *by_name.entry(name).or_default() += ticks.saturating_sub(earlier);
        }
        let mut by_name: Vec<(String, Duration)> = by_name
            .into_iter()
            .filter(|&(_, ticks)| ticks > 0)
            .map(|(name, ticks)| (name.to_owned(), ticks_to_duration(ticks)))
            .collect();
        by_name.sort_by(|a, b| b.1.cmp(&a.1));
        Usage {
            total: ticks_to_duration(after.total.saturating_sub(before.total)),
            by_name,
        }
    }
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// `(name, utime + stime)` of a `/proc/…/stat` line. The name is in parentheses and may
/// itself contain spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // After ") ": field 3 (state) is index 0, so utime (field 14) is 11 and stime 12.
    let mut fields = stat.get(close + 2..)?.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_the_name_and_cpu_ticks() {
        let line = "4242 (sluice (pipe) x) S 1 4242 1 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 3 0";
        assert_eq!(
            parse_stat(line),
            Some(("sluice (pipe) x".to_owned(), 1290))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn usage_is_the_difference_by_thread_name() {
        let snapshot = |total, threads: &[(u32, &str, u64)]| Snapshot {
            total,
            threads: threads
                .iter()
                .map(|&(tid, name, ticks)| (tid, (name.to_owned(), ticks)))
                .collect(),
        };
        let before = snapshot(100, &[(1, "main", 50), (2, "worker", 20)]);
        let after = snapshot(
            400,
            &[(1, "main", 60), (2, "worker", 120), (3, "worker", 100)],
        );
        let usage = Usage::between(&before, &after);
        assert_eq!(usage.total, Duration::from_secs(3));
        assert_eq!(
            usage.by_name,
            [
                ("worker".to_owned(), Duration::from_secs(2)),
                ("main".to_owned(), Duration::from_millis(100)),
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_can_be_measured() {
        let before = Snapshot::take(None).expect("/proc/self is readable");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = Snapshot::take(None).expect("/proc/self is readable");
        assert!(after.total >= before.total);
        assert!(!after.threads.is_empty());
    }
}
