//! The concurrency limit of recovery (docs/compatibility.md §1.1, §5: "Max 2 concurrent recovery
//! jobs"): a recovery request holds one of its stream's slots for as long as its
//! connection is open; a third at once is a 429 with the `x-rate-limit-*` headers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::error::ApiError;
use crate::clock::now_ms;
use crate::ratelimit::RateInfo;
use crate::registry::LiveStream;

/// Recovery jobs a stream may run at once.
pub const MAX_RECOVERY_JOBS: u32 = 2;

/// What a refused client is told to wait before trying again (`x-rate-limit-reset`): a
/// running job frees its slot when it ends, which no clock predicts.
const RETRY_AFTER_SECS: u64 = 60;

/// One of a stream's recovery slots; freed when dropped.
pub struct RecoveryJob {
    stream: Arc<LiveStream>,
}

impl RecoveryJob {
    /// Takes a slot of `stream`, or refuses with 429 when all are taken.
    pub fn acquire(stream: &Arc<LiveStream>) -> Result<RecoveryJob, ApiError> {
        let taken = stream
            .recovery_jobs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_RECOVERY_JOBS).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(RecoveryJob {
                stream: stream.clone(),
            }),
            Err(_) => {
                let now_secs = u64::try_from(now_ms()).unwrap_or(0) / 1000;
                let mut error = ApiError::rate_limited(RateInfo {
                    limit: MAX_RECOVERY_JOBS,
                    remaining: 0,
                    reset: now_secs + RETRY_AFTER_SECS,
                });
                error.message = format!(
                    "Too many concurrent recovery requests: at most {MAX_RECOVERY_JOBS} \
                     recovery jobs may run at once on a stream."
                );
                Err(error)
            }
        }
    }
}

impl Drop for RecoveryJob {
    fn drop(&mut self) {
        self.stream.recovery_jobs.fetch_sub(1, Ordering::AcqRel);
    }
}
