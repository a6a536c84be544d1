//! A private `nats-server` per test: free port, fresh storage, killed with the test.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server -js` of our own: free port, fresh storage directory, killed on drop.
pub struct Nats {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// Its `server_name`, unique in this machine's tests: how the readiness probe tells it
    /// from another test's nats-server that took the port first.
    name: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// Numbers the servers this process starts, for their names.
static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

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
        let number = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut nats = Nats {
            port: free_port(),
            name: format!("sluice-test-{}-{number}", std::process::id()),
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
                "--server_name",
                &self.name,
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        // An accepted connection alone does not prove it is ours: another process (even
        // another test's nats-server) may have bound the port first, and then ours exits.
        // Only a banner with our server's (unique) name says it is up.
        while !greets_as_nats(self.port, &self.name) {
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

/// Whether a nats-server named `name` listens on this loopback port: it accepts a
/// connection and greets it with an `INFO {…}` line carrying that `server_name`.
fn greets_as_nats(port: u16, name: &str) -> bool {
    use std::io::{BufRead, BufReader, Read};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut banner = String::new();
    if BufReader::new(stream.take(16 * 1024))
        .read_line(&mut banner)
        .is_err()
    {
        return false;
    }
    banner.starts_with("INFO {") && banner.contains(&format!("\"server_name\":\"{name}\""))
}

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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_listener_that_is_not_nats_is_not_taken_for_it() {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            // One that answers with something else, one that says nothing.
            let (mut other, _) = listener.accept().unwrap();
            other
                .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                .unwrap();
            let (_silent, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(1_500));
        });
        assert!(!greets_as_nats(port, "any"));
        assert!(!greets_as_nats(port, "any"));
        server.join().unwrap();
    }

    #[test]
    fn a_started_server_greets_with_its_own_name_only() {
        let nats = Nats::start();
        assert!(greets_as_nats(nats.port, &nats.name));
        // Another test's server on the port is not ours.
        assert!(!greets_as_nats(nats.port, "sluice-test-someone-else"));
        let other = Nats::start();
        assert_ne!(other.name, nats.name);
    }
}
