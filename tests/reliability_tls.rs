//! Guarantee 9: `rediss://` works against a TLS `redis-server` with a certificate the test
//! generates; the CA is configurable (`tls_ca_file`), client certificates too
//! (`tls_cert_file`, `tls_key_file`); an untrusted or misnamed server certificate is refused
//! with a clear error naming the address.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baseplate_redis::config::RawConfig;
use baseplate_redis::pool::PoolBackend;
use baseplate_redis::{pool_from_config, RedisContextFactory};
use common::RedisServer;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use redis::AsyncCommands;

/// PEM files in a directory removed on drop.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir =
            std::env::temp_dir().join(format!("baseplate-redis-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Pki { dir }
    }

    fn write(&self, file: &str, pem: &str) -> String {
        let path = self.dir.join(file);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_string()
    }

    /// A CA; writes `<name>.pem`.
    fn ca(&self, name: &str) -> (CertifiedIssuer<'static, KeyPair>, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let path = self.write(&format!("{name}.pem"), &ca.pem());
        (ca, path)
    }

    /// A certificate for `names` signed by `ca`; writes `<file>.crt` and `<file>.key`.
    fn leaf(
        &self,
        file: &str,
        names: &[&str],
        ca: &CertifiedIssuer<'static, KeyPair>,
    ) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, ca).unwrap();
        (
            self.write(&format!("{file}.crt"), &cert.pem()),
            self.write(&format!("{file}.key"), &key.serialize_pem()),
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dir_of(path: &str) -> &Path {
    Path::new(path).parent().unwrap()
}

/// A redis-server with a TLS port (its certificate `cert`/`key`, client certificates
/// checked against `ca` when `auth_clients`); returns it and the TLS port.
fn tls_server(cert: &str, key: &str, ca: &str, auth_clients: bool) -> (RedisServer, u16) {
    assert!(dir_of(cert).exists());
    let tls_port = common::free_port().to_string();
    let server = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        cert,
        "--tls-key-file",
        key,
        "--tls-ca-cert-file",
        ca,
        "--tls-auth-clients",
        if auth_clients { "yes" } else { "no" },
    ]);
    (server, tls_port.parse().unwrap())
}

fn client(url: &str, extra: &[(&str, &str)]) -> (Arc<dyn PoolBackend>, RedisContextFactory) {
    let mut config = RawConfig::from_pairs([
        ("redis.url", url),
        ("redis.socket_connect_timeout", "2 seconds"),
        ("redis.socket_timeout", "2 seconds"),
    ]);
    for (k, v) in extra {
        config.insert(format!("redis.{k}"), *v);
    }
    let pool = pool_from_config(&config, "redis.").unwrap();
    (pool.clone(), RedisContextFactory::new(pool))
}

