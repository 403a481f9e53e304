//! Backends written as users write them, plugged in from configuration: a wrapper around
//! the pool the keys describe (`map_pool`), and a backend over a connection the service
//! already owns (`with_backend`) — both keep the client's spans, metrics and options.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::{async_trait, PoolBackend, PoolState, PooledConnection};
use baseplate_redis::sink::{names, RecordingSink};
use baseplate_redis::span::RecordingObserver;
use baseplate_redis::{Baseplate, ClusterRedisClient, ContextSpec, Error, RedisClient};
use common::RedisServer;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

/// A wrapper counting checkouts, and refusing exclusive ones when told to.
#[derive(Debug)]
struct Audited {
    inner: Arc<dyn PoolBackend>,
    shared: AtomicU64,
    exclusive: AtomicU64,
    refuse_exclusive: bool,
}

#[async_trait]
impl PoolBackend for Audited {
    async fn shared(&self) -> baseplate_redis::Result<PooledConnection> {
        self.shared.fetch_add(1, Ordering::Relaxed);
        self.inner.shared().await
    }

    async fn exclusive(&self) -> baseplate_redis::Result<PooledConnection> {
        self.exclusive.fetch_add(1, Ordering::Relaxed);
        if self.refuse_exclusive {
            return Err(Error::PoolTimeout {
                address: self.inner.address().to_string(),
                waited: std::time::Duration::ZERO,
                max_connections: self.inner.state().max_size,
            });
        }
        self.inner.exclusive().await
    }

    fn state(&self) -> PoolState {
        self.inner.state()
    }

    fn database(&self) -> i64 {
        self.inner.database()
    }

    fn address(&self) -> Arc<str> {
        self.inner.address()
    }
}

type Made = Arc<Mutex<Option<Arc<Audited>>>>;

fn audited(refuse_exclusive: bool) -> (RedisClient, Made) {
    let made: Made = Arc::default();
    let keep = made.clone();
    let client = RedisClient::new()
        .client_name("audited-client")
        .map_pool(move |inner| {
            let wrapper = Arc::new(Audited {
                inner,
                shared: AtomicU64::new(0),
                exclusive: AtomicU64::new(0),
                refuse_exclusive,
            });
            *keep.lock().unwrap() = Some(wrapper.clone());
            wrapper
        });
    (client, made)
}

#[tokio::test]
async fn a_wrapper_backend_keeps_every_option_of_the_configured_pool() {
    let server = RedisServer::start();
    let (client, made) = audited(false);
    let config = RawConfig::from_pairs([
        ("cache.url", server.url(3).as_str()),
        ("cache.max_connections", "4"),
    ]);
    let metrics = RecordingSink::new();
    let spans = RecordingObserver::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate.register(Arc::new(spans.clone()));
    baseplate
        .configure_context(ContextSpec::new().client("cache", client))
        .unwrap();

    let name: Option<String> = baseplate
        .serve("handler", None, async |context| {
            let mut cache = context.redis("cache")?;
            let _: () = cache.rpush("jobs", "a").await?;
            let _: Option<(String, String)> = cache.blpop("jobs", 1.0).await?;
            let name: Option<String> = redis::cmd("CLIENT")
                .arg("GETNAME")
                .query_async(&mut cache)
                .await?;
            Ok::<_, Error>(name)
        })
        .await
        .unwrap();

    let wrapper = made.lock().unwrap().clone().unwrap();
    // The options of the keys reached the wrapped pool: database, size, client name.
    assert_eq!(wrapper.database(), 3);
    assert_eq!(wrapper.state().max_size, 4);
    assert_eq!(name.as_deref(), Some("audited-client"));
    assert_eq!(
        wrapper.shared.load(Ordering::Relaxed),
        1,
        "one shared per handle"
    );
    assert_eq!(wrapper.exclusive.load(Ordering::Relaxed), 1, "BLPOP's own");
    let stored: Option<String> = server.query(&["CLIENT", "LIST"]);
    assert!(stored.unwrap().contains("name=audited-client"));
    assert_eq!(
        spans.names(),
        ["handler", "cache.RPUSH", "cache.BLPOP", "cache.CLIENT"]
    );
    let labels = [
        (names::LABEL_COMMAND, "blpop"),
        (names::LABEL_DATABASE, "3"),
        // The client name labels the metrics, as without a wrapper.
        (names::LABEL_CLIENT_NAME, "audited-client"),
    ];
    assert_eq!(metrics.counter_value(names::REQUESTS_TOTAL, &labels), 1);
}

