//! CPU time of a process and of its threads, from Linux's `/proc`, to show where the time
//! of a run goes: the server's matching threads (`sluice-match-N`, each on its own), its
//! pipeline thread (routing, enrichment, framing) and its workers (HTTP, gzip, ingest
//! parsing), and the bench itself; in a cluster, every node (added up
//! with [`Usage::combined`]) and the NATS server. Elsewhere nothing is measured and the
//! report says so.
//!
//! `/proc` counts in clock ticks of `USER_HZ`, which is 100 on every Linux architecture
//! the project builds for. Each thread's `schedstat` adds how long it was runnable but
//! waiting for a CPU: on a machine shared with other work, a slow run with little CPU time
//! and a long wait was starved, not slow.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::report::Cpu;
use crate::target::Target;

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time used so far by one process.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The whole process, exited threads included (ticks).
    pub total: u64,
    /// Live threads: id → their figures.
    threads: HashMap<u32, ThreadCpu>,
}

/// One thread's figures.
#[derive(Debug, Clone, Default)]
struct ThreadCpu {
    name: String,
    /// Ticks on a CPU.
    ticks: u64,
    /// Nanoseconds runnable but waiting for a CPU (`None` without schedstats).
    waited_ns: Option<u64>,
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
            if let Some((name, ticks)) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
            {
                let waited_ns = std::fs::read_to_string(entry.path().join("schedstat"))
                    .ok()
                    .and_then(|s| parse_schedstat(&s));
                threads.insert(
                    tid,
                    ThreadCpu {
                        name,
                        ticks,
                        waited_ns,
                    },
                );
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
    /// Time the threads alive at the end spent runnable but waiting for a CPU, summed
    /// (`None` where the kernel does not report it).
    pub waited: Option<Duration>,
}

impl Usage {
    /// What `after` used since `before`.
    pub fn between(before: &Snapshot, after: &Snapshot) -> Usage {
        let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
        let mut waited_ns = Some(0u64);
        for (tid, thread) in &after.threads {
            let earlier = before.threads.get(tid);
            let ticks = thread.ticks.saturating_sub(earlier.map_or(0, |e| e.ticks));
            *by_name.entry(&thread.name).or_default() += ticks;
            let earlier_wait = match earlier {
                Some(e) => e.waited_ns,
                None => Some(0),
            };
            waited_ns = match (waited_ns, thread.waited_ns, earlier_wait) {
                (Some(sum), Some(now), Some(then)) => Some(sum + now.saturating_sub(then)),
                _ => None,
            };
        }
        let mut by_name: Vec<(String, Duration)> = by_name
            .into_iter()
            .filter(|&(_, ticks)| ticks > 0)
            .map(|(name, ticks)| (name.to_owned(), ticks_to_duration(ticks)))
            .collect();
        by_name.sort_by_key(|&(_, used)| std::cmp::Reverse(used));
        Usage {
            total: ticks_to_duration(after.total.saturating_sub(before.total)),
            by_name,
            waited: waited_ns.map(Duration::from_nanos),
        }
    }
}

impl Usage {
    /// The use of several processes together (the nodes of a cluster): totals and waits
    /// added, threads of one name summed across processes, largest first.
    pub fn combined(usages: &[Usage]) -> Usage {
        let mut by_name: BTreeMap<&str, Duration> = BTreeMap::new();
        for usage in usages {
            for (name, used) in &usage.by_name {
                *by_name.entry(name).or_default() += *used;
            }
        }
        let mut by_name: Vec<(String, Duration)> = by_name
            .into_iter()
            .map(|(name, used)| (name.to_owned(), used))
            .collect();
        by_name.sort_by_key(|&(_, used)| std::cmp::Reverse(used));
        Usage {
            total: usages.iter().map(|u| u.total).sum(),
            by_name,
            waited: usages.iter().map(|u| u.waited).sum(),
        }
    }
}

/// The whole machine's CPU time so far, in clock ticks summed over its cores, from the
/// first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MachineTicks {
    /// Ticks the cores were not idle: running any process or the kernel, or taken by the
    /// hypervisor for other machines (steal).
    busy: u64,
    /// All ticks.
    all: u64,
    /// The cores counted (the `cpuN` lines).
    cores: usize,
}

