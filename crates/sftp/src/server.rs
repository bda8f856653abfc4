//! The SSH side of the SFTP door: accepting connections within limits, authenticating through the
//! vault's verdict, and starting an SFTP engine on the `sftp` subsystem. Nothing else is offered: no
//! shell, no exec (so no legacy scp, which would mean running a command), no forwarding.
//!
//! When the user's organization requires a second factor on SFTP password logins, a right password
//! is answered with "partial success, continue with keyboard-interactive", and the code typed at
//! that prompt goes to `Vault::complete_second_factor`; the door only carries the vault's
//! `PendingLogin` between the two requests.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lockbox_audit::{Action, Event, Outcome};
use lockbox_types::Door;
use lockbox_vault::{Credential, LoginAttempt, PendingLogin, Principal, Vault, Verdict};
use russh::keys::ssh_key::{Algorithm, EcdsaCurve, HashAlg, PrivateKey};
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, MethodKind, MethodSet, Preferred};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

use crate::engine::{self, DoorControl};

/// Keyboard-interactive code answers allowed on one connection. Each wrong one already counts toward
/// the account lockout; this only stops one connection from cycling password + code rounds.
const MAX_CODE_ATTEMPTS: usize = 3;
/// Longest code answer passed to the vault (a TOTP code is 6 digits, a recovery code 11
/// characters); anything longer is simply wrong, so the rest is not worth copying.
const MAX_CODE_BYTES: usize = 64;
/// What the keyboard-interactive prompt says; not echoed. Clients show it as-is (OpenSSH prefixes
/// `(user@host)`), and scripts answering through SSH_ASKPASS match on it.
const CODE_PROMPT: &str = "Verification code (authenticator app): ";
/// Session channels one connection may open over its life (OpenSSH's `MaxSessions` default), each
/// an independent SFTP session of the same login: ControlMaster multiplexing and clients that open
/// a second channel for a parallel transfer need more than one. Every per-session bound holds per
/// channel.
pub const MAX_SESSION_CHANNELS: usize = 10;

/// Methods a client may go on with after a password that still owes its second factor.
fn second_factor_methods() -> MethodSet {
    MethodSet::from(&[MethodKind::KeyboardInteractive][..])
}

/// Methods a client may start over with after a failed second factor.
fn first_factor_methods() -> MethodSet {
    MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..])
}

/// Connection and timing limits of the SFTP listener.
#[derive(Debug, Clone)]
pub struct SftpConfig {
    /// All connections at once; beyond this new connections are closed at accept.
    pub max_connections: usize,
    /// Connections that have not logged in yet, in total and per source address. When a limit is
    /// reached the *oldest* unauthenticated connection is dropped, so idle connections can never
    /// lock out a real client that arrives later.
    pub max_unauthenticated: usize,
    pub max_unauthenticated_per_ip: usize,
    /// Time allowed from connect to successful login (OpenSSH's LoginGraceTime).
    pub login_grace: Duration,
    /// Idle time after which an authenticated connection is closed.
    pub idle_timeout: Duration,
    /// Uploads open at once on the whole server. Each holds a thread of the blocking pool, which the
    /// binary sizes to leave room for everything else (see `BLOCKING_THREADS`).
    pub max_open_uploads: usize,
    /// Failed authentication requests allowed on one connection.
    pub max_auth_attempts: usize,
    /// Constant time every rejected authentication takes, so timing does not reveal why.
    pub auth_rejection_time: Duration,
}

