//! The systemd watchdog and sd_notify, as the kubelet: `READY=1` once the agent is up,
//! `WATCHDOG=1` every `WatchdogSec / 2` only while every registered health check passes,
//! timeouts of 1 s or less refused, nothing when the unit has no watchdog, `STOPPING=1` on
//! shutdown. Messages are formatted by the `sd-notify` crate's [`NotifyState`] and sent to an
//! explicit socket, so tests can use a real datagram socket without touching the environment.

use std::future::Future;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use sd_notify::NotifyState;

use crate::error::{Error, Result};

/// `minimalNotifyInterval`: the watchdog timeout must be larger than this.
pub const MINIMAL_NOTIFY_INTERVAL: Duration = Duration::from_secs(1);

/// Reads the watchdog timeout like `SdWatchdogEnabled(false)`: `WATCHDOG_USEC` in
/// microseconds; if `WATCHDOG_PID` is set it must be `pid`, else the watchdog is not for us.
/// Unset means disabled (`Ok(None)`); unparsable or non-positive values are errors.
pub fn watchdog_timeout(
    get: impl Fn(&str) -> Option<String>,
    pid: u32,
) -> Result<Option<Duration>> {
    let Some(usec) = get("WATCHDOG_USEC") else {
        return Ok(None);
    };
    let value: i64 = usec.trim().parse().map_err(|_| Error::WatchdogConfig {
        variable: "WATCHDOG_USEC",
        value: usec.clone(),
        reason: "expected an integer number of microseconds",
    })?;
    if value <= 0 {
        return Err(Error::WatchdogConfig {
            variable: "WATCHDOG_USEC",
            value: usec,
            reason: "must be positive",
        });
    }
    if let Some(p) = get("WATCHDOG_PID") {
        let wpid: u32 = p.trim().parse().map_err(|_| Error::WatchdogConfig {
            variable: "WATCHDOG_PID",
            value: p.clone(),
            reason: "expected a process ID",
        })?;
        if wpid != pid {
            return Ok(None);
        }
    }
    Ok(Some(Duration::from_micros(value.unsigned_abs())))
}

/// The ping interval for a timeout: refuses `<= 1 s`, else `timeout / 2`.
pub fn ping_interval(timeout: Duration) -> Result<Duration> {
    if timeout <= MINIMAL_NOTIFY_INTERVAL {
        return Err(Error::WatchdogTooSmall { timeout });
    }
    Ok(timeout / 2)
}

/// Sends sd_notify datagrams to one socket (a path, or `@name` for the abstract namespace).
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: String,
}

impl Notifier {
    /// A notifier for an explicit socket address.
    pub fn new(socket: impl Into<String>) -> Self {
        Notifier {
            socket: socket.into(),
        }
    }

    /// The notifier for `NOTIFY_SOCKET`, or `Err(NotifyUnsupported)` when it is unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var("NOTIFY_SOCKET") {
            Ok(s) if !s.is_empty() => Ok(Notifier::new(s)),
            _ => Err(Error::NotifyUnsupported),
        }
    }

    /// The socket address.
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// Sends `states`, one `KEY=VALUE` per line, in one datagram.
    pub fn notify(&self, states: &[NotifyState<'_>]) -> Result<()> {
        let mut msg = String::new();
        for s in states {
            msg.push_str(&s.to_string());
            msg.push('\n');
        }
        let err = |source| Error::Notify {
            socket: self.socket.clone(),
            source,
        };
        let sock = UnixDatagram::unbound().map_err(err)?;
        let addr = if let Some(name) = self.socket.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes()).map_err(err)?
        } else {
            SocketAddr::from_pathname(PathBuf::from(&self.socket)).map_err(err)?
        };
        let n = sock.send_to_addr(msg.as_bytes(), &addr).map_err(err)?;
        if n != msg.len() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "incomplete write",
            )));
        }
        Ok(())
    }

    /// `READY=1`: the agent is up (sent once the loops have started, not when the Node is Ready).
    pub fn ready(&self) -> Result<()> {
        self.notify(&[NotifyState::Ready])
    }

    /// `STOPPING=1`: the agent is shutting down.
    pub fn stopping(&self) -> Result<()> {
        self.notify(&[NotifyState::Stopping])
    }
}

/// A health check gating each watchdog ping (the kubelet's `healthz` checkers).
pub trait HealthCheck: Send + Sync {
    /// The check's name (for logs).
    fn name(&self) -> &str;
    /// `Err(reason)` when unhealthy.
    fn check(&self) -> std::result::Result<(), String>;
}