impl MachineTicks {
    /// Reads `/proc/stat`; `None` where it cannot be read.
    fn take() -> Option<Self> {
        parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The share of all cores busy since `before`, in %.
    fn busy_percent_since(&self, before: &MachineTicks) -> Option<f64> {
        let all = self.all.checked_sub(before.all).filter(|&all| all > 0)?;
        let busy = self.busy.saturating_sub(before.busy).min(all);
        Some(100.0 * busy as f64 / all as f64)
    }
}

/// The processes a run measures: every node the bench started, the NATS server it
/// started, and the bench itself.
pub(crate) struct Processes {
    nodes: Vec<u32>,
    nats: Option<u32>,
}

impl Processes {
    /// Those of `target`.
    pub(crate) fn of(target: &Target) -> Self {
        Self {
            nodes: target.pids(),
            nats: target.nats_pid(),
        }
    }

    /// Their CPU time so far.
    pub(crate) fn snapshot(&self) -> Snapshots {
        let nodes = if self.nodes.is_empty() {
            None
        } else {
            self.nodes
                .iter()
                .map(|&pid| Snapshot::take(Some(pid)))
                .collect()
        };
        Snapshots {
            nodes,
            nats: self.nats.and_then(|pid| Snapshot::take(Some(pid))),
            bench: Snapshot::take(None),
            machine: MachineTicks::take(),
        }
    }
}

/// CPU time so far of the processes a run measures.
pub(crate) struct Snapshots {
    /// Every node the bench started (`None` when there are none or one cannot be read).
    nodes: Option<Vec<Snapshot>>,
    /// The NATS server the bench started.
    nats: Option<Snapshot>,
    /// The bench itself.
    bench: Option<Snapshot>,
    /// The whole machine.
    machine: Option<MachineTicks>,
}

impl Snapshots {
    /// What each process used from these snapshots to `after`, over `window`.
    pub(crate) fn usage_until(&self, after: &Snapshots, window: Duration) -> Cpu {
        let between = |before: &Option<Snapshot>, after: &Option<Snapshot>| {
            before
                .as_ref()
                .zip(after.as_ref())
                .map(|(before, after)| Usage::between(before, after))
        };
        let nodes = self
            .nodes
            .as_ref()
            .zip(after.nodes.as_ref())
            .map(|(before, after)| {
                before
                    .iter()
                    .zip(after)
                    .map(|(before, after)| Usage::between(before, after))
                    .collect()
            });
        let mut cpu = Cpu::over(
            window,
            nodes,
            between(&self.nats, &after.nats),
            between(&self.bench, &after.bench),
        );
        cpu.machine_busy_percent = self
            .machine
            .zip(after.machine)
            .and_then(|(before, after)| after.busy_percent_since(&before));
        cpu.machine_cores = after.machine.map(|machine| machine.cores);
        cpu
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

/// The machine's ticks from `/proc/stat`, whose first line sums every core: `cpu user nice
/// system idle iowait irq softirq steal guest guest_nice`. Idle and iowait are not busy;
/// guest time is already counted in user and nice, so it is left out of the sum.
fn parse_proc_stat(stat: &str) -> Option<MachineTicks> {
    let cores = stat
        .lines()
        .filter(|line| {
            line.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    let mut fields = stat.lines().next()?.split_ascii_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let all: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some(MachineTicks {
        busy: all - idle,
        all,
        cores,
    })
}

/// The run-queue wait (second field, ns) of a `/proc/…/schedstat` line.
fn parse_schedstat(schedstat: &str) -> Option<u64> {
    schedstat.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_the_name_and_cpu_ticks() {
        let line = "4242 (sluice (pipe) x) S 1 4242 1 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 3 0";
        assert_eq!(parse_stat(line), Some(("sluice (pipe) x".to_owned(), 1290)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(
            parse_schedstat("185110549 271965458 543\n"),
            Some(271_965_458)
        );
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn the_machine_line_gives_busy_and_all_ticks() {
        let stat = "cpu  185206 10 19145 76910 1308 5 297 4201 700 30\n\
                    cpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 1 2 3 4 5 6 7 8 9 10\n\
                    intr 1 2 3\nctxt 5\ncpus_weird 1\n";
        // Busy: user, nice, system, irq, softirq and steal; idle and iowait are not, and
        // guest time (700 and 30) is already in user and nice.
        let ticks = parse_proc_stat(stat).expect("a cpu line");
        assert_eq!(ticks.busy, 185_206 + 10 + 19_145 + 5 + 297 + 4_201);
        assert_eq!(ticks.all, ticks.busy + 76_910 + 1_308);
        assert_eq!(ticks.cores, 2, "the cpuN lines");
        // Older kernels stop after iowait or steal: what is there counts.
        let short = parse_proc_stat("cpu 10 0 10 80\n").expect("four fields");
        assert_eq!((short.busy, short.all), (20, 100));
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 x 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 2 3\n"), None, "no idle field");
        assert_eq!(parse_proc_stat(""), None);

        let ticks = |busy, all| MachineTicks {
            busy,
            all,
            cores: 2,
        };
        let (before, after) = (ticks(100, 1_000), ticks(280, 1_200));
        assert_eq!(after.busy_percent_since(&before), Some(90.0));
        assert_eq!(before.busy_percent_since(&before), None, "no time passed");
        assert_eq!(
            before.busy_percent_since(&after),
            None,
            "a counter went back"
        );
    }

    #[test]
    fn usage_is_the_difference_by_thread_name() {
        let snapshot = |total, threads: &[(u32, &str, u64)]| Snapshot {
            total,
            threads: threads
                .iter()
                .map(|&(tid, name, ticks)| {
                    let thread = ThreadCpu {
                        name: name.to_owned(),
                        ticks,
                        waited_ns: Some(ticks * 1_000_000),
                    };
                    (tid, thread)
                })
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
        // 10 + 100 + 100 ticks of 1 ms of waiting each.
        assert_eq!(usage.waited, Some(Duration::from_millis(210)));
    }

    #[test]
    fn usages_of_several_processes_add_up() {
        let usage = |total_ms, threads: &[(&str, u64)], waited_ms: Option<u64>| Usage {
            total: Duration::from_millis(total_ms),
            by_name: threads
                .iter()
                .map(|&(name, ms)| (name.to_owned(), Duration::from_millis(ms)))
                .collect(),
            waited: waited_ms.map(Duration::from_millis),
        };
        let a = usage(500, &[("pipeline", 300), ("worker", 200)], Some(10));
        let b = usage(
            700,
            &[("worker", 400), ("pipeline", 250), ("nats", 50)],
            Some(5),
        );
        let sum = Usage::combined(&[a.clone(), b.clone()]);
        assert_eq!(sum.total, Duration::from_millis(1_200));
        assert_eq!(
            sum.by_name,
            [
                ("worker".to_owned(), Duration::from_millis(600)),
                ("pipeline".to_owned(), Duration::from_millis(550)),
                ("nats".to_owned(), Duration::from_millis(50)),
            ]
        );
        assert_eq!(sum.waited, Some(Duration::from_millis(15)));
        // A process whose waits are unknown makes the sum unknown.
        let unknown = usage(100, &[], None);
        assert_eq!(Usage::combined(&[a, unknown]).waited, None);
        assert_eq!(Usage::combined(&[]).total, Duration::ZERO);
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
        let machine = MachineTicks::take().expect("/proc/stat is readable");
        assert!(machine.all >= machine.busy);
        assert!(machine.cores >= 1);
    }
}
