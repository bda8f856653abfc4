//! `lockbox serve`: opens (or on first run creates) the data directory, key file and SSH host key,
//! binds the listeners, says where everything is, and runs until interrupted.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use lockbox_types::Door;
use lockbox_vault::{Action, AuditEvent, Outcome, Vault};
use rand::RngCore;
use russh::keys::ssh_key::{private::Ed25519Keypair, LineEnding, PrivateKey};
use serde_json::json;

use crate::config::{Settings, DEFAULT_SFTP_LISTEN};

#[derive(Args)]
pub struct ServeArgs {
    /// SFTP listen address (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "LOCKBOX_SFTP_LISTEN")]
    sftp_listen: Option<String>,
    /// HTTPS listen address for the web UI and REST API (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "LOCKBOX_HTTPS_LISTEN")]
    https_listen: Option<String>,
    /// On SIGTERM or SIGINT, how long transfers in flight may take to finish before they are
    /// interrupted (kept as resumable uploads, audited).
    #[arg(long, env = "LOCKBOX_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace_secs: u64,
}

/// How long sessions get to record what they had open once told to stop.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Tells systemd (`Type=notify`) about our state, when started by it: `NOTIFY_SOCKET` names a
/// Unix datagram socket, `@` meaning the abstract namespace. Anything else is a no-op.
fn notify_systemd(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> std::io::Result<()> {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            sock.send_to(state.as_bytes(), &path)?;
        }
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// SIGTERM and SIGINT, caught from the moment this is made (before READY=1 is sent).
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    /// The name of the next SIGTERM or SIGINT.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Longest grace period honoured (a larger setting is capped, not an error at shutdown).
const MAX_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";
/// Blocking pool size: open uploads (at most `max_open_uploads`, 512 by default) each hold one thread,
/// and logins, metadata and reads need the rest.
const BLOCKING_THREADS: usize = 1024;
/// How long an interrupted upload may be resumed before it is discarded.
const STALE_UPLOAD_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Loads the SSH host key, creating it (0600) on first run. Clients pin it, so it must persist.
fn host_key(data_dir: &Path) -> Result<(PrivateKey, bool)> {
    let path = data_dir.join(HOST_KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read SSH host key {}", path.display()))?;
        let key = PrivateKey::from_openssh(text)
            .with_context(|| format!("invalid SSH host key {}", path.display()))?;
        // RSA private-key operations are exposed to the Marvin timing attack (RUSTSEC-2023-0071) in
        // the only available implementation, so the host key must not be RSA.
        if matches!(key.algorithm(), russh::keys::ssh_key::Algorithm::Rsa { .. }) {
            anyhow::bail!(
                "SSH host key {} is RSA, which Lockbox does not use (timing side channel in RSA signing); \
                 replace it with an Ed25519 or ECDSA key, or remove it to have one generated",
                path.display()
            );
        }
        return Ok((key, false));
    }
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let pem = key
        .to_openssh(LineEnding::LF)
        .context("cannot encode the SSH host key")?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create SSH host key {}", path.display()))?;
    f.write_all(pem.as_bytes())?;
    f.sync_all()?;
    Ok((key, true))
}

pub fn run(settings: Settings, args: ServeArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOCKBOX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,russh=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    // One server per data directory, and never during a key rotation: the lock is taken before
    // the key file is read, and held until exit.
    let vault_config = settings.vault_config();
    let fresh_dir = !vault_config.data_dir.exists();
    if fresh_dir {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&vault_config.data_dir)
            .with_context(|| {
                format!(
                    "cannot create data directory {}",
                    vault_config.data_dir.display()
                )
            })?;
    }
    let _lock = lockbox_vault::keys::DataDirLock::acquire(&vault_config.data_dir, "lockbox serve")?;
    let (vault, mut report) = Vault::open(vault_config)?;
    report.created_data_dir |= fresh_dir;
    let (key, created_host_key) = host_key(vault.data_dir())?;
    let listen = args
        .sftp_listen
        .or_else(|| settings.file.sftp.listen.clone())
        .unwrap_or_else(|| DEFAULT_SFTP_LISTEN.to_owned());
    let sftp_cfg = settings.sftp_config();
    let web_cfg = settings.web_config(args.https_listen)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let web = lockbox_web::WebServer::bind(vault.clone(), web_cfg)
            .await
            .context("cannot start the HTTPS door")?;
        let web = web.with_exposure(std::sync::Arc::new(crate::web_exposure::WebExposure::new(vault.clone())));
        let web_addr = web.local_addr()?;
        let cert = web.certificate().clone();
        if report.created_data_dir || report.created_key_file || created_host_key {
            eprintln!("lockbox: first run: created data directory {}", vault.data_dir().display());
            eprintln!("lockbox: key-encryption key: {} (keep it safe and apart from the data; back it up separately)", vault.key_description());
            eprintln!("lockbox: next: lockbox org create NAME; lockbox user create --org NAME USER --password-stdin; lockbox key add USER KEY.pub");
        }
        eprintln!("lockbox: data directory {}, metadata {}", vault.data_dir().display(), vault.database_path().display());
        if cert.generated {
            eprintln!("lockbox: generated a self-signed HTTPS certificate {} (configure [https] cert_file/key_file for your own)", cert.cert_file.display());
        }
        eprintln!("lockbox: https certificate SHA-256 fingerprint {}", cert.sha256_fingerprint);
        eprintln!("lockbox: https listening on https://{web_addr}");
        eprintln!("lockbox: sftp listening on {addr}");
        let v = vault.clone();
        tokio::task::spawn_blocking(move || {
            v.record_quietly(
                AuditEvent::new(Door::Cli, Action::ServerStarted, Outcome::Ok)
                    .actor("lockbox", "")
                    .detail(json!({"sftp": addr.to_string(), "https": web_addr.to_string(), "version": env!("CARGO_PKG_VERSION")})),
            )
        })
        .await?;
        // Interrupted uploads stay resumable for a week, then their ciphertext and keys are destroyed.
        let v = vault.clone();
        tokio::spawn(async move {
            loop {
                let v2 = v.clone();
                match tokio::task::spawn_blocking(move || v2.expire_stale_uploads(STALE_UPLOAD_AGE)).await {
                    Ok(Ok(n)) if n > 0 => tracing::info!(removed = n, "expired abandoned uploads"),
                    Ok(Err(e)) => tracing::error!(error = %e, "expiring abandoned uploads failed"),
                    _ => {}
                }
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        });
        // Shutdown in two steps: `draining` stops the listeners (sessions and requests in flight
        // go on); `stop` ends every SFTP session and interrupts idle HTTPS uploads, which keeps
        // what arrived as resumable uploads and audits it.
        let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let door = lockbox_sftp::DoorControl::new(sftp_cfg.max_open_uploads, stop_rx.clone());
        let web_transfers = web.transfers();
        let mut signals = ShutdownSignals::install()?;
        let mut sftp_task = tokio::spawn(lockbox_sftp::serve(vault.clone(), listener, key, sftp_cfg, door.clone(), drain_rx.clone()));
        let mut web_task = tokio::spawn(web.run(drain_rx, stop_rx));
        notify_systemd("READY=1");
        let why = tokio::select! {
            r = &mut sftp_task => {
                r.context("SFTP listener panicked")?.context("SFTP listener failed")?;
                anyhow::bail!("SFTP listener ended")
            }
            r = &mut web_task => {
                r.context("HTTPS listener panicked")?.context("HTTPS listener failed")?;
                anyhow::bail!("HTTPS listener ended")
            }
            s = signals.next() => s,
        };
        notify_systemd("STOPPING=1");
        let grace = std::time::Duration::from_secs(args.shutdown_grace_secs).min(MAX_GRACE);
        let busy = || door.open_files() + web_transfers.load(std::sync::atomic::Ordering::Acquire);
        eprintln!(
            "lockbox: {why}: shutting down; accepting no new connections; {} transfer(s) in flight get up to {} s to finish",
            busy(),
            grace.as_secs()
        );
        let _ = drain_tx.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let n = busy();
            if n == 0 {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    eprintln!("lockbox: grace period over: interrupting {n} transfer(s) (uploads are kept, resumable)");
                    break;
                }
                _ = signals.next() => {
                    eprintln!("lockbox: second signal: interrupting {n} transfer(s) now (uploads are kept, resumable)");
                    break;
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            }
        }
        let interrupted = busy();
        let _ = stop_tx.send(true);
        let stop_deadline = tokio::time::Instant::now() + STOP_WAIT;
        while (door.sessions() > 0 || web_transfers.load(std::sync::atomic::Ordering::Acquire) > 0)
            && tokio::time::Instant::now() < stop_deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let v = vault.clone();
        let left = door.sessions();
        tokio::task::spawn_blocking(move || {
            v.record_quietly(
                AuditEvent::new(Door::Cli, Action::ServerStopped, Outcome::Ok)
                    .actor("lockbox", "")
                    .detail(json!({"signal": why, "interrupted_transfers": interrupted, "sessions_not_ended": left})),
            )
        })
        .await?;
        eprintln!("lockbox: stopped");
        Ok(())
    })?;
    // Tasks still running (idle connections) are dropped; blocking work gets a moment to finish.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(())
}
