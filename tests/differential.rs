//! Differential test: the same seeded random command stream goes to a real `redis-server`
//! and to `InMemoryBackend`; every reply (or error text) must be identical.
//!
//! `DIFF_SEED=<n>` adds a seed to the fixed ones. On a mismatch the test prints the seed,
//! the index, the command, both replies, and a shrunk command sequence that still fails.

mod common;

use baseplate_redis::pool::{InMemoryBackend, PoolBackend, PooledConnection};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Value};

use common::RedisServer;

const COMMANDS_PER_SEED: usize = 5_000;
const FIXED_SEEDS: [u64; 3] = [0x5eed, 42, 20_240_611];

type Command = Vec<Vec<u8>>;

fn pick<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> &'a str {
    from[rng.usize(..from.len())]
}

/// One random command over a small key space, mixing types so WRONGTYPE and missing-key
/// paths come up often.
fn generate(rng: &mut fastrand::Rng) -> Command {
    const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
    // No values near i64::MAX: INCRBYFLOAT on them shows the known long-double difference.
    const VALUES: &[&str] = &["v", "1", "-3", "1.5", "abc", "", "10", "0"];
    const INTS: &[&str] = &[
        "0",
        "1",
        "-1",
        "2",
        "10",
        "-100",
        "x",
        "99999999999999999999",
        "3",
    ];
    const IDX: &[&str] = &["0", "1", "-1", "2", "-2", "5", "-10", "100", "a"];
    const FLOATS: &[&str] = &["0.5", "1.25", "-2", "3", "1e2", "x", "inf", "0"];
    const SCORES: &[&str] = &["1", "2.5", "-1", "0.1", "+inf", "-inf", "3", "x", "1e20"];
    const BOUNDS: &[&str] = &["-inf", "+inf", "0", "(1", "2.5", "(3", "x", "1"];
    const FIELDS: &[&str] = &["f0", "f1", "f2", "f3"];
    const MEMBERS: &[&str] = &["m0", "m1", "m2", "m3", "m4"];
    const PATTERNS: &[&str] = &["*", "k?", "k[0-3]", "k[^1]", "x*", "k\\1", "*1"];
    let k = pick(rng, KEYS);
    let k2 = pick(rng, KEYS);
    let v = pick(rng, VALUES);
    let n = pick(rng, INTS);
    let f = pick(rng, FIELDS);
    let m = pick(rng, MEMBERS);
    const LEX: &[&str] = &[
        "-", "+", "[m1", "(m2", "[m0", "(m4", "[m9", "m1", "[", "(", "+x",
    ];
    let s: Vec<&str> = match rng.usize(..70) {
        0 => vec!["PING"],
        1 => vec!["ECHO", v],
        2 => vec!["DBSIZE"],
        3 => vec!["DEL", k, k2],
        4 => vec!["EXISTS", k, k2, k],
        5 => vec!["EXPIRE", k, pick(rng, &["100", "1000", "0", "-5", "x"])],
        6 => vec!["PEXPIRE", k, pick(rng, &["100000", "1000000", "-1"])],
        7 => vec!["TTL", k],
        8 => vec!["PTTL", k],
        9 => vec!["PERSIST", k],
        10 => vec!["TYPE", k],
        11 => vec!["KEYS", pick(rng, PATTERNS)],
        12 => vec!["RENAME", k, k2],
        13 | 14 => vec!["GET", k],
        15 | 16 => {
            let mut c = vec!["SET", k, v];
            for _ in 0..rng.usize(..3) {
                c.push(pick(
                    rng,
                    // No EXAT: a past deadline leaves Redis a key its active expiry removes
                    // some time later, so DBSIZE right after is timing-dependent.
                    &[
                        "NX", "XX", "GET", "KEEPTTL", "EX", "PX", "1000", "2000000", "0", "FOO",
                    ],
                ));
            }
            c
        }
        17 => vec!["SETNX", k, v],
        18 => vec!["SETEX", k, pick(rng, &["100", "0", "x"]), v],
        19 => vec!["MGET", k, k2, "k9"],
        20 => vec!["MSET", k, v, k2, pick(rng, VALUES)],
        21 => vec!["GETDEL", k],
        22 => vec!["INCR", k],
        23 => vec!["INCRBY", k, n],
        24 => vec!["DECR", k],
        25 => vec!["DECRBY", k, n],
        26 => vec!["INCRBYFLOAT", k, pick(rng, FLOATS)],
        27 => vec!["APPEND", k, v],
        28 => vec!["STRLEN", k],
        29 => vec!["GETRANGE", k, pick(rng, IDX), pick(rng, IDX)],
        30 | 31 => vec!["LPUSH", k, v, pick(rng, VALUES)],
        32 | 33 => vec!["RPUSH", k, v],
        34 => {
            let mut c = vec![pick(rng, &["LPOP", "RPOP"]), k];
            if rng.bool() {
                c.push(pick(rng, &["0", "1", "3", "-1", "x"]));
            }
            c
        }
        35 => vec!["LLEN", k],
        36 => vec!["LRANGE", k, pick(rng, IDX), pick(rng, IDX)],
        37 => vec!["LINDEX", k, pick(rng, IDX)],
        38 => vec!["LSET", k, pick(rng, IDX), v],
        39 => vec!["LREM", k, pick(rng, &["0", "1", "-1", "2", "x"]), v],
        40 => vec!["LTRIM", k, pick(rng, IDX), pick(rng, IDX)],
        41 => vec![
            pick(rng, &["BLPOP", "BRPOP"]),
            k,
            k2,
            pick(rng, &["0.01", "-1", "x"]),
        ],
        42 | 43 => vec!["HSET", k, f, v, pick(rng, FIELDS), pick(rng, VALUES)],
        44 => vec!["HSETNX", k, f, v],
        45 => vec!["HGET", k, f],
        46 => vec!["HMGET", k, f, "f9"],
        47 => vec!["HGETALL", k],
        48 => vec!["HDEL", k, f, pick(rng, FIELDS)],
        49 => vec![pick(rng, &["HEXISTS", "HLEN", "HKEYS", "HVALS"]), k, f],
        50 => vec!["HINCRBY", k, f, n],
        51 | 52 => vec!["SADD", k, m, pick(rng, MEMBERS)],
        53 => vec!["SREM", k, m],
        54 => vec![pick(rng, &["SMEMBERS", "SCARD"]), k],
        55 => vec!["SISMEMBER", k, m],
        56 | 57 => {
            let mut c = vec!["ZADD", k];
            for _ in 0..rng.usize(..2) {
                c.push(pick(rng, &["NX", "XX", "GT", "LT", "CH", "INCR"]));
            }
            c.extend([pick(rng, SCORES), m]);
            if rng.bool() {
                c.extend([pick(rng, SCORES), pick(rng, MEMBERS)]);
            }
            c
        }
        58 => vec!["ZINCRBY", k, pick(rng, SCORES), m],
        59 => vec![pick(rng, &["ZSCORE", "ZREM"]), k, m],
        60 => vec!["ZCARD", k],
        61 => {
            let mut c = vec!["ZRANGE", k, pick(rng, IDX), pick(rng, IDX)];
            if rng.bool() {
                c.push(pick(rng, &["WITHSCORES", "REV", "LIMIT"]));
            }
            c
        }
        62 => {
            let mut c = vec!["ZRANGEBYSCORE", k, pick(rng, BOUNDS), pick(rng, BOUNDS)];
            if rng.bool() {
                c.push("WITHSCORES");
            }
            if rng.bool() {
                c.extend(["LIMIT", pick(rng, IDX), pick(rng, IDX)]);
            }
            c
        }
        63 => {
            let mut c = vec!["ZREVRANGE", k, pick(rng, IDX), pick(rng, IDX)];
            if rng.bool() {
                c.push(pick(rng, &["WITHSCORES", "REV", "LIMIT", "BYSCORE"]));
            }
            c
        }
        64 => {
            let mut c = vec!["ZREVRANGEBYSCORE", k, pick(rng, BOUNDS), pick(rng, BOUNDS)];
            if rng.bool() {
                c.push(pick(rng, &["WITHSCORES", "REV", "BYLEX"]));
            }
            if rng.bool() {
                c.extend(["LIMIT", pick(rng, IDX), pick(rng, IDX)]);
            }
            c
        }
        65 | 66 => {
            // ZRANGE with BYSCORE or BYLEX, REV, LIMIT and WITHSCORES in any order.
            let by = pick(rng, &["BYSCORE", "BYLEX", "BYLEX"]);
            let ends = if by == "BYLEX" { LEX } else { BOUNDS };
            let mut c = vec!["ZRANGE", k, pick(rng, ends), pick(rng, ends), by];
            if rng.bool() {
                c.push("REV");
            }
            if rng.bool() {
                c.extend(["LIMIT", pick(rng, IDX), pick(rng, IDX)]);
            }
            if rng.usize(..4) == 0 {
                c.push("WITHSCORES");
            }
            c
        }
        67 => {
            let mut c = vec![
                pick(rng, &["ZRANGEBYLEX", "ZREVRANGEBYLEX"]),
                k,
                pick(rng, LEX),
                pick(rng, LEX),
            ];
            if rng.bool() {
                c.extend(["LIMIT", pick(rng, IDX), pick(rng, IDX)]);
            }
            c
        }
        _ => match rng.usize(..8) {
            0 => vec!["MULTI"],
            1 | 2 => vec!["EXEC"],
            3 => vec!["DISCARD"],
            4 => vec!["WATCH", k],
            5 => vec!["UNWATCH"],
            6 => vec!["FOO", k, v],
            _ => vec!["GET"],
        },
    };
    s.into_iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// A reply in comparable form: errors as their text, unordered collections sorted, TTLs
/// reduced to their sign.
fn normalize(cmd: &Command, reply: Value) -> String {
    let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
    let reply = match reply {
        Value::ServerError(e) => return format!("error: {}", redis::RedisError::from(e)),
        other => other,
    };
    match (name.as_str(), reply) {
        ("TTL" | "PTTL", Value::Int(n)) if n > 0 => "positive".into(),
        ("SMEMBERS" | "HKEYS" | "HVALS" | "KEYS", Value::Array(mut items)) => {
            items.sort_by_key(|v| format!("{v:?}"));
            format!("{items:?}")
        }
        ("HGETALL", Value::Array(items)) => {
            let mut pairs: Vec<String> = items.chunks(2).map(|p| format!("{p:?}")).collect();
            pairs.sort();
            format!("{pairs:?}")
        }
        ("EXEC", Value::Array(items)) => {
            // Unordered replies inside a transaction are not compared item by item.
            format!("exec of {} replies", items.len())
        }
        (_, v) => format!("{v:?}"),
    }
}

fn to_cmd(c: &Command) -> redis::Cmd {
    let mut cmd = redis::Cmd::new();
    for a in c {
        cmd.arg(a.as_slice());
    }
    cmd
}

struct Sides {
    real: MultiplexedConnection,
    memory: PooledConnection,
}

async fn fresh_sides(server: &RedisServer, db: u32) -> Sides {
    let client = redis::Client::open(server.url(db)).unwrap();
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(None);
    let mut real = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    let _: () = redis::cmd("FLUSHDB").query_async(&mut real).await.unwrap();
    let memory = InMemoryBackend::new().exclusive().await.unwrap();
    Sides { real, memory }
}

/// Runs `cmds`; the index and both replies of the first mismatch.
async fn first_mismatch(sides: &mut Sides, cmds: &[Command]) -> Option<(usize, String, String)> {
    for (i, c) in cmds.iter().enumerate() {
        let cmd = to_cmd(c);
        let real = sides.real.req_packed_command(&cmd).await.unwrap();
        let memory = sides.memory.req_packed_command(&cmd).await.unwrap();
        let (real, memory) = (normalize(c, real), normalize(c, memory));
        if real != memory {
            return Some((i, real, memory));
        }
    }
    None
}

fn show(c: &Command) -> String {
    c.iter()
        .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Drops chunks of the failing sequence while it still fails (bounded number of re-runs).
async fn shrink(server: &RedisServer, db: u32, mut cmds: Vec<Command>) -> Vec<Command> {
    let mut runs = 0;
    let mut chunk = cmds.len() / 2;
    while chunk >= 1 && runs < 400 {
        let mut start = 0;
        while start + 1 < cmds.len() && runs < 400 {
            let end = (start + chunk).min(cmds.len() - 1);
            let mut candidate = cmds[..start].to_vec();
            candidate.extend_from_slice(&cmds[end..]);
            runs += 1;
            let mut sides = fresh_sides(server, db).await;
            if let Some((i, _, _)) = first_mismatch(&mut sides, &candidate).await {
                candidate.truncate(i + 1);
                cmds = candidate;
            } else {
                start += chunk;
            }
        }
        chunk /= 2;
    }
    cmds
}

async fn run_seed(server: &RedisServer, db: u32, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let cmds: Vec<Command> = (0..COMMANDS_PER_SEED).map(|_| generate(&mut rng)).collect();
    let mut sides = fresh_sides(server, db).await;
    if let Some((i, real, memory)) = first_mismatch(&mut sides, &cmds).await {
        let shrunk = shrink(server, db, cmds[..=i].to_vec()).await;
        let listing: Vec<String> = shrunk.iter().map(show).collect();
        panic!(
            "seed {seed}: reply {i} differs\n  command: {}\n  redis:   {real}\n  memory:  {memory}\n\
             shortest failing sequence found ({} commands):\n    {}",
            show(&cmds[i]),
            shrunk.len(),
            listing.join("\n    ")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_replies_match_redis() {
    let server = RedisServer::start();
    let mut seeds = FIXED_SEEDS.to_vec();
    if let Some(seed) = std::env::var("DIFF_SEED").ok().and_then(|s| s.parse().ok()) {
        seeds.insert(0, seed);
    }
    for (db, seed) in seeds.into_iter().enumerate() {
        run_seed(&server, db as u32 + 1, seed).await;
    }
}