impl Default for SftpConfig {
    fn default() -> Self {
        SftpConfig {
            max_connections: 2048,
            max_unauthenticated: 256,
            max_unauthenticated_per_ip: 32,
            login_grace: Duration::from_secs(30),
            max_open_uploads: 512,
            idle_timeout: Duration::from_secs(15 * 60),
            max_auth_attempts: 6,
            auth_rejection_time: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    #[error("SSH error: {0}")]
    Ssh(#[from] russh::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The russh settings we stand behind: modern key exchange with strict-kex (from russh's safe
/// defaults), AES-GCM first (fastest with AES-NI), no compression, no SHA-1 signatures.
pub fn russh_config(host_key: PrivateKey, cfg: &SftpConfig) -> russh::server::Config {
    let preferred = Preferred {
        cipher: std::borrow::Cow::Borrowed(&[
            russh::cipher::AES_128_GCM,
            russh::cipher::AES_256_GCM,
            russh::cipher::CHACHA20_POLY1305,
            russh::cipher::AES_256_CTR,
            russh::cipher::AES_128_CTR,
        ]),
        key: std::borrow::Cow::Borrowed(&[
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ]),
        compression: std::borrow::Cow::Borrowed(&[russh::compression::NONE]),
        ..Preferred::default()
    };
    russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-Lockbox".into()),
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
        auth_rejection_time: cfg.auth_rejection_time,
        // OpenSSH clients open with a "none" probe; answering it at once costs nothing.
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        preferred,
        max_auth_attempts: cfg.max_auth_attempts,
        inactivity_timeout: Some(cfg.idle_timeout),
        keepalive_interval: Some(Duration::from_secs(60)),
        nodelay: true,
        ..Default::default()
    }
}

/// Unauthenticated connections, oldest first, so the oldest can be evicted.
#[derive(Default)]
struct PreAuth {
    queue: Mutex<VecDeque<(u64, IpAddr, Arc<Notify>)>>,
}

impl PreAuth {
    fn admit(&self, id: u64, ip: IpAddr, evict: Arc<Notify>, cfg: &SftpConfig) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let same_ip = q.iter().filter(|(_, i, _)| *i == ip).count();
        if same_ip >= cfg.max_unauthenticated_per_ip {
            if let Some(pos) = q.iter().position(|(_, i, _)| *i == ip) {
                if let Some((_, _, n)) = q.remove(pos) {
                    n.notify_one();
                }
            }
        }
        if q.len() >= cfg.max_unauthenticated {
            if let Some((_, _, n)) = q.pop_front() {
                n.notify_one();
            }
        }
        q.push_back((id, ip, evict));
    }

    fn leave(&self, id: u64) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.retain(|(i, _, _)| *i != id);
    }
}

struct Shared {
    vault: Vault,
    /// Open uploads server-wide (each holds a blocking thread, see `engine`), open files, and the
    /// signal that ends every session at shutdown.
    control: DoorControl,
    cfg: SftpConfig,
    preauth: PreAuth,
    next_id: AtomicU64,
}

/// Runs the SFTP listener until `draining` turns true (then no connection is accepted any more;
/// those open go on until `control.stop`, which ends their sessions) or the future is dropped.
/// `control` is made with [`DoorControl::new`] from `cfg.max_open_uploads`.
pub async fn serve(
    vault: Vault,
    listener: TcpListener,
    host_key: PrivateKey,
    cfg: SftpConfig,
    control: DoorControl,
    mut draining: tokio::sync::watch::Receiver<bool>,
) -> Result<(), SftpError> {
    let config = Arc::new(russh_config(host_key, &cfg));
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let shared = Arc::new(Shared {
        control,
        vault,
        cfg,
        preauth: PreAuth::default(),
        next_id: AtomicU64::new(1),
    });
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            r = async { draining.wait_for(|d| *d).await.is_ok() } => {
                if r {
                    tracing::info!("sftp: no longer accepting connections");
                    return Ok(());
                }
                // The sender is gone without draining: keep serving.
                std::future::pending().await
            }
        };
        let (socket, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Running out of file descriptors must not end the server; wait and retry.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing new connection");
            drop(socket);
            continue;
        };
        // Registered here, in accept order, so "evict the oldest" really means the oldest.
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let evict = Arc::new(Notify::new());
        shared
            .preauth
            .admit(id, peer.ip(), evict.clone(), &shared.cfg);
        let shared = shared.clone();
        let config = config.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = socket.set_nodelay(true) {
                tracing::debug!(error = %e, "set_nodelay failed");
            }
            connection(shared, config, socket, peer, id, evict).await;
        });
    }
}

