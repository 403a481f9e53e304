//! A loopback TCP proxy that injects network faults between a client and a server.
//!
//! `FaultProxy::start(target_port)` listens on a free `127.0.0.1` port and forwards every
//! connection to `127.0.0.1:<target_port>`. At run time a test can add latency to replies,
//! blackhole or reset the connections open right now (new ones still work), refuse new
//! connections, accept new connections without ever forwarding them, or cut the replies after N
//! bytes. Every task the proxy spawns is aborted when it is dropped.
//!
//! Needs a tokio runtime: `start` and the connection tasks run on the caller's runtime.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What happens to one proxied connection from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionFault {
    /// Forward both ways (with the proxy's latency).
    Forward,
    /// Stop forwarding both ways and keep both sockets open: a half-open peer as seen by the
    /// application (the kernel still acknowledges, as after a partition on a real network
    /// the client's kernel has no way to tell either).
    Blackhole,
    /// Close both sockets with an RST (`SO_LINGER` 0).
    Reset,
    /// Forward `bytes` more bytes from the server to the client, then stop forwarding; close
    /// both sockets if `then_close`, otherwise leave them open (a server stalled mid-reply).
    CutRepliesAfter {
        /// Bytes of server output still forwarded.
        bytes: usize,
        /// Close (FIN) both sockets after the cut instead of stalling.
        then_close: bool,
    },
}

/// What the proxy does with connections that arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewConnections {
    /// Accept and forward.
    Forward,
    /// Stop listening: connecting fails with "connection refused".
    Refuse,
    /// Accept and never forward anything: a server that accepts but never answers.
    Blackhole,
}

/// The proxy; dropping it aborts every task and closes every socket it holds.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    new_connections: watch::Sender<NewConnections>,
    accept_task: JoinHandle<()>,
}

struct Shared {
    target: SocketAddr,
    latency_micros: AtomicU64,
    accepted: AtomicUsize,
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Connection>>,
    /// Applied to connections accepted from now on (set by `cut_replies_after`).
    fault_for_new: Mutex<ConnectionFault>,
}

