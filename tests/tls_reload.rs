//! A renewed certificate is served without a restart and without failing a connection attempt.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use backup_guard::tls::{self, certs};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pem_der(pem: &str) -> CertificateDer<'static> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .expect("one certificate")
        .expect("PEM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_swap_is_served_without_dropping_a_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = certs::generate(&["127.0.0.1".into()], 30).expect("certs");
    certs::write(dir.path(), &first).expect("write");
    let second = certs::generate(&["127.0.0.1".into()], 60).expect("certs");

    let loaded = tls::load_dir(dir.path()).expect("loads");
    let resolver = tls::Resolver::new(&loaded);
    let config = RustlsConfig::from_config(tls::server_config(resolver.clone()).expect("config"));
    tokio::spawn(tls::watch_dir(
        dir.path().to_owned(),
        resolver,
        loaded,
        Duration::from_millis(50),
        |_| {},
    ));
    let handle: axum_server::Handle<std::net::SocketAddr> = axum_server::Handle::new();
    let server = axum_server::bind_rustls("127.0.0.1:0".parse().expect("addr"), config)
        .handle(handle.clone())
        .serve(
            Router::new()
                .route("/", get(|| async { "ok" }))
                .into_make_service(),
        );
    tokio::spawn(server);
    let addr = handle.listening().await.expect("listening");

    let mut roots = RootCertStore::empty();
    roots.add(pem_der(&first.ca_crt)).expect("root");
    roots.add(pem_der(&second.ca_crt)).expect("root");
    let mut client = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every connection a full handshake, as the API server's fresh connections are.
    client.resumption = rustls::client::Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let (first_leaf, second_leaf) = (pem_der(&first.tls_crt), pem_der(&second.tls_crt));

    let mut served = Vec::new();
    for i in 0..60 {
        if i == 20 {
            certs::write(dir.path(), &second).expect("swap");
        }
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = connector
            .connect(name, tcp)
            .await
            .unwrap_or_else(|e| panic!("handshake {i} failed: {e}"));
        let leaf = tls.get_ref().1.peer_certificates().expect("peer cert")[0].clone();
        tls.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut resp = Vec::new();
        tls.read_to_end(&mut resp).await.expect("read");
        assert!(
            String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 200"),
            "request {i} answered"
        );
        served.push(leaf);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(served[0], first_leaf);
    assert_eq!(
        *served.last().expect("served"),
        second_leaf,
        "the new certificate is served"
    );
}

#[test]
fn mismatched_key_and_garbage_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = certs::generate(&["a.example".into()], 1).expect("certs");
    let b = certs::generate(&["b.example".into()], 1).expect("certs");
    std::fs::write(dir.path().join("tls.crt"), &a.tls_crt).expect("write");
    std::fs::write(dir.path().join("tls.key"), &b.tls_key).expect("write");
    let err = tls::load_dir(dir.path())
        .expect_err("mismatch refused")
        .to_string();
    assert!(err.contains("does not match"), "{err}");
    std::fs::write(dir.path().join("tls.crt"), "not a certificate").expect("write");
    assert!(tls::load_dir(dir.path()).is_err());
    assert!(certs::generate(&[], 1).is_err());
}

/// The kubelet mounts a Secret as `..data -> ..<timestamp>/` with `tls.crt -> ..data/tls.crt`,
/// and renews it by swapping the `..data` symlink: the file paths never change.
#[tokio::test]
async fn kubelet_style_symlink_swap_is_picked_up() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let first = certs::generate(&["127.0.0.1".into()], 30).expect("certs");
    let second = certs::generate(&["127.0.0.1".into()], 60).expect("certs");
    certs::write(&root.join("..v1"), &first).expect("write v1");
    certs::write(&root.join("..v2"), &second).expect("write v2");
    symlink("..v1", root.join("..data")).expect("link");
    for f in ["tls.crt", "tls.key"] {
        symlink(format!("..data/{f}"), root.join(f)).expect("link");
    }
    let loaded = tls::load_dir(root).expect("loads");
    let first_expiry = loaded.not_after;
    let resolver = tls::Resolver::new(&loaded);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(tls::watch_dir(
        root.to_owned(),
        resolver,
        loaded,
        Duration::from_millis(50),
        move |l| {
            let _ = tx.send(l.not_after);
        },
    ));
    // The atomic swap, as the kubelet does it: a new link renamed over the old one.
    symlink("..v2", root.join("..data_tmp")).expect("link");
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
    let swapped = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("swap seen")
        .expect("value");
    assert!(
        swapped > first_expiry,
        "the renewed (longer) certificate is served"
    );
}
