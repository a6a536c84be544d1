//! A private `nats-server` per test: free port, fresh storage, killed with the test.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server -js` of our own: free port, fresh storage directory, killed on drop.
pub struct Nats {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Nats {
    /// Starts one. A missing `nats-server` fails the test (it never passes having run
    /// nothing): `.ci/run` installs it, and so must a developer (`apt-get install
    /// nats-server`).
    pub fn start() -> Nats {
        let installed = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            installed,
            "nats-server is not installed: the cluster tests need it (apt-get install nats-server)"
        );
        let mut nats = Nats {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        // The free port is only free when asked: another test may take it before
        // nats-server binds it. Then nats-server exits, and another port is tried.
        for _ in 0..START_ATTEMPTS {
            if nats.spawn() {
                return nats;
            }
            nats.port = free_port();
        }
        panic!("nats-server did not start on any of {START_ATTEMPTS} free ports");
    }

    /// Starts nats-server on this port and storage; whether it came up (false: it exited,
    /// the port being taken).
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if child.try_wait().expect("polling nats-server").is_some() {
                return false;
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        true
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its storage stays).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "nats-server exited at restart (port taken)");
    }
}

/// How many free ports [`Nats::start`] tries.
const START_ATTEMPTS: usize = 5;

/// A loopback port no one listens on now.
fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}
