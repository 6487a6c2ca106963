//! The HTTP listener (docs/operations.md, "Connections"): accepts connections and serves them
//! with HTTP/1.1 under three limits, so idle or slow clients cannot starve the endpoint. A
//! client must send a request's headers within the header-read timeout; a connection on which
//! nothing moves (no byte read or written) for the idle timeout is closed; at most
//! `max_connections` are open at once, and a new connection beyond that closes the one that has
//! been quiet longest, so a flood of idle sockets never keeps `/health` from answering.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time a connection may stay without a byte in either direction.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// One open connection: when it last moved a byte (ms since the listener started), and how to
/// close it.
struct Open {
    last_active_ms: Arc<AtomicU64>,
    close: Arc<Notify>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, Open>,
}

impl Registry {
    /// Closes the connection that has been quiet longest.
    fn evict_quietest(&mut self) {
        let quietest = self
            .open
            .iter()
            .min_by_key(|(_, o)| o.last_active_ms.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        if let Some(id) = quietest.and_then(|id| self.open.remove(&id)) {
            id.close.notify_one();
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, then finish the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let started = Instant::now();
    let registry = Arc::new(Mutex::new(Registry::default()));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let last_active_ms = Arc::new(AtomicU64::new(started.elapsed().as_millis() as u64));
        let close = Arc::new(Notify::new());
        let id = {
            let Ok(mut reg) = registry.lock() else { break };
            while reg.open.len() >= limits.max_connections.max(1) {
                reg.evict_quietest();
            }
            reg.next_id += 1;
            let id = reg.next_id;
            reg.open.insert(
                id,
                Open {
                    last_active_ms: last_active_ms.clone(),
                    close: close.clone(),
                },
            );
            id
        };
        let io = TokioIo::new(IdleIo::new(
            stream,
            limits.idle_timeout,
            started,
            last_active_ms,
        ));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true)
            .serve_connection(io, TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        let registry = registry.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = conn => {}
                _ = close.notified() => {}
            }
            if let Ok(mut reg) = registry.lock() {
                reg.open.remove(&id);
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A TCP stream that fails its reads once nothing has moved for `idle`.
struct IdleIo {
    inner: TcpStream,
    idle: Duration,
    started: Instant,
    last_active_ms: Arc<AtomicU64>,
    timer: Pin<Box<Sleep>>,
}

impl IdleIo {
    fn new(inner: TcpStream, idle: Duration, started: Instant, last: Arc<AtomicU64>) -> Self {
        IdleIo {
            inner,
            idle,
            started,
            last_active_ms: last,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn touch(&self) {
        self.last_active_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_until(&self) -> Instant {
        self.started
            + Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed))
            + self.idle
    }
}

impl AsyncRead for IdleIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let until = self.idle_until();
                if Instant::now() >= until {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the connection was idle too long",
                    )));
                }
                self.timer.as_mut().reset(until);
                if self.timer.as_mut().poll(cx).is_ready() {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            if *n > 0 {
                self.touch();
            }
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            if *n > 0 {
                self.touch();
            }
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
