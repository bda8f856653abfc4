//! The audit log: an append-only, hash-chained record of every security-relevant event. Each record's
//! hash covers its sequence number, every field and the previous record's hash, so editing, deleting,
//! inserting or reordering any record breaks verification at that record.
#![forbid(unsafe_code)]

use std::io::Write;
use std::sync::Arc;

use lockbox_store::{AuditRow, SqliteStore, StoreError};
use lockbox_types::Door;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Hash that stands before the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HASH_DOMAIN: &[u8] = b"lockbox-audit-v1";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit log broken at record {seq}: {reason}")]
    Broken { seq: i64, reason: String },
    #[error("could not write the export: {0}")]
    Io(#[from] std::io::Error),
}

/// What happened. The names are stable: reports and SIEM rules match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ServerStarted,
    LoginSucceeded,
    LoginFailed,
    AccountLocked,
    SourceThrottled,
    SessionStarted,
    SessionEnded,
    FileRead,
    UploadCommitted,
    UploadInterrupted,
    UploadAbandoned,
    FileDeleted,
    Renamed,
    DirCreated,
    DirRemoved,
    AccessDenied,
    OrgCreated,
    UserCreated,
    UserPasswordSet,
    UserDisabled,
    UserEnabled,
    UserUnlocked,
    KeyAdded,
    KeyRemoved,
    GroupCreated,
    GroupMemberAdded,
    FolderCreated,
    GrantSet,
    GrantRemoved,
    AuditExported,
    ExposureReport,
    /// A file of an exposure package was downloaded (from the admin UI).
    ExposurePackageRead,
    InventoryRescanned,
    SecondFactorPending,
    TotpEnrolled,
    TotpReset,
    RecoveryCodesRegenerated,
    ApiTokenCreated,
    ApiTokenRevoked,
    /// An organization's login policy changed (e.g. TOTP on SFTP password logins).
    OrgPolicySet,
    /// A graceful shutdown finished (what was still open was interrupted and recorded first).
    ServerStopped,
    /// `lockbox backup` wrote a copy of the metadata and ciphertext.
    BackupCreated,
    /// `lockbox restore` filled an empty data directory from a backup.
    BackupRestored,
    /// `lockbox verify-storage` checked every blob against the metadata.
    StorageVerified,
    /// A key-encryption key rotation began (or resumed).
    KeyRotationStarted,
    /// Every wrapped data key is under the new key-encryption key; the old one is retired.
    KeyRotated,
    /// A download was opened; written before its first byte is served (`file_read` follows at
    /// close with the byte count).
    FileOpened,
}

