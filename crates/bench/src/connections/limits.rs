//! The limits and memory figures of the connections bench: its open-files limit (raised
//! to the hard limit, refused clearly when even that is too low) and resident memory read
//! from `/proc/<pid>/status` (Linux; elsewhere the memory is reported unknown).

use std::io;

use anyhow::bail;
use serde::Serialize;

/// Files a process needs besides its connections: listener, logs, the store, the post log,
/// the runtime's own descriptors, with room to spare.
const RESERVED_FILES: u64 = 256;

/// The bench's open-files limit after raising it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Files {
    /// The soft limit now.
    pub soft: u64,
    /// The system's hard limit.
    pub hard: u64,
}

/// Raises the open-files limit to the hard limit; fails, saying what to do, when even the
/// hard limit cannot hold `connections` (the bench holds one socket per connection, and a
/// server it starts inherits the same limit).
pub fn raise_for(connections: usize) -> anyhow::Result<Files> {
    let need = connections as u64 + RESERVED_FILES;
    let (_, hard) = rlimit::Resource::NOFILE.get()?;
    let soft = rlimit::increase_nofile_limit(u64::MAX)?;
    check(need, Files { soft, hard })
}

/// `files` if it allows `need` open files, else the error that tells the user what to do.
fn check(need: u64, files: Files) -> anyhow::Result<Files> {
    if files.soft < need {
        bail!(
            "{} connections need about {need} open files in the bench (and as many in the \
             server), but this system's hard limit is {} (soft limit now {}). Raise it (as \
             root: `ulimit -Hn {need}` in the shell that runs the bench, `LimitNOFILE=` in a \
             systemd unit, `nofile` in /etc/security/limits.conf) or ask for fewer \
             --connections",
            need - RESERVED_FILES,
            files.hard,
            files.soft
        );
    }
    Ok(files)
}

/// The resident memory (`VmRSS`) of process `pid`, in KiB.
pub fn rss_kb(pid: u32) -> io::Result<u64> {
    resident(pid).map(|r| r.rss_kb)
}

/// The resident memory of process `pid` and, when its kernel tells (Linux 4.5 on), its
/// parts, from one reading of its status.
pub fn resident(pid: u32) -> io::Result<Resident> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb = vm_rss_kb(&status)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS line in its status"))?;
    Ok(Resident {
        rss_kb,
        parts: parts_of(&status),
        threads: field_count(&status, "Threads:"),
    })
}

/// A process's resident memory, KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resident {
    /// `VmRSS`.
    pub rss_kb: u64,
    /// What it is made of, when the kernel tells.
    pub parts: Option<ResidentParts>,
    /// Its threads (`Threads`): a burst of connections that makes the server start
    /// threads shows here, and their stacks in its memory.
    pub threads: Option<u64>,
}

/// This process's resident memory in KiB, when the system tells.
pub fn own_rss_kb() -> Option<u64> {
    rss_kb(std::process::id()).ok()
}

/// What a process's resident memory is made of, KiB: why it may stay above its start
/// after the connections closed although the process freed what they held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ResidentParts {
    /// Private memory: the heap, the allocator's own, thread stacks (`RssAnon`).
    pub anon_kb: u64,
    /// Pages of files, mostly the executable's code as it is first run (`RssFile`):
    /// shared with the page cache, and given up by the kernel when it needs memory.
    pub file_kb: u64,
}

fn parts_of(status: &str) -> Option<ResidentParts> {
    Some(ResidentParts {
        anon_kb: field_kb(status, "RssAnon:")?,
        file_kb: field_kb(status, "RssFile:")?,
    })
}

/// The `VmRSS:   1234 kB` figure of a `/proc/<pid>/status` text.
fn vm_rss_kb(status: &str) -> Option<u64> {
    field_kb(status, "VmRSS:")
}

/// The number of the line `NAME   14` of a `/proc/<pid>/status` text.
fn field_count(status: &str, name: &str) -> Option<u64> {
    field(status, name)?.parse().ok()
}

/// The figure of the line `NAME   1234 kB` of a `/proc/<pid>/status` text.
fn field_kb(status: &str, name: &str) -> Option<u64> {
    field(status, name)?.strip_suffix("kB")?.trim().parse().ok()
}

/// What follows `NAME` on its line of a `/proc/<pid>/status` text, trimmed.
fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    Some(line[name.len()..].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_memory_is_read_from_the_status_text() {
        let status = "Name:\tsluice\nVmPeak:\t  900 kB\nVmRSS:\t   52340 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(vm_rss_kb(status), Some(52_340));
        assert_eq!(vm_rss_kb("Name:\tx\n"), None);
        assert!(own_rss_kb().is_some_and(|kb| kb > 0));
        let status = "VmRSS:\t  30 kB\nRssAnon:\t  12 kB\nRssFile:\t  17 kB\nRssShmem:\t 1 kB\n";
        assert_eq!(
            parts_of(status),
            Some(ResidentParts {
                anon_kb: 12,
                file_kb: 17
            })
        );
        assert_eq!(parts_of("VmRSS:\t 30 kB\nRssAnon:\t 12 kB\n"), None);
        let status = "Name:\tsluice\nThreads:\t14\nSigQ:\t0/9\n";
        assert_eq!(field_count(status, "Threads:"), Some(14));
        assert_eq!(field_count("Threads:\t\n", "Threads:"), None);
        assert_eq!(field_count("Name:\tx\n", "Threads:"), None);
        let own = resident(std::process::id()).unwrap();
        let parts = own.parts.expect("this kernel tells");
        assert!(parts.anon_kb > 0 && parts.file_kb > 0 && own.rss_kb > 0);
        assert!(own.threads.is_some_and(|n| n >= 1));
    }

    #[test]
    fn a_hard_limit_too_low_is_refused_with_what_to_do() {
        let files = Files {
            soft: 4_096,
            hard: 4_096,
        };
        assert_eq!(check(4_096, files).unwrap(), files);
        let refused = check(10_256, files).unwrap_err().to_string();
        assert!(refused.starts_with("10000 connections need about 10256 open files"));
        assert!(refused.contains("hard limit is 4096"), "{refused}");
        assert!(refused.contains("ulimit -Hn 10256"), "{refused}");
    }

    #[test]
    fn raising_goes_to_the_hard_limit() {
        let files = raise_for(10).expect("10 connections fit any limit");
        assert_eq!(files.soft, files.hard);
    }
}
