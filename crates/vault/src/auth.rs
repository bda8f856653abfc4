//! Authentication as a pure verdict: one function takes a login attempt and returns Accepted (with a
//! `Principal` that only this module can create), Refused, or, for a password on the HTTPS door (and
//! on the SFTP door when the user's organization asks for it), SecondFactorRequired (with a
//! `PendingLogin` that only `mfa` can turn into a `Principal`). Every door
//! calls it; a session can only be opened with a `Principal`, so no door can mark a session logged in
//! on its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use lockbox_audit::{Action, Event, Outcome};
use lockbox_store::{now_unix, UserRow};
use lockbox_types::{Door, Role};
use russh::keys::ssh_key::{self, HashAlg, PublicKey};
use serde_json::json;

use crate::config::AuthPolicy;
use crate::error::{Result, VaultError};
use crate::tokens::TokenScopes;
use crate::Vault;

/// What the peer presented. A public key reaches here only after the door verified the peer's
/// signature with it (ownership proven); the vault decides whether that key belongs to the user.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    Password(&'a str),
    VerifiedPublicKey(&'a PublicKey),
    /// A whole API token (`lbx_<id>_<secret>`); the token names its user, `LoginAttempt::user` is
    /// only recorded. Valid on the HTTPS door only.
    ApiToken(&'a str),
}

pub struct LoginAttempt<'a> {
    pub user: &'a str,
    pub credential: Credential<'a>,
    pub door: Door,
    pub source: IpAddr,
}

/// An authenticated user. Fields are private and there is no public constructor: the only way to get
/// one is an accepted verdict.
#[derive(Debug, Clone)]
pub struct Principal {
    pub(crate) user: UserRow,
    pub(crate) door: Door,
    pub(crate) source: IpAddr,
    /// What an API token allows; `None` for an interactive login.
    pub(crate) scopes: Option<TokenScopes>,
}

impl Principal {
    pub fn user_name(&self) -> &str {
        &self.user.name
    }
    pub fn org_name(&self) -> &str {
        &self.user.org_name
    }
    pub fn role(&self) -> Role {
        self.user.role
    }
    /// The token's scopes if this login used an API token, `None` for an interactive login.
    pub fn scopes(&self) -> Option<TokenScopes> {
        self.scopes
    }
    pub fn door(&self) -> Door {
        self.door
    }
    pub fn source(&self) -> IpAddr {
        self.source
    }
}

/// A login whose password was right but whose second factor is still owed. Only `authenticate`
/// creates one; only `Vault::complete_second_factor` / `totp_confirm_enrollment` turn it into a
/// `Principal`, after re-checking the account. It expires after `mfa::PENDING_LOGIN_TTL`.
#[derive(Clone)]
pub struct PendingLogin {
    pub(crate) user: UserRow,
    pub(crate) door: Door,
    pub(crate) source: IpAddr,
    pub(crate) created: Instant,
    pub(crate) enrolled: bool,
    /// Codes tried on this pending login, shared by its clones (a door may hand copies to
    /// parallel requests); reserved atomically before a code is evaluated.
    pub(crate) codes_tried: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl PendingLogin {
    pub fn user_name(&self) -> &str {
        &self.user.name
    }
    pub fn org_name(&self) -> &str {
        &self.user.org_name
    }
    /// True if the user has an active TOTP (ask for a code); false means enrol first.
    pub fn enrolled(&self) -> bool {
        self.enrolled
    }
    pub fn created(&self) -> Instant {
        self.created
    }
    /// True once every code this pending login allows has been tried; the door should drop it and
    /// ask for the password again.
    pub fn codes_exhausted(&self) -> bool {
        self.codes_tried.load(std::sync::atomic::Ordering::SeqCst)
            >= crate::mfa::MAX_CODES_PER_PENDING_LOGIN
    }
}

// Hand-written so the password hash in the user row never reaches a log line.
impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("user", &self.user.name)
            .field("door", &self.door)
            .field("source", &self.source)
            .field("enrolled", &self.enrolled)
            .finish_non_exhaustive()
    }
}

