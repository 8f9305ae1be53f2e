//! Leader election when the API server stops answering: the leader steps down within the renew
//! deadline, before a standby could take the lease over. The stall is a TCP proxy in front of
//! the real API server that stops forwarding, as a network partition does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backup_guard::controller::lease::{self, LeaseSettings};
use kube::{Client, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::harness::*;

/// Forwards bytes both ways; while `stalled`, holds whatever it read.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A proxy to `upstream` on a loopback port; returns its address and the stall switch.
async fn proxy(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stalled = Arc::new(AtomicBool::new(false));
    let switch = stalled.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, stalled.clone()));
            tokio::spawn(pump(sr, cw, stalled.clone()));
        }
    });
    (addr, switch)
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_steps_down_within_the_renew_deadline() {
    let c = cluster().await;
    let ns = namespace(&c, "ctl-lease").await;
    let mut config = Config::infer().await.expect("kubeconfig");
    let url = config.cluster_url.clone();
    let upstream: SocketAddr = format!(
        "{}:{}",
        url.host().expect("host"),
        url.port_u16().expect("port")
    )
    .parse()
    .expect("the API server listens on an IP address");
    let (addr, stalled) = proxy(upstream).await;
    config.cluster_url = format!("https://{addr}").parse().expect("url");
    let through_proxy = Client::try_from(config).expect("client");

    let settings = LeaseSettings {
        duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(3),
        retry_period: Duration::from_millis(500),
    };
    let (leader_tx, mut leader) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let election = tokio::spawn(lease::elect(
        through_proxy,
        ns.clone(),
        "cut-off-leader".into(),
        settings,
        leader_tx,
        stop_rx,
    ));
    tokio::time::timeout(Duration::from_secs(10), leader.wait_for(|l| *l))
        .await
        .expect("leading within 10 s")
        .expect("election running");

    stalled.store(true, Ordering::Release);
    let cut = Instant::now();
    let stepped_down =
        tokio::time::timeout(Duration::from_secs(10), leader.wait_for(|l| !*l)).await;
    let after = cut.elapsed();
    stalled.store(false, Ordering::Release);
    stepped_down
        .expect("the leader steps down while the API server does not answer")
        .expect("election running");
    assert!(
        after <= settings.renew_deadline + Duration::from_millis(500),
        "stepped down {after:?} after the stall; a standby may take over {:?} after the last renewal",
        settings.duration
    );
    stop_tx.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), election).await;
    drop_namespace(&c, &ns).await;
}