async fn connection(
    shared: Arc<Shared>,
    config: Arc<russh::server::Config>,
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
    id: u64,
    evict: Arc<Notify>,
) {
    let authed = Arc::new(AtomicBool::new(false));
    let handler = SshHandler {
        shared: shared.clone(),
        conn_id: id,
        peer,
        authed: authed.clone(),
        principal: None,
        pending: None,
        code_attempts: 0,
        channels: HashMap::new(),
        session_channels: Arc::new(AtomicUsize::new(0)),
    };
    let grace = tokio::time::sleep(shared.cfg.login_grace);
    tokio::pin!(grace);
    // The version exchange is pre-auth too: a peer that never sends its identification line is
    // subject to the same grace time and eviction.
    let started = tokio::select! {
        r = russh::server::run_stream(config, socket, handler) => r,
        _ = &mut grace => {
            shared.preauth.leave(id);
            return;
        }
        _ = evict.notified() => {
            shared.preauth.leave(id);
            return;
        }
    };
    let session = match started {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "SSH handshake failed");
            shared.preauth.leave(id);
            return;
        }
    };
    let handle = session.handle();
    tokio::pin!(session);
    let mut grace_over = false;
    loop {
        tokio::select! {
            r = &mut session => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "SSH session ended with an error");
                }
                break;
            }
            _ = &mut grace, if !grace_over => {
                grace_over = true;
                if !authed.load(Ordering::Acquire) {
                    let _ = handle.disconnect(russh::Disconnect::ByApplication, "login time exceeded".into(), "en".into()).await;
                    break;
                }
            }
            _ = evict.notified() => {
                if !authed.load(Ordering::Acquire) {
                    let _ = handle.disconnect(russh::Disconnect::TooManyConnections, "too many unauthenticated connections".into(), "en".into()).await;
                    break;
                }
            }
        }
    }
    shared.preauth.leave(id);
}

struct SshHandler {
    shared: Arc<Shared>,
    conn_id: u64,
    peer: SocketAddr,
    authed: Arc<AtomicBool>,
    principal: Option<Principal>,
    /// A right password still owing its second factor (organization policy), kept until the
    /// keyboard-interactive answer arrives. Dropped on any failure, so the client must start over
    /// with the password; it also expires in the vault (`PENDING_LOGIN_TTL`) and with the login grace.
    pending: Option<PendingLogin>,
    /// Keyboard-interactive answers received on this connection (bounded by `MAX_CODE_ATTEMPTS`).
    code_attempts: usize,
    /// Session channels waiting for their subsystem request.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Session channels open on this connection (at most `MAX_SESSION_CHANNELS`), shared with
    /// each channel's SFTP task, which gives its place back when it ends.
    session_channels: Arc<AtomicUsize>,
}

impl SshHandler {
    async fn verdict(&mut self, user: &str, credential: OwnedCredential) -> Auth {
        let vault = self.shared.vault.clone();
        let user = user.to_owned();
        let source = self.peer.ip();
        let verdict = tokio::task::spawn_blocking(move || {
            let credential = match &credential {
                OwnedCredential::Password(p) => Credential::Password(p),
                OwnedCredential::Key(k) => Credential::VerifiedPublicKey(k),
            };
            vault.authenticate(&LoginAttempt {
                user: &user,
                credential,
                door: Door::Sftp,
                source,
            })
        })
        .await;
        match verdict {
            Ok(Verdict::Accepted(p)) => {
                self.principal = Some(p);
                Auth::Accept
            }
            // The vault refuses unenrolled users on this door; checked again so a pending login
            // that could never finish here is not kept. Once the connection has used up its code
            // attempts, a right password leads nowhere either.
            Ok(Verdict::SecondFactorRequired(p))
                if p.enrolled() && self.code_attempts < MAX_CODE_ATTEMPTS =>
            {
                self.pending = Some(p);
                // Partial success: the password was right, keyboard-interactive must follow.
                Auth::Reject {
                    proceed_with_methods: Some(second_factor_methods()),
                    partial_success: true,
                }
            }
            _ => Auth::reject(),
        }
    }