/// Why a login was refused. For the audit log and server log only; the peer is told nothing more
/// than "refused", so it cannot learn which user names exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownUser,
    BadCredential,
    NoSuchKey,
    AccountLocked,
    AccountDisabled,
    SourceThrottled,
    /// Too many attempts from this source are being evaluated at once (its remaining failure
    /// budget or its share of the hashing slots); not counted as a failure.
    SourceBusy,
    AdminOnDataDoor,
    SecondFactorInvalid,
    SecondFactorNotEnrolled,
    /// An SFTP password login needs a second factor (organization policy) but the user has none;
    /// it can only be set up in the browser.
    SecondFactorSetupNeeded,
    /// The pending login is older than `mfa::PENDING_LOGIN_TTL`; start again with the password.
    SecondFactorExpired,
    /// This pending login has had its `mfa::MAX_CODES_PER_PENDING_LOGIN` codes; start again with
    /// the password.
    SecondFactorAttemptsExhausted,
    TokenInvalid,
    TokenExpired,
    TokenRevoked,
    TokenWrongDoor,
    Internal,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownUser => "unknown user",
            Refusal::BadCredential => "wrong password",
            Refusal::NoSuchKey => "key not registered for this user",
            Refusal::AccountLocked => "account locked after repeated failures",
            Refusal::AccountDisabled => "account disabled",
            Refusal::SourceThrottled => "source address throttled after repeated failures",
            Refusal::SourceBusy => "too many login attempts at once from this source address",
            Refusal::AdminOnDataDoor => "admin accounts cannot use data protocols",
            Refusal::SecondFactorInvalid => "wrong or reused second-factor code",
            Refusal::SecondFactorNotEnrolled => "no second factor enrolled",
            Refusal::SecondFactorSetupNeeded => {
                "second factor required but not enrolled; sign in to the web UI once to set it up"
            }
            Refusal::SecondFactorExpired => "second-factor step timed out",
            Refusal::SecondFactorAttemptsExhausted => {
                "too many second-factor codes for this sign-in; start again with the password"
            }
            Refusal::TokenInvalid => "unknown or malformed API token",
            Refusal::TokenExpired => "API token expired",
            Refusal::TokenRevoked => "API token revoked",
            Refusal::TokenWrongDoor => "API tokens are only valid over HTTPS",
            Refusal::Internal => "internal error",
        }
    }

    /// True for refusals about the source address rather than the credential: the door should
    /// say "try again later" (HTTP 429 with `Vault::source_retry_after`), not "wrong password".
    pub fn is_source_limit(self) -> bool {
        matches!(self, Refusal::SourceThrottled | Refusal::SourceBusy)
    }
}

pub enum Verdict {
    Accepted(Principal),
    Refused(Refusal),
    /// The password was right (HTTPS door, or SFTP under the organization's policy); a TOTP or
    /// recovery code is still required.
    SecondFactorRequired(PendingLogin),
}

/// Failed-login counters per source address, kept in memory: they only need to outlive an attack
/// burst, and a restart forgetting them does not weaken the per-account lockout (which is stored).
///
/// Checking and counting are one step: an attempt is *admitted* under the lock, and while it is
/// being evaluated it holds part of its source's budget, so however many arrive in parallel no
/// more are evaluated than the source has failures left. A refused attempt costs a map lookup,
/// never a password hash.
#[derive(Default)]
pub(crate) struct SourceThrottle {
    entries: Mutex<HashMap<IpAddr, SourceEntry>>,
}

struct SourceEntry {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
    /// Attempts admitted and not yet settled.
    in_flight: u32,
    /// Of those, the ones holding (or waiting for) a password-hashing slot.
    hashing: u32,
}

impl SourceEntry {
    fn fresh(now: Instant) -> SourceEntry {
        SourceEntry {
            window_start: now,
            failures: 0,
            blocked_until: None,
            in_flight: 0,
            hashing: 0,
        }
    }
}

