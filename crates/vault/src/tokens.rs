//! API tokens for scripts on the HTTPS door. A token is `lbx_<id>_<secret>`: the id (16 hex) names
//! the stored row, the secret (32 random bytes, base64url) is shown once and stored only as its
//! SHA-256, compared in constant time. A token carries scopes (`read`, `write`, `admin`) that the
//! session and `admin_actor` enforce on top of the user's own permissions; it can never mint tokens.

use std::time::Duration;

use base64::Engine;
use lockbox_audit::{Action, Event, Outcome};
use lockbox_store::{now_unix, ApiTokenRow};
use lockbox_types::{Door, Role};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::admin::AdminActor;
use crate::auth::{LoginAttempt, Principal, Refusal, Verdict};
use crate::error::{Result, VaultError};
use crate::Vault;

/// Longest lifetime a token may be given.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Live tokens one user may hold; bounds what a compromised session can leave behind.
const MAX_LIVE_TOKENS_PER_USER: u64 = 100;
/// `last_used` is written at most this often per token.
const LAST_USED_GRANULARITY: i64 = 60;
const TOKEN_PREFIX: &str = "lbx_";
const ID_HEX_LEN: usize = 16;
const SECRET_B64_LEN: usize = 43;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenScopes {
    pub read: bool,
    pub write: bool,
    pub admin: bool,
}

impl TokenScopes {
    /// Parses a comma-separated list such as `read,write`.
    pub fn parse(s: &str) -> Result<TokenScopes> {
        let mut scopes = TokenScopes {
            read: false,
            write: false,
            admin: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "read" => scopes.read = true,
                "write" => scopes.write = true,
                "admin" => scopes.admin = true,
                other => {
                    return Err(VaultError::InvalidInput(format!(
                        "unknown token scope {:?} (use read, write, admin)",
                        other.chars().take(32).collect::<String>()
                    )))
                }
            }
        }
        Ok(scopes)
    }

    pub fn as_string(&self) -> String {
        [
            (self.read, "read"),
            (self.write, "write"),
            (self.admin, "admin"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
    }

    fn is_empty(&self) -> bool {
        !(self.read || self.write || self.admin)
    }
}

/// A token as its owner and admins see it; never the secret.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: String,
    pub user: String,
    pub org: String,
    pub name: String,
    pub scopes: TokenScopes,
    pub created: i64,
    pub expires: i64,
    pub last_used: Option<i64>,
    pub revoked: bool,
}

fn info(row: ApiTokenRow) -> Result<TokenInfo> {
    Ok(TokenInfo {
        scopes: TokenScopes::parse(&row.scopes)?,
        id: row.id,
        user: row.user_name,
        org: row.org_name,
        name: row.name,
        created: row.created,
        expires: row.expires,
        last_used: row.last_used,
        revoked: row.revoked.is_some(),
    })
}

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `(id, secret)` of a well-formed token, else `None`.
fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_HEX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let secret_ok = secret.len() == SECRET_B64_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

fn require_interactive(principal: &Principal) -> Result<()> {
    if principal.scopes.is_some() {
        return Err(VaultError::PermissionDenied(
            "API tokens can only be managed after an interactive login".into(),
        ));
    }
    Ok(())
}