impl<F> HealthCheck for (String, F)
where
    F: Fn() -> std::result::Result<(), String> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.0
    }

    fn check(&self) -> std::result::Result<(), String> {
        (self.1)()
    }
}

/// The watchdog loop.
pub struct Watchdog {
    notifier: Notifier,
    interval: Duration,
    checks: Vec<Arc<dyn HealthCheck>>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("notifier", &self.notifier)
            .field("interval", &self.interval)
            .field(
                "checks",
                &self
                    .checks
                    .iter()
                    .map(|c| c.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Watchdog {
    /// A watchdog for `timeout` (refused when `<= 1 s`), pinging at `timeout / 2`.
    pub fn new(notifier: Notifier, timeout: Duration) -> Result<Self> {
        Ok(Watchdog {
            notifier,
            interval: ping_interval(timeout)?,
            checks: Vec::new(),
        })
    }

    /// From the process environment: `Ok(None)` when the unit has no watchdog ("Systemd
    /// watchdog is not enabled"); errors as the kubelet's `configure watchdog`.
    pub fn from_env() -> Result<Option<Self>> {
        let Some(timeout) = watchdog_timeout(|k| std::env::var(k).ok(), std::process::id())? else {
            tracing::info!("Systemd watchdog is not enabled");
            return Ok(None);
        };
        Ok(Some(Watchdog::new(Notifier::from_env()?, timeout)?))
    }

    /// The ping interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Registers a health check (all must pass before each ping).
    pub fn add_check(&mut self, check: Arc<dyn HealthCheck>) {
        self.checks.push(check);
    }

    fn healthy(&self) -> bool {
        let mut ok = true;
        for c in &self.checks {
            if let Err(e) = c.check() {
                tracing::info!(check = c.name(), error = %e, "health check failed");
                ok = false;
            }
        }
        ok
    }

    /// Sends `WATCHDOG=1` with the kubelet's retry (1 s, factor 2, jitter 0.1, 2 steps).
    async fn ping(&self) -> Result<()> {
        let mut wait = Duration::from_secs(1);
        let mut last = self.notifier.notify(&[NotifyState::Watchdog]);
        for _ in 1..2 {
            if last.is_ok() {
                break;
            }
            tokio::time::sleep(crate::lease::jitter(wait, 0.1)).await;
            wait *= 2;
            last = self.notifier.notify(&[NotifyState::Watchdog]);
        }
        last
    }

    /// Pings every interval (first ping at once) until `shutdown`, skipping a ping whenever a
    /// health check fails. Never returns early on errors.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tracing::info!(interval = ?self.interval, "Starting systemd watchdog with interval");
        tokio::pin!(shutdown);
        loop {
            if self.healthy() {
                if let Err(e) = self.ping().await {
                    tracing::error!(error = %e, "Failed to notify systemd watchdog");
                }
            } else {
                tracing::info!(
                    "Do not notify watchdog this iteration as the kubelet is reportedly not healthy"
                );
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn timeout_from_env() {
        assert_eq!(watchdog_timeout(env(&[]), 7).unwrap(), None);
        assert_eq!(
            watchdog_timeout(env(&[("WATCHDOG_USEC", "30000000")]), 7).unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_timeout(
                env(&[("WATCHDOG_USEC", "30000000"), ("WATCHDOG_PID", "7")]),
                7
            )
            .unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_timeout(
                env(&[("WATCHDOG_USEC", "30000000"), ("WATCHDOG_PID", "8")]),
                7
            )
            .unwrap(),
            None
        );
        let e = watchdog_timeout(env(&[("WATCHDOG_USEC", "abc")]), 7)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("configure watchdog: WATCHDOG_USEC=\"abc\""),
            "{e}"
        );
        assert!(watchdog_timeout(env(&[("WATCHDOG_USEC", "0")]), 7).is_err());
        assert!(watchdog_timeout(env(&[("WATCHDOG_USEC", "-5")]), 7).is_err());
    }

    #[test]
    fn one_second_is_refused() {
        let e = ping_interval(Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.to_string(), "configure watchdog timeout too small: 1s");
        assert!(ping_interval(Duration::from_millis(500)).is_err());
        assert_eq!(
            ping_interval(Duration::from_millis(1001)).unwrap(),
            Duration::from_micros(500_500)
        );
        assert_eq!(
            ping_interval(Duration::from_secs(30)).unwrap(),
            Duration::from_secs(15)
        );
    }
}
