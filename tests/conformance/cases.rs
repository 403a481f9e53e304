//! The conformance suite: every `PoolBackend` must give these replies. Each case uses its
//! own key prefix (its name) and cleans up after itself; `conformance_suite!` turns each
//! into a `#[tokio::test]` per backend.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use baseplate_redis::pool::{PoolBackend, PooledConnection};
use redis::{AsyncCommands, FromRedisValue, RedisResult, Value};

/// Generates one `#[tokio::test]` per case, each calling `$make` for its backend.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@cases $make;
            ping, echo, client_name, select_isolates_databases, dbsize_and_flushdb,
            del_unlink_exists, expire_ttl_persist, pexpire_pttl, expire_options,
            expireat_in_the_past_deletes, type_of_each_kind, keys_glob_patterns,
            scan_iterates_and_terminates, scan_match_and_type, rename_moves_value_and_ttl,
            get_and_set, set_nx_xx_get, set_expiry_options, set_syntax_errors,
            setnx_setex_psetex, mget_mset, getdel, incr_decr, incr_errors, incrbyfloat,
            append_strlen_getrange, list_push_pop_range, lpop_rpop_with_count,
            lindex_lset_lrem_ltrim, hashes, hincrby, sets, zadd_flags, zrange_by_rank,
            zrangebyscore_bounds_and_limit, zincrby_and_score_format, wrongtype_errors,
            arity_errors, not_an_integer_errors, unknown_command_error, pipeline_plain,
            pipeline_atomic, pipeline_reports_errors, multi_exec_queues_and_aborts,
            discard_drops_queue, watch_then_exec_succeeds, watch_conflict_aborts,
            message_queue_round_trip, blpop_wakes_on_push, blpop_fractional_timeout,
            blpop_timeout_errors, expiry_is_real, binary_safe_values, empty_values,
            zrev_ranges, zrange_by_lex,
            pubsub_channel_round_trip, pubsub_glob_patterns, pubsub_unsubscribe_stops_delivery,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let backend = $make;
                cases::$case(&backend).await;
            }
        )*
    };
}

fn cmd(args: &[&[u8]]) -> redis::Cmd {
    let mut c = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

async fn q<T: FromRedisValue>(c: &mut PooledConnection, args: &[&str]) -> T {
    let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    cmd(&bytes).query_async(c).await.unwrap()
}

async fn try_q(c: &mut PooledConnection, args: &[&str]) -> RedisResult<Value> {
    let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    cmd(&bytes).query_async(c).await
}

/// The error a command gets, as (code, detail).
async fn err(c: &mut PooledConnection, args: &[&str]) -> (String, String) {
    let e = try_q(c, args).await.unwrap_err();
    (
        e.code().unwrap_or("").to_string(),
        e.detail().unwrap_or("").to_string(),
    )
}

fn e(code: &str, detail: &str) -> (String, String) {
    (code.to_string(), detail.to_string())
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

async fn cleanup(b: &dyn PoolBackend, prefix: &str) {
    let mut c = b.shared().await.unwrap();
    let keys: Vec<Vec<u8>> = c.keys(format!("{prefix}*")).await.unwrap();
    for k in keys {
        let _: i64 = c.del(k).await.unwrap();
    }
}

pub async fn ping(b: &dyn PoolBackend) {
    let mut c = b.shared().await.unwrap();
    assert_eq!(
        q::<Value>(&mut c, &["PING"]).await,
        Value::SimpleString("PONG".into())
    );
    assert_eq!(q::<Value>(&mut c, &["PING", "hi"]).await, bulk("hi"));
    assert_eq!(
        err(&mut c, &["PING", "a", "b"]).await,
        e("ERR", "wrong number of arguments for 'ping' command")
    );
}

pub async fn echo(b: &dyn PoolBackend) {
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<Value>(&mut c, &["ECHO", "x y"]).await, bulk("x y"));
}

pub async fn client_name(b: &dyn PoolBackend) {
    let mut c = b.exclusive().await.unwrap();
    assert_eq!(q::<Value>(&mut c, &["CLIENT", "GETNAME"]).await, Value::Nil);
    assert_eq!(
        q::<Value>(&mut c, &["CLIENT", "SETNAME", "worker-1"]).await,
        Value::Okay
    );
    assert_eq!(
        q::<Value>(&mut c, &["CLIENT", "GETNAME"]).await,
        bulk("worker-1")
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "SETNAME", "a b"]).await,
        e(
            "ERR",
            "Client names cannot contain spaces, newlines or special characters."
        )
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "SETNAME"]).await,
        e(
            "ERR",
            "wrong number of arguments for 'client|setname' command"
        )
    );
}

pub async fn select_isolates_databases(b: &dyn PoolBackend) {
    let k = "select_isolates_databases:k";
    let mut c = b.exclusive().await.unwrap();
    assert_eq!(q::<Value>(&mut c, &["SELECT", "7"]).await, Value::Okay);
    let _: () = c.set(k, "in-7").await.unwrap();
    assert_eq!(
        q::<Value>(&mut c, &["SELECT", &b.database().to_string()]).await,
        Value::Okay
    );
    assert_eq!(q::<Option<String>>(&mut c, &["GET", k]).await, None);
    let _: () = q(&mut c, &["SELECT", "7"]).await;
    assert_eq!(q::<String>(&mut c, &["GET", k]).await, "in-7");
    let _: i64 = q(&mut c, &["DEL", k]).await;
    assert_eq!(
        err(&mut c, &["SELECT", "16"]).await,
        e("ERR", "DB index is out of range")
    );
    assert_eq!(
        err(&mut c, &["SELECT", "x"]).await,
        e("ERR", "value is not an integer or out of range")
    );
}

pub async fn dbsize_and_flushdb(b: &dyn PoolBackend) {
    // Database 9 is this case's alone.
    let mut c = b.exclusive().await.unwrap();
    let _: () = q(&mut c, &["SELECT", "9"]).await;
    let _: () = q(&mut c, &["FLUSHDB"]).await;
    let _: () = q(&mut c, &["MSET", "a", "1", "b", "2"]).await;
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]).await, 2);
    assert_eq!(
        err(&mut c, &["FLUSHDB", "now"]).await,
        e("ERR", "syntax error")
    );
    assert_eq!(q::<Value>(&mut c, &["FLUSHDB", "SYNC"]).await, Value::Okay);
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]).await, 0);
}

pub async fn del_unlink_exists(b: &dyn PoolBackend) {
    let p = "del_unlink_exists:";
    let mut c = b.shared().await.unwrap();
    let _: () = c
        .mset(&[
            (format!("{p}a"), 1),
            (format!("{p}b"), 2),
            (format!("{p}c"), 3),
        ])
        .await
        .unwrap();
    let (a, bk, ck) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", &a, &a, &bk, "nope"]).await, 3);
    assert_eq!(q::<i64>(&mut c, &["DEL", &a, &a, "nope"]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["UNLINK", &bk, &ck]).await, 2);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", &a, &bk, &ck]).await, 0);
}

pub async fn expire_ttl_persist(b: &dyn PoolBackend) {
    let k = "expire_ttl_persist:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["TTL", k]).await, -2);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", k, "10"]).await, 0);
    let _: () = c.set(k, "v").await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["TTL", k]).await, -1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", k, "100"]).await, 1);
    let ttl: i64 = q(&mut c, &["TTL", k]).await;
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(q::<i64>(&mut c, &["PERSIST", k]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["PERSIST", k]).await, 0);
    assert_eq!(q::<i64>(&mut c, &["TTL", k]).await, -1);
    cleanup(b, "expire_ttl_persist:").await;
}

