//! The process's limit on open files (`RLIMIT_NOFILE`): every stream connection holds a
//! socket, and the soft limit many systems start a process with (1,024) would refuse
//! connections long before memory runs out. The server raises its soft limit to the hard
//! limit at start (an unprivileged process may) and logs the figure; the hard limit is the
//! operator's to raise (`ulimit -Hn`, systemd's `LimitNOFILE=`).
//!
//! The system calls go through the `rlimit` crate, which knows each platform's quirks
//! (macOS caps the soft limit at `kern.maxfilesperproc`).

use std::io;

/// The open-files limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now: the number of files the process may have open.
    pub soft: u64,
    /// The hard limit: how far the soft limit could go.
    pub hard: u64,
}

/// Raises this process's soft open-files limit as far as the hard limit allows; returns the
/// limits before and after. Children started afterwards inherit the raised limit.
pub fn raise() -> io::Result<FdLimit> {
    let (before, hard) = rlimit::Resource::NOFILE.get()?;
    let soft = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok(FdLimit { before, soft, hard })
}

#[cfg(test)]
mod tests {
    use rlimit::Resource;

    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let (_, hard) = Resource::NOFILE.get().expect("reading the limit");
        // Lowered first, to a figure other tests of this process can live with.
        let lowered = (hard / 2).max(1_024).min(hard);
        Resource::NOFILE
            .set(lowered, hard)
            .expect("lowering the soft limit");
        let limit = raise().expect("raising the limit");
        assert_eq!(limit.before, lowered);
        assert_eq!(limit.hard, hard);
        assert_eq!(
            limit.soft, hard,
            "an unprivileged process may go up to its hard limit"
        );
        assert_eq!(Resource::NOFILE.get().expect("reading again"), (hard, hard));
    }
}
