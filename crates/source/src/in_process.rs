//! A source running inside `sluice serve` (`--source`): its task, fed into the server's
//! own ingest function, its cursor in the data directory, and its stop, which the binary
//! awaits before the server closes, so the batch in hand is stored and its cursor saved
//! while the pipeline still runs.

use std::path::{Path, PathBuf};

use sluice_cluster::source_lease::SourceLeases;
use sluice_server::AppState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::JETSTREAM;
use crate::consumer::{self, Config};
use crate::cursor::CursorFile;
use crate::leased;
use crate::sink::ServerSink;
use crate::spec::SourceSpec;

/// A running in-process source.
pub struct InProcess {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Where a server keeps the cursor of its `kind` of source: `DATA_DIR/sources/KIND.cursor`.
pub fn cursor_path(data_dir: &Path, kind: &str) -> PathBuf {
    data_dir.join("sources").join(format!("{kind}.cursor"))
}

impl InProcess {
    /// Starts `spec` feeding `state`, its cursor under `data_dir`; in cluster mode
    /// (`leases`), consuming only while this node holds the source's lease, the cursor in
    /// the cluster's bucket.
    pub fn start(
        spec: &SourceSpec,
        state: AppState,
        data_dir: &Path,
        leases: Option<SourceLeases>,
    ) -> InProcess {
        let stop = CancellationToken::new();
        let task = match (spec, leases) {
            (SourceSpec::Jetstream(instance), Some(leases)) => {
                let config = Config::new(instance.clone());
                let stopping = stop.clone();
                tokio::spawn(async move {
                    tracing::info!(source = JETSTREAM, url = %config.instance, "starting, under a cluster lease");
                    let mut sink = ServerSink::new(state);
                    if let Err(e) =
                        leased::run(config, &mut sink, leases, JETSTREAM, stopping).await
                    {
                        tracing::error!(source = JETSTREAM, "the source stopped: {e}");
                    }
                })
            }
            (SourceSpec::Jetstream(instance), None) => {
                let config = Config::new(instance.clone());
                let cursor = CursorFile::new(cursor_path(data_dir, JETSTREAM));
                let stopping = stop.clone();
                tokio::spawn(async move {
                    tracing::info!(
                        source = JETSTREAM,
                        url = %config.instance,
                        cursor_file = %cursor.path().display(),
                        "starting"
                    );
                    let mut sink = ServerSink::new(state);
                    if let Err(e) = consumer::run(config, &mut sink, &cursor, stopping).await {
                        tracing::error!(source = JETSTREAM, "the source stopped: {e}");
                    }
                })
            }
        };
        InProcess { stop, task }
    }

    /// Stops it: the batch in hand is stored and its cursor saved before this returns.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