impl Action {
    /// Every action, in declaration order (for filters and documentation).
    pub const ALL: &'static [Action] = &[
        Action::ServerStarted,
        Action::LoginSucceeded,
        Action::LoginFailed,
        Action::AccountLocked,
        Action::SourceThrottled,
        Action::SessionStarted,
        Action::SessionEnded,
        Action::FileRead,
        Action::UploadCommitted,
        Action::UploadInterrupted,
        Action::UploadAbandoned,
        Action::FileDeleted,
        Action::Renamed,
        Action::DirCreated,
        Action::DirRemoved,
        Action::AccessDenied,
        Action::OrgCreated,
        Action::UserCreated,
        Action::UserPasswordSet,
        Action::UserDisabled,
        Action::UserEnabled,
        Action::UserUnlocked,
        Action::KeyAdded,
        Action::KeyRemoved,
        Action::GroupCreated,
        Action::GroupMemberAdded,
        Action::FolderCreated,
        Action::GrantSet,
        Action::GrantRemoved,
        Action::AuditExported,
        Action::ExposureReport,
        Action::ExposurePackageRead,
        Action::InventoryRescanned,
        Action::SecondFactorPending,
        Action::TotpEnrolled,
        Action::TotpReset,
        Action::RecoveryCodesRegenerated,
        Action::ApiTokenCreated,
        Action::ApiTokenRevoked,
        Action::OrgPolicySet,
        Action::ServerStopped,
        Action::BackupCreated,
        Action::BackupRestored,
        Action::StorageVerified,
        Action::KeyRotationStarted,
        Action::KeyRotated,
        Action::FileOpened,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ServerStarted => "server_started",
            Action::ServerStopped => "server_stopped",
            Action::BackupCreated => "backup_created",
            Action::BackupRestored => "backup_restored",
            Action::StorageVerified => "storage_verified",
            Action::KeyRotationStarted => "key_rotation_started",
            Action::KeyRotated => "key_rotated",
            Action::FileOpened => "file_opened",
            Action::LoginSucceeded => "login_succeeded",
            Action::LoginFailed => "login_failed",
            Action::AccountLocked => "account_locked",
            Action::SourceThrottled => "source_throttled",
            Action::SessionStarted => "session_started",
            Action::SessionEnded => "session_ended",
            Action::FileRead => "file_read",
            Action::UploadCommitted => "upload_committed",
            Action::UploadInterrupted => "upload_interrupted",
            Action::UploadAbandoned => "upload_abandoned",
            Action::FileDeleted => "file_deleted",
            Action::Renamed => "renamed",
            Action::DirCreated => "dir_created",
            Action::DirRemoved => "dir_removed",
            Action::AccessDenied => "access_denied",
            Action::OrgCreated => "org_created",
            Action::UserCreated => "user_created",
            Action::UserPasswordSet => "user_password_set",
            Action::UserDisabled => "user_disabled",
            Action::UserEnabled => "user_enabled",
            Action::UserUnlocked => "user_unlocked",
            Action::KeyAdded => "key_added",
            Action::KeyRemoved => "key_removed",
            Action::GroupCreated => "group_created",
            Action::GroupMemberAdded => "group_member_added",
            Action::FolderCreated => "folder_created",
            Action::GrantSet => "grant_set",
            Action::GrantRemoved => "grant_removed",
            Action::AuditExported => "audit_exported",
            Action::ExposureReport => "exposure_report",
            Action::ExposurePackageRead => "exposure_package_read",
            Action::InventoryRescanned => "inventory_rescanned",
            Action::SecondFactorPending => "second_factor_pending",
            Action::TotpEnrolled => "totp_enrolled",
            Action::TotpReset => "totp_reset",
            Action::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Action::ApiTokenCreated => "api_token_created",
            Action::ApiTokenRevoked => "api_token_revoked",
            Action::OrgPolicySet => "org_policy_set",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// One event to record. `detail` is structured data (byte counts, digests, reasons).
#[derive(Debug, Clone)]
pub struct Event {
    pub door: Door,
    pub actor: String,
    pub org: String,
    pub source: String,
    pub action: Action,
    pub target: String,
    pub outcome: Outcome,
    pub detail: serde_json::Value,
}

impl Event {
    pub fn new(door: Door, action: Action, outcome: Outcome) -> Self {
        Event {
            door,
            actor: String::new(),
            org: String::new(),
            source: String::new(),
            action,
            target: String::new(),
            outcome,
            detail: serde_json::Value::Null,
        }
    }
    pub fn actor(mut self, actor: impl Into<String>, org: impl Into<String>) -> Self {
        self.actor = actor.into();
        self.org = org.into();
        self
    }
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into();
        self
    }
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// The record hash: SHA-256 over a domain tag, then every field length-prefixed (so no two different
/// records can serialize to the same bytes), then the previous hash.
pub fn record_hash(row: &AuditRow) -> String {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    h.update(row.seq.to_be_bytes());
    for field in [
        &row.ts,
        &row.door,
        &row.actor,
        &row.org,
        &row.source,
        &row.action,
        &row.target,
        &row.outcome,
        &row.detail,
        &row.prev_hash,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Result of a successful verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub records: i64,
    pub head_hash: String,
}

#[derive(Clone)]
pub struct AuditLog {
    store: Arc<SqliteStore>,
}

impl AuditLog {
    pub fn new(store: Arc<SqliteStore>) -> Self {
        AuditLog { store }
    }

    /// Appends an event and returns its sequence number.
    pub fn record(&self, ev: Event) -> Result<i64, AuditError> {
        let detail = if ev.detail.is_null() {
            "{}".to_owned()
        } else {
            ev.detail.to_string()
        };
        let ts = now_rfc3339();
        Ok(self.store.append_audit(|last| {
            let (seq, prev_hash) = match last {
                Some((s, h)) => (s + 1, h),
                None => (1, GENESIS_HASH.to_owned()),
            };
            let mut row = AuditRow {
                seq,
                ts,
                door: ev.door.as_str().to_owned(),
                actor: ev.actor,
                org: ev.org,
                source: ev.source,
                action: ev.action.as_str().to_owned(),
                target: ev.target,
                outcome: ev.outcome.as_str().to_owned(),
                detail,
                prev_hash,
                hash: String::new(),
            };
            row.hash = record_hash(&row);
            row
        })?)
    }

    /// Walks the whole chain and reports the first record that does not fit.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        let mut expected_seq = 1i64;
        let mut prev = GENESIS_HASH.to_owned();
        let mut broken: Option<AuditError> = None;
        self.store.scan_audit(|row| {
            let reason = if row.seq != expected_seq {
                Some(format!(
                    "sequence number {} where {} was expected: a record was deleted or inserted",
                    row.seq, expected_seq
                ))
            } else if row.prev_hash != prev {
                Some("its link to the previous record is broken: records were removed, inserted or reordered".to_owned())
            } else if record_hash(&row) != row.hash {
                Some("its content does not match its hash: the record was edited".to_owned())
            } else {
                None
            };
            if let Some(reason) = reason {
                broken = Some(AuditError::Broken { seq: row.seq, reason });
                return false;
            }
            prev = row.hash;
            expected_seq += 1;
            true
        })?;
        match broken {
            Some(e) => Err(e),
            None => Ok(VerifyReport {
                records: expected_seq - 1,
                head_hash: prev,
            }),
        }
    }

    /// Writes every record as one JSON object per line, in sequence order.
    pub fn export_jsonl(&self, out: &mut dyn Write) -> Result<u64, AuditError> {
        let mut n = 0u64;
        let mut io_err = None;
        self.store.scan_audit(|row| {
            let detail: serde_json::Value =
                serde_json::from_str(&row.detail).unwrap_or(serde_json::Value::String(row.detail.clone()));
            let obj = serde_json::json!({
                "seq": row.seq, "ts": row.ts, "door": row.door, "actor": row.actor, "org": row.org,
                "source": row.source, "action": row.action, "target": row.target, "outcome": row.outcome,
                "detail": detail, "prev_hash": row.prev_hash, "hash": row.hash,
            });
            if let Err(e) = writeln!(out, "{obj}") {
                io_err = Some(e);
                return false;
            }
            n += 1;
            true
        })?;
        match io_err {
            Some(e) => Err(e.into()),
            None => Ok(n),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn log() -> (tempfile::TempDir, AuditLog, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let log = AuditLog::new(store.clone());
        for i in 0..5 {
            log.record(
                Event::new(Door::Sftp, Action::LoginSucceeded, Outcome::Ok)
                    .actor(format!("u{i}"), "acme")
                    .detail(serde_json::json!({"i": i})),
            )
            .unwrap();
        }
        (dir, log, store)
    }

    fn exec(dir: &tempfile::TempDir, sql: &str) {
        let c = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        c.execute_batch(sql).unwrap();
    }

    fn broken_at(log: &AuditLog) -> i64 {
        match log.verify() {
            Err(AuditError::Broken { seq, .. }) => seq,
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn intact_chain_verifies() {
        let (_d, log, _) = log();
        let r = log.verify().unwrap();
        assert_eq!(r.records, 5);
        let mut out = Vec::new();
        assert_eq!(log.export_jsonl(&mut out).unwrap(), 5);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 5);
    }

    #[test]
    fn search_filters_are_bound_parameters() {
        let (_d, log, store) = log();
        let all = store
            .search_audit(&lockbox_store::AuditFilter {
                limit: 500,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            all.iter().map(|(_, r)| r.seq).collect::<Vec<_>>(),
            [5, 4, 3, 2, 1]
        );
        assert!(
            all.iter().all(|(t, _)| *t > 1_600_000_000),
            "time parsed from ts"
        );
        for hostile in ["' OR 1=1 --", "u1' OR '1'='1", "%", "u1\0"] {
            let f = lockbox_store::AuditFilter {
                actor: Some(hostile),
                limit: 500,
                ..Default::default()
            };
            assert!(store.search_audit(&f).unwrap().is_empty(), "{hostile}");
            let f = lockbox_store::AuditFilter {
                action: Some(hostile),
                org: Some(hostile),
                limit: 500,
                ..Default::default()
            };
            assert!(store.search_audit(&f).unwrap().is_empty(), "{hostile}");
        }
        let page = store
            .search_audit(&lockbox_store::AuditFilter {
                actor: Some("u1"),
                org: Some("acme"),
                action: Some("login_succeeded"),
                from: Some(0),
                to: Some(i64::MAX),
                limit: 500,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.len(), 1);
        let older = store
            .search_audit(&lockbox_store::AuditFilter {
                before_seq: Some(3),
                limit: 1,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(older.iter().map(|(_, r)| r.seq).collect::<Vec<_>>(), [2]);
        let future = store
            .search_audit(&lockbox_store::AuditFilter {
                from: Some(i64::MAX),
                limit: 500,
                ..Default::default()
            })
            .unwrap();
        assert!(future.is_empty());
        assert!(log.verify().is_ok());
    }

    #[test]
    fn edit_is_detected() {
        let (d, log, _) = log();
        exec(&d, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3");
        assert_eq!(broken_at(&log), 3);
    }

    #[test]
    fn delete_is_detected() {
        let (d, log, _) = log();
        exec(&d, "DELETE FROM audit_log WHERE seq = 2");
        assert_eq!(broken_at(&log), 3);
    }

    #[test]
    fn reorder_is_detected() {
        let (d, log, _) = log();
        exec(
            &d,
            "UPDATE audit_log SET seq = 100 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 4; \
             UPDATE audit_log SET seq = 4 WHERE seq = 100;",
        );
        assert_eq!(broken_at(&log), 2);
    }

    #[test]
    fn insert_is_detected() {
        let (d, log, _) = log();
        exec(
            &d,
            "UPDATE audit_log SET seq = -(seq + 1) WHERE seq >= 3; UPDATE audit_log SET seq = -seq WHERE seq < 0; \
             INSERT INTO audit_log SELECT 3, ts, door, 'mallory', org, source, action, target, outcome, detail, prev_hash, hash FROM audit_log WHERE seq = 2;",
        );
        assert!(broken_at(&log) <= 4);
    }
}
