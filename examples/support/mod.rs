//! A private `redis-server` for the examples: a free loopback port, persistence off, killed
//! (and its directory removed) on drop. A copy of the tests' harness, kept small.

// Each example (and the pool benchmark) uses only part of it.
#![allow(dead_code)]

pub mod inline;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` process owned by the example.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server on a free loopback port, or says why it could not.
    pub fn start() -> Result<RedisServer, String> {
        let dir =
            std::env::temp_dir().join(format!("baseplate-redis-example-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut last_error = String::new();
        // A port can be taken between our probe and the server's bind: retry a few times.
        for _ in 0..5 {
            let port = free_port()?;
            match spawn(port, &dir) {
                Ok(child) => return Ok(RedisServer { child, port, dir }),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(port: u16, dir: &std::path::Path) -> Result<Child, String> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot run `redis-server` ({e}): install it (`apt-get install redis-server`) or set REDIS_URL")
        })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server exited early ({status}) on port {port}"
            ));
        }
        if ready(port) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("redis-server on port {port} not ready after 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ready(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/0")) else {
        return false;
    };
    match client.get_connection_with_timeout(Duration::from_millis(200)) {
        Ok(mut conn) => redis::cmd("PING").query::<String>(&mut conn).is_ok(),
        Err(_) => false,
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}
