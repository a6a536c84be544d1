//! The NATS server of a `sluice bench --cluster N` run: a `nats-server -js` child process
//! the bench starts itself, on a port the OS picks on 127.0.0.1, with its JetStream store
//! in a temporary dir, so a run never touches (or is disturbed by) another NATS.
//!
//! The port is read from the ports file `nats-server --ports_file_dir` writes once it
//! listens (so there is no race between choosing a free port and binding it). The server
//! lives exactly as long as its [`NatsServer`]: dropping it kills the process, reaps it and
//! removes its dir, JetStream store and log included.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The executable's name.
const EXECUTABLE: &str = "nats-server";
/// Where distributions install it outside a user's `PATH` (Debian: `/usr/sbin`).
const SYSTEM_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/sbin"];
/// How long the server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the ports file is looked for while it starts.
const START_POLL: Duration = Duration::from_millis(20);

/// A running `nats-server -js` and its temporary dir, both gone when this is dropped.
pub struct NatsServer {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    url: String,
    /// What `nats-server --version` says, e.g. `nats-server v2.9.10`.
    version: String,
    // Removed after `child` is killed (see `Drop`).
    dir: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// Finds `nats-server`, starts it with JetStream and waits until it listens. Fails with
    /// a message saying how to get it when it is not installed.
    pub fn start() -> anyhow::Result<NatsServer> {
        let exe = find_executable(std::env::var_os("PATH").as_deref()).with_context(|| {
            format!(
                "--cluster needs `{EXECUTABLE}` (NATS with JetStream, 2.9 or later), which is \
                 not installed: it is neither on PATH nor in {}. Install it (e.g. `apt install \
                 nats-server`) or run without --cluster",
                SYSTEM_DIRS.join(", ")
            )
        })?;
        let version = version_of(&exe)?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-bench-nats-")
            .tempdir()
            .context("creating a temporary dir for nats-server")?;
        let log = dir.path().join("nats-server.log");
        let child = Command::new(&exe)
            .args(["-js", "-a", "127.0.0.1", "-p", "-1"])
            .arg("-sd")
            .arg(dir.path().join("jetstream"))
            .arg("--ports_file_dir")
            .arg(dir.path())
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut server = NatsServer {
            child,
            url: String::new(),
            version,
            dir: Some(dir),
        };
        server.url = server.wait_for_port(&log)?;
        Ok(server)
    }

    /// `nats://127.0.0.1:PORT`, what the nodes are given with `--nats`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's name and version, e.g. `nats-server v2.9.10`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The process id (for CPU accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the ports file the server writes once it listens; returns its client URL.
    fn wait_for_port(&mut self, log: &Path) -> anyhow::Result<String> {
        let dir = self
            .dir
            .as_ref()
            .map(|d| d.path().to_owned())
            .context("the nats-server dir is gone")?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for nats-server")? {
                bail!(
                    "nats-server exited before listening ({status}); its log ends:\n{}",
                    log_tail(log)
                );
            }
            if let Some(url) = read_ports_file(&dir)? {
                return Ok(url);
            }
            if Instant::now() > deadline {
                bail!(
                    "nats-server did not listen within {} s; its log ends:\n{}",
                    START_TIMEOUT.as_secs(),
                    log_tail(log)
                );
            }
            std::thread::sleep(START_POLL);
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // Already gone is fine; anything else cannot be reported from a destructor.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// `nats-server` on `path` (a `PATH` value), else in one of [`SYSTEM_DIRS`].
fn find_executable(path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let on_path = path.into_iter().flat_map(std::env::split_paths);
    on_path
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(EXECUTABLE))
        .find(|candidate| candidate.is_file())
}

/// `nats-server --version`, as `nats-server vX.Y.Z`.
fn version_of(exe: &Path) -> anyhow::Result<String> {
    let output = Command::new(exe)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} --version", exe.display()))?;
    Ok(parse_version(&String::from_utf8_lossy(&output.stdout))
        .unwrap_or_else(|| format!("{EXECUTABLE} (unknown version)")))
}

/// `nats-server: v2.9.10` → `nats-server v2.9.10`.
fn parse_version(text: &str) -> Option<String> {
    let version = text.trim().strip_prefix("nats-server:")?.trim();
    (!version.is_empty() && !version.contains(char::is_whitespace))
        .then(|| format!("{EXECUTABLE} {version}"))
}

/// The client URL in the `*.ports` file of `dir`, once the server has written it.
fn read_ports_file(dir: &Path) -> anyhow::Result<Option<String>> {
    let entries = std::fs::read_dir(dir).context("reading the nats-server dir")?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "ports") {
            // The file may be seen before its content is written: try again later.
            let Ok(text) = std::fs::read_to_string(&path) else {
                return Ok(None);
            };
            return Ok(parse_ports(&text));
        }
    }
    Ok(None)
}

/// The first client URL of a ports file, `{"nats":["nats://127.0.0.1:PORT"],…}`.
fn parse_ports(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Ports {
        nats: Vec<String>,
    }
    let ports: Ports = serde_json::from_str(text).ok()?;
    ports.nats.into_iter().find(|u| u.starts_with("nats://"))
}

/// The last lines of the server's log, for an error message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    if tail.is_empty() {
        "(empty)".to_owned()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_is_read() {
        assert_eq!(
            parse_version("nats-server: v2.9.10\n").as_deref(),
            Some("nats-server v2.9.10")
        );
        assert_eq!(parse_version("nats-server: \n"), None);
        assert_eq!(parse_version("something else"), None);
    }

    #[test]
    fn the_ports_file_gives_the_client_url() {
        assert_eq!(
            parse_ports(r#"{"nats":["nats://127.0.0.1:40209"]}"#).as_deref(),
            Some("nats://127.0.0.1:40209")
        );
        assert_eq!(
            parse_ports(
                r#"{"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"]}"#
            )
            .as_deref(),
            Some("nats://127.0.0.1:4222")
        );
        // Seen half written, or without a client listener.
        assert_eq!(parse_ports(r#"{"nats":["#), None);
        assert_eq!(parse_ports(r#"{"nats":[]}"#), None);
        assert_eq!(parse_ports(""), None);
    }

    #[test]
    fn the_executable_is_looked_for_on_path_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        let exe = dir.path().join(EXECUTABLE);
        std::fs::write(&exe, "").expect("write");
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).expect("PATH");
        assert_eq!(find_executable(Some(&path)), Some(exe));
        // An empty PATH falls back to the system dirs, where it may or may not be.
        let found = find_executable(Some(std::ffi::OsStr::new("")));
        assert!(found.is_none_or(|p| SYSTEM_DIRS.iter().any(|d| p.starts_with(d))));
    }

    #[test]
    fn a_started_server_is_stopped_and_removed_on_drop() {
        // A missing nats-server fails this test rather than skipping it (.ci/run installs
        // it; so must a developer).
        let server = NatsServer::start().expect("nats-server starts");
        assert!(
            server.url().starts_with("nats://127.0.0.1:"),
            "{}",
            server.url()
        );
        assert!(server.version().starts_with("nats-server v"));
        let port: u16 = server
            .url()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("it listens");
        let pid = server.pid();
        let dir = server.dir.as_ref().expect("dir").path().to_owned();
        drop(server);
        assert!(!dir.exists(), "its dir is removed");
        if cfg!(target_os = "linux") {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "nats-server {pid} still runs"
            );
        }
    }
}
