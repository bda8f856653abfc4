//! The second factor for password logins: TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, one step
//! of clock skew either way) and single-use recovery codes.
//!
//! A password accepted on the HTTPS door (or on the SFTP door when the user's organization has
//! `sftp_password_totp` on) yields a `PendingLogin`; only the functions here turn it
//! into a `Principal`, after re-checking lock, disabled state and the source throttle. A wrong code
//! counts against the same per-account lockout and per-source throttle as a wrong password, and a
//! code's time step is recorded when accepted, so an observed code cannot be replayed. TOTP secrets
//! are stored sealed under a key derived from the key provider, bound to the user id; recovery codes
//! only as keyed MACs.

use std::time::Duration;

use hmac::{Hmac, Mac};
use lockbox_audit::{Action, Event, Outcome};
use lockbox_store::{now_unix, UserRow};
use serde_json::json;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::admin::AdminActor;
use std::sync::atomic::Ordering::SeqCst;

use crate::auth::{NotAdmitted, PendingLogin, Principal, Refusal, Verdict};
use crate::error::{Result, VaultError};
use crate::Vault;

/// How long the second step of a login may take, enrolment (installing an app, scanning a code)
/// included.
pub const PENDING_LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
const TOTP_PERIOD: u64 = 30;
const TOTP_DIGITS: usize = 6;
const SECRET_LEN: usize = 20;
const RECOVERY_CODE_COUNT: usize = 10;
/// Crockford's base32 alphabet: no I, L, O or U, so nothing reads as something else.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// RFC 4648 base32, what authenticator apps expect for the secret.
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Longest input treated as a code at all; anything longer is simply wrong.
const MAX_CODE_INPUT: usize = 64;
/// Codes evaluated on one pending login before the password must be entered again (each also
/// counts toward the account lockout). Reserved atomically, so parallel requests cannot exceed it.
pub const MAX_CODES_PER_PENDING_LOGIN: u32 = 3;

/// A code admitted for evaluation: it holds its place in the source's budget, and it has already
/// been counted against the pending login and the account (`count` is the account's new count).
struct CodeAttempt<'a> {
    _source: crate::auth::SourceTicket<'a>,
    count: i64,
    pending_codes: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl CodeAttempt<'_> {
    /// A right code gives its place back: the pending-login limit is on wrong codes, and it is
    /// reserved up front only so parallel requests cannot overrun it.
    fn succeeded(self) {
        self.pending_codes.fetch_sub(1, SeqCst);
    }
}

/// What an authenticator app needs to be set up. Shown once, during enrolment.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    pub secret_base32: String,
    pub otpauth_uri: String,
}

/// HOTP (RFC 4226) with HMAC-SHA1, truncated to `TOTP_DIGITS` decimal digits.
fn hotp(secret: &[u8], counter: u64) -> String {
    let digest = match <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(&counter.to_be_bytes());
            mac.finalize().into_bytes()
        }
        // HMAC accepts keys of any length; this arm exists only because the API is fallible.
        Err(_) => return String::new(),
    };
    let offset = usize::from(digest.get(19).copied().unwrap_or(0) & 0x0f);
    let word = digest
        .get(offset..offset + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0);
    format!("{:06}", (word & 0x7fff_ffff) % 1_000_000)
}

/// The TOTP code for `secret` at `unix_time` (RFC 6238, SHA-1, 6 digits, 30 s).
pub fn totp_code(secret: &[u8], unix_time: u64) -> String {
    hotp(secret, unix_time / TOTP_PERIOD)
}

/// The character for the low five bits of `v` in a 32-character alphabet.
fn symbol(alphabet: &[u8; 32], v: u32) -> char {
    char::from(alphabet.get((v & 31) as usize).copied().unwrap_or(b'?'))
}

/// RFC 4648 base32 without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(symbol(BASE32_ALPHABET, acc >> bits));
        }
    }
    if bits > 0 {
        out.push(symbol(BASE32_ALPHABET, acc << (5 - bits)));
    }
    out
}

/// Decodes RFC 4648 base32, ignoring case, spaces and `=` padding. `None` for any other character.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !matches!(c, b' ' | b'=')) {
        let v = BASE32_ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())?;
        acc = ((acc << 5) | v as u32) & 0xfff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The six digits of a TOTP code, spaces allowed (apps show `123 456`).