pub async fn pexpire_pttl(b: &dyn PoolBackend) {
    let k = "pexpire_pttl:k";
    let mut c = b.shared().await.unwrap();
    let _: () = c.set(k, "v").await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["PEXPIRE", k, "50000"]).await, 1);
    let pttl: i64 = q(&mut c, &["PTTL", k]).await;
    assert!((49_000..=50_000).contains(&pttl), "{pttl}");
    assert_eq!(
        err(&mut c, &["PEXPIRE", k, "soon"]).await,
        e("ERR", "value is not an integer or out of range")
    );
    cleanup(b, "pexpire_pttl:").await;
}

pub async fn expire_options(b: &dyn PoolBackend) {
    let k = "expire_options:k";
    let mut c = b.shared().await.unwrap();
    let _: () = c.set(k, "v").await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", k, "100", "XX"]).await, 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", k, "100", "NX"]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", k, "200", "NX"]).await, 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", k, "50", "GT"]).await, 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", k, "50", "LT"]).await, 1);
    assert_eq!(
        err(&mut c, &["EXPIRE", k, "5", "NX", "XX"]).await,
        e(
            "ERR",
            "NX and XX, GT or LT options at the same time are not compatible"
        )
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", k, "5", "FOO"]).await,
        e("ERR", "Unsupported option FOO")
    );
    cleanup(b, "expire_options:").await;
}

pub async fn expireat_in_the_past_deletes(b: &dyn PoolBackend) {
    let k = "expireat_in_the_past_deletes:k";
    let mut c = b.shared().await.unwrap();
    let _: () = c.set(k, "v").await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["EXPIREAT", k, "1"]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", k]).await, 0);
    let _: () = c.set(k, "v").await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", k, "0"]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", k]).await, 0);
}

pub async fn type_of_each_kind(b: &dyn PoolBackend) {
    let p = "type_of_each_kind:";
    let mut c = b.shared().await.unwrap();
    let _: () = q(&mut c, &["SET", &format!("{p}s"), "v"]).await;
    let _: i64 = q(&mut c, &["RPUSH", &format!("{p}l"), "v"]).await;
    let _: i64 = q(&mut c, &["HSET", &format!("{p}h"), "f", "v"]).await;
    let _: i64 = q(&mut c, &["SADD", &format!("{p}e"), "v"]).await;
    let _: i64 = q(&mut c, &["ZADD", &format!("{p}z"), "1", "v"]).await;
    for (suffix, t) in [
        ("s", "string"),
        ("l", "list"),
        ("h", "hash"),
        ("e", "set"),
        ("z", "zset"),
        ("none", "none"),
    ] {
        assert_eq!(
            q::<Value>(&mut c, &["TYPE", &format!("{p}{suffix}")]).await,
            Value::SimpleString(t.into())
        );
    }
    cleanup(b, p).await;
}

pub async fn keys_glob_patterns(b: &dyn PoolBackend) {
    let p = "keys_glob_patterns:";
    let mut c = b.shared().await.unwrap();
    for k in ["hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo"] {
        let _: () = c.set(format!("{p}{k}"), 1).await.unwrap();
    }
    async fn keys(c: &mut PooledConnection, p: &str, pat: &str) -> Vec<String> {
        let mut v: Vec<String> = c.keys(format!("{p}{pat}")).await.unwrap();
        v.iter_mut().for_each(|k| *k = k[p.len()..].to_string());
        v.sort();
        v
    }
    assert_eq!(
        keys(&mut c, p, "h?llo").await,
        ["h*llo", "hallo", "hello", "hxllo"]
    );
    assert_eq!(keys(&mut c, p, "h*llo").await.len(), 6);
    assert_eq!(keys(&mut c, p, "h[ae]llo").await, ["hallo", "hello"]);
    assert_eq!(
        keys(&mut c, p, "h[^e]llo").await,
        ["h*llo", "hallo", "hxllo"]
    );
    assert_eq!(keys(&mut c, p, "h[a-f]llo").await, ["hallo", "hello"]);
    assert_eq!(keys(&mut c, p, "h\\*llo").await, ["h*llo"]);
    cleanup(b, p).await;
}

pub async fn scan_iterates_and_terminates(b: &dyn PoolBackend) {
    let p = "scan_iterates_and_terminates:";
    let mut c = b.shared().await.unwrap();
    for i in 0..57 {
        let _: () = c.set(format!("{p}{i}"), i).await.unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0u64;
    for round in 0.. {
        assert!(round < 10_000, "SCAN did not terminate");
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{p}*"))
            .arg("COUNT")
            .arg(7)
            .query_async(&mut c)
            .await
            .unwrap();
        seen.extend(keys);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 57);
    // The redis-rs iterator drives the cursor too.
    let mut it: redis::AsyncIter<String> = c.scan_match(format!("{p}1*")).await.unwrap();
    let mut ones = std::collections::HashSet::new();
    while let Some(k) = it.next_item().await {
        ones.insert(k.unwrap());
    }
    drop(it);
    assert_eq!(ones.len(), 11);
    assert_eq!(
        err(&mut c, &["SCAN", "x"]).await,
        e("ERR", "invalid cursor")
    );
    assert_eq!(
        err(&mut c, &["SCAN", "0", "COUNT", "0"]).await,
        e("ERR", "syntax error")
    );
    cleanup(b, p).await;
}

pub async fn scan_match_and_type(b: &dyn PoolBackend) {
    let p = "scan_match_and_type:";
    let mut c = b.shared().await.unwrap();
    let _: () = c.set(format!("{p}s"), 1).await.unwrap();
    let _: i64 = c.rpush(format!("{p}l"), 1).await.unwrap();
    let mut found = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{p}*"))
            .arg("TYPE")
            .arg("list")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .unwrap();
        found.extend(keys);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(found, [format!("{p}l")]);
    cleanup(b, p).await;
}

pub async fn rename_moves_value_and_ttl(b: &dyn PoolBackend) {
    let (a, z) = (
        "rename_moves_value_and_ttl:a",
        "rename_moves_value_and_ttl:z",
    );
    let mut c = b.shared().await.unwrap();
    assert_eq!(
        err(&mut c, &["RENAME", a, z]).await,
        e("ERR", "no such key")
    );
    let _: () = q(&mut c, &["SET", a, "v", "EX", "100"]).await;
    assert_eq!(q::<Value>(&mut c, &["RENAME", a, z]).await, Value::Okay);
    assert_eq!(q::<Option<String>>(&mut c, &["GET", a]).await, None);
    assert_eq!(q::<String>(&mut c, &["GET", z]).await, "v");
    assert!(q::<i64>(&mut c, &["TTL", z]).await > 90);
    cleanup(b, "rename_moves_value_and_ttl:").await;
}

pub async fn get_and_set(b: &dyn PoolBackend) {
    let k = "get_and_set:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<Value>(&mut c, &["GET", k]).await, Value::Nil);
    assert_eq!(q::<Value>(&mut c, &["SET", k, "v1"]).await, Value::Okay);
    assert_eq!(q::<Value>(&mut c, &["GET", k]).await, bulk("v1"));
    let _: () = c.set(k, 42).await.unwrap();
    assert_eq!(c.get::<_, i64>(k).await.unwrap(), 42);
    cleanup(b, "get_and_set:").await;
}

pub async fn set_nx_xx_get(b: &dyn PoolBackend) {
    let k = "set_nx_xx_get:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<Value>(&mut c, &["SET", k, "a", "XX"]).await, Value::Nil);
    assert_eq!(
        q::<Value>(&mut c, &["SET", k, "a", "NX"]).await,
        Value::Okay
    );
    assert_eq!(q::<Value>(&mut c, &["SET", k, "b", "NX"]).await, Value::Nil);
    assert_eq!(
        q::<Value>(&mut c, &["SET", k, "b", "XX", "GET"]).await,
        bulk("a")
    );
    assert_eq!(
        q::<Value>(&mut c, &["SET", k, "c", "NX", "GET"]).await,
        bulk("b")
    );
    assert_eq!(q::<Value>(&mut c, &["GET", k]).await, bulk("b"));
    assert_eq!(
        err(&mut c, &["SET", k, "v", "NX", "XX"]).await,
        e("ERR", "syntax error")
    );
    cleanup(b, "set_nx_xx_get:").await;
}

pub async fn set_expiry_options(b: &dyn PoolBackend) {
    let k = "set_expiry_options:k";
    let mut c = b.shared().await.unwrap();
    let _: () = q(&mut c, &["SET", k, "v", "EX", "100"]).await;
    assert!(q::<i64>(&mut c, &["TTL", k]).await > 90);
    let _: () = q(&mut c, &["SET", k, "w", "KEEPTTL"]).await;
    assert!(q::<i64>(&mut c, &["TTL", k]).await > 90);
    let _: () = q(&mut c, &["SET", k, "w"]).await;
    assert_eq!(q::<i64>(&mut c, &["TTL", k]).await, -1);
    let _: () = q(&mut c, &["SET", k, "v", "PX", "100000"]).await;
    assert!(q::<i64>(&mut c, &["PTTL", k]).await > 90_000);
    let at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1000)
        .to_string();
    let _: () = q(&mut c, &["SET", k, "v", "EXAT", &at]).await;
    assert!(q::<i64>(&mut c, &["TTL", k]).await > 990);
    let _: () = q(&mut c, &["SET", k, "v", "PXAT", "1"]).await;
    assert_eq!(q::<Value>(&mut c, &["GET", k]).await, Value::Nil);
    cleanup(b, "set_expiry_options:").await;
}

