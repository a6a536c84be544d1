//! The concurrency limit of recovery (docs/compatibility.md §1.1, §5: "Max 2 concurrent recovery
//! jobs"): a recovery request holds one of its stream's slots for as long as its
//! connection is open; a third at once is a 429 with the `x-rate-limit-*` headers.
//!
//! A Replay stream runs one job at a time (docs/compatibility.md "Replay"): a second
//! request while one runs is refused the same way, with a limit of 1.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::error::ApiError;
use crate::clock::now_ms;
use crate::ratelimit::RateInfo;
use crate::registry::LiveStream;

/// Recovery jobs a stream may run at once.
pub const MAX_RECOVERY_JOBS: u32 = 2;
/// Replay jobs a Replay stream may run at once.
pub const MAX_REPLAY_JOBS: u32 = 1;

/// What a refused client is told to wait before trying again (`x-rate-limit-reset`): a
/// running job frees its slot when it ends, which no clock predicts.
const RETRY_AFTER_SECS: u64 = 60;

/// One of a stream's job slots (recovery, or a Replay stream's one job); freed when
/// dropped.
pub struct RecoveryJob {
    stream: Arc<LiveStream>,
}

impl RecoveryJob {
    /// Takes a recovery slot of `stream`, or refuses with 429 when all are taken.
    pub fn acquire(stream: &Arc<LiveStream>) -> Result<RecoveryJob, ApiError> {
        Self::acquire_up_to(
            stream,
            MAX_RECOVERY_JOBS,
            format!(
                "Too many concurrent recovery requests: at most {MAX_RECOVERY_JOBS} \
                 recovery jobs may run at once on a stream."
            ),
        )
    }

    /// Takes the one job slot of a Replay stream, or refuses with 429 while a job runs.
    pub fn acquire_replay(stream: &Arc<LiveStream>) -> Result<RecoveryJob, ApiError> {
        Self::acquire_up_to(
            stream,
            MAX_REPLAY_JOBS,
            "Too many concurrent replay requests: one replay job may run at once on a \
             stream. Retry when the running job has completed."
                .to_owned(),
        )
    }

    fn acquire_up_to(
        stream: &Arc<LiveStream>,
        max: u32,
        refusal: String,
    ) -> Result<RecoveryJob, ApiError> {
        let taken = stream
            .recovery_jobs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(RecoveryJob {
                stream: stream.clone(),
            }),
            Err(_) => {
                let now_secs = u64::try_from(now_ms()).unwrap_or(0) / 1000;
                let mut error = ApiError::rate_limited(RateInfo {
                    limit: max,
                    remaining: 0,
                    reset: now_secs + RETRY_AFTER_SECS,
                });
                error.message = refusal;
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
