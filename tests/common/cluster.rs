//! Test harness: a private 6-node Redis Cluster (3 primaries, 3 replicas) on free loopback
//! ports, and a Sentinel setup (1 primary, 1 replica, 3 sentinels). Every process is killed
//! (and its directory removed) on drop; every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// The cluster's node timeout: how long a node may be unreachable before a failover.
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// One redis-server (cluster node or sentinel) owned by the test.
pub struct Node {
    child: Option<Child>,
    port: u16,
}

impl Node {
    /// The node's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the process (as a crash would) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process was killed.
    pub fn is_killed(&self) -> bool {
        self.child.is_none()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A synchronous connection to `127.0.0.1:port`, for checks from outside the client.
pub fn admin(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap()
}

/// Runs a raw command on `127.0.0.1:port`.
pub fn query<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut admin(port)).unwrap()
}

/// Starts `redis-server` with `args` (after an optional config file) on a free port, retrying
/// with other ports when one was taken; waits until it answers PING.
fn spawn_node(dir: &Path, config: Option<&Path>, args: &dyn Fn(u16) -> Vec<String>) -> Node {
    std::fs::create_dir_all(dir).unwrap();
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut command = Command::new("redis-server");
        if let Some(config) = config {
            command.arg(config);
        }
        let mut child = command
            .args(args(port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `redis-server` ({e}); the tests need it on PATH: \
                     install it with `apt-get install redis-server` (they start their own)"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                last_error = format!("redis-server exited early ({status}) on port {port}");
                break;
            }
            if pings(port) {
                return Node {
                    child: Some(child),
                    port,
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                last_error = format!("redis-server on port {port} not ready after 10 s");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("could not start redis-server: {last_error}");
}

fn pings(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
        return false;
    };
    redis::cmd("PING").query::<String>(&mut conn).is_ok()
}

fn unique_dir(kind: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("baseplate-redis-{kind}-{}-{n}", std::process::id()))
}

/// Polls `check` every 50 ms until it holds, for at most `limit`; panics with `what` if it
/// never does.
/// The hash slot of `key` (CRC16/XMODEM of the key or its `{hash tag}`, mod 16384).
pub fn slot(key: &str) -> u16 {
    let hashed = match key.find('{') {
        Some(open) => match key[open + 1..].find('}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &byte in hashed.as_bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A node as `CLUSTER NODES` describes it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node id.
    pub id: String,
    /// Its port.
    pub port: u16,
    /// Whether it is a primary.
    pub primary: bool,
    /// For a replica, its primary's id.
    pub primary_id: Option<String>,
    /// Whether it is flagged failed.
    pub failed: bool,
    /// The slot ranges it serves (primaries only).
    pub slots: Vec<(u16, u16)>,
}

/// A 6-node cluster: 3 primaries, each with one replica.
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts 6 nodes, joins them with `redis-cli --cluster create … --cluster-replicas 1` and
    /// waits until every node says `cluster_state:ok` and knows every replica.
    pub fn start() -> RedisCluster {
        let dir = unique_dir("cluster");
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let dir_arg = dir.clone();
            nodes.push(spawn_node(&dir, None, &move |port| {
                [
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{port}.conf"),
                    "--cluster-node-timeout",
                    &NODE_TIMEOUT_MS.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    dir_arg.to_str().unwrap(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            }));
        }
        let cluster = RedisCluster { nodes, dir };
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `redis-cli` ({e}): install redis-tools"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// Waits until every live node says `cluster_state:ok`, sees 3 primaries serving all
    /// slots, and knows every live replica.
    pub fn wait_healthy(&self, limit: Duration) {
        wait_until(limit, "cluster healthy on every node", || {
            self.live_ports().iter().all(|&port| {
                let Ok(mut conn) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                else {
                    return false;
                };
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut conn)
                    .unwrap_or_default();
                if !info.contains("cluster_state:ok") {
                    return false;
                }
                let nodes: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query(&mut conn)
                    .unwrap_or_default();
                let parsed = parse_nodes(&nodes);
                let live = |n: &&NodeInfo| !n.failed;
                let primaries = parsed.iter().filter(live).filter(|n| n.primary).count();
                let replicas = parsed.iter().filter(live).filter(|n| !n.primary).count();
                let live_nodes = self.live_ports().len();
                // A replica is listed in CLUSTER SLOTS (so clients use it) once it has synced.
                let slots: redis::Value = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query(&mut conn)
                    .unwrap_or(redis::Value::Nil);
                primaries == 3 && replicas == live_nodes - 3 && slot_nodes(&slots) == live_nodes
            })
        });
    }

    /// The ports of the nodes not killed.
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| !n.is_killed())
            .map(|n| n.port)
            .collect()
    }

    /// The port of the first live node.
    pub fn seed_port(&self) -> u16 {
        self.live_ports()[0]
    }

    /// `redis://127.0.0.1:<port of the first node>/`.
    pub fn seed_url(&self) -> String {
        let port = self.live_ports()[0];
        format!("redis://127.0.0.1:{port}/")
    }

    /// The cluster as a live node sees it.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let port = self.live_ports()[0];
        parse_nodes(&query::<String>(port, &["CLUSTER", "NODES"]))
    }

    /// The live primaries.
    pub fn primaries(&self) -> Vec<NodeInfo> {
        self.nodes()
            .into_iter()
            .filter(|n| n.primary && !n.failed)
            .collect()
    }

    /// The live replicas.
    pub fn replicas(&self) -> Vec<NodeInfo> {
        self.nodes()
            .into_iter()
            .filter(|n| !n.primary && !n.failed)
            .collect()
    }

    /// The primary serving `slot`.
    pub fn owner_of(&self, slot: u16) -> NodeInfo {
        self.primaries()
            .into_iter()
            .find(|n| n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .unwrap()
    }

    /// Kills the node on `port`.
    pub fn kill(&mut self, port: u16) {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap()
            .kill();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Parses `CLUSTER NODES`.
pub fn parse_nodes(text: &str) -> Vec<NodeInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            // 127.0.0.1:7000@17000
            let port = fields[1].split(['@', ',']).next()?.rsplit(':').next()?;
            let flags = fields[2];
            let slots = fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|n| (n, n)),
                })
                .collect();
            Some(NodeInfo {
                id: fields[0].to_string(),
                port: port.parse().ok()?,
                primary: flags.contains("master"),
                primary_id: (fields[3] != "-").then(|| fields[3].to_string()),
                failed: flags.contains("fail") && !flags.contains("fail?")
                    || flags.contains("noaddr"),
                slots,
            })
        })
        .collect()
}