/// Most addresses we track; beyond this the oldest windows are dropped, so a spray from many
/// addresses cannot grow memory without bound.
const MAX_TRACKED_SOURCES: usize = 100_000;

/// Password hashes one source may have running or queued at once, of `MAX_CONCURRENT_HASHES`: one
/// address then cannot occupy every slot and starve everyone else's logins. Two leaves room for
/// a few people behind one NAT address logging in at the same moment.
const MAX_HASHES_PER_SOURCE: u32 = 2;

/// Why an attempt was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotAdmitted {
    /// The source failed too often; blocked for this much longer.
    Blocked(std::time::Duration),
    /// The source's remaining budget (failures or hashing slots) is taken by attempts being
    /// evaluated right now.
    Busy,
}

/// An admitted attempt; dropping it settles it (a failure was counted by `fail` before that).
pub(crate) struct SourceTicket<'a> {
    throttle: &'a SourceThrottle,
    ip: IpAddr,
    hashing: bool,
}

impl Drop for SourceTicket<'_> {
    fn drop(&mut self) {
        let mut map = self.throttle.lock();
        if let Some(e) = map.get_mut(&self.ip) {
            e.in_flight = e.in_flight.saturating_sub(1);
            if self.hashing {
                e.hashing = e.hashing.saturating_sub(1);
            }
        }
    }
}

impl SourceThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, SourceEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits one attempt from `ip` (one that will hash a password if `hashes`), or says why not.
    pub(crate) fn admit(
        &self,
        ip: IpAddr,
        hashes: bool,
        policy: &AuthPolicy,
    ) -> std::result::Result<SourceTicket<'_>, NotAdmitted> {
        let mut map = self.lock();
        let now = Instant::now();
        if map.len() >= MAX_TRACKED_SOURCES && !map.contains_key(&ip) {
            map.retain(|_, e| {
                e.in_flight > 0
                    || e.blocked_until.is_some_and(|u| now < u)
                    || now.duration_since(e.window_start) < policy.source_window
            });
        }
        let e = map.entry(ip).or_insert_with(|| SourceEntry::fresh(now));
        if let Some(until) = e.blocked_until.filter(|u| now < *u) {
            return Err(NotAdmitted::Blocked(until - now));
        }
        if now.duration_since(e.window_start) > policy.source_window {
            e.window_start = now;
            e.failures = 0;
        }
        if e.failures.saturating_add(e.in_flight) >= policy.source_failure_limit
            || (hashes && e.hashing >= MAX_HASHES_PER_SOURCE)
        {
            return Err(NotAdmitted::Busy);
        }
        e.in_flight += 1;
        if hashes {
            e.hashing += 1;
        }
        Ok(SourceTicket {
            throttle: self,
            ip,
            hashing: hashes,
        })
    }

    /// How much longer `ip` is blocked, if it is.
    pub(crate) fn blocked_for(&self, ip: IpAddr) -> Option<std::time::Duration> {
        let now = Instant::now();
        self.lock()
            .get(&ip)
            .and_then(|e| e.blocked_until)
            .filter(|u| now < *u)
            .map(|u| u - now)
    }

    /// Counts a failure; returns true when this failure started a block.
    fn fail(&self, ip: IpAddr, policy: &AuthPolicy) -> bool {
        let mut map = self.lock();
        let now = Instant::now();
        let e = map.entry(ip).or_insert_with(|| SourceEntry::fresh(now));
        if now.duration_since(e.window_start) > policy.source_window {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures += 1;
        if e.failures >= policy.source_failure_limit && e.blocked_until.is_none_or(|u| now >= u) {
            e.blocked_until = Some(now + policy.source_block);
            e.failures = 0;
            e.window_start = now;
            return true;
        }
        false
    }
}

/// Argon2 verifications allowed at once. Each takes 19 MiB and ~25 ms of one core; more in parallel
/// than cores only queues CPU work while pinning memory, so a login flood is bounded to this many.
const MAX_CONCURRENT_HASHES: usize = 8;

pub(crate) struct HashingSlots {
    busy: Mutex<usize>,
    freed: std::sync::Condvar,
}

