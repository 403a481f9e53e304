//! A hostile fake Redis on a free loopback port: it parses the client's commands (RESP
//! arrays) and answers each as the test's script says, including with a reply that never ends.
//! Dropping it aborts its tasks and closes its sockets.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the fake server sends for one command.
pub enum Reply {
    /// These bytes, as they are (`b"+OK\r\n"`).
    Bytes(Vec<u8>),
    /// `header`, then filler bytes for ever (a bulk string announced larger than anything
    /// sent), until the client closes the connection.
    Endless {
        /// What comes first, e.g. `b"$10000000000\r\n"`.
        header: Vec<u8>,
    },
}

type Script = dyn Fn(&[Vec<u8>]) -> Reply + Send + Sync;

/// The fake server; see the module docs.
pub struct FakeRedis {
    port: u16,
    stats: Arc<Stats>,
    accept_task: JoinHandle<()>,
    connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

#[derive(Default)]
struct Stats {
    endless_bytes_sent: AtomicU64,
    connections_closed_by_client: AtomicUsize,
}

impl FakeRedis {
    /// Starts a fake server answering every command with `script(command)`.
    pub async fn start(script: impl Fn(&[Vec<u8>]) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stats = Arc::new(Stats::default());
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let accept_task = {
            let (stats, connections) = (stats.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let task = tokio::spawn(serve(stream, script.clone(), stats.clone()));
                    connections.lock().unwrap().push(task);
                }
            })
        };
        FakeRedis {
            port,
            stats,
            accept_task,
            connections,
        }
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Filler bytes of endless replies written to sockets so far (all connections).
    pub fn endless_bytes_sent(&self) -> u64 {
        self.stats.endless_bytes_sent.load(Ordering::Relaxed)
    }

    /// Connections the client closed (EOF, or a failed write) so far.
    pub fn connections_closed_by_client(&self) -> usize {
        self.stats
            .connections_closed_by_client
            .load(Ordering::Relaxed)
    }
}

impl Drop for FakeRedis {
    fn drop(&mut self) {
        self.accept_task.abort();
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn serve(mut stream: TcpStream, script: Arc<Script>, stats: Arc<Stats>) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        while let Some((command, used)) = parse_command(&buffer) {
            buffer.drain(..used);
            let written = match script(&command) {
                Reply::Bytes(bytes) => stream.write_all(&bytes).await,
                Reply::Endless { header } => stream_for_ever(&mut stream, &header, &stats).await,
            };
            if written.is_err() {
                stats
                    .connections_closed_by_client
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                stats
                    .connections_closed_by_client
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Writes `header`, then filler until a write fails (the client closed the socket).
async fn stream_for_ever(
    stream: &mut TcpStream,
    header: &[u8],
    stats: &Stats,
) -> std::io::Result<()> {
    stream.write_all(header).await?;
    let filler = vec![b'x'; 64 * 1024];
    loop {
        stream.write_all(&filler).await?;
        stats
            .endless_bytes_sent
            .fetch_add(filler.len() as u64, Ordering::Relaxed);
    }
}

/// One complete RESP array of bulk strings at the start of `buffer`, and its length in bytes.
fn parse_command(buffer: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    let (count, mut at) = parse_line_number(buffer, 0, b'*')?;
    let mut parts = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, start) = parse_line_number(buffer, at, b'$')?;
        let end = start + len;
        if buffer.len() < end + 2 {
            return None;
        }
        parts.push(buffer[start..end].to_vec());
        at = end + 2;
    }
    Some((parts, at))
}

/// `<prefix><number>\r\n` at `at`: the number and where the next line starts.
fn parse_line_number(buffer: &[u8], at: usize, prefix: u8) -> Option<(usize, usize)> {
    let rest = buffer.get(at..)?;
    if rest.first() != Some(&prefix) {
        return None;
    }
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    let number = std::str::from_utf8(&rest[1..end]).ok()?.parse().ok()?;
    Some((number, at + end + 2))
}