pub async fn set_syntax_errors(b: &dyn PoolBackend) {
    let k = "set_syntax_errors:k";
    let mut c = b.shared().await.unwrap();
    for bad in [
        &["EX", "1", "PX", "1"][..],
        &["EX", "1", "KEEPTTL"],
        &["EX"],
        &["FOO"],
    ] {
        let mut args = vec!["SET", k, "v"];
        args.extend_from_slice(bad);
        assert_eq!(
            err(&mut c, &args).await,
            e("ERR", "syntax error"),
            "{bad:?}"
        );
    }
    assert_eq!(
        err(&mut c, &["SET", k, "v", "EX", "0"]).await,
        e("ERR", "invalid expire time in 'set' command")
    );
    assert_eq!(
        err(&mut c, &["SET", k, "v", "EX", "soon"]).await,
        e("ERR", "value is not an integer or out of range")
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", k]).await, 0);
}

pub async fn setnx_setex_psetex(b: &dyn PoolBackend) {
    let k = "setnx_setex_psetex:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["SETNX", k, "a"]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["SETNX", k, "b"]).await, 0);
    assert_eq!(
        q::<Value>(&mut c, &["SETEX", k, "100", "c"]).await,
        Value::Okay
    );
    assert!(q::<i64>(&mut c, &["TTL", k]).await > 90);
    assert_eq!(
        q::<Value>(&mut c, &["PSETEX", k, "100000", "d"]).await,
        Value::Okay
    );
    assert_eq!(q::<String>(&mut c, &["GET", k]).await, "d");
    assert_eq!(
        err(&mut c, &["SETEX", k, "-1", "c"]).await,
        e("ERR", "invalid expire time in 'setex' command")
    );
    cleanup(b, "setnx_setex_psetex:").await;
}

pub async fn mget_mset(b: &dyn PoolBackend) {
    let p = "mget_mset:";
    let (a, l) = (format!("{p}a"), format!("{p}l"));
    let mut c = b.shared().await.unwrap();
    assert_eq!(
        q::<Value>(&mut c, &["MSET", &a, "1", &format!("{p}b"), "2"]).await,
        Value::Okay
    );
    let _: i64 = q(&mut c, &["RPUSH", &l, "x"]).await;
    assert_eq!(
        q::<Value>(&mut c, &["MGET", &a, &l, "nope", &format!("{p}b")]).await,
        Value::Array(vec![bulk("1"), Value::Nil, Value::Nil, bulk("2")])
    );
    assert_eq!(
        err(&mut c, &["MSET", &a, "1", "b"]).await,
        e("ERR", "wrong number of arguments for 'mset' command")
    );
    cleanup(b, p).await;
}

pub async fn getdel(b: &dyn PoolBackend) {
    let k = "getdel:k";
    let mut c = b.shared().await.unwrap();
    let _: () = c.set(k, "v").await.unwrap();
    assert_eq!(q::<Value>(&mut c, &["GETDEL", k]).await, bulk("v"));
    assert_eq!(q::<Value>(&mut c, &["GETDEL", k]).await, Value::Nil);
}

pub async fn incr_decr(b: &dyn PoolBackend) {
    let k = "incr_decr:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["INCR", k]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["INCRBY", k, "10"]).await, 11);
    assert_eq!(q::<i64>(&mut c, &["DECR", k]).await, 10);
    assert_eq!(q::<i64>(&mut c, &["DECRBY", k, "-5"]).await, 15);
    let _: () = q(&mut c, &["SET", k, "9223372036854775807"]).await;
    assert_eq!(
        err(&mut c, &["INCR", k]).await,
        e("ERR", "increment or decrement would overflow")
    );
    cleanup(b, "incr_decr:").await;
}

pub async fn incr_errors(b: &dyn PoolBackend) {
    let k = "incr_errors:k";
    let mut c = b.shared().await.unwrap();
    let _: () = c.set(k, "1.5").await.unwrap();
    assert_eq!(
        err(&mut c, &["INCR", k]).await,
        e("ERR", "value is not an integer or out of range")
    );
    assert_eq!(
        err(&mut c, &["INCRBY", "x", "1x"]).await,
        e("ERR", "value is not an integer or out of range")
    );
    assert_eq!(
        err(&mut c, &["DECRBY", k, "-9223372036854775808"]).await,
        e("ERR", "decrement would overflow")
    );
    cleanup(b, "incr_errors:").await;
}

pub async fn incrbyfloat(b: &dyn PoolBackend) {
    let k = "incrbyfloat:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(
        q::<Value>(&mut c, &["INCRBYFLOAT", k, "10.5"]).await,
        bulk("10.5")
    );
    assert_eq!(
        q::<Value>(&mut c, &["INCRBYFLOAT", k, "0.1"]).await,
        bulk("10.6")
    );
    assert_eq!(
        q::<Value>(&mut c, &["INCRBYFLOAT", k, "-0.6"]).await,
        bulk("10")
    );
    assert_eq!(
        q::<Value>(&mut c, &["INCRBYFLOAT", k, "5.0e3"]).await,
        bulk("5010")
    );
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", k, "x"]).await,
        e("ERR", "value is not a valid float")
    );
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", k, "inf"]).await,
        e("ERR", "increment would produce NaN or Infinity")
    );
    cleanup(b, "incrbyfloat:").await;
}