#[tokio::test]
async fn a_wrapper_backend_errors_fail_the_command_that_needed_it() {
    let server = RedisServer::start();
    let (client, _made) = audited(true);
    let config = RawConfig::from_pairs([("cache.url", server.url(0))]);
    let metrics = RecordingSink::new();
    let mut baseplate = Baseplate::new(config)
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate
        .configure_context(ContextSpec::new().client("cache", client))
        .unwrap();
    let mut cache = baseplate.make_context_object().redis("cache").unwrap();

    let err = cache
        .blpop::<_, Option<(String, String)>>("jobs", 0.1)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let _: () = cache.set("still", "works").await.unwrap();
    let failed = [
        (names::LABEL_COMMAND, "blpop"),
        (names::LABEL_SUCCESS, "false"),
    ];
    assert_eq!(metrics.counter_value(names::REQUESTS_TOTAL, &failed), 1);
}

/// A backend over a connection the service already owns: every checkout is a clone of
/// one multiplexed connection (no pooling of its own, no blocking commands).
#[derive(Debug)]
struct Owned {
    conn: MultiplexedConnection,
    address: Arc<str>,
}

#[async_trait]
impl PoolBackend for Owned {
    async fn shared(&self) -> baseplate_redis::Result<PooledConnection> {
        Ok(PooledConnection::new(self.conn.clone()))
    }

    async fn exclusive(&self) -> baseplate_redis::Result<PooledConnection> {
        Ok(PooledConnection::new(self.conn.clone()))
    }

    fn state(&self) -> PoolState {
        PoolState::new(1, 1, 0)
    }

    fn database(&self) -> i64 {
        0
    }

    fn address(&self) -> Arc<str> {
        self.address.clone()
    }
}

#[tokio::test]
async fn a_backend_over_an_owned_connection_needs_no_keys() {
    let server = RedisServer::start();
    let conn = redis::Client::open(server.url(0))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let owned = Arc::new(Owned {
        conn,
        address: Arc::from(format!("127.0.0.1:{}", server.port())),
    });
    let metrics = RecordingSink::new();
    // No `cache.*` or `ranks.*` key at all.
    let mut baseplate = Baseplate::new(RawConfig::new())
        .with_metrics_sink(Arc::new(metrics.clone()))
        .unwrap();
    baseplate
        .configure_context(
            ContextSpec::new()
                .client("cache", RedisClient::with_backend(owned.clone()))
                .client("ranks", ClusterRedisClient::with_backend(owned)),
        )
        .unwrap();

    let context = baseplate.make_context_object();
    let mut cache = context.redis("cache").unwrap();
    let _: () = cache.set("k", "v").await.unwrap();
    let mut ranks = context.redis("ranks").unwrap();
    let v: String = ranks.get("k").await.unwrap();
    assert_eq!(v, "v");

    // Both report to the Baseplate's sink, each with its own type.
    let standalone = [
        (names::LABEL_CLIENT_NAME, "cache"),
        (names::LABEL_TYPE, "standalone"),
    ];
    let cluster = [
        (names::LABEL_CLIENT_NAME, "ranks"),
        (names::LABEL_TYPE, "cluster"),
    ];
    assert_eq!(metrics.counter_value(names::REQUESTS_TOTAL, &standalone), 1);
    assert_eq!(metrics.counter_value(names::REQUESTS_TOTAL, &cluster), 1);
    baseplate.report_runtime_metrics();
    let size = metrics.gauge_value(names::POOL_MAX_SIZE, &[(names::LABEL_POOL, "ranks")]);
    assert_eq!(size, Some(1.0));
}
