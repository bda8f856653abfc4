//! Server-side state of the HTTPS door, all in memory: browser sessions, half-finished logins
//! (password accepted, second factor pending), per-token vault sessions and open resumable uploads.
//! Cookies carry only a random 256-bit handle; the server keeps its SHA-256, so a leaked memory
//! dump or log line of the table does not yield usable cookies. A restart logs everyone out, which
//! is the safe direction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use lockbox_vault::auth::PendingLogin;
use lockbox_vault::mfa::TotpEnrollment;
use lockbox_vault::{Principal, Session, Vault};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::server::WebConfig;
use crate::uploads::UploadTable;

pub const SESSION_COOKIE: &str = "__Host-lockbox-session";
pub const LOGIN_COOKIE: &str = "__Host-lockbox-login";

/// Browser sessions kept at once; beyond this the least recently used is dropped, so a login loop
/// cannot grow memory without bound.
const MAX_SESSIONS: usize = 10_000;
/// Logins waiting for their second factor.
const MAX_PENDING: usize = 10_000;
/// How long the second-factor step may take after the password was accepted.
pub const PENDING_LOGIN_TTL: Duration = Duration::from_secs(5 * 60);
/// A token's vault session is kept this long after its last request, so a script's burst of
/// requests is one session in the audit log, not one per request.
const TOKEN_SESSION_IDLE: Duration = Duration::from_secs(5 * 60);
const REAP_EVERY: Duration = Duration::from_secs(30);

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn random_handle() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The table key for a cookie value; `None` for anything that is not the shape we issue.
fn handle_key(handle: &str) -> Option<[u8; 32]> {
    if handle.len() != 43 {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(handle)
        .ok()?;
    if raw.len() != 32 {
        return None;
    }
    Some(Sha256::digest(&raw).into())
}

pub struct WebSession {
    /// Shown to admins in the sessions list; derived from the handle's hash, so it cannot be
    /// turned back into a cookie.
    pub public_id: String,
    pub principal: Principal,
    pub vault_session: Arc<Session>,
    pub csrf: String,
    pub created: Instant,
    pub created_unix: i64,
    last_seen: Mutex<Instant>,
    /// Recovery codes generated at enrolment, shown once on the next page and then forgotten.
    pub fresh_recovery_codes: Mutex<Option<Vec<String>>>,
}

impl WebSession {
    pub fn last_seen(&self) -> Instant {
        *self.last_seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct PendingEntry {
    pub pending: PendingLogin,
    pub csrf: String,
    pub created: Instant,
    /// The secret being enrolled, shown on the enrolment page until confirmed.
    pub enrollment: Mutex<Option<TotpEnrollment>>,
}

pub struct TokenSession {
    pub vault_session: Arc<Session>,
    last_used: Mutex<Instant>,
}

pub struct AppInner {
    pub vault: Vault,
    pub config: WebConfig,
    sessions: Mutex<HashMap<[u8; 32], Arc<WebSession>>>,
    pending: Mutex<HashMap<[u8; 32], Arc<PendingEntry>>>,
    tokens: Mutex<HashMap<String, Arc<TokenSession>>>,
    pub uploads: UploadTable,
    /// The exposure report engine, when the binary provides one.
    pub exposure: Option<crate::exposure::SharedRunner>,
    /// Upload bodies being received right now (a graceful shutdown waits for them).
    pub transfers: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts one upload body in flight while alive.
pub struct TransferGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for TransferGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[derive(Clone)]
pub struct AppState(pub Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AppState {
    pub fn new(
        vault: Vault,
        config: WebConfig,
        exposure: Option<crate::exposure::SharedRunner>,
        transfers: Arc<std::sync::atomic::AtomicUsize>,
    ) -> AppState {
        AppState(Arc::new(AppInner {
            vault,
            config,
            sessions: Mutex::default(),
            pending: Mutex::default(),
            tokens: Mutex::default(),
            uploads: UploadTable::default(),
            exposure,
            transfers,
        }))
    }

    /// Marks an upload body as being received until the guard drops.
    pub fn transfer_started(&self) -> TransferGuard {
        self.transfers
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        TransferGuard(self.transfers.clone())
    }

    /// Creates the browser session for an accepted login; returns the cookie value.
    pub fn create_session(
        &self,
        principal: Principal,
        vault_session: Session,
        fresh_recovery_codes: Option<Vec<String>>,
    ) -> (String, Arc<WebSession>) {
        let handle = random_handle();
        let key = handle_key(&handle).unwrap_or_default();
        let session = Arc::new(WebSession {
            public_id: hex::encode(key.get(..8).unwrap_or_default()),
            principal,
            vault_session: Arc::new(vault_session),
            csrf: random_handle(),
            created: Instant::now(),
            created_unix: unix_now(),
            last_seen: Mutex::new(Instant::now()),
            fresh_recovery_codes: Mutex::new(fresh_recovery_codes),
        });
        let evicted = {
            let mut map = lock(&self.sessions);
            let evicted = if map.len() >= MAX_SESSIONS {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen())
                    .map(|(k, _)| *k);
                oldest.and_then(|k| map.remove(&k))
            } else {
                None
            };
            map.insert(key, session.clone());
            evicted
        };
        if let Some(old) = evicted {
            old.vault_session
                .end(serde_json::json!({"reason": "evicted: too many sessions"}));
        }
        (handle, session)
    }

    /// The live session behind a cookie, after the idle and absolute timeouts. Touches it.
    pub fn session(&self, handle: &str) -> Option<Arc<WebSession>> {
        let key = handle_key(handle)?;
        let found = lock(&self.sessions).get(&key).cloned()?;
        let now = Instant::now();
        let idle = now.duration_since(found.last_seen()) > self.config.idle_timeout;
        let old = now.duration_since(found.created) > self.config.absolute_timeout;
        if idle || old {
            self.end_session_key(
                &key,
                if idle {
                    "idle timeout"
                } else {
                    "absolute timeout"
                },
            );
            return None;
        }
        *lock(&found.last_seen) = now;
        Some(found)
    }

    fn end_session_key(&self, key: &[u8; 32], reason: &str) {
        let removed = lock(&self.sessions).remove(key);
        if let Some(s) = removed {
            s.vault_session.end(serde_json::json!({ "reason": reason }));
        }
    }

    pub fn logout(&self, handle: &str) {
        if let Some(key) = handle_key(handle) {
            self.end_session_key(&key, "logout");
        }
    }

    /// Every live browser session, for the admin view.
    pub fn browser_sessions(&self) -> Vec<Arc<WebSession>> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Ends every browser session of a user (after an admin disables them or resets their MFA).
    pub fn end_sessions_of(&self, user: &str, reason: &str) {
        let keys: Vec<[u8; 32]> = lock(&self.sessions)
            .iter()
            .filter(|(_, s)| s.principal.user_name() == user)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.end_session_key(&k, reason);
        }
    }

    /// Ends the browser session an admin picked by its `public_id`; `false` if it is gone already.
    pub fn end_session_by_public_id(&self, public_id: &str, reason: &str) -> bool {
        let key = lock(&self.sessions)
            .iter()
            .find(|(_, s)| s.public_id == public_id)
            .map(|(k, _)| *k);
        match key {
            Some(k) => {
                self.end_session_key(&k, reason);
                true
            }
            None => false,
        }
    }

    pub fn create_pending(&self, pending: PendingLogin) -> String {
        let handle = random_handle();
        let key = handle_key(&handle).unwrap_or_default();
        let entry = Arc::new(PendingEntry {
            pending,
            csrf: random_handle(),
            created: Instant::now(),
            enrollment: Mutex::new(None),
        });
        let mut map = lock(&self.pending);
        if map.len() >= MAX_PENDING {
            let oldest = map.iter().min_by_key(|(_, e)| e.created).map(|(k, _)| *k);
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(key, entry);
        handle
    }

    pub fn pending(&self, handle: &str) -> Option<Arc<PendingEntry>> {
        let key = handle_key(handle)?;
        let mut map = lock(&self.pending);
        let entry = map.get(&key).cloned()?;
        if entry.created.elapsed() > PENDING_LOGIN_TTL {
            map.remove(&key);
            return None;
        }
        Some(entry)
    }

    pub fn drop_pending(&self, handle: &str) {
        if let Some(key) = handle_key(handle) {
            lock(&self.pending).remove(&key);
        }
    }

    /// The vault session serving an API token, opened on its first request.
    pub fn token_session(
        &self,
        token_id: &str,
        principal: Principal,
    ) -> Result<Arc<Session>, lockbox_vault::VaultError> {
        if let Some(t) = lock(&self.tokens).get(token_id) {
            *lock(&t.last_used) = Instant::now();
            return Ok(t.vault_session.clone());
        }
        let session = Arc::new(self.vault.open_session(principal)?);
        let entry = Arc::new(TokenSession {
            vault_session: session.clone(),
            last_used: Mutex::new(Instant::now()),
        });
        let previous = lock(&self.tokens).insert(token_id.to_owned(), entry);
        if let Some(p) = previous {
            p.vault_session
                .end(serde_json::json!({"reason": "replaced"}));
        }
        Ok(session)
    }

    pub fn spawn_reaper(&self) {
        let weak = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REAP_EVERY);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let state = AppState(inner);
                let state2 = state.clone();
                // Ending sessions and interrupting uploads write to the database.
                let _ = tokio::task::spawn_blocking(move || state2.reap()).await;
            }
        });
    }

    fn reap(&self) {
        let now = Instant::now();
        let expired: Vec<[u8; 32]> = lock(&self.sessions)
            .iter()
            .filter(|(_, s)| {
                now.duration_since(s.last_seen()) > self.config.idle_timeout
                    || now.duration_since(s.created) > self.config.absolute_timeout
            })
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            self.end_session_key(&k, "timeout");
        }
        lock(&self.pending).retain(|_, e| now.duration_since(e.created) <= PENDING_LOGIN_TTL);
        let idle_tokens: Vec<Arc<TokenSession>> = {
            let mut map = lock(&self.tokens);
            let ids: Vec<String> = map
                .iter()
                .filter(|(_, t)| now.duration_since(*lock(&t.last_used)) > TOKEN_SESSION_IDLE)
                .map(|(k, _)| k.clone())
                .collect();
            ids.iter().filter_map(|k| map.remove(k)).collect()
        };
        for t in idle_tokens {
            t.vault_session
                .end(serde_json::json!({"reason": "token idle"}));
        }
        self.uploads.reap();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use lockbox_types::{Door, Role};
    use lockbox_vault::{AdminActor, Credential, LoginAttempt, Verdict};

    fn vault_with_user(dir: &std::path::Path) -> (Vault, Principal) {
        let (vault, _) = Vault::open(lockbox_vault::VaultConfig {
            data_dir: dir.join("data"),
            key_file: dir.join("master.key"),
            auth: lockbox_vault::AuthPolicy::default(),
            storage: Default::default(),
        })
        .unwrap();
        let actor = AdminActor::cli();
        vault.create_org(&actor, "acme").unwrap();
        vault
            .create_user(
                &actor,
                "acme",
                "alice",
                Role::Transfer,
                Some("correct-horse-battery-staple"),
            )
            .unwrap();
        // A single-factor verdict (SFTP door) is enough to exercise the session table.
        let Verdict::Accepted(p) = vault.authenticate(&LoginAttempt {
            user: "alice",
            credential: Credential::Password("correct-horse-battery-staple"),
            door: Door::Sftp,
            source: "127.0.0.1".parse().unwrap(),
        }) else {
            panic!("login refused")
        };
        (vault, p)
    }

    fn state(vault: Vault, idle_ms: u64, absolute_ms: u64) -> AppState {
        AppState::new(
            vault,
            WebConfig {
                idle_timeout: Duration::from_millis(idle_ms),
                absolute_timeout: Duration::from_millis(absolute_ms),
                ..WebConfig::default()
            },
            None,
            Default::default(),
        )
    }

    #[test]
    fn idle_and_absolute_timeouts_end_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, principal) = vault_with_user(dir.path());

        // Idle: a session used within the idle time lives on; one left alone ends.
        // Generous margins: the sleeps only need to be well under / over the timeouts on a busy host.
        let st = state(vault.clone(), 1_000, 60_000);
        let (handle, _) = st.create_session(
            principal.clone(),
            vault.open_session(principal.clone()).unwrap(),
            None,
        );
        std::thread::sleep(Duration::from_millis(600));
        assert!(
            st.session(&handle).is_some(),
            "touched within the idle time"
        );
        std::thread::sleep(Duration::from_millis(600));
        assert!(
            st.session(&handle).is_some(),
            "the previous touch restarted the idle clock"
        );
        std::thread::sleep(Duration::from_millis(1_500));
        assert!(st.session(&handle).is_none(), "idle session must end");
        assert!(st.browser_sessions().is_empty());

        // Absolute: touching does not extend it.
        let st = state(vault.clone(), 60_000, 1_500);
        let (handle, _) = st.create_session(
            principal.clone(),
            vault.open_session(principal.clone()).unwrap(),
            None,
        );
        assert!(st.session(&handle).is_some());
        std::thread::sleep(Duration::from_millis(400));
        assert!(st.session(&handle).is_some());
        std::thread::sleep(Duration::from_millis(1_600));
        assert!(
            st.session(&handle).is_none(),
            "absolute timeout must end the session"
        );

        // Both ends were recorded as the vault session's end.
        let mut out = Vec::new();
        vault.audit_export_jsonl(&mut out).unwrap();
        let log = String::from_utf8(out).unwrap();
        assert!(log.contains("idle timeout"), "{log}");
        assert!(log.contains("absolute timeout"), "{log}");
    }

    #[test]
    fn cookies_that_are_not_ours_find_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, principal) = vault_with_user(dir.path());
        let st = state(vault.clone(), 60_000, 60_000);
        let (handle, _) = st.create_session(
            principal.clone(),
            vault.open_session(principal).unwrap(),
            None,
        );
        assert!(st.session(&handle).is_some());
        let mut flipped = handle.clone().into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            flipped.as_str(),
            "",
            "x",
            &handle[..42],
            &format!("{handle}A"),
            &"A".repeat(43),
        ] {
            assert!(st.session(bad).is_none(), "{bad:?}");
        }
        st.logout(&handle);
        assert!(
            st.session(&handle).is_none(),
            "logged-out cookie must not work again"
        );
    }
}