pub async fn append_strlen_getrange(b: &dyn PoolBackend) {
    let k = "append_strlen_getrange:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["APPEND", k, "Hello"]).await, 5);
    assert_eq!(q::<i64>(&mut c, &["APPEND", k, " World"]).await, 11);
    assert_eq!(q::<i64>(&mut c, &["STRLEN", k]).await, 11);
    assert_eq!(q::<i64>(&mut c, &["STRLEN", "nope"]).await, 0);
    assert_eq!(
        q::<String>(&mut c, &["GETRANGE", k, "0", "4"]).await,
        "Hello"
    );
    assert_eq!(
        q::<String>(&mut c, &["GETRANGE", k, "-5", "-1"]).await,
        "World"
    );
    assert_eq!(q::<String>(&mut c, &["GETRANGE", k, "5", "2"]).await, "");
    assert_eq!(
        q::<String>(&mut c, &["GETRANGE", k, "-100", "100"]).await,
        "Hello World"
    );
    cleanup(b, "append_strlen_getrange:").await;
}

pub async fn list_push_pop_range(b: &dyn PoolBackend) {
    let k = "list_push_pop_range:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["RPUSH", k, "b", "c"]).await, 2);
    assert_eq!(q::<i64>(&mut c, &["LPUSH", k, "a", "z"]).await, 4);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", k, "0", "-1"]).await,
        ["z", "a", "b", "c"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", k, "-2", "100"]).await,
        ["b", "c"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", k, "3", "1"]).await,
        Vec::<String>::new()
    );
    assert_eq!(q::<i64>(&mut c, &["LLEN", k]).await, 4);
    assert_eq!(q::<Value>(&mut c, &["LPOP", k]).await, bulk("z"));
    assert_eq!(q::<Value>(&mut c, &["RPOP", k]).await, bulk("c"));
    assert_eq!(q::<Value>(&mut c, &["RPOP", "nope"]).await, Value::Nil);
    cleanup(b, "list_push_pop_range:").await;
}

pub async fn lpop_rpop_with_count(b: &dyn PoolBackend) {
    let k = "lpop_rpop_with_count:k";
    let mut c = b.shared().await.unwrap();
    let _: i64 = q(&mut c, &["RPUSH", k, "a", "b", "c"]).await;
    assert_eq!(
        q::<Value>(&mut c, &["LPOP", k, "0"]).await,
        Value::Array(vec![])
    );
    assert_eq!(
        q::<Value>(&mut c, &["RPOP", k, "2"]).await,
        Value::Array(vec![bulk("c"), bulk("b")])
    );
    assert_eq!(
        q::<Value>(&mut c, &["LPOP", k, "5"]).await,
        Value::Array(vec![bulk("a")])
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", k]).await, 0);
    assert_eq!(q::<Value>(&mut c, &["LPOP", k, "2"]).await, Value::Nil);
    assert_eq!(
        err(&mut c, &["LPOP", k, "-1"]).await,
        e("ERR", "value is out of range, must be positive")
    );
}

pub async fn lindex_lset_lrem_ltrim(b: &dyn PoolBackend) {
    let k = "lindex_lset_lrem_ltrim:k";
    let mut c = b.shared().await.unwrap();
    let _: i64 = q(&mut c, &["RPUSH", k, "a", "x", "b", "x", "c", "x"]).await;
    assert_eq!(q::<Value>(&mut c, &["LINDEX", k, "-1"]).await, bulk("x"));
    assert_eq!(q::<Value>(&mut c, &["LINDEX", k, "99"]).await, Value::Nil);
    assert_eq!(
        q::<Value>(&mut c, &["LSET", k, "0", "A"]).await,
        Value::Okay
    );
    assert_eq!(
        err(&mut c, &["LSET", k, "99", "A"]).await,
        e("ERR", "index out of range")
    );
    assert_eq!(
        err(&mut c, &["LSET", "nope", "0", "A"]).await,
        e("ERR", "no such key")
    );
    assert_eq!(q::<i64>(&mut c, &["LREM", k, "-1", "x"]).await, 1);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", k, "0", "-1"]).await,
        ["A", "x", "b", "x", "c"]
    );
    assert_eq!(q::<i64>(&mut c, &["LREM", k, "0", "x"]).await, 2);
    assert_eq!(
        q::<Value>(&mut c, &["LTRIM", k, "1", "-1"]).await,
        Value::Okay
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", k, "0", "-1"]).await,
        ["b", "c"]
    );
    assert_eq!(
        q::<Value>(&mut c, &["LTRIM", k, "5", "10"]).await,
        Value::Okay
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", k]).await, 0);
}

pub async fn hashes(b: &dyn PoolBackend) {
    let k = "hashes:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["HSET", k, "a", "1", "b", "2"]).await, 2);
    assert_eq!(q::<i64>(&mut c, &["HSET", k, "a", "3", "c", "4"]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["HSETNX", k, "a", "9"]).await, 0);
    assert_eq!(q::<Value>(&mut c, &["HGET", k, "a"]).await, bulk("3"));
    assert_eq!(q::<Value>(&mut c, &["HGET", k, "zz"]).await, Value::Nil);
    assert_eq!(
        q::<Value>(&mut c, &["HMGET", k, "a", "zz"]).await,
        Value::Array(vec![bulk("3"), Value::Nil])
    );
    let all: std::collections::BTreeMap<String, String> = q(&mut c, &["HGETALL", k]).await;
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        [
            ("a".into(), "3".into()),
            ("b".into(), "2".into()),
            ("c".into(), "4".into())
        ]
    );
    let mut keys: Vec<String> = q(&mut c, &["HKEYS", k]).await;
    keys.sort();
    assert_eq!(keys, ["a", "b", "c"]);
    let mut vals: Vec<String> = q(&mut c, &["HVALS", k]).await;
    vals.sort();
    assert_eq!(vals, ["2", "3", "4"]);
    assert_eq!(q::<i64>(&mut c, &["HLEN", k]).await, 3);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", k, "b"]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["HDEL", k, "a", "b", "zz"]).await, 2);
    assert_eq!(q::<i64>(&mut c, &["HDEL", k, "c"]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", k]).await, 0);
    assert_eq!(
        q::<Value>(&mut c, &["HGETALL", k]).await,
        Value::Array(vec![])
    );
}

pub async fn hincrby(b: &dyn PoolBackend) {
    let k = "hincrby:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", k, "n", "5"]).await, 5);
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", k, "n", "-7"]).await, -2);
    let _: i64 = q(&mut c, &["HSET", k, "s", "x"]).await;
    assert_eq!(
        err(&mut c, &["HINCRBY", k, "s", "1"]).await,
        e("ERR", "hash value is not an integer")
    );
    assert_eq!(
        err(&mut c, &["HINCRBY", k, "n", "x"]).await,
        e("ERR", "value is not an integer or out of range")
    );
    cleanup(b, "hincrby:").await;
}

pub async fn sets(b: &dyn PoolBackend) {
    let k = "sets:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["SADD", k, "a", "b", "a"]).await, 2);
    assert_eq!(q::<i64>(&mut c, &["SADD", k, "b", "c"]).await, 1);
    let mut m: Vec<String> = q(&mut c, &["SMEMBERS", k]).await;
    m.sort();
    assert_eq!(m, ["a", "b", "c"]);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", k, "a"]).await, 1);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", k, "z"]).await, 0);
    assert_eq!(q::<i64>(&mut c, &["SCARD", k]).await, 3);
    assert_eq!(q::<i64>(&mut c, &["SREM", k, "a", "b", "c", "z"]).await, 3);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", k]).await, 0);
    assert_eq!(
        q::<Value>(&mut c, &["SMEMBERS", k]).await,
        Value::Array(vec![])
    );
}

