//! The server under test: either a `sluice serve` child process the bench starts itself
//! (the same binary, on `127.0.0.1:0`, a temporary data dir, a fresh admin token), or a
//! running server given by URL and admin token.
//!
//! A spawned server lives exactly as long as its [`SpawnedServer`]: dropping it (normal
//! end, error, SIGINT handled by the bench, panic unwinding) kills the process, reaps it
//! and removes the data dir.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};
use url::Url;

/// The banner line `sluice serve` prints first: `sluice <version> listening on <URL>`.
const LISTENING: &str = " listening on ";

/// Where the server under test is and how to administer it.
pub struct Target {
    /// The base URL (`http://127.0.0.1:PORT`).
    pub base: Url,
    /// The admin and ingest bearer token.
    pub admin_token: String,
    /// The child process, when the bench started the server.
    pub spawned: Option<SpawnedServer>,
}

impl Target {
    /// A running server the bench does not own.
    pub fn external(base: Url, admin_token: String) -> Self {
        Self {
            base,
            admin_token,
            spawned: None,
        }
    }

    /// Starts `sluice serve` from this very executable and waits until it listens.
    pub fn spawn() -> anyhow::Result<Self> {
        let (spawned, base, admin_token) = SpawnedServer::start()?;
        Ok(Self {
            base,
            admin_token,
            spawned: Some(spawned),
        })
    }

    /// The process id of the server, when the bench started it (for CPU accounting).
    pub fn pid(&self) -> Option<u32> {
        self.spawned.as_ref().map(|s| s.child.id())
    }
}

/// A `sluice serve` child process and its data dir, both gone when this is dropped.
pub struct SpawnedServer {
    child: Child,
    // Dropped after `child` is killed (see `Drop`), so the server never loses its files
    // while running.
    data_dir: Option<tempfile::TempDir>,
}

impl SpawnedServer {
    /// Starts the server; returns it with its base URL and admin token.
    fn start() -> anyhow::Result<(Self, Url, String)> {
        let exe = std::env::current_exe().context("finding the sluice executable")?;
        let data_dir = tempfile::Builder::new()
            .prefix("sluice-bench-")
            .tempdir()
            .context("creating a temporary data dir")?;
        let admin_token = sluice_server::auth::generate_token("bench");
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--datacenter", "local"])
            .arg("--data-dir")
            .arg(data_dir.path())
            // The token goes through the environment, not the command line `ps` shows.
            .env("SLUICE_ADMIN_TOKEN", &admin_token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // The server logs a line per connection; keep its warnings and errors only,
        // unless the operator asked for something else.
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        // Settings the operator may have exported for their own server must not leak into
        // the benchmarked one.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("SLUICE_") && name != "SLUICE_ADMIN_TOKEN" {
                command.env_remove(name.as_ref());
            }
        }
        let child = command.spawn().context("starting `sluice serve`")?;
        let mut server = SpawnedServer {
            child,
            data_dir: Some(data_dir),
        };
        let base = server.wait_for_banner()?;
        Ok((server, base, admin_token))
    }

    /// Reads the start banner up to the `listening on` line; the rest of stdout is drained
    /// on a thread so the server never blocks on a full pipe.
    fn wait_for_banner(&mut self) -> anyhow::Result<Url> {
        let stdout = self
            .child
            .stdout
            .take()
            .context("the server's stdout is not captured")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .context("reading the server's banner")?;
            if read == 0 {
                let status = self.child.wait().context("waiting for the server")?;
                bail!("`sluice serve` exited before listening ({status}); its stderr is above");
            }
            if let Some((_, url)) = line.trim_end().split_once(LISTENING) {
                let base = Url::parse(url)
                    .with_context(|| format!("the server printed an unusable URL {url:?}"))?;
                std::thread::Builder::new()
                    .name("sluice-bench-server-stdout".into())
                    .spawn(move || {
                        let mut sink = [0u8; 4096];
                        while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                    })
                    .context("starting the stdout drain thread")?;
                return Ok(base);
            }
        }
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        // Already gone is fine; anything else cannot be reported from a destructor.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.data_dir.take() {
            let _ = dir.close();
        }
    }
}
