//! Test harness: a private `redis-server` on a free loopback port, stopped on drop.
//!
//! Tests never use a server they did not start (a Redis may already run on 6379).

#![allow(dead_code, unreachable_pub)]

#[allow(unused_imports)]
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` process owned by the test; killed (and its directory removed) on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free loopback port with persistence off.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments (e.g. `["--requirepass", "x"]`).
    pub fn start_with(extra_args: &[&str]) -> RedisServer {
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let dir = unique_dir();
        // A port can be taken between our probe and the server's bind: retry a few times.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn(port, &dir, &extra_args) {
                Ok(child) => {
                    return RedisServer {
                        child,
                        port,
                        dir,
                        extra_args,
                    }
                }
                Err(e) => last_error = e,
            }
        }
        panic!("could not start redis-server: {last_error}");
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// The server's working directory (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server (as a crash would) and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match spawn(self.port, &self.dir, &self.extra_args) {
                Ok(child) => {
                    self.child = child;
                    return;
                }
                Err(e) if Instant::now() > deadline => panic!("redis-server restart failed: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// A synchronous connection for checks made from outside the client under test.
    pub fn admin(&self) -> redis::Connection {
        let client = redis::Client::open(self.url(0)).unwrap();
        client
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    }

    /// Runs `redis-cli` style raw command on the admin connection and returns its reply.
    pub fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut self.admin()).unwrap()
    }

    /// How many client connections the server has open, not counting the admin one that
    /// asks.
    pub fn connected_clients(&self) -> usize {
        let list: String = self.query(&["CLIENT", "LIST"]);
        list.lines().count().saturating_sub(1)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(port: u16, dir: &Path, extra_args: &[String]) -> Result<Child, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--enable-debug-command", "local"])
        .arg("--dir")
        .arg(dir)
        .args(extra_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run `redis-server` ({e}); the tests need it on PATH: \
                 install it with `apt-get install redis-server` (they start their own)"
            )
        })?;
    let tls = extra_args.iter().any(|a| a == "--tls-port");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server exited early ({status}) on port {port}"
            ));
        }
        if ready(port, tls) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("redis-server on port {port} not ready after 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ready(port: u16, tls: bool) -> bool {
    if tls {
        // The plain port may be disabled for TLS servers; a TCP accept is enough.
        return std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    }
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/0")) else {
        return false;
    };
    let mut conn = match client.get_connection_with_timeout(Duration::from_millis(200)) {
        Ok(conn) => conn,
        Err(err) => return err.code().is_some(),
    };
    // Any reply, even NOAUTH from a password-protected server, means it is serving.
    match redis::cmd("PING").query::<String>(&mut conn) {
        Ok(_) => true,
        Err(err) => err.code().is_some() || err.kind() == redis::ErrorKind::AuthenticationFailed,
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unique_dir() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("baseplate-redis-test-{}-{n}", std::process::id()))
}

pub mod cluster;
pub mod fake_server;
pub mod fault_proxy;

/// What `f` logs through `tracing` (plain text, no colours), with `f`'s result.
pub fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (value, text)
}