/// The service name the sentinels monitor.
pub const SENTINEL_SERVICE: &str = "mymaster";
/// The sentinels' `down-after-milliseconds`.
pub const SENTINEL_DOWN_AFTER_MS: u64 = 1000;
/// The sentinels' `failover-timeout`.
pub const SENTINEL_FAILOVER_TIMEOUT_MS: u64 = 3000;

/// 1 primary, 1 replica, 3 sentinels monitoring them as `mymaster`.
pub struct SentinelSetup {
    /// The initial primary.
    pub primary: Node,
    /// The initial replica.
    pub replica: Node,
    /// The sentinels.
    pub sentinels: Vec<Node>,
    dir: PathBuf,
}

impl SentinelSetup {
    /// Starts the servers and sentinels; waits until every sentinel knows the replica and
    /// the two other sentinels (without which no failover can happen).
    pub fn start() -> SentinelSetup {
        let dir = unique_dir("sentinel");
        let data_args = |dir: PathBuf, replica_of: Option<u16>| {
            move |port: u16| {
                let mut args: Vec<String> = [
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    dir.to_str().unwrap(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                if let Some(primary) = replica_of {
                    args.extend([
                        "--replicaof".into(),
                        "127.0.0.1".into(),
                        primary.to_string(),
                    ]);
                }
                args
            }
        };
        let primary = spawn_node(
            &dir.join("primary"),
            None,
            &data_args(dir.join("primary"), None),
        );
        let replica = spawn_node(
            &dir.join("replica"),
            None,
            &data_args(dir.join("replica"), Some(primary.port)),
        );
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let sentinel_dir = dir.join(format!("sentinel-{i}"));
            std::fs::create_dir_all(&sentinel_dir).unwrap();
            let config = sentinel_dir.join("sentinel.conf");
            std::fs::write(
                &config,
                format!(
                    "sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds {SENTINEL_SERVICE} {SENTINEL_DOWN_AFTER_MS}\n\
                     sentinel failover-timeout {SENTINEL_SERVICE} {SENTINEL_FAILOVER_TIMEOUT_MS}\n\
                     sentinel parallel-syncs {SENTINEL_SERVICE} 1\n",
                    primary.port
                ),
            )
            .unwrap();
            let dir_arg = sentinel_dir.clone();
            sentinels.push(spawn_node(&sentinel_dir, Some(&config), &move |port| {
                [
                    "--sentinel",
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    dir_arg.to_str().unwrap(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            }));
        }
        let setup = SentinelSetup {
            primary,
            replica,
            sentinels,
            dir,
        };
        wait_until(
            Duration::from_secs(30),
            "sentinels know the replica and each other",
            || {
                setup.sentinels.iter().all(|s| {
                    let replicas: Vec<Vec<String>> =
                        query(s.port, &["SENTINEL", "REPLICAS", SENTINEL_SERVICE]);
                    let others: Vec<Vec<String>> =
                        query(s.port, &["SENTINEL", "SENTINELS", SENTINEL_SERVICE]);
                    let replica_ok = replicas.iter().any(|fields| {
                        field(fields, "port") == Some(setup.replica.port.to_string())
                            && field(fields, "flags").as_deref() == Some("slave")
                            && field(fields, "master-link-status").as_deref() == Some("ok")
                    });
                    replica_ok && others.len() == 2
                })
            },
        );
        setup
    }

    /// `redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/mymaster/<db>`.
    pub fn url(&self, db: u32) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!(
            "redis+sentinel://{}/{SENTINEL_SERVICE}/{db}",
            hosts.join(",")
        )
    }

    /// The primary's port as the first sentinel reports it.
    pub fn reported_primary(&self) -> u16 {
        let (_, port): (String, String) = query(
            self.sentinels[0].port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE],
        );
        port.parse().unwrap()
    }
}

impl Drop for SentinelSetup {
    fn drop(&mut self) {
        for s in &mut self.sentinels {
            s.kill();
        }
        self.replica.kill();
        self.primary.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value after `name` in a flat `[name, value, name, value…]` reply.
fn field(fields: &[String], name: &str) -> Option<String> {
    fields
        .chunks(2)
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair.get(1).cloned())
}

/// How many distinct nodes a `CLUSTER SLOTS` reply lists.
fn slot_nodes(reply: &redis::Value) -> usize {
    let mut ports = std::collections::HashSet::new();
    if let redis::Value::Array(ranges) = reply {
        for range in ranges {
            if let redis::Value::Array(fields) = range {
                for node in fields.iter().skip(2) {
                    if let redis::Value::Array(parts) = node {
                        if let Some(redis::Value::Int(port)) = parts.get(1) {
                            ports.insert(*port);
                        }
                    }
                }
            }
        }
    }
    ports.len()
}
