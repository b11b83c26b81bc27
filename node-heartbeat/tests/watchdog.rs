//! The watchdog against a real `NOTIFY_SOCKET`-style datagram socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use node_heartbeat::watchdog::{HealthCheck, Notifier, Watchdog};
use tokio::net::UnixDatagram;
use tokio::time::Instant;

struct Flag(AtomicBool);

impl HealthCheck for Flag {
    fn name(&self) -> &str {
        "syncloop"
    }
    fn check(&self) -> Result<(), String> {
        if self.0.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("sync Loop took longer than expected".into())
        }
    }
}

async fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).await.unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn ready_pings_gated_by_health_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let notifier = Notifier::new(path.to_str().unwrap());

    notifier.ready().unwrap();
    assert_eq!(recv(&sock).await, "READY=1\n");

    // WatchdogSec=30s: ping every 15 s, the first at once.
    let mut wd = Watchdog::new(notifier.clone(), Duration::from_secs(30)).unwrap();
    assert_eq!(wd.interval(), Duration::from_secs(15));
    let health = Arc::new(Flag(AtomicBool::new(true)));
    wd.add_check(health.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let task = tokio::spawn(wd.run(async move {
        let _ = stop_rx.await;
    }));
    let mut at = Vec::new();
    for _ in 0..3 {
        assert_eq!(recv(&sock).await, "WATCHDOG=1\n");
        at.push(Instant::now() - start);
    }
    assert_eq!(
        at,
        vec![
            Duration::ZERO,
            Duration::from_secs(15),
            Duration::from_secs(30)
        ]
    );

    // A failing health check stops the pings...
    health.0.store(false, Ordering::SeqCst);
    // Ticks at 45, 60 and 75 s are skipped (the timeout ends at 80 s, between ticks).
    let silent = tokio::time::timeout(Duration::from_secs(50), recv(&sock)).await;
    assert!(silent.is_err(), "no ping while unhealthy");
    // ...and they resume at the next tick once it passes again.
    health.0.store(true, Ordering::SeqCst);
    assert_eq!(recv(&sock).await, "WATCHDOG=1\n");
    let resumed = Instant::now() - start;
    assert_eq!(resumed, Duration::from_secs(90));

    let _ = stop_tx.send(());
    task.await.unwrap();
    notifier.stopping().unwrap();
    assert_eq!(recv(&sock).await, "STOPPING=1\n");
}

#[tokio::test]
async fn refusals_and_missing_socket() {
    let n = Notifier::new("/nonexistent/dir/notify.sock");
    let e = Watchdog::new(n.clone(), Duration::from_secs(1)).unwrap_err();
    assert_eq!(e.to_string(), "configure watchdog timeout too small: 1s");
    let e = n.ready().unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent/dir/notify.sock"),
        "{e}"
    );
    // Abstract-namespace sockets work too.
    let name = format!("node-heartbeat-test-{}", std::process::id());
    let addr = {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap()
    };
    let std_sock = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
    Notifier::new(format!("@{name}"))
        .notify(&[node_heartbeat::watchdog::NotifyState::Status("up")])
        .unwrap();
    let mut buf = [0u8; 64];
    let k = std_sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..k], b"STATUS=up\n");
}
