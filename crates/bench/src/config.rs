//! What a run is asked to do, already checked: the library's input. `sluice bench` turns
//! its flags into a [`Config`] (refusing what cannot run); nothing here knows about flags.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use sluice_client::http::TlsArgs;
use url::Url;

use crate::products::Product;
use crate::report::{as_ms, as_s};

/// One run of a benchmark.
#[derive(Debug, Clone)]
pub struct Config {
    /// The benchmark, with its own parameters.
    pub product: Product,
    /// How the posts are sent.
    pub pacing: Pacing,
    /// The server under test.
    pub server: ServerChoice,
    /// TLS settings of every client connection.
    pub tls: TlsArgs,
}

/// How the bench starts a `sluice serve` of its own: which build, and which flags beyond
/// those the bench sets itself (listen address, data dir, datacenter, NATS URL). The
/// server's settings from the environment (`SLUICE_*`) are never passed on, so flags are
/// how a run changes them, e.g. `--match-threads 1` to compare with the default.
#[derive(Debug, Clone)]
pub struct Serve {
    /// The sluice executable.
    pub exe: PathBuf,
    /// Flags added after the bench's own.
    pub args: Vec<String>,
}

impl Serve {
    /// `exe serve` with no flags of the user's.
    pub fn new(exe: PathBuf) -> Self {
        Self {
            exe,
            args: Vec::new(),
        }
    }

    /// The same, its executable called `sluice` when it is the one running (a report then
    /// says `sluice serve`), by its path when it is another build, to tell them apart.
    /// Paths are compared as the files they resolve to.
    pub fn named(&self) -> Self {
        let resolved = |path: &std::path::Path| std::fs::canonicalize(path).ok();
        let running = std::env::current_exe().ok().and_then(|exe| resolved(&exe));
        let exe = if running.is_some() && running == resolved(&self.exe) {
            PathBuf::from("sluice")
        } else {
            self.exe.clone()
        };
        Self {
            exe,
            args: self.args.clone(),
        }
    }
}

/// How the posts of a run are sent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pacing {
    /// Posts ingested per second (positive).
    pub rate: f64,
    /// How long posts are sent (more than zero).
    #[serde(rename = "duration_s", serialize_with = "as_s")]
    pub duration: Duration,
    /// Time between two ingest requests.
    #[serde(rename = "batch_interval_ms", serialize_with = "as_ms")]
    pub batch_interval: Duration,
    /// How long to wait after the last ingest answer for posts still on their way.
    #[serde(rename = "drain_s", serialize_with = "as_s")]
    pub drain: Duration,
    /// Seed of the generated rules and posts.
    pub seed: u64,
}

impl Pacing {
    /// The number of posts the run sends: `rate × duration`, rounded.
    pub fn posts(&self) -> usize {
        (self.rate * self.duration.as_secs_f64()).round() as usize
    }
}

/// Where the server under test comes from.
#[derive(Debug, Clone)]
pub enum ServerChoice {
    /// `sluice serve` started by the bench, on 127.0.0.1 with a free port, a temporary
    /// data dir and a fresh admin token.
    Spawn(Serve),
    /// A `nats-server` and `nodes` nodes of `sluice serve --nats` started by the bench.
    Cluster {
        /// How each node is started.
        serve: Serve,
        /// How many nodes (at least one).
        nodes: usize,
    },
    /// A running server the bench does not own.
    Running {
        /// Its base URL, ending in `/` (so that joining `admin/…` keeps a path prefix).
        base: Url,
        /// Its admin token.
        admin_token: String,
    },
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_report_names_the_running_build_sluice_and_another_by_its_path() {
        let running = std::env::current_exe().expect("the test's executable");
        let mut own = Serve::new(running.clone());
        own.args.push("--match-threads=1".into());
        let named = own.named();
        assert_eq!(named.exe, Path::new("sluice"));
        assert_eq!(named.args, ["--match-threads=1"]);
        // The running one reached through a link is still the running one.
        let dir = tempfile::tempdir().expect("a temporary dir");
        let link = dir.path().join("sluice-link");
        std::os::unix::fs::symlink(&running, &link).expect("a link");
        assert_eq!(Serve::new(link).named().exe, Path::new("sluice"));
        let other = Serve::new(PathBuf::from("/tmp/sluice-before")).named();
        assert_eq!(other.exe, Path::new("/tmp/sluice-before"));
    }
}
