//! The webhook speaks HTTP/1.1 over TLS and nothing else, as the API server calls it
//! (kube-apiserver pins its webhook clients to `http/1.1`): an h2 offer is never taken, so the
//! HTTP/2 attack surface (rapid reset, CVE-2023-44487, and its kin) is not there to reach.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backup_guard::tls;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

#[path = "support/webhook_process.rs"]
mod webhook_process;
use webhook_process::{get, start, wait_for};

/// A TLS client trusting the webhook's CA and offering `alpn` (empty: no ALPN extension).
fn connector(certs: &Path, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let pem = std::fs::read(certs.join("ca.crt")).expect("ca.crt");
    let ca: CertificateDer<'static> = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .expect("one certificate")
        .expect("PEM");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn connect(port: u16, certs: &Path, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    connector(certs, alpn).connect(name, tcp).await
}

/// Whatever the server sends before it closes or goes quiet for a second.
async fn read_some(stream: &mut TlsStream<TcpStream>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_http1_only_whatever_the_client_offers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_child, port, metrics) = start(dir.path(), 0);
    wait_for(|| get(metrics, "/livez").is_some(), 20, "livez");
    let certs = dir.path().join("certs");

    // The API server's offer, and a browser's: both get http/1.1, and a review is answered in it.
    for offer in [&[&b"http/1.1"[..]][..], &[b"h2", b"http/1.1"]] {
        let mut stream = connect(port, &certs, offer).await.expect("handshake");
        assert_eq!(
            stream.get_ref().1.alpn_protocol(),
            Some(&b"http/1.1"[..]),
            "{offer:?}"
        );
        let body =
            std::fs::read("tests/fixtures/admission/delete-backup-by-user.json").expect("fixture");
        let head = format!(
            "POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        stream.write_all(&body).await.expect("write");
        let answer = String::from_utf8_lossy(&read_some(&mut stream).await).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200"), "{offer:?}: {answer}");
        assert!(answer.contains("\"AdmissionReview\""), "{answer}");
    }

    // Only h2 offered: no protocol in common, so the handshake itself is refused.
    let refused = connect(port, &certs, &[b"h2"]).await;
    assert!(refused.is_err(), "an h2-only client must not get a session");

    // No ALPN at all, then the HTTP/2 connection preface ("prior knowledge"): an HTTP/2 server
    // answers with a SETTINGS frame; an HTTP/1.1 one rejects the request line or closes.
    let mut stream = connect(port, &certs, &[]).await.expect("handshake");
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("write");
    let answer = read_some(&mut stream).await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
        "the HTTP/2 preface must not be spoken to: {answer:?}"
    );
}
