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
        // An accepted connection alone does not prove it is ours: another process may
        // have bound the port first (then ours exits). Only the NATS banner, with our
        // child still running, says the server is up.
        while !greets_as_nats(self.port) {
            if child.try_wait().expect("polling nats-server").is_some() {
                return false;
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().expect("polling nats-server").is_some() {
            return false;
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

/// Whether something on this loopback port accepts a connection and greets it the way
/// nats-server does (`INFO {`).
fn greets_as_nats(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut banner = [0u8; 6];
    stream.read_exact(&mut banner).is_ok() && &banner == b"INFO {"
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
        assert!(!greets_as_nats(port));
        assert!(!greets_as_nats(port));
        server.join().unwrap();
    }

    #[test]
    fn a_started_server_greets_as_nats() {
        let nats = Nats::start();
        assert!(greets_as_nats(nats.port));
    }
}