    /// Checks a keyboard-interactive answer against the pending login. Every outcome but success
    /// drops the pending login (taken here), so a client cannot keep guessing on one password.
    async fn second_factor(
        &mut self,
        user: &str,
        mut response: russh::server::Response<'_>,
    ) -> Auth {
        let start_over = Auth::Reject {
            proceed_with_methods: Some(first_factor_methods()),
            partial_success: false,
        };
        let Some(pending) = self.pending.take() else {
            return start_over;
        };
        self.code_attempts += 1;
        // russh binds the user of the keyboard-interactive request; it must be the user whose
        // password was checked, or a right password for one account would open another.
        if user != pending.user_name() {
            return start_over;
        }
        // One prompt was sent, so exactly one answer is expected; a missing answer is an empty
        // (wrong) code, which the vault records and counts like any other.
        let answer = response.next().unwrap_or_default();
        if response.next().is_some() {
            return start_over;
        }
        let code =
            String::from_utf8_lossy(answer.get(..MAX_CODE_BYTES).unwrap_or(&answer)).into_owned();
        let vault = self.shared.vault.clone();
        let verdict =
            tokio::task::spawn_blocking(move || vault.complete_second_factor(&pending, &code))
                .await;
        match verdict {
            Ok(Verdict::Accepted(p)) => {
                self.principal = Some(p);
                Auth::Accept
            }
            _ => start_over,
        }
    }
}

/// A session channel's place in its connection's `MAX_SESSION_CHANNELS`.
struct ChannelPlace(Arc<AtomicUsize>);

impl Drop for ChannelPlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

enum OwnedCredential {
    Password(String),
    Key(russh::keys::PublicKey),
}

/// RSA signatures must use SHA-2; `ssh-rsa` means SHA-1.
fn acceptable_algorithm(alg: &Algorithm) -> bool {
    !matches!(alg, Algorithm::Rsa { hash: None })
}