/// The error of a first command, with how long it took.
async fn first_error(factory: &RedisContextFactory) -> (redis::RedisError, Duration) {
    let mut redis = factory.connection();
    let started = Instant::now();
    let err = redis.get::<_, Option<String>>("k").await.unwrap_err();
    (err, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_works_with_the_configured_ca() {
    let pki = Pki::new("works");
    let (ca, ca_file) = pki.ca("ca");
    let (cert, key) = pki.leaf("server", &["127.0.0.1", "localhost"], &ca);
    let (server, tls_port) = tls_server(&cert, &key, &ca_file, false);

    let url = format!("rediss://127.0.0.1:{tls_port}/2");
    let (pool, factory) = client(&url, &[("tls_ca_file", &ca_file), ("max_connections", "3")]);
    let mut redis = factory.connection();
    let _: () = redis.set("over-tls", b"\x00\xffbytes").await.unwrap();
    let value: Vec<u8> = redis.get("over-tls").await.unwrap();
    assert_eq!(value, b"\x00\xffbytes");
    // Exclusive connections (blocking commands, WATCH) are TLS too.
    server.query::<()>(&["SELECT", "2"]);
    let _: () = redis.rpush("tls-list", "item").await.unwrap();
    let popped: Option<(String, String)> = redis.blpop("tls-list", 1.0).await.unwrap();
    assert_eq!(popped, Some(("tls-list".to_string(), "item".to_string())));
    // The server saw our connections on its TLS port.
    let clients: String = server.query(&["CLIENT", "LIST"]);
    let tls_clients = clients.lines().filter(|l| l.contains(" db=2 ")).count();
    assert!(tls_clients >= 1, "{clients}");
    drop(redis);
    assert_eq!(pool.state().in_use, 0);

    // `localhost` resolves and matches the certificate's name too.
    let url = format!("rediss://localhost:{tls_port}/0");
    let (_pool, factory) = client(&url, &[("tls_ca_file", &ca_file)]);
    let pong: String = redis::cmd("PING")
        .query_async(&mut factory.connection())
        .await
        .unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_server_certificate_is_refused_clearly() {
    let pki = Pki::new("untrusted");
    let (ca, ca_file) = pki.ca("ca");
    let (_other_ca, other_ca_file) = pki.ca("other-ca");
    let (cert, key) = pki.leaf("server", &["127.0.0.1"], &ca);
    let (_server, tls_port) = tls_server(&cert, &key, &ca_file, false);
    let url = format!("rediss://user:secret@127.0.0.1:{tls_port}/0");

    // Signed by a CA we were not told to trust; then with the system's roots only.
    for extra in [vec![("tls_ca_file", other_ca_file.as_str())], vec![]] {
        let (pool, factory) = client(&url, &extra);
        let (err, took) = first_error(&factory).await;
        let message = err.to_string();
        assert!(
            message.contains(&format!("cannot connect to redis at 127.0.0.1:{tls_port}")),
            "{message}"
        );
        assert!(message.contains("certificate"), "{message}");
        assert!(!message.contains("secret"), "{message}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(pool.state().open, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::new("misnamed");
    let (ca, ca_file) = pki.ca("ca");
    let (cert, key) = pki.leaf("server", &["redis.example"], &ca);
    let (_server, tls_port) = tls_server(&cert, &key, &ca_file, false);
    let (_pool, factory) = client(
        &format!("rediss://127.0.0.1:{tls_port}/0"),
        &[("tls_ca_file", &ca_file)],
    );
    let (err, _) = first_error(&factory).await;
    let message = err.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{tls_port}")),
        "{message}"
    );
    assert!(message.contains("certificate"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_sent_when_configured() {
    let pki = Pki::new("mtls");
    let (ca, ca_file) = pki.ca("ca");
    let (cert, key) = pki.leaf("server", &["127.0.0.1"], &ca);
    let (client_cert, client_key) = pki.leaf("client", &["client"], &ca);
    let (_server, tls_port) = tls_server(&cert, &key, &ca_file, true);
    let url = format!("rediss://127.0.0.1:{tls_port}/0");

    let (_pool, factory) = client(
        &url,
        &[
            ("tls_ca_file", &ca_file),
            ("tls_cert_file", &client_cert),
            ("tls_key_file", &client_key),
        ],
    );
    let pong: String = redis::cmd("PING")
        .query_async(&mut factory.connection())
        .await
        .unwrap();
    assert_eq!(pong, "PONG");

    // Without one, the server hangs up: a connection error, not a hang.
    let (_pool, factory) = client(&url, &[("tls_ca_file", &ca_file)]);
    let (err, took) = first_error(&factory).await;
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{tls_port}")),
        "{err}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_to_a_plain_port_fails_clearly() {
    let pki = Pki::new("plain");
    let (_ca, ca_file) = pki.ca("ca");
    let server = RedisServer::start();
    let (_pool, factory) = client(
        &format!("rediss://127.0.0.1:{}/0", server.port()),
        &[("tls_ca_file", &ca_file)],
    );
    let (err, took) = first_error(&factory).await;
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{}", server.port())),
        "{err}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}