fn totp_digits(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == TOTP_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The time step, within one step of `now`, at which `code` is valid and that is later than
/// `last_step` (so a code is accepted once). Compares in constant time.
fn matching_step(secret: &[u8], code: &str, now: u64, last_step: i64) -> Option<i64> {
    let current = (now / TOTP_PERIOD) as i64;
    (current - 1..=current + 1)
        .filter(|&step| step > last_step && step >= 0)
        .find(|&step| bool::from(hotp(secret, step as u64).as_bytes().ct_eq(code.as_bytes())))
}

fn new_recovery_code() -> String {
    let mut raw = [0u8; 10];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    let (a, b) = raw.split_at(5);
    let part = |half: &[u8]| -> String {
        half.iter()
            .map(|&x| symbol(RECOVERY_ALPHABET, u32::from(x)))
            .collect()
    };
    format!("{}-{}", part(a), part(b))
}

/// A recovery code as typed (any case, dashes and spaces anywhere, Crockford's look-alikes) in
/// canonical form, or `None` if it cannot be one.
fn normalize_recovery_code(input: &str) -> Option<String> {
    let norm: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect();
    (norm.len() == 10 && norm.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(norm)
}

fn totp_aad(user: &UserRow) -> String {
    format!("user:{}", user.id.0)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn unix_now() -> u64 {
    now_unix().max(0) as u64
}

impl Vault {
    fn recovery_mac(&self, user: &UserRow, normalized: &str) -> String {
        let msg = format!("{}:{normalized}", user.id.0);
        hex::encode(lockbox_crypto::hmac_sha256(
            &self.inner.recovery_key,
            msg.as_bytes(),
        ))
    }

    /// Fresh recovery codes: the plaintext for the user (shown once) and the MACs to store.
    fn new_recovery_codes(&self, user: &UserRow) -> (Vec<String>, Vec<String>) {
        let codes: Vec<String> = (0..RECOVERY_CODE_COUNT)
            .map(|_| new_recovery_code())
            .collect();
        let macs = codes
            .iter()
            .filter_map(|c| normalize_recovery_code(c))
            .map(|n| self.recovery_mac(user, &n))
            .collect();
        (codes, macs)
    }

    fn open_totp_secret(&self, user: &UserRow, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Ok(lockbox_crypto::open(
            &self.inner.totp_key,
            totp_aad(user).as_bytes(),
            sealed,
        )?)
    }

    /// The pending login's user as stored now, if the login may still proceed.
    fn pending_user(&self, pending: &PendingLogin) -> std::result::Result<UserRow, Refusal> {
        if self.inner.throttle.blocked_for(pending.source).is_some() {
            return Err(Refusal::SourceThrottled);
        }
        if pending.created.elapsed() > PENDING_LOGIN_TTL {
            return Err(Refusal::SecondFactorExpired);
        }
        let user = match self.inner.store.user_by_id(pending.user.id) {
            Ok(Some(u)) => u,
            Ok(None) => return Err(Refusal::UnknownUser),
            Err(e) => {
                tracing::error!(error = %e, "user lookup failed during the second factor");
                return Err(Refusal::Internal);
            }
        };
        if user.locked_until.is_some_and(|t| t > now_unix()) {
            return Err(Refusal::AccountLocked);
        }
        if user.disabled {
            return Err(Refusal::AccountDisabled);
        }
        // `authenticate` refused admins on data doors already; checked again because the role may
        // have changed while the code was being typed, and the principal is made here.
        if user.role == lockbox_types::Role::Admin && pending.door.is_data_door() {
            return Err(Refusal::AdminOnDataDoor);
        }
        Ok(user)
    }

    /// A refusal that is not a wrong code (expired, locked, ...): recorded, not counted.
    fn refuse_pending(&self, pending: &PendingLogin, reason: Refusal, method: &str) -> Verdict {
        self.audit_refusal(
            pending.door,
            pending.source,
            &pending.user.name,
            &pending.user.org_name,
            json!({ "method": method, "reason": reason.as_str() }),
        );
        self.inner.metrics.login(pending.door, false);
        Verdict::Refused(reason)
    }

    /// Admits one code for evaluation, counting it first, each in one atomic step: against the
    /// source (`SourceThrottle::admit`), this pending login (`MAX_CODES_PER_PENDING_LOGIN`) and the
    /// account (`reserve_login_attempt`, which sets the lock when the threshold is reached). So 50
    /// codes sent in parallel get at most as many evaluations as the limits allow; the rest are
    /// refused without looking at the code.
    fn admit_code(
        &self,
        pending: &PendingLogin,
        user: &UserRow,
    ) -> std::result::Result<CodeAttempt<'_>, Refusal> {
        let policy = &self.inner.config.auth;
        let source = match self.inner.throttle.admit(pending.source, false, policy) {
            Ok(t) => t,
            Err(NotAdmitted::Blocked(_)) => return Err(Refusal::SourceThrottled),
            Err(NotAdmitted::Busy) => return Err(Refusal::SourceBusy),
        };
        let reserved = pending.codes_tried.fetch_update(SeqCst, SeqCst, |n| {
            (n < MAX_CODES_PER_PENDING_LOGIN).then_some(n + 1)
        });
        if reserved.is_err() {
            return Err(Refusal::SecondFactorAttemptsExhausted);
        }
        match self.inner.store.reserve_login_attempt(
            user.id,
            policy.lockout_threshold,
            policy.lockout_duration.as_secs() as i64,
            now_unix(),
        ) {
            Ok(Some(count)) => Ok(CodeAttempt {
                _source: source,
                count,
                pending_codes: pending.codes_tried.clone(),
            }),
            Ok(None) => Err(Refusal::AccountLocked),
            Err(e) => {
                tracing::error!(error = %e, "could not count a second-factor attempt");
                Err(Refusal::Internal)
            }
        }
    }

    /// A wrong code: counted like a wrong password, against the source; the account already
    /// counted it when it was admitted, and locked itself if this was the attempt that reached the
    /// threshold.
    fn second_factor_failure(
        &self,
        pending: &PendingLogin,
        user: &UserRow,
        method: &str,
        attempt: CodeAttempt<'_>,
    ) -> Verdict {
        self.note_source_failure(pending.door, pending.source);
        let verdict = self.refuse_pending(pending, Refusal::SecondFactorInvalid, method);
        let policy = &self.inner.config.auth;
        if attempt.count == policy.lockout_threshold {
            self.audit_account_locked(user, pending.door, pending.source, attempt.count);
        }
        drop(attempt);
        verdict
    }

    fn accept_second_factor(
        &self,
        pending: &PendingLogin,
        user: UserRow,
        method: &str,
        extra: serde_json::Value,
    ) -> Verdict {
        // Always: the attempt was counted when it was admitted, whatever the row said before.
        if let Err(e) = self.inner.store.clear_login_failures(user.id) {
            tracing::error!(error = %e, "could not reset the failure counter");
        }
        let mut detail = json!({ "method": method });
        if let (Some(d), Some(extra)) = (detail.as_object_mut(), extra.as_object()) {
            d.extend(extra.clone());
        }
        self.audit(
            Event::new(pending.door, Action::LoginSucceeded, Outcome::Ok)
                .actor(&user.name, &user.org_name)
                .source(pending.source.to_string())
                .detail(detail),
        );
        self.inner.metrics.login(pending.door, true);
        Verdict::Accepted(Principal {
            user,
            door: pending.door,
            source: pending.source,
            scopes: None,
        })
    }

    /// Finishes a login with a current TOTP code or an unused recovery code.
    pub fn complete_second_factor(&self, pending: &PendingLogin, code: &str) -> Verdict {
        let user = match self.pending_user(pending) {
            Ok(u) => u,
            Err(reason) => return self.refuse_pending(pending, reason, "totp"),
        };
        let totp = match self.inner.store.totp_for(user.id) {
            Ok(t) => t.filter(|t| t.active),
            Err(e) => {
                tracing::error!(error = %e, "second-factor lookup failed");
                return self.refuse_pending(pending, Refusal::Internal, "totp");
            }
        };
        let Some(totp) = totp else {
            return self.refuse_pending(pending, Refusal::SecondFactorNotEnrolled, "totp");
        };
        let attempt = match self.admit_code(pending, &user) {
            Ok(a) => a,
            Err(reason) => return self.refuse_pending(pending, reason, "totp"),
        };
        let code = code.get(..MAX_CODE_INPUT).unwrap_or(code);
        if let Some(digits) = totp_digits(code) {
            let secret = match self.open_totp_secret(&user, &totp.secret_sealed) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, user = %user.name, "cannot open the stored TOTP secret");
                    return self.refuse_pending(pending, Refusal::Internal, "totp");
                }
            };
            let step = matching_step(&secret, &digits, unix_now(), totp.last_step);
            // The conditional update makes acceptance atomic: of two requests with the same code,
            // only one advances the step.
            match step.map(|s| self.inner.store.advance_totp_step(user.id, s)) {
                Some(Ok(true)) => {
                    attempt.succeeded();
                    return self.accept_second_factor(pending, user, "password+totp", json!({}));
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "could not record the TOTP step");
                    return self.refuse_pending(pending, Refusal::Internal, "totp");
                }
                Some(Ok(false)) | None => {}
            }
            return self.second_factor_failure(pending, &user, "totp", attempt);
        }
        if let Some(norm) = normalize_recovery_code(code) {
            let mac = self.recovery_mac(&user, &norm);
            match self
                .inner
                .store
                .use_recovery_code(user.id, &mac, now_unix())
            {
                Ok(true) => {
                    attempt.succeeded();
                    let left = self.inner.store.recovery_codes_left(user.id).unwrap_or(0);
                    return self.accept_second_factor(
                        pending,
                        user,
                        "password+recovery_code",
                        json!({ "recovery_codes_left": left }),
                    );
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "could not check a recovery code");
                    return self.refuse_pending(pending, Refusal::Internal, "recovery_code");
                }
            }
            return self.second_factor_failure(pending, &user, "recovery_code", attempt);
        }
        self.second_factor_failure(pending, &user, "totp", attempt)
    }

    /// Starts TOTP enrolment for a user without one: a new secret, stored sealed and inactive until
    /// `totp_confirm_enrollment` sees a code from it. Starting again replaces the inactive secret.
    pub fn totp_begin_enrollment(&self, pending: &PendingLogin) -> Result<TotpEnrollment> {
        let user = self
            .pending_user(pending)
            .map_err(|r| VaultError::PermissionDenied(r.as_str().to_owned()))?;
        let already =
            || VaultError::InvalidInput("two-factor authentication is already set up".into());
        if self
            .inner
            .store
            .totp_for(user.id)?
            .is_some_and(|t| t.active)
        {
            return Err(already());
        }
        let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut_slice());
        let sealed =
            lockbox_crypto::seal(&self.inner.totp_key, totp_aad(&user).as_bytes(), &secret)?;
        if !self
            .inner
            .store
            .put_pending_totp(user.id, &sealed, now_unix())?
        {
            return Err(already());
        }
        let secret_base32 = base32_encode(&secret);
        let otpauth_uri = format!(
            "otpauth://totp/Lockbox:{}?secret={secret_base32}&issuer=Lockbox&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_PERIOD}",
            url_encode(&user.name)
        );
        Ok(TotpEnrollment {
            secret_base32,
            otpauth_uri,
        })
    }

    /// Completes enrolment with a code from the new secret: activates it, returns the login verdict
    /// and ten recovery codes (plaintext, shown once). A wrong code is a failed login attempt.
    pub fn totp_confirm_enrollment(
        &self,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<(Verdict, Vec<String>)> {
        let user = match self.pending_user(pending) {
            Ok(u) => u,
            Err(reason) => return Ok((self.refuse_pending(pending, reason, "totp"), vec![])),
        };
        let totp = match self.inner.store.totp_for(user.id)? {
            Some(t) if t.active => {
                return Err(VaultError::InvalidInput(
                    "two-factor authentication is already set up".into(),
                ))
            }
            Some(t) => t,
            None => {
                return Err(VaultError::InvalidInput(
                    "no two-factor enrolment in progress; start it first".into(),
                ))
            }
        };
        let attempt = match self.admit_code(pending, &user) {
            Ok(a) => a,
            Err(reason) => return Ok((self.refuse_pending(pending, reason, "totp"), vec![])),
        };
        let secret = self.open_totp_secret(&user, &totp.secret_sealed)?;
        let step = totp_digits(code.get(..MAX_CODE_INPUT).unwrap_or(code))
            .and_then(|digits| matching_step(&secret, &digits, unix_now(), totp.last_step));
        let Some(step) = step else {
            return Ok((
                self.second_factor_failure(pending, &user, "totp", attempt),
                vec![],
            ));
        };
        let (codes, macs) = self.new_recovery_codes(&user);
        if !self
            .inner
            .store
            .activate_totp(user.id, &totp.secret_sealed, step, &macs)?
        {
            return Err(VaultError::InvalidInput(
                "the enrolment was restarted meanwhile; scan the new code".into(),
            ));
        }
        self.audit_strict(
            Event::new(pending.door, Action::TotpEnrolled, Outcome::Ok)
                .actor(&user.name, &user.org_name)
                .source(pending.source.to_string())
                .target(format!("user:{}", user.name))
                .detail(json!({ "recovery_codes": codes.len() })),
        )?;
        attempt.succeeded();
        Ok((
            self.accept_second_factor(pending, user, "password+totp", json!({ "enrolled": true })),
            codes,
        ))
    }

    /// Replaces a logged-in user's recovery codes (the old ones stop working); shown once.
    pub fn regenerate_recovery_codes(&self, principal: &Principal) -> Result<Vec<String>> {
        if principal.scopes.is_some() {
            return Err(VaultError::PermissionDenied(
                "recovery codes can only be managed after an interactive login".into(),
            ));
        }
        let user = &principal.user;
        if !self
            .inner
            .store
            .totp_for(user.id)?
            .is_some_and(|t| t.active)
        {
            return Err(VaultError::InvalidInput(
                "two-factor authentication is not set up".into(),
            ));
        }
        let (codes, macs) = self.new_recovery_codes(user);
        self.inner.store.replace_recovery_codes(user.id, &macs)?;
        self.audit_strict(
            Event::new(
                principal.door,
                Action::RecoveryCodesRegenerated,
                Outcome::Ok,
            )
            .actor(&user.name, &user.org_name)
            .source(principal.source.to_string())
            .target(format!("user:{}", user.name))
            .detail(json!({ "recovery_codes": codes.len() })),
        )?;
        Ok(codes)
    }

    pub fn recovery_codes_left(&self, principal: &Principal) -> Result<usize> {
        Ok(self.inner.store.recovery_codes_left(principal.user.id)? as usize)
    }

    /// Removes a user's TOTP and recovery codes (lost phone); they enrol again at the next login.
    pub fn reset_totp(&self, actor: &AdminActor, user: &str) -> Result<()> {
        let u = self.user(user)?;
        self.inner.store.delete_totp(u.id)?;
        self.admin_event(
            actor,
            Action::TotpReset,
            &u.org_name,
            format!("user:{}", u.name),
            json!({}),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B: the SHA-1 secret is the ASCII "12345678901234567890"; the RFC
        // lists 8 digits, of which a 6-digit code is the last six.
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(totp_code(secret, t), eight[2..], "t={t}");
        }
    }

    #[test]
    fn base32_round_trips() {
        // RFC 4648 section 10 vectors (without padding).
        for (plain, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("mzxw 6ytb oi======").unwrap(), b"foobar");
        assert!(base32_decode("MZ1W").is_none());
        let secret: Vec<u8> = (0..20).collect();
        assert_eq!(base32_decode(&base32_encode(&secret)).unwrap(), secret);
    }

    #[test]
    fn steps_are_windowed_and_single_use() {
        let secret = b"12345678901234567890";
        let now = 1_700_000_000u64;
        let step = (now / 30) as i64;
        let prev = totp_code(secret, now - 30);
        let next = totp_code(secret, now + 30);
        assert_eq!(matching_step(secret, &prev, now, 0), Some(step - 1));
        assert_eq!(matching_step(secret, &next, now, 0), Some(step + 1));
        assert_eq!(
            matching_step(secret, &totp_code(secret, now - 60), now, 0),
            None
        );
        assert_eq!(
            matching_step(secret, &totp_code(secret, now), now, step),
            None
        );
        assert_eq!(totp_digits(" 123 456 ").as_deref(), Some("123456"));
        assert!(totp_digits("12345a").is_none());
    }

    #[test]
    fn recovery_codes_normalize() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(code.as_bytes()[5], b'-');
        let norm = normalize_recovery_code(&code).unwrap();
        assert_eq!(normalize_recovery_code(&code.to_uppercase()).unwrap(), norm);
        assert_eq!(
            normalize_recovery_code(&code.replace('-', "")).unwrap(),
            norm
        );
        assert_eq!(
            normalize_recovery_code("OIL23-45678").unwrap(),
            normalize_recovery_code("01123-45678").unwrap()
        );
        assert!(normalize_recovery_code("abcde-fghi").is_none());
        assert!(normalize_recovery_code("abcde-fghiu").is_none());
        assert_eq!(url_encode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