struct Connection {
    fault: watch::Sender<ConnectionFault>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `127.0.0.1:<target_port>`.
    pub async fn start(target_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            target: SocketAddr::from(([127, 0, 0, 1], target_port)),
            latency_micros: AtomicU64::new(0),
            accepted: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            connections: Mutex::new(HashMap::new()),
            fault_for_new: Mutex::new(ConnectionFault::Forward),
        });
        let (new_connections, mode) = watch::channel(NewConnections::Forward);
        let accept_task = tokio::spawn(accept_loop(listener, port, Arc::clone(&shared), mode));
        FaultProxy {
            port,
            shared,
            new_connections,
            accept_task,
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<proxy port>/<db>`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Delays every chunk of server output by `latency` before forwarding it.
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_micros.store(micros, Ordering::Relaxed);
    }

    /// Stops forwarding on every connection open now; connections made later still work.
    pub fn blackhole_existing(&self) {
        self.apply_to_existing(ConnectionFault::Blackhole);
    }

    /// Resets (RST) every connection open now.
    pub fn reset_existing(&self) {
        self.apply_to_existing(ConnectionFault::Reset);
    }

    /// Forwards `bytes` more bytes of server output on every connection (open now or made
    /// later), then stalls (or closes if `then_close`). `pass_through` lifts it for new ones.
    pub fn cut_replies_after(&self, bytes: usize, then_close: bool) {
        let fault = ConnectionFault::CutRepliesAfter { bytes, then_close };
        *self.shared.fault_for_new.lock().unwrap() = fault;
        self.apply_to_existing(fault);
    }

    /// Sets what happens to connections that arrive from now on.
    pub fn set_new_connections(&self, mode: NewConnections) {
        self.new_connections.send_replace(mode);
    }

    /// Back to normal for new connections: forwarded, no latency, no cut. Connections already
    /// blackholed, cut or reset stay so (as a real half-open connection would).
    pub fn pass_through(&self) {
        self.set_latency(Duration::ZERO);
        *self.shared.fault_for_new.lock().unwrap() = ConnectionFault::Forward;
        self.set_new_connections(NewConnections::Forward);
    }

    /// Applies `fault` to every connection open now.
    pub fn apply_to_existing(&self, fault: ConnectionFault) {
        let connections = self.shared.connections.lock().unwrap();
        for connection in connections.values() {
            connection.fault.send_replace(fault);
        }
    }

    /// Connections accepted so far (forwarded or blackholed).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Connections the proxy holds open right now.
    pub fn open_connections(&self) -> usize {
        let mut connections = self.shared.connections.lock().unwrap();
        connections.retain(|_, c| !c.task.is_finished());
        connections.len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        for (_, connection) in self.shared.connections.lock().unwrap().drain() {
            connection.task.abort();
        }
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    port: u16,
    shared: Arc<Shared>,
    mut mode: watch::Receiver<NewConnections>,
) {
    loop {
        if *mode.borrow_and_update() == NewConnections::Refuse {
            // Closing the listener makes connects fail with ECONNREFUSED, as a real refusal.
            drop(listener);
            while *mode.borrow_and_update() == NewConnections::Refuse {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            listener = rebind(port).await;
            continue;
        }
        tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                shared.accepted.fetch_add(1, Ordering::Relaxed);
                let blackholed = *mode.borrow() == NewConnections::Blackhole;
                spawn_connection(&shared, client, blackholed);
            }
        }
    }
}

async fn rebind(port: u16) -> TcpListener {
    // The port was ours a moment ago; SO_REUSEADDR lets us take it back despite TIME_WAIT.
    for _ in 0..100 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        if socket
            .bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .is_ok()
        {
            if let Ok(listener) = socket.listen(128) {
                return listener;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fault proxy could not listen on 127.0.0.1:{port} again");
}

fn spawn_connection(shared: &Arc<Shared>, client: TcpStream, blackholed: bool) {
    let initial = if blackholed {
        ConnectionFault::Blackhole
    } else {
        *shared.fault_for_new.lock().unwrap()
    };
    let (fault, fault_rx) = watch::channel(initial);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let task = tokio::spawn(run_connection(
        Arc::clone(shared),
        client,
        blackholed,
        fault_rx,
    ));
    shared
        .connections
        .lock()
        .unwrap()
        .insert(id, Connection { fault, task });
}

async fn run_connection(
    shared: Arc<Shared>,
    mut client: TcpStream,
    blackholed: bool,
    mut fault: watch::Receiver<ConnectionFault>,
) {
    let _ = client.set_nodelay(true);
    if blackholed {
        // Accepted, never forwarded, never closed (until reset or the proxy is dropped).
        hold_until_reset(&client, None, &mut fault).await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(shared.target).await else {
        reset(&client, None);
        return;
    };
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut to_client = vec![0u8; 16 * 1024];
    let mut to_server = vec![0u8; 16 * 1024];
    // The fault in force, with a cut's remaining budget counted down locally.
    let mut current = *fault.borrow_and_update();
    loop {
        let budget = match current {
            ConnectionFault::Forward => usize::MAX,
            ConnectionFault::Blackhole => {
                hold_until_reset(client_read.as_ref(), Some(server_read.as_ref()), &mut fault)
                    .await;
                return;
            }
            ConnectionFault::Reset => {
                reset(client_read.as_ref(), Some(server_read.as_ref()));
                return;
            }
            ConnectionFault::CutRepliesAfter {
                bytes: 0,
                then_close,
            } => {
                if then_close {
                    return; // Both streams dropped: FIN both ways.
                }
                hold_until_reset(client_read.as_ref(), Some(server_read.as_ref()), &mut fault)
                    .await;
                return;
            }
            ConnectionFault::CutRepliesAfter { bytes, .. } => bytes,
        };
        tokio::select! {
            changed = fault.changed() => {
                if changed.is_err() {
                    return;
                }
                current = *fault.borrow_and_update();
            }
            read = server_read.read(&mut to_client) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                let forwarded = n.min(budget);
                let latency = shared.latency_micros.load(Ordering::Relaxed);
                if latency > 0 {
                    tokio::time::sleep(Duration::from_micros(latency)).await;
                }
                if client_write.write_all(&to_client[..forwarded]).await.is_err() {
                    return;
                }
                if let ConnectionFault::CutRepliesAfter { bytes, .. } = &mut current {
                    *bytes -= forwarded;
                }
            }
            read = client_read.read(&mut to_server) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                if server_write.write_all(&to_server[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Keeps the sockets open without forwarding until a reset is asked for or the proxy is dropped.
async fn hold_until_reset(
    client: &TcpStream,
    server: Option<&TcpStream>,
    fault: &mut watch::Receiver<ConnectionFault>,
) {
    loop {
        if *fault.borrow_and_update() == ConnectionFault::Reset {
            reset(client, server);
            return;
        }
        if fault.changed().await.is_err() {
            // The proxy is gone; hold until this task is aborted.
            std::future::pending::<()>().await;
        }
    }
}

/// Sets `SO_LINGER` 0 so that dropping the sockets sends RST instead of FIN.
fn reset(client: &TcpStream, server: Option<&TcpStream>) {
    let _ = client.set_zero_linger();
    if let Some(server) = server {
        let _ = server.set_zero_linger();
    }
}