impl HashingSlots {
    pub(crate) fn new() -> Self {
        HashingSlots {
            busy: Mutex::new(0),
            freed: std::sync::Condvar::new(),
        }
    }

    fn verify(&self, hash: &str, password: &str) -> bool {
        {
            let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            while *busy >= MAX_CONCURRENT_HASHES {
                busy = self.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
            }
            *busy += 1;
        }
        let ok = verify_password(hash, password);
        *self.busy.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.freed.notify_one();
        ok
    }
}

fn argon2() -> Argon2<'static> {
    // Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane): OWASP's recommended minimum.
    Argon2::default()
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| VaultError::Config(format!("password hashing failed: {e}")))
}

/// A valid hash of a random password, verified against when the user does not exist or has no
/// password, so that an unknown user costs the same time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut pw);
        hash_password(&hex_string(&pw)).unwrap_or_default()
    })
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Refuses passwords that would fall to online guessing despite the lockout.
pub fn check_password_strength(user: &str, password: &str, policy: &AuthPolicy) -> Result<()> {
    if password.chars().count() < policy.min_password_len {
        return Err(VaultError::InvalidInput(format!(
            "password too weak: use at least {} characters",
            policy.min_password_len
        )));
    }
    if password.len() > 1024 {
        return Err(VaultError::InvalidInput(
            "password longer than 1024 bytes".into(),
        ));
    }
    let lower = password.to_lowercase();
    if lower.contains(user) || lower.chars().all(|c| lower.starts_with(c)) {
        return Err(VaultError::InvalidInput(
            "password too weak: it contains the user name or repeats one character".into(),
        ));
    }
    const COMMON: [&str; 8] = [
        "password1234",
        "123456789012",
        "qwertyuiopas",
        "changeme1234",
        "administrator",
        "letmein12345",
        "welcome12345",
        "passwordpassword",
    ];
    if COMMON.contains(&lower.as_str()) {
        return Err(VaultError::InvalidInput(
            "password too weak: it is a commonly used password".into(),
        ));
    }
    Ok(())
}

/// A parsed OpenSSH public key accepted for user authentication.
pub struct ParsedKey {
    pub algorithm: String,
    pub fingerprint: String,
    pub openssh: String,
    pub comment: String,
}

/// Smallest RSA modulus we accept; 2048 bits is NIST's floor through 2030.
const MIN_RSA_BITS: u32 = 2048;

pub fn parse_public_key(line: &str) -> Result<ParsedKey> {
    let line = line.trim();
    let key = PublicKey::from_openssh(line)
        .map_err(|e| VaultError::InvalidInput(format!("not an OpenSSH public key: {e}")))?;
    match key.key_data() {
        ssh_key::public::KeyData::Ed25519(_) | ssh_key::public::KeyData::Ecdsa(_) => {}
        ssh_key::public::KeyData::Rsa(rsa) => {
            if rsa.key_size() < MIN_RSA_BITS {
                return Err(VaultError::InvalidInput(format!(
                    "RSA key of {} bits is too short (minimum {MIN_RSA_BITS})",
                    rsa.key_size()
                )));
            }
        }
        _ => {
            return Err(VaultError::InvalidInput(format!(
                "key type {} is not accepted (use ed25519, ecdsa or rsa)",
                key.algorithm()
            )))
        }
    }
    Ok(ParsedKey {
        algorithm: key.algorithm().to_string(),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        openssh: key
            .to_openssh()
            .map_err(|e| VaultError::InvalidInput(format!("cannot encode key: {e}")))?,
        comment: key.comment().to_string(),
    })
}

