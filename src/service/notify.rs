//! The systemd notify protocol (`Type=notify`): `READY=1` once recovered, `WATCHDOG=1` every
//! half `WATCHDOG_USEC`, `STOPPING=1` on shutdown, `STATUS=` lines along the way. Without
//! `NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Ping the watchdog at half its period while `alive()` holds (the service answers), until
/// the task is aborted. Nothing to do when systemd set no watchdog.
pub fn spawn_watchdog(
    alive: impl Fn() -> bool + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled()?;
    let every = (period / 2).max(Duration::from_millis(10));
    tracing::info!(
        every_ms = every.as_millis() as u64,
        "pinging the systemd watchdog"
    );
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if alive() {
                send(&[NotifyState::Watchdog]);
            }
        }
    }))
}