impl Handler for SshHandler {
    type Error = SftpError;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::Reject {
            proceed_with_methods: Some(first_factor_methods()),
            partial_success: false,
        })
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        // A new password attempt replaces any earlier one that was waiting for its code.
        self.pending = None;
        Ok(
            match self
                .verdict(user, OwnedCredential::Password(password.to_owned()))
                .await
            {
                // russh drops `password` from the methods it offers after a plain rejection, so
                // a typo would end the login; keep offering it. `max_auth_attempts` (6, like
                // OpenSSH's MaxAuthTries) still ends the connection, and every failure was counted
                // by the vault toward the account lockout and the source throttle.
                Auth::Reject {
                    proceed_with_methods: None,
                    partial_success: false,
                } => Auth::Reject {
                    proceed_with_methods: Some(first_factor_methods()),
                    partial_success: false,
                },
                other => other,
            },
        )
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if !acceptable_algorithm(offer.algorithm) {
            return Ok(Auth::reject());
        }
        let vault = self.shared.vault.clone();
        let user = user.to_owned();
        let key = offer.public_key.clone();
        let known = tokio::task::spawn_blocking(move || vault.key_is_registered(&user, &key))
            .await
            .unwrap_or(false);
        Ok(if known { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !acceptable_algorithm(key.algorithm) {
            return Ok(Auth::reject());
        }
        Ok(self
            .verdict(user, OwnedCredential::Key(key.public_key.clone()))
            .await)
    }

    /// Only the second step of a password login under the organization policy: without a pending
    /// login there is nothing to ask (keyboard-interactive is never a first factor here).
    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        if let Some(response) = response {
            return Ok(self.second_factor(user, response).await);
        }
        let asks_for_pending = self.pending.as_ref().is_some_and(|p| p.user_name() == user);
        if !asks_for_pending || self.code_attempts >= MAX_CODE_ATTEMPTS {
            self.pending = None;
            return Ok(Auth::Reject {
                proceed_with_methods: Some(first_factor_methods()),
                partial_success: false,
            });
        }
        Ok(Auth::Partial {
            name: "Lockbox two-step verification".into(),
            instructions: "".into(),
            prompts: std::borrow::Cow::Owned(vec![(CODE_PROMPT.into(), false)]),
        })
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        self.authed.store(true, Ordering::Release);
        self.shared.preauth.leave(self.conn_id);
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Bounded, so one connection multiplies the per-session memory bound at most
        // `MAX_SESSION_CHANNELS` times. A channel opened but given no subsystem yet counts too.
        let open = self.session_channels.load(Ordering::Acquire);
        if self.principal.is_none() || open >= MAX_SESSION_CHANNELS {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        self.session_channels.fetch_add(1, Ordering::AcqRel);
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(ch) = self.channels.remove(&channel) else {
            return self.refuse_channel(channel, session);
        };
        let (Some(principal), "sftp") = (self.principal.clone(), name) else {
            self.channels.insert(channel, ch);
            return self.refuse_channel(channel, session);
        };
        let vault = self.shared.vault.clone();
        let control = self.shared.control.clone();
        let opened = tokio::task::spawn_blocking(move || vault.open_session(principal)).await;
        let vs = match opened {
            Ok(Ok(vs)) => vs,
            other => {
                // The client only sees its channel refused; the reason (the audit log cannot be
                // written, say) belongs in the server log.
                match other {
                    Ok(Err(e)) => {
                        tracing::error!(peer = %self.peer, error = %e, "cannot open an SFTP session")
                    }
                    _ => {
                        tracing::error!(peer = %self.peer, "cannot open an SFTP session: task failed")
                    }
                }
                self.channels.insert(channel, ch);
                return self.refuse_channel(channel, session);
            }
        };
        let vs = Arc::new(vs);
        // The channel's place now belongs to its SFTP task, given back when the session ends.
        let place = ChannelPlace(self.session_channels.clone());
        session.channel_success(channel)?;
        tokio::spawn(async move {
            let _place = place;
            let (mut read_half, write_half) = ch.split();
            let write_half = Arc::new(write_half);
            let writer = write_half.clone();
            let input = read_half.make_reader();
            engine::serve(vs, control, input, move |bytes| {
                let writer = writer.clone();
                async move { writer.data_bytes(bytes).await.is_ok() }
            })
            .await;
            // scp (and `ssh -s`) report the subsystem's exit status; 0 means the session ended normally.
            let _ = write_half.exit_status(0).await;
            let _ = write_half.eof().await;
            let _ = write_half.close().await;
        });
        Ok(())
    }

    /// A session channel closed before it asked for the subsystem gives its place back here (one
    /// running SFTP gives it back when its task ends).
    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.remove(&channel).is_some() {
            drop(ChannelPlace(self.session_channels.clone()));
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Legacy scp (`scp -O`) asks to run a command; Lockbox never runs commands.
        self.refuse_channel_request(channel, "exec", session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_channel_request(channel, "shell", session)
    }
}

impl SshHandler {
    fn refuse_channel_request(
        &mut self,
        channel: ChannelId,
        what: &str,
        session: &mut Session,
    ) -> Result<(), SftpError> {
        if let Some(p) = &self.principal {
            let vault = self.shared.vault.clone();
            let ev = Event::new(Door::Sftp, Action::AccessDenied, Outcome::Denied)
                .actor(p.user_name(), p.org_name())
                .source(self.peer.ip().to_string())
                .target(what.to_owned())
                .detail(json!({"reason": "only the sftp subsystem is offered"}));
            tokio::task::spawn_blocking(move || vault.record_quietly(ev));
        }
        self.refuse_channel(channel, session)
    }

    /// Refuses the request on a session channel and, when it is one still waiting for its
    /// subsystem, closes it. Closing makes russh forget the channel at once (the client's answering
    /// close is then ignored, so `channel_close` never runs for it), so its place among
    /// `MAX_SESSION_CHANNELS` is given back here; data the client still sends on it is discarded
    /// instead of filling a queue nobody reads and stalling the connection's other sessions.
    fn refuse_channel(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), SftpError> {
        session.channel_failure(channel)?;
        if self.channels.remove(&channel).is_some() {
            session.close(channel)?;
            drop(ChannelPlace(self.session_channels.clone()));
        }
        Ok(())
    }
}
