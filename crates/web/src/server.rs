//! The listener: accepts TCP, gives each connection a slot (global cap, per-source cap, fair share:
//! `connections`), runs the TLS handshake under a deadline, serves HTTP/1.1 only with bounded heads
//! and deadlines on bodies (`body_guard`), and closes with a lingering close so a peer still sending
//! reads our answer instead of a reset. The peer's address comes from the socket only (never from
//! `Host`, `X-Forwarded-For` or any other header).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use lockbox_vault::Vault;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::body_guard;
use crate::connections::{ConnectionTable, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE};
use crate::error::WebError;
use crate::state::AppState;
use crate::tls::{self, CertificateReport};

pub const DEFAULT_HTTPS_LISTEN: &str = "127.0.0.1:8443";

/// A TLS handshake must finish within this, or the socket is dropped (slowloris before TLS).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request line plus headers must arrive within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head (HTTP/1.1 buffer) and header list (HTTP/2). Browsers send a few KiB; 64 KiB
/// leaves room for long cookies without letting a peer pin megabytes per connection.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone)]
pub struct WebConfig {
    pub listen: String,
    /// An operator-provided certificate chain and private key (PEM); a self-signed pair is
    /// generated in the data directory otherwise.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// A browser session ends after this long without a request.
    pub idle_timeout: Duration,
    /// A browser session ends this long after login whatever its activity.
    pub absolute_timeout: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: DEFAULT_HTTPS_LISTEN.to_owned(),
            cert: None,
            // NIST SP 800-63B allows 30 min idle for AAL2; 15 is the common choice for PHI systems.
            idle_timeout: Duration::from_secs(15 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
        }
    }
}

/// The peer's socket address, inserted into every request by the listener.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

pub struct WebServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    vault: Vault,
    config: WebConfig,
    exposure: Option<crate::exposure::SharedRunner>,
    certificate: CertificateReport,
    transfers: Arc<AtomicUsize>,
}

impl WebServer {
    pub async fn bind(vault: Vault, config: WebConfig) -> Result<WebServer, WebError> {
        let (tls_config, certificate) = tls::load(
            vault.data_dir(),
            config
                .cert
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path())),
        )?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(WebError::io(format!("cannot listen on {}", config.listen)))?;
        Ok(WebServer {
            listener,
            acceptor: TlsAcceptor::from(tls_config),
            vault,
            config,
            exposure: None,
            certificate,
            transfers: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Enables the exposure report pages with the binary's report engine.
    pub fn with_exposure(mut self, runner: crate::exposure::SharedRunner) -> WebServer {
        self.exposure = Some(runner);
        self
    }

    pub fn local_addr(&self) -> Result<SocketAddr, WebError> {
        self.listener
            .local_addr()
            .map_err(WebError::io("cannot read the listening address"))
    }

    pub fn certificate(&self) -> &CertificateReport {
        &self.certificate
    }

    /// Upload bodies being received right now, on every connection.
    pub fn transfers(&self) -> Arc<AtomicUsize> {
        self.transfers.clone()
    }

    /// Serves until `draining` turns true (then accepts no more connections; requests in flight
    /// go on), or the future is dropped. When `stop` turns true, resumable uploads with no part in
    /// flight are interrupted (kept, resumable, audited).
    pub async fn run(
        self,
        mut draining: watch::Receiver<bool>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), WebError> {
        let WebServer {
            listener,
            acceptor,
            vault,
            config,
            exposure,
            transfers,
            ..
        } = self;
        let state = AppState::new(vault, config, exposure, transfers);
        state.spawn_reaper();
        {
            let state = state.clone();
            tokio::spawn(async move {
                if stop.wait_for(|s| *s).await.is_ok() {
                    let _ =
                        tokio::task::spawn_blocking(move || state.uploads.interrupt_all()).await;
                }
            });
        }
        let router = crate::routes::router(state);
        let connections = ConnectionTable::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_SOURCE);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                r = async { draining.wait_for(|d| *d).await.is_ok() } => {
                    if r {
                        tracing::info!("https: no longer accepting connections");
                        return Ok(());
                    }
                    std::future::pending().await
                }
            };
            let (tcp, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "https accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Decided before any TLS work, so a refused flood costs an accept and a close.
            let slot = match connections.admit(peer.ip()) {
                Ok(slot) => slot,
                Err(why) => {
                    tracing::debug!(%peer, ?why, "https connection refused");
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                // A second handle on the socket outlives hyper's, for the lingering close.
                let (tcp, linger) = match split_for_linger(tcp) {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "cannot duplicate the socket");
                        return;
                    }
                };
                tokio::select! {
                    () = serve_one(tcp, peer, acceptor, router) => {}
                    () = slot.evicted() => {
                        tracing::debug!(%peer, "https connection evicted for a newcomer (fair share)");
                    }
                }
                lingering_close(linger).await;
                drop(slot);
            });
        }
    }
}

/// One connection: the TLS handshake under its deadline, then HTTP/1.1 with bounded heads and
/// guarded bodies. HTTP/2 is not served (ALPN offers http/1.1 and the h1 codec refuses the h2
/// preface); turning it on would need the same per-connection limits for streams.
async fn serve_one(tcp: TcpStream, peer: SocketAddr, acceptor: TlsAcceptor, router: Router) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(|b| body_guard::with_idle_deadline(Body::new(b)));
        req.extensions_mut().insert(PeerAddr(peer));
        router.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!(%peer, error = %e, "https connection ended with an error");
    }
}

/// Two handles on one socket: the tokio stream hyper serves on, and a plain duplicate (not yet
/// registered with the reactor) that keeps the socket open after hyper drops its handle.
fn split_for_linger(tcp: TcpStream) -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let std = tcp.into_std()?;
    let linger = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, linger))
}

/// How long, how idle and how much a closing connection may still send us before it is cut.
const LINGER_TOTAL: Duration = Duration::from_secs(10);
const LINGER_IDLE: Duration = Duration::from_secs(2);
const LINGER_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Closes the way nginx's lingering close does. The server often answers before the peer has
/// finished sending (a 413 from the declared length, a 431 on an oversized head, a refused upload):
/// closing a socket with unread data makes the kernel send a reset, and the reset destroys the
/// answer in the peer's receive buffer before the client reads it (curl: "Send failure: Broken
/// pipe", never the status). So: send FIN after the answer, then read and discard what the peer
/// still sends until it closes, bounded in bytes and time.
async fn lingering_close(sock: std::net::TcpStream) {
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let Ok(mut sock) = TcpStream::from_std(sock) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + LINGER_TOTAL;
    let mut buf = vec![0u8; 64 * 1024];
    let mut drained = 0usize;
    while drained < LINGER_MAX_BYTES {
        let idle = tokio::time::Instant::now() + LINGER_IDLE;
        match tokio::time::timeout_at(deadline.min(idle), sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}
