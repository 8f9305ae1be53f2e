//! HTTP helpers for storage tests: a request-counting connector and bucket set-up calls.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::ClientOptions;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The access key an AWS Signature V4 request was signed with (`Credential=KEY/…`).
    pub signer: Option<String>,
}

impl Seen {
    /// True for `method` with a query containing `needle`.
    pub fn is(&self, method: &str, needle: &str) -> bool {
        self.method == method
            && self
                .target
                .split_once('?')
                .is_some_and(|(_, q)| q.contains(needle))
    }
}

/// Records every request the store makes; clone it to read the log.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<Mutex<Vec<Seen>>>);

impl Counter {
    /// Take the requests seen since the last call.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().expect("counter lock"))
    }
}

impl HttpConnector for Counter {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Counting {
            inner,
            seen: self.clone(),
        }))
    }
}

#[derive(Debug)]
struct Counting {
    inner: HttpClient,
    seen: Counter,
}

type Reply<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

impl HttpService for Counting {
    // The desugared form of `#[async_trait] async fn call`.
    fn call<'life0, 'async_trait>(&'life0 self, req: HttpRequest) -> Reply<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let signer = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once("Credential="))
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(key, _)| key.to_string());
        self.seen.0.lock().expect("counter lock").push(Seen {
            method: req.method().as_str().to_string(),
            target,
            signer,
        });
        Box::pin(self.inner.execute(req))
    }
}

/// A minimal HTTP/1.1 request to a loopback server; returns status and raw response.
pub async fn raw_request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to test server");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read response");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Create an S3 bucket on moto (which accepts unsigned requests).
pub async fn moto_create_bucket(port: u16, bucket: &str) {
    let (status, text) = raw_request(port, "PUT", &format!("/{bucket}"), &[], b"").await;
    assert_eq!(status, 200, "moto create bucket: {text}");
}

/// Create a container on Azurite, signed with the account's shared key.
pub async fn azurite_create_container(port: u16, account: &str, key: &str, container: &str) {
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&jiff::Timestamp::now())
        .expect("format date");
    let version = "2021-08-06";
    let path = format!("/{account}/{container}");
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{account}{path}\nrestype:container"
    );
    let secret = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("azurite key is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).expect("hmac accepts any key length");
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let headers = [
        ("x-ms-date", date),
        ("x-ms-version", version.to_string()),
        ("Authorization", format!("SharedKey {account}:{signature}")),
    ];
    let target = format!("{path}?restype=container");
    let (status, text) = raw_request(port, "PUT", &target, &headers, b"").await;
    assert_eq!(status, 201, "azurite create container: {text}");
}