pub fn key_fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl Vault {
    /// True if `key` is registered for `user`. Used by doors to answer a key *offer* (before any
    /// signature), so it counts nothing and changes nothing.
    pub fn key_is_registered(&self, user: &str, key: &PublicKey) -> bool {
        let fp = key_fingerprint(key);
        match self.inner.store.user_by_name(user) {
            Ok(Some(u)) => self
                .inner
                .store
                .list_ssh_keys(u.id)
                .map(|keys| keys.iter().any(|k| k.fingerprint == fp))
                .unwrap_or(false),
            _ => false,
        }
    }

    /// The verdict. Every refusal path returns `Refused`; only the final line accepts.
    pub fn authenticate(&self, attempt: &LoginAttempt<'_>) -> Verdict {
        let inner = &self.inner;
        let refuse = |reason: Refusal, user: Option<&UserRow>| {
            self.audit_login_refused(attempt, reason, user);
            inner.metrics.login(attempt.door, false);
            Verdict::Refused(reason)
        };

        // Refused before the user is looked up, so refusing cheaply (no dummy hash) tells a
        // blocked source nothing about which users exist.
        let hashes = matches!(attempt.credential, Credential::Password(_));
        let _ticket = match inner
            .throttle
            .admit(attempt.source, hashes, &inner.config.auth)
        {
            Ok(ticket) => ticket,
            Err(NotAdmitted::Blocked(_)) => return refuse(Refusal::SourceThrottled, None),
            Err(NotAdmitted::Busy) => return refuse(Refusal::SourceBusy, None),
        };
        if let Credential::ApiToken(token) = attempt.credential {
            return self.authenticate_token(attempt, token);
        }

        let user = match inner.store.user_by_name(attempt.user) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "user lookup failed during login");
                return refuse(Refusal::Internal, None);
            }
        };

        // Check the credential first, the same way whether or not the user exists.
        let credential_ok = match attempt.credential {
            Credential::Password(pw) => {
                let hash = user
                    .as_ref()
                    .and_then(|u| u.password_hash.as_deref())
                    .unwrap_or_else(|| dummy_hash());
                inner.metrics.password_verified();
                let ok = inner.hashing.verify(hash, pw);
                ok && user.as_ref().is_some_and(|u| u.password_hash.is_some())
            }
            Credential::VerifiedPublicKey(key) => {
                user.is_some() && self.key_is_registered(attempt.user, key)
            }
            // Handled by `authenticate_token` above.
            Credential::ApiToken(_) => false,
        };

        let Some(user) = user else {
            self.note_source_failure(attempt.door, attempt.source);
            return refuse(Refusal::UnknownUser, None);
        };
        let now = now_unix();
        if user.locked_until.is_some_and(|t| t > now) {
            // Guesses against a locked account still count for their source, so a spray that keeps
            // hammering locked accounts gets its address throttled.
            if !credential_ok {
                self.note_source_failure(attempt.door, attempt.source);
            }
            return refuse(Refusal::AccountLocked, Some(&user));
        }
        if !credential_ok {
            self.note_source_failure(attempt.door, attempt.source);
            let reason = match attempt.credential {
                Credential::Password(_) => Refusal::BadCredential,
                Credential::VerifiedPublicKey(_) => Refusal::NoSuchKey,
                Credential::ApiToken(_) => Refusal::TokenInvalid,
            };
            let verdict = refuse(reason, Some(&user));
            self.record_account_failure(&user, attempt.door, attempt.source);
            return verdict;
        }
        // Re-read the lock after the (slow) credential check: parallel guesses that all started
        // before the lock was set must not slip through once it is.
        match inner.store.user_by_id(user.id) {
            Ok(Some(fresh)) if fresh.locked_until.is_some_and(|t| t > now_unix()) => {
                return refuse(Refusal::AccountLocked, Some(&user));
            }
            Ok(Some(_)) => {}
            _ => return refuse(Refusal::Internal, Some(&user)),
        }
        if user.disabled {
            return refuse(Refusal::AccountDisabled, Some(&user));
        }
        if user.role == Role::Admin && attempt.door.is_data_door() {
            return refuse(Refusal::AdminOnDataDoor, Some(&user));
        }
        let second_factor = match (attempt.credential, attempt.door) {
            (Credential::Password(_), Door::Https) => true,
            // Read now rather than from a cached row, so a policy change applies to the next
            // login. A key is already a strong factor, so key logins never need this.
            (Credential::Password(_), Door::Sftp) => {
                match inner.store.sftp_password_totp_for_user(user.id) {
                    Ok(on) => on,
                    Err(e) => {
                        // Fail closed: without the policy we cannot know a password is enough.
                        tracing::error!(error = %e, "organization policy lookup failed during login");
                        return refuse(Refusal::Internal, Some(&user));
                    }
                }
            }
            _ => false,
        };
        if second_factor {
            // The failure counter is cleared only once the second factor passes too; clearing it
            // here would let a password holder reset it between rounds of code guessing.
            let enrolled = match inner.store.totp_for(user.id) {
                Ok(t) => t.is_some_and(|t| t.active),
                Err(e) => {
                    tracing::error!(error = %e, "second-factor lookup failed during login");
                    return refuse(Refusal::Internal, Some(&user));
                }
            };
            // Enrolment shows a QR code and recovery codes, which only the browser can do. Not
            // counted as a failure: the password was right and nothing was guessed.
            if !enrolled && attempt.door != Door::Https {
                return refuse(Refusal::SecondFactorSetupNeeded, Some(&user));
            }
            self.audit(
                Event::new(attempt.door, Action::SecondFactorPending, Outcome::Ok)
                    .actor(&user.name, &user.org_name)
                    .source(attempt.source.to_string())
                    .detail(json!({ "method": "password", "enrolled": enrolled })),
            );
            return Verdict::SecondFactorRequired(PendingLogin {
                user,
                door: attempt.door,
                source: attempt.source,
                created: Instant::now(),
                enrolled,
                codes_tried: Default::default(),
            });
        }
        if user.failed_logins > 0 {
            if let Err(e) = inner.store.clear_login_failures(user.id) {
                tracing::error!(error = %e, "could not reset the failure counter");
            }
        }
        let method = match attempt.credential {
            Credential::Password(_) => "password".to_owned(),
            Credential::VerifiedPublicKey(k) => format!("publickey {}", key_fingerprint(k)),
            Credential::ApiToken(_) => "api_token".to_owned(),
        };
        self.audit(
            Event::new(attempt.door, Action::LoginSucceeded, Outcome::Ok)
                .actor(&user.name, &user.org_name)
                .source(attempt.source.to_string())
                .detail(json!({ "method": method })),
        );
        inner.metrics.login(attempt.door, true);
        Verdict::Accepted(Principal {
            user,
            door: attempt.door,
            source: attempt.source,
            scopes: None,
        })
    }

    /// Counts a failed login against the account (stored, survives restarts) and records the lock
    /// when this failure reached the threshold.
    pub(crate) fn record_account_failure(&self, user: &UserRow, door: Door, source: IpAddr) {
        let policy = &self.inner.config.auth;
        let now = now_unix();
        match self.inner.store.record_login_failure(
            user.id,
            policy.lockout_threshold,
            policy.lockout_duration.as_secs() as i64,
            now,
        ) {
            Ok((count, Some(until))) if count == policy.lockout_threshold && until > now => {
                self.audit_account_locked(user, door, source, count);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not record a login failure"),
        }
    }

    pub(crate) fn audit_account_locked(
        &self,
        user: &UserRow,
        door: Door,
        source: IpAddr,
        count: i64,
    ) {
        let until = now_unix() + self.inner.config.auth.lockout_duration.as_secs() as i64;
        self.audit(
            Event::new(door, Action::AccountLocked, Outcome::Denied)
                .actor(&user.name, &user.org_name)
                .source(source.to_string())
                .target(format!("user:{}", user.name))
                .detail(json!({"failed_logins": count, "locked_until": until})),
        );
    }

    /// How long a door should tell `source` to wait before trying again: the rest of its block,
    /// or a second while it is merely busy.
    pub fn source_retry_after(&self, source: IpAddr) -> std::time::Duration {
        self.inner
            .throttle
            .blocked_for(source)
            .unwrap_or(std::time::Duration::from_secs(1))
    }

    pub(crate) fn note_source_failure(&self, door: Door, source: IpAddr) {
        if self.inner.throttle.fail(source, &self.inner.config.auth) {
            self.audit(
                Event::new(door, Action::SourceThrottled, Outcome::Denied)
                    .source(source.to_string())
                    .detail(json!({
                        "failures": self.inner.config.auth.source_failure_limit,
                        "block_seconds": self.inner.config.auth.source_block.as_secs(),
                    })),
            );
        }
    }

    fn audit_login_refused(
        &self,
        attempt: &LoginAttempt<'_>,
        reason: Refusal,
        user: Option<&UserRow>,
    ) {
        let method = match attempt.credential {
            Credential::Password(_) => "password",
            Credential::VerifiedPublicKey(_) => "publickey",
            Credential::ApiToken(_) => "api_token",
        };
        self.audit_refusal(
            attempt.door,
            attempt.source,
            attempt.user,
            user.map(|u| u.org_name.as_str()).unwrap_or_default(),
            json!({ "method": method, "reason": reason.as_str() }),
        );
    }

    /// Records a refused login. The attempted name is recorded even for unknown users (bounded, and
    /// it is what an investigator needs), but never the secret.
    pub(crate) fn audit_refusal(
        &self,
        door: Door,
        source: IpAddr,
        attempted: &str,
        org: &str,
        detail: serde_json::Value,
    ) {
        let attempted: String = attempted.chars().take(64).collect();
        self.audit(
            Event::new(door, Action::LoginFailed, Outcome::Denied)
                .actor(attempted, org)
                .source(source.to_string())
                .detail(detail),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused() {
        let p = AuthPolicy::default();
        assert!(check_password_strength("alice", "short", &p).is_err());
        assert!(check_password_strength("alice", "alice-is-my-password", &p).is_err());
        assert!(check_password_strength("alice", "aaaaaaaaaaaaaaa", &p).is_err());
        assert!(check_password_strength("alice", "password1234", &p).is_err());
        assert!(check_password_strength("alice", "correct-horse-battery", &p).is_ok());
    }

    #[test]
    fn admission_counts_in_flight_attempts_and_hashing_shares() {
        let t = SourceThrottle::default();
        let policy = AuthPolicy {
            source_failure_limit: 4,
            ..AuthPolicy::default()
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let h1 = t.admit(a, true, &policy).unwrap();
        let h2 = t.admit(a, true, &policy).unwrap();
        assert_eq!(t.admit(a, true, &policy).err(), Some(NotAdmitted::Busy));
        // Another source has its own share; a key login from the first needs no hashing slot.
        let other = t.admit(b, true, &policy).unwrap();
        let key = t.admit(a, false, &policy).unwrap();
        drop(h1);
        let h3 = t.admit(a, true, &policy).unwrap();
        // Three in flight plus one failure use the whole budget of four.
        assert!(!t.fail(a, &policy));
        assert_eq!(t.admit(a, false, &policy).err(), Some(NotAdmitted::Busy));
        drop((h2, h3, key, other));
        // Settled without failing: the budget is back, minus the one failure.
        let x: Vec<_> = (0..3)
            .map(|_| t.admit(a, false, &policy).unwrap())
            .collect();
        assert_eq!(t.admit(a, false, &policy).err(), Some(NotAdmitted::Busy));
        drop(x);
        for _ in 0..3 {
            t.fail(a, &policy);
        }
        assert!(matches!(
            t.admit(a, false, &policy).err(),
            Some(NotAdmitted::Blocked(_))
        ));
        assert!(t.blocked_for(a).is_some() && t.blocked_for(b).is_none());
    }

    #[test]
    fn hashes_verify() {
        let h = hash_password("correct-horse-battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct-horse-battery"));
        assert!(!verify_password(&h, "wrong"));
        assert!(!verify_password(dummy_hash(), ""));
    }

    #[test]
    fn rsa_sha1_only_keys_are_not_the_issue_but_short_rsa_is_refused() {
        assert!(parse_public_key(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x@y"
        )
        .is_ok());
        assert!(parse_public_key("not a key").is_err());
    }
}
