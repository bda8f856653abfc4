//! The listener: accepts TCP, caps connections, runs the TLS handshake under a deadline, and serves
//! HTTP/1.1 with bounded headers (ALPN offers only http/1.1; the HTTP/2 limits below bind clients that
//! speak it by prior knowledge). The peer's address comes from the socket only (never
//! from `Host`, `X-Forwarded-For` or any other header).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use lockbox_vault::Vault;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::error::WebError;
use crate::state::AppState;
use crate::tls::{self, CertificateReport};

pub const DEFAULT_HTTPS_LISTEN: &str = "127.0.0.1:8443";

/// Connections served at once; more wait in the kernel's backlog. Each costs a task and TLS state
/// (~50 KiB), so this bounds memory under a connection flood.
const MAX_CONNECTIONS: usize = 1024;
/// A TLS handshake must finish within this, or the socket is dropped (slowloris before TLS).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request line plus headers must arrive within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head (HTTP/1.1 buffer) and header list (HTTP/2). Browsers send a few KiB; 64 KiB
/// leaves room for long cookies without letting a peer pin megabytes per connection.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;
const MAX_H2_STREAMS: u32 = 64;

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

    /// Serves until the future is dropped.
    pub async fn run(self) -> Result<(), WebError> {
        let WebServer {
            listener,
            acceptor,
            vault,
            config,
            exposure,
            ..
        } = self;
        let state = AppState::new(vault, config, exposure);
        state.spawn_reaper();
        let router = crate::routes::router(state);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let permit = match slots.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return Ok(()),
            };
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "https accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
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
                    let mut req = req.map(Body::new);
                    req.extensions_mut().insert(PeerAddr(peer));
                    router.clone().oneshot(req)
                });
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .max_buf_size(MAX_HEADER_BYTES)
                    .max_headers(MAX_HEADERS);
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .max_header_list_size(MAX_HEADER_BYTES as u32)
                    .max_concurrent_streams(MAX_H2_STREAMS);
                if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                    tracing::debug!(%peer, error = %e, "https connection ended with an error");
                }
            });
        }
    }
}