impl Vault {
    /// The verdict for `Credential::ApiToken`, called by `authenticate` after the throttle check.
    pub(crate) fn authenticate_token(&self, attempt: &LoginAttempt<'_>, token: &str) -> Verdict {
        let inner = &self.inner;
        let refuse = |reason: Refusal, row: Option<&ApiTokenRow>| {
            let (user, org, id) = match row {
                Some(r) => (r.user_name.as_str(), r.org_name.as_str(), r.id.as_str()),
                None => (attempt.user, "", ""),
            };
            self.audit_refusal(
                attempt.door,
                attempt.source,
                user,
                org,
                json!({ "method": "api_token", "token": id, "reason": reason.as_str() }),
            );
            inner.metrics.login(attempt.door, false);
            Verdict::Refused(reason)
        };
        if attempt.door != Door::Https {
            return refuse(Refusal::TokenWrongDoor, None);
        }
        let Some((id, secret)) = parse_token(token) else {
            self.note_source_failure(attempt.door, attempt.source);
            return refuse(Refusal::TokenInvalid, None);
        };
        let row = match inner.store.api_token(id) {
            Ok(Some(row)) => row,
            Ok(None) => {
                self.note_source_failure(attempt.door, attempt.source);
                return refuse(Refusal::TokenInvalid, None);
            }
            Err(e) => {
                tracing::error!(error = %e, "token lookup failed during login");
                return refuse(Refusal::Internal, None);
            }
        };
        if !bool::from(
            secret_hash(secret)
                .as_bytes()
                .ct_eq(row.secret_hash.as_bytes()),
        ) {
            self.note_source_failure(attempt.door, attempt.source);
            return refuse(Refusal::TokenInvalid, Some(&row));
        }
        let now = now_unix();
        if row.revoked.is_some() {
            return refuse(Refusal::TokenRevoked, Some(&row));
        }
        if row.expires <= now {
            return refuse(Refusal::TokenExpired, Some(&row));
        }
        let (user, scopes) = match (
            inner.store.user_by_id(row.user_id),
            TokenScopes::parse(&row.scopes),
        ) {
            (Ok(Some(u)), Ok(s)) => (u, s),
            (Ok(None), _) => return refuse(Refusal::UnknownUser, Some(&row)),
            _ => return refuse(Refusal::Internal, Some(&row)),
        };
        if user.locked_until.is_some_and(|t| t > now) {
            return refuse(Refusal::AccountLocked, Some(&row));
        }
        if user.disabled {
            return refuse(Refusal::AccountDisabled, Some(&row));
        }
        // A script sends many requests per minute; recording each as a login would bury everything
        // else in the log. The use is recorded when `last_used` moves (at most once a minute per
        // token); failures are always recorded, and the door's session records bracket the work.
        let first_this_minute =
            match inner
                .store
                .touch_api_token(&row.id, now, LAST_USED_GRANULARITY)
            {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "could not record a token's last use");
                    true
                }
            };
        if first_this_minute {
            self.audit(
                Event::new(attempt.door, Action::LoginSucceeded, Outcome::Ok)
                    .actor(&user.name, &user.org_name)
                    .source(attempt.source.to_string())
                    .detail(
                        json!({ "method": "api_token", "token": row.id, "scopes": scopes.as_string() }),
                    ),
            );
        }
        inner.metrics.login(attempt.door, true);
        Verdict::Accepted(Principal {
            user,
            door: attempt.door,
            source: attempt.source,
            scopes: Some(scopes),
        })
    }

    /// Creates a token for the (interactively) logged-in user. Returns the secret once.
    pub fn create_api_token(
        &self,
        owner: &Principal,
        name: &str,
        scopes: TokenScopes,
        ttl: Duration,
    ) -> Result<(TokenInfo, String)> {
        require_interactive(owner)?;
        let len = name.chars().count();
        if !(1..=64).contains(&len) || name.chars().any(char::is_control) || name.trim().is_empty()
        {
            return Err(VaultError::InvalidInput(
                "a token name is 1 to 64 printable characters".into(),
            ));
        }
        if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
            return Err(VaultError::InvalidInput(
                "a token lives at least a second and at most 365 days".into(),
            ));
        }
        if scopes.is_empty() {
            return Err(VaultError::InvalidInput(
                "a token needs at least one scope".into(),
            ));
        }
        if scopes.admin && owner.user.role != Role::Admin {
            return Err(VaultError::PermissionDenied(
                "only administrators can create tokens with the admin scope".into(),
            ));
        }
        let user = &owner.user;
        let now = now_unix();
        if self.inner.store.live_api_tokens(user.id, now)? >= MAX_LIVE_TOKENS_PER_USER {
            return Err(VaultError::LimitReached(format!(
                "at most {MAX_LIVE_TOKENS_PER_USER} live tokens per user; revoke some first"
            )));
        }
        let mut id_bytes = [0u8; ID_HEX_LEN / 2];
        let mut secret_bytes = zeroize::Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id_bytes);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret_bytes.as_mut_slice());
        let id = hex::encode(id_bytes);
        let secret =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes.as_slice());
        let expires = now.saturating_add(ttl.as_secs() as i64);
        self.inner.store.create_api_token(
            &id,
            user.id,
            name,
            &secret_hash(&secret),
            &scopes.as_string(),
            now,
            expires,
        )?;
        self.audit_strict(
            Event::new(owner.door, Action::ApiTokenCreated, Outcome::Ok)
                .actor(&user.name, &user.org_name)
                .source(owner.source.to_string())
                .target(format!("token:{id}"))
                .detail(json!({ "name": name, "scopes": scopes.as_string(), "expires": expires })),
        )?;
        let token = format!("{TOKEN_PREFIX}{id}_{secret}");
        Ok((
            TokenInfo {
                id,
                user: user.name.clone(),
                org: user.org_name.clone(),
                name: name.to_owned(),
                scopes,
                created: now,
                expires,
                last_used: None,
                revoked: false,
            },
            token,
        ))
    }

    /// The logged-in user's own tokens, newest first.
    pub fn list_api_tokens(&self, owner: &Principal) -> Result<Vec<TokenInfo>> {
        self.inner
            .store
            .list_api_tokens(Some(owner.user.id))?
            .into_iter()
            .map(info)
            .collect()
    }

    /// Revokes one of the logged-in user's own tokens (another user's token is "not found").
    pub fn revoke_api_token(&self, owner: &Principal, id: &str) -> Result<()> {
        require_interactive(owner)?;
        let row = self
            .inner
            .store
            .api_token(id)?
            .filter(|r| r.user_id == owner.user.id)
            .ok_or_else(|| VaultError::NoSuch(format!("token {id:?}")))?;
        self.revoke_token_row(
            &row,
            owner.door,
            &owner.user.name,
            &owner.source.to_string(),
        )
    }

    pub fn admin_list_api_tokens(
        &self,
        _actor: &AdminActor,
        user: Option<&str>,
    ) -> Result<Vec<TokenInfo>> {
        let user = user.map(|u| self.user(u)).transpose()?;
        self.inner
            .store
            .list_api_tokens(user.map(|u| u.id))?
            .into_iter()
            .map(info)
            .collect()
    }

    pub fn admin_revoke_api_token(&self, actor: &AdminActor, id: &str) -> Result<()> {
        let row = self
            .inner
            .store
            .api_token(id)?
            .ok_or_else(|| VaultError::NoSuch(format!("token {id:?}")))?;
        self.revoke_token_row(&row, actor.door, &actor.name, &actor.source)
    }

    /// Revokes `row`, recorded with who did it; revoking a revoked token changes nothing.
    fn revoke_token_row(
        &self,
        row: &ApiTokenRow,
        door: Door,
        by: &str,
        source: &str,
    ) -> Result<()> {
        if !self.inner.store.revoke_api_token(&row.id, now_unix())? {
            return Ok(());
        }
        self.audit_strict(
            Event::new(door, Action::ApiTokenRevoked, Outcome::Ok)
                .actor(by, &row.org_name)
                .source(source)
                .target(format!("token:{}", row.id))
                .detail(json!({ "owner": row.user_name, "name": row.name })),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        let s = TokenScopes::parse("read, write").unwrap();
        assert!(s.read && s.write && !s.admin);
        assert_eq!(s.as_string(), "read,write");
        assert_eq!(TokenScopes::parse("admin").unwrap().as_string(), "admin");
        assert!(TokenScopes::parse("read,root").is_err());
        assert!(TokenScopes::parse("").unwrap().is_empty());
    }

    #[test]
    fn token_format() {
        let id = "0123456789abcdef";
        let secret = "A".repeat(43);
        let token = format!("lbx_{id}_{secret}");
        assert_eq!(parse_token(&token), Some((id, secret.as_str())));
        assert!(parse_token(&format!("lbx_{id}_{secret}x")).is_none());
        assert!(parse_token(&format!("lbx_{}_{secret}", "0123456789ABCDEF")).is_none());
        assert!(parse_token(&format!("xyz_{id}_{secret}")).is_none());
        assert!(parse_token("lbx_").is_none());
        assert!(parse_token(&format!("lbx_{id}_{}", "A".repeat(42) + "=")).is_none());
    }
}