pub async fn zadd_flags(b: &dyn PoolBackend) {
    let k = "zadd_flags:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(q::<i64>(&mut c, &["ZADD", k, "1", "a", "2", "b"]).await, 2);
    assert_eq!(
        q::<i64>(&mut c, &["ZADD", k, "NX", "5", "a", "3", "c"]).await,
        1
    );
    assert_eq!(
        q::<i64>(&mut c, &["ZADD", k, "XX", "CH", "5", "a", "9", "new"]).await,
        1
    );
    assert_eq!(
        q::<i64>(&mut c, &["ZADD", k, "GT", "CH", "4", "a"]).await,
        0
    );
    assert_eq!(
        q::<i64>(&mut c, &["ZADD", k, "LT", "CH", "4", "a"]).await,
        1
    );
    assert_eq!(
        q::<Value>(&mut c, &["ZADD", k, "INCR", "1.5", "a"]).await,
        bulk("5.5")
    );
    assert_eq!(
        q::<Value>(&mut c, &["ZADD", k, "XX", "INCR", "1", "nope"]).await,
        Value::Nil
    );
    assert_eq!(q::<i64>(&mut c, &["ZCARD", k]).await, 3);
    assert_eq!(
        err(&mut c, &["ZADD", k, "NX", "XX", "1", "a"]).await,
        e(
            "ERR",
            "XX and NX options at the same time are not compatible"
        )
    );
    assert_eq!(
        err(&mut c, &["ZADD", k, "GT", "LT", "1", "a"]).await,
        e(
            "ERR",
            "GT, LT, and/or NX options at the same time are not compatible"
        )
    );
    assert_eq!(
        err(&mut c, &["ZADD", k, "INCR", "1", "a", "2", "b"]).await,
        e(
            "ERR",
            "INCR option supports a single increment-element pair"
        )
    );
    assert_eq!(
        err(&mut c, &["ZADD", k, "x", "a"]).await,
        e("ERR", "value is not a valid float")
    );
    assert_eq!(
        err(&mut c, &["ZADD", k, "1", "a", "2"]).await,
        e("ERR", "syntax error")
    );
    assert_eq!(q::<i64>(&mut c, &["ZREM", k, "a", "b", "zz"]).await, 2);
    cleanup(b, "zadd_flags:").await;
}

pub async fn zrange_by_rank(b: &dyn PoolBackend) {
    let k = "zrange_by_rank:k";
    let mut c = b.shared().await.unwrap();
    let _: i64 = q(&mut c, &["ZADD", k, "1", "a", "2", "b", "2", "c", "3", "d"]).await;
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", k, "0", "-1"]).await,
        ["a", "b", "c", "d"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", k, "1", "2", "WITHSCORES"]).await,
        ["b", "2", "c", "2"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", k, "0", "1", "REV"]).await,
        ["d", "c"]
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &["ZRANGE", k, "(3", "1", "BYSCORE", "REV", "LIMIT", "1", "5"]
        )
        .await,
        ["b", "a"]
    );
    assert_eq!(
        err(&mut c, &["ZRANGE", k, "0", "-1", "LIMIT", "0", "1"]).await,
        e(
            "ERR",
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(
        q::<Value>(&mut c, &["ZRANGE", "nope", "0", "-1"]).await,
        Value::Array(vec![])
    );
    cleanup(b, "zrange_by_rank:").await;
}

pub async fn zrev_ranges(b: &dyn PoolBackend) {
    let k = "zrev_ranges:k";
    let mut c = b.shared().await.unwrap();
    let _: i64 = q(&mut c, &["ZADD", k, "1", "a", "2", "b", "2", "c", "3", "d"]).await;
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZREVRANGE", k, "0", "-1"]).await,
        ["d", "c", "b", "a"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZREVRANGE", k, "1", "2", "WITHSCORES"]).await,
        ["c", "2", "b", "2"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZREVRANGEBYSCORE", k, "+inf", "(1"]).await,
        ["d", "c", "b"]
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &[
                "ZREVRANGEBYSCORE",
                k,
                "3",
                "1",
                "WITHSCORES",
                "LIMIT",
                "1",
                "2"
            ]
        )
        .await,
        ["c", "2", "b", "2"]
    );
    assert_eq!(
        err(&mut c, &["ZREVRANGE", k, "0", "-1", "REV"]).await,
        e("ERR", "syntax error")
    );
    assert_eq!(
        err(&mut c, &["ZREVRANGEBYSCORE", k, "x", "1"]).await,
        e("ERR", "min or max is not a float")
    );
    cleanup(b, "zrev_ranges:").await;
}

pub async fn zrange_by_lex(b: &dyn PoolBackend) {
    let k = "zrange_by_lex:k";
    let mut c = b.shared().await.unwrap();
    let _: i64 = q(
        &mut c,
        &["ZADD", k, "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"],
    )
    .await;
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGEBYLEX", k, "-", "+"]).await,
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGEBYLEX", k, "(b", "[d"]).await,
        ["c", "d"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZREVRANGEBYLEX", k, "[d", "-", "LIMIT", "1", "2"]).await,
        ["c", "b"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", k, "[e", "(b", "BYLEX", "REV"]).await,
        ["e", "d", "c"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", k, "[b", "[a", "BYLEX"]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        err(&mut c, &["ZRANGEBYLEX", k, "a", "+"]).await,
        e("ERR", "min or max not valid string range item")
    );
    assert_eq!(
        err(&mut c, &["ZRANGE", k, "-", "+", "BYLEX", "WITHSCORES"]).await,
        e(
            "ERR",
            "syntax error, WITHSCORES not supported in combination with BYLEX"
        )
    );
    cleanup(b, "zrange_by_lex:").await;
}

pub async fn zrangebyscore_bounds_and_limit(b: &dyn PoolBackend) {
    let k = "zrangebyscore_bounds_and_limit:k";
    let mut c = b.shared().await.unwrap();
    let _: i64 = q(
        &mut c,
        &[
            "ZADD", k, "-inf", "lo", "1", "a", "2", "b", "3", "c", "+inf", "hi",
        ],
    )
    .await;
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGEBYSCORE", k, "-inf", "+inf"]).await,
        ["lo", "a", "b", "c", "hi"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGEBYSCORE", k, "(1", "3"]).await,
        ["b", "c"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGEBYSCORE", k, "(1", "(3"]).await,
        ["b"]
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &[
                "ZRANGEBYSCORE",
                k,
                "1",
                "3",
                "WITHSCORES",
                "LIMIT",
                "1",
                "1"
            ]
        )
        .await,
        ["b", "2"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGEBYSCORE", k, "-inf", "0", "WITHSCORES"]).await,
        ["lo", "-inf"]
    );
    assert_eq!(
        err(&mut c, &["ZRANGEBYSCORE", k, "x", "3"]).await,
        e("ERR", "min or max is not a float")
    );
    assert_eq!(
        err(&mut c, &["ZRANGEBYSCORE", k, "1", "3", "LIMIT", "1"]).await,
        e("ERR", "syntax error")
    );
    cleanup(b, "zrangebyscore_bounds_and_limit:").await;
}

pub async fn zincrby_and_score_format(b: &dyn PoolBackend) {
    let k = "zincrby_and_score_format:k";
    let mut c = b.shared().await.unwrap();
    assert_eq!(
        q::<Value>(&mut c, &["ZINCRBY", k, "0.1", "m"]).await,
        bulk("0.10000000000000001")
    );
    assert_eq!(
        q::<Value>(&mut c, &["ZINCRBY", k, "0.2", "m"]).await,
        bulk("0.30000000000000004")
    );
    let _: i64 = q(&mut c, &["ZADD", k, "1e20", "big", "1.5", "x", "3", "int"]).await;
    assert_eq!(
        q::<Value>(&mut c, &["ZSCORE", k, "big"]).await,
        bulk("1e+20")
    );
    assert_eq!(q::<Value>(&mut c, &["ZSCORE", k, "x"]).await, bulk("1.5"));
    assert_eq!(q::<Value>(&mut c, &["ZSCORE", k, "int"]).await, bulk("3"));
    assert_eq!(q::<Value>(&mut c, &["ZSCORE", k, "nope"]).await, Value::Nil);
    let _: Value = q(&mut c, &["ZADD", k, "inf", "m"]).await;
    assert_eq!(
        err(&mut c, &["ZINCRBY", k, "-inf", "m"]).await,
        e("ERR", "resulting score is not a number (NaN)")
    );
    cleanup(b, "zincrby_and_score_format:").await;
}

const WRONGTYPE: &str = "Operation against a key holding the wrong kind of value";

pub async fn wrongtype_errors(b: &dyn PoolBackend) {
    let (s, l) = ("wrongtype_errors:s", "wrongtype_errors:l");
    let mut c = b.shared().await.unwrap();
    let _: () = c.set(s, "v").await.unwrap();
    let _: i64 = c.rpush(l, "v").await.unwrap();
    for args in [
        &["LPUSH", s, "x"][..],
        &["GET", l],
        &["HGET", s, "f"],
        &["SADD", s, "m"],
        &["ZADD", s, "1", "m"],
        &["INCR", l],
        &["LRANGE", s, "0", "1"],
        &["SMEMBERS", l],
        &["ZSCORE", l, "m"],
        &["APPEND", l, "x"],
        &["SET", l, "v", "GET"],
        &["BLPOP", s, "1"],
    ] {
        let got = err(&mut c, args).await;
        assert_eq!(got, e("WRONGTYPE", WRONGTYPE), "{args:?}");
    }
    let raw = try_q(&mut c, &["GET", l]).await.unwrap_err();
    assert_eq!(raw.kind(), redis::ErrorKind::Extension);
    cleanup(b, "wrongtype_errors:").await;
}

pub async fn arity_errors(b: &dyn PoolBackend) {
    let mut c = b.shared().await.unwrap();
    for (args, name) in [
        (&["GET"][..], "get"),
        (&["SET", "k"], "set"),
        (&["HSET", "k", "f"], "hset"),
        (&["ZADD", "k", "1"], "zadd"),
        (&["LPOP", "k", "1", "2"], "lpop"),
        (&["TTL"], "ttl"),
        (&["BLPOP", "k"], "blpop"),
        (&["HSET", "k", "f", "v", "g"], "hset"),
    ] {
        let got = err(&mut c, args).await;
        assert_eq!(
            got,
            e(
                "ERR",
                &format!("wrong number of arguments for '{name}' command")
            ),
            "{args:?}"
        );
    }
    assert_eq!(
        err(&mut c, &["EXEC", "x"]).await,
        e(
            "EXECABORT",
            "Transaction discarded because of: wrong number of arguments for 'exec' command"
        )
    );
    let raw = try_q(&mut c, &["GET"]).await.unwrap_err();
    assert_eq!(
        raw.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError)
    );
    assert_eq!(
        raw.to_string(),
        "ResponseError: wrong number of arguments for 'get' command"
    );
}

pub async fn not_an_integer_errors(b: &dyn PoolBackend) {
    let mut c = b.shared().await.unwrap();
    for args in [
        &["INCRBY", "k", "x"][..],
        &["EXPIRE", "k", "1.5"],
        &["LRANGE", "k", "a", "1"],
        &["SELECT", "01x"],
        &["GETRANGE", "k", "0", "z"],
    ] {
        assert_eq!(
            err(&mut c, args).await,
            e("ERR", "value is not an integer or out of range"),
            "{args:?}"
        );
    }
}

pub async fn unknown_command_error(b: &dyn PoolBackend) {
    let mut c = b.shared().await.unwrap();
    assert_eq!(
        err(&mut c, &["FOO", "a", "b"]).await,
        e(
            "ERR",
            "unknown command 'FOO', with args beginning with: 'a' 'b' "
        )
    );
    assert_eq!(
        err(&mut c, &["nosuch"]).await,
        e(
            "ERR",
            "unknown command 'nosuch', with args beginning with: "
        )
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "NOPE"]).await,
        e("ERR", "unknown subcommand 'NOPE'. Try CLIENT HELP.")
    );
}

pub async fn pipeline_plain(b: &dyn PoolBackend) {
    let k = "pipeline_plain:k";
    let mut c = b.shared().await.unwrap();
    let (set, incr, get): ((), i64, String) = redis::pipe()
        .set(k, 1)
        .incr(k, 5)
        .get(k)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((set, incr, get), ((), 6, "6".to_string()));
    let (n,): (i64,) = redis::pipe()
        .del(k)
        .ignore()
        .exists(k)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

pub async fn pipeline_atomic(b: &dyn PoolBackend) {
    let k = "pipeline_atomic:k";
    let mut c = b.shared().await.unwrap();
    let (a, l): (i64, Vec<String>) = redis::pipe()
        .atomic()
        .incr(k, 2)
        .ignore()
        .incr(k, 3)
        .rpush(format!("{k}l"), "x")
        .ignore()
        .lrange(format!("{k}l"), 0, -1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((a, l), (5, vec!["x".to_string()]));
    cleanup(b, "pipeline_atomic:").await;
}

pub async fn pipeline_reports_errors(b: &dyn PoolBackend) {
    let k = "pipeline_reports_errors:k";
    let mut c = b.shared().await.unwrap();
    let _: () = c.set(k, "text").await.unwrap();
    let err = redis::pipe()
        .incr(k, 1)
        .get(k)
        .query_async::<Value>(&mut c)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Pipeline failure: [(Index 0, error: ResponseError: value is not an integer or out of range)]");
    // The same command in a transaction fails at EXEC time, inside the reply array.
    let err = redis::pipe()
        .atomic()
        .incr(k, 1)
        .get(k)
        .query_async::<Value>(&mut c)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Pipeline failure: [(Index 0, error: ResponseError: value is not an integer or out of range)]");
    // A queuing error (arity) aborts the whole transaction.
    let err = redis::pipe()
        .atomic()
        .cmd("GET")
        .get(k)
        .query_async::<Value>(&mut c)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::ExecAbort)
    );
    assert_eq!(err.code(), Some("EXECABORT"));
    let results: Vec<RedisResult<String>> = redis::pipe()
        .ignore_errors()
        .incr(k, 1)
        .get(k)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(results[0].is_err());
    assert_eq!(results[1].as_deref().unwrap(), "text");
    cleanup(b, "pipeline_reports_errors:").await;
}

pub async fn multi_exec_queues_and_aborts(b: &dyn PoolBackend) {
    let k = "multi_exec_queues_and_aborts:k";
    let mut c = b.exclusive().await.unwrap();
    assert_eq!(q::<Value>(&mut c, &["MULTI"]).await, Value::Okay);
    assert_eq!(
        q::<Value>(&mut c, &["SET", k, "1"]).await,
        Value::SimpleString("QUEUED".into())
    );
    assert_eq!(
        q::<Value>(&mut c, &["INCR", k]).await,
        Value::SimpleString("QUEUED".into())
    );
    assert_eq!(
        q::<Value>(&mut c, &["LPUSH", k, "x"]).await,
        Value::SimpleString("QUEUED".into())
    );
    assert_eq!(
        err(&mut c, &["MULTI"]).await,
        e("ERR", "MULTI calls can not be nested")
    );
    let exec = redis::aio::ConnectionLike::req_packed_command(&mut c, &redis::cmd("EXEC"))
        .await
        .unwrap();
    let Value::Array(items) = exec else {
        panic!("{exec:?}")
    };
    assert_eq!(items[0], Value::Okay);
    assert_eq!(items[1], Value::Int(2));
    assert!(
        matches!(&items[2], Value::ServerError(e) if e.code() == "WRONGTYPE"),
        "{:?}",
        items[2]
    );
    // A queuing error aborts.
    let _: () = q(&mut c, &["MULTI"]).await;
    assert_eq!(
        err(&mut c, &["NOPE"]).await,
        e("ERR", "unknown command 'NOPE', with args beginning with: ")
    );
    let _: Value = q(&mut c, &["INCR", k]).await;
    assert_eq!(
        err(&mut c, &["EXEC"]).await,
        e(
            "EXECABORT",
            "Transaction discarded because of previous errors."
        )
    );
    assert_eq!(q::<String>(&mut c, &["GET", k]).await, "2");
    assert_eq!(err(&mut c, &["EXEC"]).await, e("ERR", "EXEC without MULTI"));
    let _: i64 = q(&mut c, &["DEL", k]).await;
}

pub async fn discard_drops_queue(b: &dyn PoolBackend) {
    let k = "discard_drops_queue:k";
    let mut c = b.exclusive().await.unwrap();
    let _: () = q(&mut c, &["MULTI"]).await;
    let _: Value = q(&mut c, &["SET", k, "1"]).await;
    assert_eq!(q::<Value>(&mut c, &["DISCARD"]).await, Value::Okay);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", k]).await, 0);
    assert_eq!(
        err(&mut c, &["DISCARD"]).await,
        e("ERR", "DISCARD without MULTI")
    );
}

pub async fn watch_then_exec_succeeds(b: &dyn PoolBackend) {
    let k = "watch_then_exec_succeeds:k";
    let mut c = b.exclusive().await.unwrap();
    let _: () = c.set(k, 10).await.unwrap();
    assert_eq!(q::<Value>(&mut c, &["WATCH", k]).await, Value::Okay);
    let v: i64 = c.get(k).await.unwrap();
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .set(k, v + 1)
        .ignore()
        .get(k)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 11);
    cleanup(b, "watch_then_exec_succeeds:").await;
}

pub async fn watch_conflict_aborts(b: &dyn PoolBackend) {
    let k = "watch_conflict_aborts:k";
    let mut c = b.exclusive().await.unwrap();
    let mut other = b.exclusive().await.unwrap();
    let _: () = c.set(k, 10).await.unwrap();
    let _: () = q(&mut c, &["WATCH", k]).await;
    let _: () = other.set(k, 99).await.unwrap();
    let r: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr(k, 1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(r, None);
    assert_eq!(q::<i64>(&mut c, &["GET", k]).await, 99);
    // EXEC cleared the watch: the next transaction goes through.
    let r: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr(k, 1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(r, Some((100,)));
    // A deleted watched key also aborts; UNWATCH forgets.
    let _: () = q(&mut c, &["WATCH", k]).await;
    let _: i64 = other.del(k).await.unwrap();
    let _: () = q(&mut c, &["MULTI"]).await;
    let _: Value = q(&mut c, &["SET", k, "1"]).await;
    assert_eq!(q::<Value>(&mut c, &["EXEC"]).await, Value::Nil);
    let _: () = q(&mut c, &["WATCH", k]).await;
    let _: () = other.set(k, 5).await.unwrap();
    assert_eq!(q::<Value>(&mut c, &["UNWATCH"]).await, Value::Okay);
    let r: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr(k, 1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(r, Some((6,)));
    cleanup(b, "watch_conflict_aborts:").await;
}

pub async fn message_queue_round_trip(b: &dyn PoolBackend) {
    let k = "message_queue_round_trip:q";
    let mut c = b.shared().await.unwrap();
    let mut consumer = b.exclusive().await.unwrap();
    for m in ["one", "two", "three"] {
        let _: i64 = c.rpush(k, m).await.unwrap();
    }
    for m in ["one", "two", "three"] {
        let got: (String, String) = consumer.blpop(k, 1.0).await.unwrap();
        assert_eq!(got, (k.to_string(), m.to_string()));
    }
    let none: Option<(String, String)> = consumer.blpop(k, 0.05).await.unwrap();
    assert_eq!(none, None);
}

pub async fn blpop_wakes_on_push(b: &dyn PoolBackend) {
    let k = "blpop_wakes_on_push:q";
    let mut waiter = b.exclusive().await.unwrap();
    let mut pusher = b.shared().await.unwrap();
    let push = async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _: i64 = pusher.rpush(k, "hello").await.unwrap();
    };
    let start = Instant::now();
    let pop = async {
        tokio::time::timeout(
            Duration::from_secs(10),
            redis::cmd("BRPOP")
                .arg("blpop_wakes_on_push:other")
                .arg(k)
                .arg(5)
                .query_async::<Value>(&mut waiter),
        )
        .await
        .expect("BRPOP did not return within 10 s")
        .unwrap()
    };
    let (got, ()) = tokio::join!(pop, push);
    assert_eq!(got, Value::Array(vec![bulk(k), bulk("hello")]));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(90) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

pub async fn blpop_fractional_timeout(b: &dyn PoolBackend) {
    let k = "blpop_fractional_timeout:q";
    let mut c = b.exclusive().await.unwrap();
    let start = Instant::now();
    let got: Value = tokio::time::timeout(
        Duration::from_secs(5),
        redis::cmd("BLPOP").arg(k).arg(0.2).query_async(&mut c),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got, Value::Nil);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

pub async fn blpop_timeout_errors(b: &dyn PoolBackend) {
    let mut c = b.exclusive().await.unwrap();
    assert_eq!(
        err(&mut c, &["BLPOP", "k", "-1"]).await,
        e("ERR", "timeout is negative")
    );
    assert_eq!(
        err(&mut c, &["BLPOP", "k", "soon"]).await,
        e("ERR", "timeout is not a float or out of range")
    );
    // Inside MULTI a blocking pop does not block.
    let _: () = q(&mut c, &["MULTI"]).await;
    let _: Value = q(&mut c, &["BLPOP", "blpop_timeout_errors:none", "0"]).await;
    assert_eq!(
        q::<Value>(&mut c, &["EXEC"]).await,
        Value::Array(vec![Value::Nil])
    );
}

pub async fn expiry_is_real(b: &dyn PoolBackend) {
    let k = "expiry_is_real:k";
    let mut c = b.shared().await.unwrap();
    let _: () = q(&mut c, &["SET", k, "v", "PX", "50"]).await;
    assert_eq!(q::<Value>(&mut c, &["GET", k]).await, bulk("v"));
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(q::<Value>(&mut c, &["GET", k]).await, Value::Nil);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", k]).await, 0);
    assert_eq!(q::<i64>(&mut c, &["TTL", k]).await, -2);
}

pub async fn binary_safe_values(b: &dyn PoolBackend) {
    let all: Vec<u8> = (0..=255u8).collect();
    let mut key = b"binary_safe_values:\x00\xff\r\n".to_vec();
    key.extend_from_slice(&all[..16]);
    let mut c = b.shared().await.unwrap();
    let _: () = c.set(&key, &all).await.unwrap();
    let back: Vec<u8> = c.get(&key).await.unwrap();
    assert_eq!(back, all);
    let _: i64 = c.hset(&key[..19], &all, &all).await.unwrap_or(0);
    let _: i64 = c.del(&key).await.unwrap();
    let _: i64 = c.rpush(&key, &all).await.unwrap();
    let popped: Vec<u8> = c.lpop(&key, None).await.unwrap();
    assert_eq!(popped, all);
    let _: i64 = c.del(&key[..19]).await.unwrap();
}

pub async fn empty_values(b: &dyn PoolBackend) {
    let k = "empty_values:k";
    let mut c = b.shared().await.unwrap();
    let _: () = c.set(k, "").await.unwrap();
    assert_eq!(
        q::<Value>(&mut c, &["GET", k]).await,
        Value::BulkString(vec![])
    );
    assert_eq!(q::<i64>(&mut c, &["STRLEN", k]).await, 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", k]).await, 1);
    let _: () = c.set("", "empty key").await.unwrap();
    assert_eq!(q::<String>(&mut c, &["GET", ""]).await, "empty key");
    let _: i64 = c.del(&["", k][..]).await.unwrap();
}

// --- Pub/Sub: `PoolBackend::subscriber` connections and PUBLISH ---

type Pushes = tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>;

async fn subscriber(b: &dyn PoolBackend) -> (PooledConnection, Pushes) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (b.subscriber(tx).await.unwrap(), rx)
}

/// The next message push (confirmations skipped), as (kind, data as byte strings).
async fn next_message(rx: &mut Pushes) -> (redis::PushKind, Vec<Vec<u8>>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let push = tokio::time::timeout(left, rx.recv())
            .await
            .expect("a message within 5 s")
            .expect("subscriber connection open");
        if matches!(
            push.kind,
            redis::PushKind::Message | redis::PushKind::PMessage
        ) {
            let data = push
                .data
                .into_iter()
                .map(|v| match v {
                    Value::BulkString(b) => b,
                    other => panic!("unexpected push part {other:?}"),
                })
                .collect();
            return (push.kind, data);
        }
        assert_ne!(push.kind, redis::PushKind::Disconnection);
    }
}

async fn publish(c: &mut PooledConnection, channel: &[u8], payload: &[u8]) -> i64 {
    cmd(&[b"PUBLISH", channel, payload])
        .query_async(c)
        .await
        .unwrap()
}

pub async fn pubsub_channel_round_trip(b: &dyn PoolBackend) {
    let (mut sub, mut rx) = subscriber(b).await;
    let mut c = b.shared().await.unwrap();
    let _: () = cmd(&[
        b"SUBSCRIBE",
        b"pubsub_channel_round_trip:a",
        b"pubsub_channel_round_trip:b",
    ])
    .query_async(&mut sub)
    .await
    .unwrap();
    let payload: Vec<u8> = (0..=255u8).chain(*b"\r\n\0end").collect();
    assert_eq!(
        publish(&mut c, b"pubsub_channel_round_trip:b", &payload).await,
        1
    );
    assert_eq!(
        publish(&mut c, b"pubsub_channel_round_trip:a", b"").await,
        1
    );
    assert_eq!(
        publish(&mut c, b"pubsub_channel_round_trip:other", b"x").await,
        0
    );
    assert_eq!(
        next_message(&mut rx).await,
        (
            redis::PushKind::Message,
            vec![b"pubsub_channel_round_trip:b".to_vec(), payload]
        )
    );
    assert_eq!(
        next_message(&mut rx).await,
        (
            redis::PushKind::Message,
            vec![b"pubsub_channel_round_trip:a".to_vec(), Vec::new()]
        )
    );
    let pong: String = redis::cmd("PING").query_async(&mut sub).await.unwrap();
    assert_eq!(pong, "PONG");
}

pub async fn pubsub_glob_patterns(b: &dyn PoolBackend) {
    let (mut sub, mut rx) = subscriber(b).await;
    let mut c = b.shared().await.unwrap();
    let _: () = cmd(&[
        b"PSUBSCRIBE",
        b"pubsub_glob_patterns:h?llo",
        b"pubsub_glob_patterns:[xy]*",
    ])
    .query_async(&mut sub)
    .await
    .unwrap();
    let _: () = cmd(&[b"SUBSCRIBE", b"pubsub_glob_patterns:hello"])
        .query_async(&mut sub)
        .await
        .unwrap();
    // One channel subscription and one pattern match: two deliveries, channel first.
    assert_eq!(
        publish(&mut c, b"pubsub_glob_patterns:hello", b"1").await,
        2
    );
    assert_eq!(
        publish(&mut c, b"pubsub_glob_patterns:hallo", b"2").await,
        1
    );
    assert_eq!(publish(&mut c, b"pubsub_glob_patterns:yes", b"3").await, 1);
    assert_eq!(publish(&mut c, b"pubsub_glob_patterns:zed", b"4").await, 0);
    assert_eq!(
        publish(&mut c, b"pubsub_glob_patterns:heello", b"5").await,
        0
    );
    let expected = [
        (
            redis::PushKind::Message,
            vec!["pubsub_glob_patterns:hello", "1"],
        ),
        (
            redis::PushKind::PMessage,
            vec![
                "pubsub_glob_patterns:h?llo",
                "pubsub_glob_patterns:hello",
                "1",
            ],
        ),
        (
            redis::PushKind::PMessage,
            vec![
                "pubsub_glob_patterns:h?llo",
                "pubsub_glob_patterns:hallo",
                "2",
            ],
        ),
        (
            redis::PushKind::PMessage,
            vec![
                "pubsub_glob_patterns:[xy]*",
                "pubsub_glob_patterns:yes",
                "3",
            ],
        ),
    ];
    for (kind, data) in expected {
        let data: Vec<Vec<u8>> = data.iter().map(|d| d.as_bytes().to_vec()).collect();
        assert_eq!(next_message(&mut rx).await, (kind, data));
    }
}

pub async fn pubsub_unsubscribe_stops_delivery(b: &dyn PoolBackend) {
    let (mut sub, mut rx) = subscriber(b).await;
    let mut c = b.shared().await.unwrap();
    let k = b"pubsub_unsubscribe_stops_delivery:ch";
    let _: () = cmd(&[b"SUBSCRIBE", k]).query_async(&mut sub).await.unwrap();
    let _: () = cmd(&[b"PSUBSCRIBE", b"pubsub_unsubscribe_stops_delivery:*"])
        .query_async(&mut sub)
        .await
        .unwrap();
    assert_eq!(publish(&mut c, k, b"both").await, 2);
    let _: () = cmd(&[b"UNSUBSCRIBE"]).query_async(&mut sub).await.unwrap();
    assert_eq!(publish(&mut c, k, b"pattern only").await, 1);
    let _: () = cmd(&[b"PUNSUBSCRIBE", b"pubsub_unsubscribe_stops_delivery:*"])
        .query_async(&mut sub)
        .await
        .unwrap();
    assert_eq!(publish(&mut c, k, b"nobody").await, 0);
    let mut payloads = Vec::new();
    for _ in 0..3 {
        let (_, data) = next_message(&mut rx).await;
        payloads.push(data.last().unwrap().clone());
    }
    assert_eq!(payloads, [&b"both"[..], b"both", b"pattern only"]);
    // A dropped subscriber receives nothing more.
    drop(sub);
    let dropped = async {
        for _ in 0..50 {
            if publish(&mut c, k, b"after drop").await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("a dropped subscriber still receives");
    };
    dropped.await;
}
