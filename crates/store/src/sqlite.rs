//! The embedded SQLite metadata store. One connection behind a mutex: SQLite serializes writers anyway,
//! and callers run on blocking threads. WAL mode lets the admin CLI work while the server runs.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use lockbox_types::{FileId, FolderId, GroupId, OrgId, PermissionSet, Role, UploadId, UserId};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::rows::*;
use crate::schema::{
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_VERSION,
};
use crate::{now_unix, BlobId, Result, StoreError};

/// How long a writer waits for another process (the CLI, a second server) to finish its transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

// Column lists as macros so every statement stays a compile-time string literal (`concat!`), never
// text assembled at run time.
macro_rules! user_cols {
    () => {
        "u.id, u.org_id, o.name, u.name, u.role, u.password_hash, u.disabled, u.failed_logins, u.locked_until, u.created_at"
    };
}
macro_rules! org_cols {
    () => {
        "id, name, created_at, sftp_password_totp"
    };
}
macro_rules! file_cols {
    () => {
        "id, folder_id, parent, name, blob_id, wrapped_key, size, sha256, mtime, created_by, committed_at, deleted_at"
    };
}
macro_rules! token_cols {
    () => {
        "t.id, t.user_id, u.name, o.name, t.name, t.secret_hash, t.scopes, t.created, t.expires, t.last_used, t.revoked"
    };
}
macro_rules! token_from {
    () => {
        " FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN orgs o ON o.id = u.org_id "
    };
}
macro_rules! audit_cols {
    () => {
        "seq, ts, door, actor, org, source, action, target, outcome, detail, prev_hash, hash"
    };
}
macro_rules! upload_cols {
    () => {
        "id, folder_id, parent, name, user_id, blob_id, wrapped_key, size, created_at, updated_at, resumable"
    };
}

fn org_from(r: &Row<'_>) -> rusqlite::Result<OrgRow> {
    Ok(OrgRow {
        id: OrgId(r.get(0)?),
        name: r.get(1)?,
        created_at: r.get(2)?,
        sftp_password_totp: r.get::<_, i64>(3)? != 0,
    })
}

fn user_from(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    let role: String = r.get(4)?;
    Ok(UserRow {
        id: UserId(r.get(0)?),
        org_id: OrgId(r.get(1)?),
        org_name: r.get(2)?,
        name: r.get(3)?,
        role: if role == "admin" {
            Role::Admin
        } else {
            Role::Transfer
        },
        password_hash: r.get(5)?,
        disabled: r.get::<_, i64>(6)? != 0,
        failed_logins: r.get(7)?,
        locked_until: r.get(8)?,
        created_at: r.get(9)?,
    })
}

fn token_row(r: &Row<'_>) -> rusqlite::Result<ApiTokenRow> {
    Ok(ApiTokenRow {
        id: r.get(0)?,
        user_id: UserId(r.get(1)?),
        user_name: r.get(2)?,
        org_name: r.get(3)?,
        name: r.get(4)?,
        secret_hash: r.get(5)?,
        scopes: r.get(6)?,
        created: r.get(7)?,
        expires: r.get(8)?,
        last_used: r.get(9)?,
        revoked: r.get(10)?,
    })
}

fn audit_from(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: r.get(0)?,
        ts: r.get(1)?,
        door: r.get(2)?,
        actor: r.get(3)?,
        org: r.get(4)?,
        source: r.get(5)?,
        action: r.get(6)?,
        target: r.get(7)?,
        outcome: r.get(8)?,
        detail: r.get(9)?,
        prev_hash: r.get(10)?,
        hash: r.get(11)?,
    })
}

fn blob_from(r: &Row<'_>, idx: usize) -> rusqlite::Result<BlobId> {
    let v: Vec<u8> = r.get(idx)?;
    BlobId::from_slice(&v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, Box::new(e))
    })
}

fn file_from(r: &Row<'_>) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        id: FileId(r.get(0)?),
        folder_id: FolderId(r.get(1)?),
        parent: r.get(2)?,
        name: r.get(3)?,
        blob_id: blob_from(r, 4)?,
        wrapped_key: r.get(5)?,
        size: r.get::<_, i64>(6)?.max(0) as u64,
        sha256: r.get(7)?,
        mtime: r.get(8)?,
        created_by: UserId(r.get(9)?),
        committed_at: r.get(10)?,
        deleted_at: r.get(11)?,
    })
}

fn upload_from(r: &Row<'_>) -> rusqlite::Result<UploadRow> {
    Ok(UploadRow {
        id: UploadId(r.get(0)?),
        folder_id: FolderId(r.get(1)?),
        parent: r.get(2)?,
        name: r.get(3)?,
        user_id: UserId(r.get(4)?),
        blob_id: blob_from(r, 5)?,
        wrapped_key: r.get(6)?,
        size: r.get::<_, i64>(7)?.max(0) as u64,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        resumable: r.get::<_, i64>(10)? != 0,
    })
}

fn folder_from(r: &Row<'_>) -> rusqlite::Result<FolderRow> {
    Ok(FolderRow {
        id: FolderId(r.get(0)?),
        org_id: OrgId(r.get(1)?),
        name: r.get(2)?,
        home_of: r.get::<_, Option<i64>>(3)?.map(UserId),
        created_at: r.get(4)?,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// Maps a unique-constraint failure to a readable conflict.
fn conflict_or<T>(r: rusqlite::Result<T>, what: impl FnOnce() -> String) -> Result<T> {
    r.map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict(what())
        } else {
            StoreError::Sqlite(e)
        }
    })
}

/// See [`SqliteStore::conn_lazy`]; restores `synchronous=FULL` when dropped.
pub(crate) struct LazyConn<'a>(MutexGuard<'a, Connection>);

impl std::ops::Deref for LazyConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl std::ops::DerefMut for LazyConn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0
    }
}

impl Drop for LazyConn<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.pragma_update(None, "synchronous", "FULL") {
            // Never seen (the pragma does no I/O); if it happened, later commits would not be
            // durable, so say so loudly.
            tracing::error!(error = %e, "could not restore synchronous=FULL on the metadata connection");
        }
    }
}

/// The tables that hold wrapped data keys.
#[derive(Debug, Clone, Copy)]
pub enum KeyTable {
    Files,
    Uploads,
}

/// The blob side of a new staging upload.
#[derive(Debug, Clone, Copy)]
pub struct StagedBlob<'a> {
    pub blob: BlobId,
    pub wrapped_key: &'a [u8],
    /// See [`UploadRow::resumable`].
    pub resumable: bool,
}

/// `prefix || substr(x, len(old)+1)` rewrites a parent path when a directory moves; comparing with
/// `substr` instead of LIKE keeps `%` and `_` in names from acting as wildcards.
macro_rules! subtree_match {
    () => {
        "(parent = ?1 OR substr(parent, 1, length(?1) + 1) = ?1 || '/')"
    };
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: in WAL mode every commit fsyncs the WAL before returning, so a commit the server
        // has acknowledged (a CLOSE, an audit record) survives an operating system crash or power
        // loss. NORMAL would only protect against a crash of this process.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: path.display().to_string(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        // Migrations run in order, each in its own transaction, from whatever version is on disk.
        for (target, sql) in [
            (1, SCHEMA_V1),
            (2, SCHEMA_V2),
            (3, SCHEMA_V3),
            (4, SCHEMA_V4),
            (5, SCHEMA_V5),
            (6, SCHEMA_V6),
            (7, SCHEMA_V7),
        ] {
            if version < target {
                let tx = conn.unchecked_transaction()?;
                // v7 adds a column; a database from a development build may have it already
                // (SQLite has no ADD COLUMN IF NOT EXISTS).
                let skip = target == 7
                    && {
                        let n: i64 = tx.query_row(
                        "SELECT count(*) FROM pragma_table_info('uploads') WHERE name = 'resumable'",
                        [],
                        |r| r.get(0),
                    )?;
                        n > 0
                    };
                if !skip {
                    tx.execute_batch(sql)?;
                }
                tx.pragma_update(None, "user_version", target)?;
                tx.commit()?;
            }
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// An installation fact (`meta` table), if recorded.
    pub fn meta(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records an installation fact, replacing an earlier value.
    pub fn set_meta(&self, name: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO meta (name, value, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![name, value, now_unix()],
        )?;
        Ok(())
    }

    /// One wrapped data key and the blob id it is bound to (a live file's, else a staged
    /// upload's), to test a key-encryption key against; `None` when nothing is encrypted yet.
    pub fn any_wrapped_key(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let c = self.conn();
        let file = c
            .query_row(
                "SELECT wrapped_key, blob_id FROM files WHERE wrapped_key IS NOT NULL LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if file.is_some() {
            return Ok(file);
        }
        Ok(c.query_row(
            "SELECT wrapped_key, blob_id FROM uploads LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
    }

    // ---- backups and storage checks ----

    /// Writes a consistent copy of the whole database to `path` (which must not exist), from one
    /// read transaction, while other connections go on writing (`VACUUM INTO`).
    pub fn snapshot_into(&self, path: &Path) -> Result<()> {
        let target = path.to_str().ok_or_else(|| {
            StoreError::Corrupt(format!("backup path {} is not UTF-8", path.display()))
        })?;
        self.conn().execute("VACUUM INTO ?1", params![target])?;
        Ok(())
    }

    /// Every file version whose key still exists: (id, blob, plaintext size).
    pub fn live_blobs(&self) -> Result<Vec<(FileId, BlobId, u64)>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT id, blob_id, size FROM files WHERE wrapped_key IS NOT NULL ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                FileId(r.get(0)?),
                blob_from(r, 1)?,
                r.get::<_, i64>(2)?.max(0) as u64,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A committed file version's wrapped key (None once deleted).
    pub fn file_wrapped_key(&self, id: FileId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT wrapped_key FROM files WHERE id = ?1",
                params![id.0],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?
            .flatten())
    }

    /// When and by whom a file version was deleted, if it was.
    pub fn file_deletion(&self, id: FileId) -> Result<Option<(i64, i64)>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT deleted_at, deleted_by FROM files WHERE id = ?1 AND deleted_at IS NOT NULL",
                params![id.0],
                |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
            )
            .optional()?)
    }

    /// Records a deletion that happened elsewhere (a backup catching up with a version deleted
    /// while it was being copied): key destroyed, time and user as given.
    pub fn mark_deleted_as(&self, id: FileId, deleted_at: i64, deleted_by: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE files SET deleted_at = ?2, deleted_by = ?3, wrapped_key = NULL WHERE id = ?1",
            params![id.0, deleted_at, deleted_by],
        )?;
        Ok(())
    }

    /// Forgets every staged upload (a backup keeps committed files only).
    pub fn clear_uploads(&self) -> Result<usize> {
        Ok(self.conn().execute("DELETE FROM uploads", [])?)
    }

    /// Every blob the metadata refers to: live file versions and staged uploads.
    pub fn referenced_blobs(&self) -> Result<std::collections::HashSet<BlobId>> {
        let c = self.conn();
        let mut out = std::collections::HashSet::new();
        for sql in [
            "SELECT blob_id FROM files WHERE wrapped_key IS NOT NULL",
            "SELECT blob_id FROM uploads",
        ] {
            let mut st = c.prepare(sql)?;
            let rows = st.query_map([], |r| blob_from(r, 0))?;
            for b in rows {
                out.insert(b?);
            }
        }
        Ok(out)
    }

    /// Up to `limit` wrapped keys with a row id above `after`, in id order: (id, blob, wrapped).
    pub fn wrapped_keys_page(
        &self,
        table: KeyTable,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, BlobId, Vec<u8>)>> {
        let sql = match table {
            KeyTable::Files => {
                "SELECT id, blob_id, wrapped_key FROM files WHERE wrapped_key IS NOT NULL AND id > ?1 ORDER BY id LIMIT ?2"
            }
            KeyTable::Uploads => {
                "SELECT id, blob_id, wrapped_key FROM uploads WHERE id > ?1 ORDER BY id LIMIT ?2"
            }
        };
        let c = self.conn();
        let mut st = c.prepare(sql)?;
        let rows = st.query_map(params![after, limit as i64], |r| {
            Ok((r.get(0)?, blob_from(r, 1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Replaces wrapped keys (a key rotation), in one transaction. A file version deleted
    /// meanwhile keeps its destroyed key.
    pub fn set_wrapped_keys(&self, table: KeyTable, keys: &[(i64, Vec<u8>)]) -> Result<()> {
        let sql = match table {
            KeyTable::Files => {
                "UPDATE files SET wrapped_key = ?2 WHERE id = ?1 AND wrapped_key IS NOT NULL"
            }
            KeyTable::Uploads => "UPDATE uploads SET wrapped_key = ?2 WHERE id = ?1",
        };
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare(sql)?;
            for (id, k) in keys {
                st.execute(params![id, k])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Number of audit records.
    pub fn audit_len(&self) -> Result<u64> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Whether anything was ever stored: an organization, a file or an upload.
    pub fn holds_data(&self) -> Result<bool> {
        let c = self.conn();
        let n: i64 = c.query_row(
            "SELECT (SELECT count(*) FROM orgs) + (SELECT count(*) FROM files) + (SELECT count(*) FROM uploads)",
            [],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// The connection for a transaction that need not be durable on its own: its commit skips
    /// the WAL fsync (`synchronous=NORMAL`) because a durable commit that follows it before
    /// anything is acknowledged (an upload's `upload_committed` audit record, or `sync_point`)
    /// fsyncs the WAL, and with it this transaction. Used for staging rows, resume points, an
    /// upload's commit and its inventory; everything else commits with FULL.
    pub(crate) fn conn_lazy(&self) -> Result<LazyConn<'_>> {
        let c = self.conn();
        c.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(LazyConn(c))
    }

    /// A durable commit: every transaction committed before it is on disk when it returns.
    pub fn sync_point(&self) -> Result<()> {
        self.set_meta("durable_at", &now_unix().to_string())
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back on
        // drop), so a poisoned mutex is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- organizations ----

    pub fn create_org(&self, name: &str) -> Result<OrgRow> {
        let c = self.conn();
        let now = now_unix();
        conflict_or(
            c.execute(
                "INSERT INTO orgs (name, created_at) VALUES (?1, ?2)",
                params![name, now],
            ),
            || format!("organization {name:?}"),
        )?;
        Ok(OrgRow {
            id: OrgId(c.last_insert_rowid()),
            name: name.to_owned(),
            created_at: now,
            // The column's default: a new organization starts with the policy off.
            sftp_password_totp: false,
        })
    }

    pub fn org_by_name(&self, name: &str) -> Result<Option<OrgRow>> {
        Ok(self
            .conn()
            .query_row(
                concat!("SELECT ", org_cols!(), " FROM orgs WHERE name = ?1"),
                params![name],
                org_from,
            )
            .optional()?)
    }

    pub fn list_orgs(&self) -> Result<Vec<OrgRow>> {
        let c = self.conn();
        let mut st =
            c.prepare_cached(concat!("SELECT ", org_cols!(), " FROM orgs ORDER BY name"))?;
        let rows = st.query_map([], org_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Turns the organization's "SFTP password logins need a second factor" policy on or off.
    /// Returns false if there is no such organization.
    pub fn set_org_sftp_password_totp(&self, org: OrgId, on: bool) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE orgs SET sftp_password_totp = ?2 WHERE id = ?1",
            params![org.0, on as i64],
        )?;
        Ok(n == 1)
    }

    /// Whether the user's organization requires a second factor on SFTP password logins. Read at
    /// login time (not from a cached row) so a policy change applies to the next login.
    pub fn sftp_password_totp_for_user(&self, user: UserId) -> Result<bool> {
        let on: Option<i64> = self
            .conn()
            .query_row(
                "SELECT o.sftp_password_totp FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.id = ?1",
                params![user.0],
                |r| r.get(0),
            )
            .optional()?;
        Ok(on.is_some_and(|v| v != 0))
    }

    // ---- users ----

    /// Creates a user and their home folder (with every permission for them) in one transaction.
    pub fn create_user_with_home(
        &self,
        org: OrgId,
        name: &str,
        role: Role,
        password_hash: Option<&str>,
        home_folder_name: &str,
    ) -> Result<UserRow> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_unix();
        conflict_or(
            tx.execute(
                "INSERT INTO users (org_id, name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![org.0, name, role.as_str(), password_hash, now],
            ),
            || format!("user {name:?}"),
        )?;
        let uid = tx.last_insert_rowid();
        conflict_or(
            tx.execute(
                "INSERT INTO folders (org_id, name, home_of, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![org.0, home_folder_name, uid, now],
            ),
            || format!("folder {home_folder_name:?}"),
        )?;
        let fid = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO grants (folder_id, subject_kind, subject_id, perms) VALUES (?1, 'user', ?2, ?3)",
            params![fid, uid, PermissionSet::ALL.bits()],
        )?;
        tx.commit()?;
        drop(c);
        self.user_by_name(name)?
            .ok_or_else(|| StoreError::not_found(format!("user {name:?}")))
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        let sql = concat!(
            "SELECT ",
            user_cols!(),
            " FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.name = ?1"
        );
        Ok(self
            .conn()
            .query_row(sql, params![name], user_from)
            .optional()?)
    }

    pub fn user_by_id(&self, id: UserId) -> Result<Option<UserRow>> {
        let sql = concat!(
            "SELECT ",
            user_cols!(),
            " FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.id = ?1"
        );
        Ok(self
            .conn()
            .query_row(sql, params![id.0], user_from)
            .optional()?)
    }

    pub fn list_users(&self, org: Option<OrgId>) -> Result<Vec<UserRow>> {
        let sql = concat!(
            "SELECT ",
            user_cols!(),
            " FROM users u JOIN orgs o ON o.id = u.org_id \
             WHERE ?1 IS NULL OR u.org_id = ?1 ORDER BY o.name, u.name"
        );
        let c = self.conn();
        let mut st = c.prepare_cached(sql)?;
        let rows = st.query_map(params![org.map(|o| o.0)], user_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_password_hash(&self, user: UserId, hash: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![user.0, hash],
        )?;
        Ok(())
    }

    pub fn set_disabled(&self, user: UserId, disabled: bool) -> Result<()> {
        self.conn().execute(
            "UPDATE users SET disabled = ?2 WHERE id = ?1",
            params![user.0, disabled as i64],
        )?;
        Ok(())
    }

    /// Counts one failed login; when `threshold` is reached the account is locked until
    /// `now + lock_secs`. Returns the new count and the lock expiry, if locked.
    pub fn record_login_failure(
        &self,
        user: UserId,
        threshold: i64,
        lock_secs: i64,
        now: i64,
    ) -> Result<(i64, Option<i64>)> {
        let c = self.conn();
        c.execute(
            "UPDATE users SET failed_logins = failed_logins + 1, \
             locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until END \
             WHERE id = ?1",
            params![user.0, threshold, now + lock_secs],
        )?;
        Ok(c.query_row(
            "SELECT failed_logins, locked_until FROM users WHERE id = ?1",
            params![user.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Counts one attempt against the account *before* it is evaluated, in one statement, unless
    /// the account is locked; the attempt that reaches `threshold` sets the lock itself. So however
    /// many attempts run in parallel, no more than `threshold` are ever evaluated per lock period.
    /// A successful attempt then calls `clear_login_failures`. Returns the new count, or `None`
    /// when the account is locked (nothing counted).
    pub fn reserve_login_attempt(
        &self,
        user: UserId,
        threshold: i64,
        lock_secs: i64,
        now: i64,
    ) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row(
                "UPDATE users SET failed_logins = failed_logins + 1, \
                 locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until END \
                 WHERE id = ?1 AND (locked_until IS NULL OR locked_until <= ?4) \
                 RETURNING failed_logins",
                params![user.0, threshold, now + lock_secs, now],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Clears the failure counter and any lock (after a good login, or by an admin).
    pub fn clear_login_failures(&self, user: UserId) -> Result<()> {
        self.conn().execute(
            "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
            params![user.0],
        )?;
        Ok(())
    }

    // ---- SSH keys ----

    pub fn add_ssh_key(
        &self,
        user: UserId,
        algorithm: &str,
        fingerprint: &str,
        public_key: &str,
        comment: &str,
    ) -> Result<SshKeyRow> {
        let c = self.conn();
        let now = now_unix();
        conflict_or(
            c.execute(
                "INSERT INTO ssh_keys (user_id, algorithm, fingerprint, public_key, comment, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![user.0, algorithm, fingerprint, public_key, comment, now],
            ),
            || format!("key {fingerprint}"),
        )?;
        Ok(SshKeyRow {
            id: c.last_insert_rowid(),
            user_id: user,
            algorithm: algorithm.to_owned(),
            fingerprint: fingerprint.to_owned(),
            public_key: public_key.to_owned(),
            comment: comment.to_owned(),
            created_at: now,
        })
    }

    pub fn list_ssh_keys(&self, user: UserId) -> Result<Vec<SshKeyRow>> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT id, user_id, algorithm, fingerprint, public_key, comment, created_at \
             FROM ssh_keys WHERE user_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![user.0], |r| {
            Ok(SshKeyRow {
                id: r.get(0)?,
                user_id: UserId(r.get(1)?),
                algorithm: r.get(2)?,
                fingerprint: r.get(3)?,
                public_key: r.get(4)?,
                comment: r.get(5)?,
                created_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn remove_ssh_key(&self, user: UserId, fingerprint: &str) -> Result<()> {
        let n = self.conn().execute(
            "DELETE FROM ssh_keys WHERE user_id = ?1 AND fingerprint = ?2",
            params![user.0, fingerprint],
        )?;
        if n == 0 {
            return Err(StoreError::not_found(format!("key {fingerprint}")));
        }
        Ok(())
    }

    // ---- groups ----

    pub fn create_group(&self, org: OrgId, name: &str) -> Result<GroupRow> {
        let c = self.conn();
        conflict_or(
            c.execute(
                "INSERT INTO groups (org_id, name) VALUES (?1, ?2)",
                params![org.0, name],
            ),
            || format!("group {name:?}"),
        )?;
        Ok(GroupRow {
            id: GroupId(c.last_insert_rowid()),
            org_id: org,
            name: name.to_owned(),
        })
    }

    pub fn group_by_name(&self, org: OrgId, name: &str) -> Result<Option<GroupRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, org_id, name FROM groups WHERE org_id = ?1 AND name = ?2",
                params![org.0, name],
                |r| {
                    Ok(GroupRow {
                        id: GroupId(r.get(0)?),
                        org_id: OrgId(r.get(1)?),
                        name: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn list_groups(&self, org: OrgId) -> Result<Vec<(GroupRow, Vec<String>)>> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT id, org_id, name FROM groups WHERE org_id = ?1 ORDER BY name",
        )?;
        let groups: Vec<GroupRow> = st
            .query_map(params![org.0], |r| {
                Ok(GroupRow {
                    id: GroupId(r.get(0)?),
                    org_id: OrgId(r.get(1)?),
                    name: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut members_st = c.prepare_cached(
            "SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 ORDER BY u.name",
        )?;
        let mut out = Vec::new();
        for g in groups {
            let members = members_st
                .query_map(params![g.id.0], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            out.push((g, members));
        }
        Ok(out)
    }

    pub fn add_group_member(&self, group: GroupId, user: UserId) -> Result<()> {
        conflict_or(
            self.conn().execute(
                "INSERT INTO group_members (group_id, user_id) VALUES (?1, ?2)",
                params![group.0, user.0],
            ),
            || "group membership".to_owned(),
        )?;
        Ok(())
    }

    // ---- folders and grants ----

    pub fn create_folder(&self, org: OrgId, name: &str) -> Result<FolderRow> {
        let c = self.conn();
        let now = now_unix();
        conflict_or(
            c.execute(
                "INSERT INTO folders (org_id, name, created_at) VALUES (?1, ?2, ?3)",
                params![org.0, name, now],
            ),
            || format!("folder {name:?}"),
        )?;
        Ok(FolderRow {
            id: FolderId(c.last_insert_rowid()),
            org_id: org,
            name: name.to_owned(),
            home_of: None,
            created_at: now,
        })
    }

    pub fn folder_by_name(&self, org: OrgId, name: &str) -> Result<Option<FolderRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, org_id, name, home_of, created_at FROM folders WHERE org_id = ?1 AND name = ?2",
                params![org.0, name],
                folder_from,
            )
            .optional()?)
    }

    /// Name of the organization that owns a folder.
    pub fn org_name_of_folder(&self, folder: FolderId) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT o.name FROM folders f JOIN orgs o ON o.id = f.org_id WHERE f.id = ?1",
                params![folder.0],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn home_folder(&self, user: UserId) -> Result<Option<FolderRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, org_id, name, home_of, created_at FROM folders WHERE home_of = ?1",
                params![user.0],
                folder_from,
            )
            .optional()?)
    }

    pub fn list_folders(&self, org: Option<OrgId>) -> Result<Vec<FolderRow>> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT id, org_id, name, home_of, created_at FROM folders \
             WHERE ?1 IS NULL OR org_id = ?1 ORDER BY org_id, name",
        )?;
        let rows = st.query_map(params![org.map(|o| o.0)], folder_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Creates or replaces the grant of `subject` on `folder`.
    pub fn set_grant(
        &self,
        folder: FolderId,
        subject: Subject,
        perms: PermissionSet,
    ) -> Result<()> {
        let (kind, id) = subject_key(subject);
        self.conn().execute(
            "INSERT INTO grants (folder_id, subject_kind, subject_id, perms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (folder_id, subject_kind, subject_id) DO UPDATE SET perms = excluded.perms",
            params![folder.0, kind, id, perms.bits()],
        )?;
        Ok(())
    }

    pub fn remove_grant(&self, folder: FolderId, subject: Subject) -> Result<()> {
        let (kind, id) = subject_key(subject);
        let n = self.conn().execute(
            "DELETE FROM grants WHERE folder_id = ?1 AND subject_kind = ?2 AND subject_id = ?3",
            params![folder.0, kind, id],
        )?;
        if n == 0 {
            return Err(StoreError::not_found("grant"));
        }
        Ok(())
    }

    pub fn list_grants(&self, org: Option<OrgId>) -> Result<Vec<GrantRow>> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT g.folder_id, f.name, f.org_id, g.subject_kind, g.subject_id, g.perms, \
                    COALESCE(u.name, gr.name, '?') \
             FROM grants g JOIN folders f ON f.id = g.folder_id \
             LEFT JOIN users u ON g.subject_kind = 'user' AND u.id = g.subject_id \
             LEFT JOIN groups gr ON g.subject_kind = 'group' AND gr.id = g.subject_id \
             WHERE ?1 IS NULL OR f.org_id = ?1 ORDER BY f.org_id, f.name, g.subject_kind, 7",
        )?;
        let rows = st.query_map(params![org.map(|o| o.0)], |r| {
            let kind: String = r.get(3)?;
            let sid: i64 = r.get(4)?;
            Ok(GrantRow {
                folder_id: FolderId(r.get(0)?),
                folder_name: r.get(1)?,
                org_id: OrgId(r.get(2)?),
                subject: if kind == "user" {
                    Subject::User(UserId(sid))
                } else {
                    Subject::Group(GroupId(sid))
                },
                perms: PermissionSet::from_bits(r.get(5)?),
                subject_name: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every folder of the user's organization on which the user holds any permission, directly or
    /// through a group, with the union of those permissions. Folders of other organizations never
    /// appear, even if a grant row pointed at one.
    pub fn folders_for_user(&self, user: UserId) -> Result<Vec<(FolderRow, PermissionSet)>> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT f.id, f.org_id, f.name, f.home_of, f.created_at, g.perms \
             FROM grants g JOIN folders f ON f.id = g.folder_id JOIN users u ON u.id = ?1 \
             WHERE f.org_id = u.org_id AND ( \
                (g.subject_kind = 'user' AND g.subject_id = u.id) OR \
                (g.subject_kind = 'group' AND g.subject_id IN \
                    (SELECT m.group_id FROM group_members m JOIN groups gr ON gr.id = m.group_id \
                     WHERE m.user_id = u.id AND gr.org_id = u.org_id))) \
             ORDER BY f.name",
        )?;
        let rows = st.query_map(params![user.0], |r| {
            Ok((folder_from(r)?, PermissionSet::from_bits(r.get(5)?)))
        })?;
        let mut out: Vec<(FolderRow, PermissionSet)> = Vec::new();
        for row in rows {
            let (folder, perms) = row?;
            match out.iter_mut().find(|(f, _)| f.id == folder.id) {
                Some((_, p)) => *p = p.union(perms),
                None => out.push((folder, perms)),
            }
        }
        Ok(out)
    }

    // ---- directories ----

    pub fn dir_exists(&self, folder: FolderId, parent: &str, name: &str) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM dirs WHERE folder_id = ?1 AND parent = ?2 AND name = ?3",
                params![folder.0, parent, name],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn dir_created_at(
        &self,
        folder: FolderId,
        parent: &str,
        name: &str,
    ) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT created_at FROM dirs WHERE folder_id = ?1 AND parent = ?2 AND name = ?3",
                params![folder.0, parent, name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Creates a directory unless a file or directory of that name exists.
    pub fn create_dir(&self, folder: FolderId, parent: &str, name: &str) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let file_exists = tx
            .query_row(
                "SELECT 1 FROM files WHERE folder_id = ?1 AND parent = ?2 AND name = ?3 AND deleted_at IS NULL",
                params![folder.0, parent, name],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if file_exists {
            return Err(StoreError::conflict(format!("{name:?}")));
        }
        conflict_or(
            tx.execute(
                "INSERT INTO dirs (folder_id, parent, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![folder.0, parent, name, now_unix()],
            ),
            || format!("directory {name:?}"),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes an empty directory. Returns NotFound if absent, Conflict if not empty.
    /// Removes an empty directory. `discard` names staging uploads directly inside it that go with
    /// it (the caller's abandoned ones): they are deleted in the same transaction, and only if the
    /// directory is then empty, so either both happen or neither. Returns their blobs, for the
    /// caller to remove after the commit.
    pub fn remove_dir(
        &self,
        folder: FolderId,
        parent: &str,
        name: &str,
        discard: &[UploadId],
    ) -> Result<Vec<BlobId>> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let path = join_rel(parent, name);
        let mut blobs = Vec::new();
        for up in discard {
            let blob: Option<Vec<u8>> = tx
                .query_row(
                    "DELETE FROM uploads WHERE id = ?1 AND folder_id = ?2 AND parent = ?3 RETURNING blob_id",
                    params![up.0, folder.0, path],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(b) = blob {
                blobs.push(BlobId::from_slice(&b)?);
            }
        }
        let busy = tx
            .query_row(
                "SELECT (SELECT count(*) FROM dirs WHERE folder_id = ?1 AND parent = ?2) + \
                        (SELECT count(*) FROM files WHERE folder_id = ?1 AND parent = ?2 AND deleted_at IS NULL) + \
                        (SELECT count(*) FROM uploads WHERE folder_id = ?1 AND parent = ?2)",
                params![folder.0, path],
                |r| r.get::<_, i64>(0),
            )?;
        if busy > 0 {
            return Err(StoreError::conflict(format!(
                "contents of directory {name:?}"
            )));
        }
        let n = tx.execute(
            "DELETE FROM dirs WHERE folder_id = ?1 AND parent = ?2 AND name = ?3",
            params![folder.0, parent, name],
        )?;
        if n == 0 {
            return Err(StoreError::not_found(format!("directory {name:?}")));
        }
        tx.commit()?;
        Ok(blobs)
    }

    pub fn list_dirs(&self, folder: FolderId, parent: &str) -> Result<Vec<DirRow>> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT folder_id, parent, name, created_at FROM dirs WHERE folder_id = ?1 AND parent = ?2 ORDER BY name",
        )?;
        let rows = st.query_map(params![folder.0, parent], |r| {
            Ok(DirRow {
                folder_id: FolderId(r.get(0)?),
                parent: r.get(1)?,
                name: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- files ----

    pub fn live_file(&self, folder: FolderId, parent: &str, name: &str) -> Result<Option<FileRow>> {
        let sql = concat!(
            "SELECT ",
            file_cols!(),
            " FROM files WHERE folder_id = ?1 AND parent = ?2 AND name = ?3 AND deleted_at IS NULL"
        );
        Ok(self
            .conn()
            .query_row(sql, params![folder.0, parent, name], file_from)
            .optional()?)
    }

    pub fn file_by_id(&self, id: FileId) -> Result<Option<FileRow>> {
        let sql = concat!("SELECT ", file_cols!(), " FROM files WHERE id = ?1");
        Ok(self
            .conn()
            .query_row(sql, params![id.0], file_from)
            .optional()?)
    }

    pub fn list_files(&self, folder: FolderId, parent: &str) -> Result<Vec<FileRow>> {
        let sql = concat!(
            "SELECT ",
            file_cols!(),
            " FROM files WHERE folder_id = ?1 AND parent = ?2 AND deleted_at IS NULL ORDER BY name"
        );
        let c = self.conn();
        let mut st = c.prepare_cached(sql)?;
        let rows = st.query_map(params![folder.0, parent], file_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Makes an upload visible: in one transaction the previous live version at that path (if any)
    /// is marked deleted with its wrapped key destroyed, the new version is inserted, and the upload
    /// row is removed. Returns the new row and the blob of the replaced version (to remove).
    pub fn commit_upload(
        &self,
        upload: UploadId,
        size: u64,
        sha256: &str,
        mtime: i64,
    ) -> Result<(FileRow, Option<BlobId>)> {
        let mut c = self.conn_lazy()?;
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let up = tx
            .query_row(
                concat!("SELECT ", upload_cols!(), " FROM uploads WHERE id = ?1"),
                params![upload.0],
                upload_from,
            )
            .optional()?
            .ok_or_else(|| StoreError::not_found("upload"))?;
        let dir_clash = tx
            .query_row(
                "SELECT 1 FROM dirs WHERE folder_id = ?1 AND parent = ?2 AND name = ?3",
                params![up.folder_id.0, up.parent, up.name],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if dir_clash {
            return Err(StoreError::conflict(format!("directory {:?}", up.name)));
        }
        let now = now_unix();
        let replaced: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT id, blob_id FROM files WHERE folder_id = ?1 AND parent = ?2 AND name = ?3 AND deleted_at IS NULL",
                params![up.folder_id.0, up.parent, up.name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((old_id, _)) = &replaced {
            tx.execute(
                "UPDATE files SET deleted_at = ?2, deleted_by = ?3, wrapped_key = NULL WHERE id = ?1",
                params![old_id, now, up.user_id.0],
            )?;
        }
        tx.execute(
            "INSERT INTO files (folder_id, parent, name, blob_id, wrapped_key, size, sha256, mtime, created_by, committed_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                up.folder_id.0,
                up.parent,
                up.name,
                up.blob_id.0.as_slice(),
                up.wrapped_key,
                size as i64,
                sha256,
                mtime,
                up.user_id.0,
                now
            ],
        )?;
        let id = FileId(tx.last_insert_rowid());
        tx.execute("DELETE FROM uploads WHERE id = ?1", params![upload.0])?;
        let row = tx.query_row(
            concat!("SELECT ", file_cols!(), " FROM files WHERE id = ?1"),
            params![id.0],
            file_from,
        )?;
        tx.commit()?;
        let old_blob = match replaced {
            Some((_, b)) => Some(BlobId::from_slice(&b)?),
            None => None,
        };
        Ok((row, old_blob))
    }

    /// Marks a file deleted and destroys its wrapped key (crypto-shredding); the metadata row stays
    /// for the file's lifecycle history. Returns the blob to remove.
    pub fn delete_file(&self, id: FileId, by: UserId) -> Result<BlobId> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let blob: Vec<u8> = tx
            .query_row(
                "SELECT blob_id FROM files WHERE id = ?1 AND deleted_at IS NULL",
                params![id.0],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::not_found("file"))?;
        tx.execute(
            "UPDATE files SET deleted_at = ?2, deleted_by = ?3, wrapped_key = NULL WHERE id = ?1",
            params![id.0, now_unix(), by.0],
        )?;
        tx.commit()?;
        BlobId::from_slice(&blob)
    }

    pub fn set_file_mtime(&self, id: FileId, mtime: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE files SET mtime = ?2 WHERE id = ?1 AND deleted_at IS NULL",
            params![id.0, mtime],
        )?;
        Ok(())
    }

    /// Moves a live file. With `replace`, a live file at the destination is deleted (its key
    /// destroyed) and its blob returned; without, an existing destination is a conflict.
    pub fn rename_file(
        &self,
        id: FileId,
        to_folder: FolderId,
        to_parent: &str,
        to_name: &str,
        replace: bool,
        by: UserId,
    ) -> Result<Option<BlobId>> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let dir_clash = tx
            .query_row(
                "SELECT 1 FROM dirs WHERE folder_id = ?1 AND parent = ?2 AND name = ?3",
                params![to_folder.0, to_parent, to_name],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if dir_clash {
            return Err(StoreError::conflict(format!("directory {to_name:?}")));
        }
        let existing: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT id, blob_id FROM files WHERE folder_id = ?1 AND parent = ?2 AND name = ?3 AND deleted_at IS NULL",
                params![to_folder.0, to_parent, to_name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let mut removed = None;
        if let Some((eid, blob)) = existing {
            if eid == id.0 {
                return Ok(None);
            }
            if !replace {
                return Err(StoreError::conflict(format!("file {to_name:?}")));
            }
            tx.execute(
                "UPDATE files SET deleted_at = ?2, deleted_by = ?3, wrapped_key = NULL WHERE id = ?1",
                params![eid, now_unix(), by.0],
            )?;
            removed = Some(BlobId::from_slice(&blob)?);
        }
        let n = tx.execute(
            "UPDATE files SET folder_id = ?2, parent = ?3, name = ?4 WHERE id = ?1 AND deleted_at IS NULL",
            params![id.0, to_folder.0, to_parent, to_name],
        )?;
        if n == 0 {
            return Err(StoreError::not_found("file"));
        }
        tx.commit()?;
        Ok(removed)
    }

    /// Moves a directory and everything below it within one folder.
    pub fn rename_dir(&self, folder: FolderId, from: (&str, &str), to: (&str, &str)) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken = tx
            .query_row(
                "SELECT (SELECT count(*) FROM dirs WHERE folder_id = ?1 AND parent = ?2 AND name = ?3) + \
                        (SELECT count(*) FROM files WHERE folder_id = ?1 AND parent = ?2 AND name = ?3 AND deleted_at IS NULL)",
                params![folder.0, to.0, to.1],
                |r| r.get::<_, i64>(0),
            )?;
        if taken > 0 {
            return Err(StoreError::conflict(format!("{:?}", to.1)));
        }
        let n = tx.execute(
            "UPDATE dirs SET parent = ?4, name = ?5 WHERE folder_id = ?1 AND parent = ?2 AND name = ?3",
            params![folder.0, from.0, from.1, to.0, to.1],
        )?;
        if n == 0 {
            return Err(StoreError::not_found(format!("directory {:?}", from.1)));
        }
        let old = join_rel(from.0, from.1);
        let new = join_rel(to.0, to.1);
        for sql in [
            concat!("UPDATE dirs SET parent = ?2 || substr(parent, length(?1) + 1) WHERE folder_id = ?3 AND ", subtree_match!()),
            // Deleted versions keep the path they had: their history must not be rewritten.
            concat!("UPDATE files SET parent = ?2 || substr(parent, length(?1) + 1) WHERE folder_id = ?3 AND deleted_at IS NULL AND ", subtree_match!()),
            concat!("UPDATE uploads SET parent = ?2 || substr(parent, length(?1) + 1) WHERE folder_id = ?3 AND ", subtree_match!()),
        ] {
            tx.execute(sql, params![old, new, folder.0])?;
        }
        tx.commit()?;
        Ok(())
    }

    // ---- uploads (staging) ----

    /// Stages a new upload of `name` in `folder`/`parent` for `user`, with its blob and wrapped key.
    pub fn create_upload(
        &self,
        folder: FolderId,
        parent: &str,
        name: &str,
        user: UserId,
        staged: StagedBlob<'_>,
    ) -> Result<UploadRow> {
        let StagedBlob {
            blob,
            wrapped_key,
            resumable,
        } = staged;
        let c = self.conn_lazy()?;
        let now = now_unix();
        conflict_or(
            c.execute(
                "INSERT INTO uploads (folder_id, parent, name, user_id, blob_id, wrapped_key, size, created_at, updated_at, resumable) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7, ?8)",
                params![folder.0, parent, name, user.0, blob.0.as_slice(), wrapped_key, now, i64::from(resumable)],
            ),
            || format!("upload of {name:?}"),
        )?;
        Ok(UploadRow {
            id: UploadId(c.last_insert_rowid()),
            folder_id: folder,
            parent: parent.to_owned(),
            name: name.to_owned(),
            user_id: user,
            blob_id: blob,
            wrapped_key: wrapped_key.to_vec(),
            size: 0,
            created_at: now,
            updated_at: now,
            resumable,
        })
    }

    pub fn upload_for(
        &self,
        folder: FolderId,
        parent: &str,
        name: &str,
        user: UserId,
    ) -> Result<Option<UploadRow>> {
        let sql = concat!(
            "SELECT ",
            upload_cols!(),
            " FROM uploads WHERE folder_id = ?1 AND parent = ?2 AND name = ?3 AND user_id = ?4"
        );
        Ok(self
            .conn()
            .query_row(sql, params![folder.0, parent, name, user.0], upload_from)
            .optional()?)
    }

    pub fn set_upload_size(&self, upload: UploadId, size: u64) -> Result<()> {
        self.conn_lazy()?.execute(
            "UPDATE uploads SET size = ?2, updated_at = ?3 WHERE id = ?1",
            params![upload.0, size as i64, now_unix()],
        )?;
        Ok(())
    }

    /// Forgets an upload; returns its blob so the caller removes the ciphertext.
    pub fn delete_upload(&self, upload: UploadId) -> Result<Option<BlobId>> {
        let c = self.conn();
        let blob: Option<Vec<u8>> = c
            .query_row(
                "SELECT blob_id FROM uploads WHERE id = ?1",
                params![upload.0],
                |r| r.get(0),
            )
            .optional()?;
        c.execute("DELETE FROM uploads WHERE id = ?1", params![upload.0])?;
        blob.map(|b| BlobId::from_slice(&b)).transpose()
    }

    /// Staging uploads directly inside directory `dir` (a folder-relative path), for `rmdir`.
    pub fn uploads_in_dir(&self, folder: FolderId, dir: &str) -> Result<Vec<UploadRow>> {
        let sql = concat!(
            "SELECT ",
            upload_cols!(),
            " FROM uploads WHERE folder_id = ?1 AND parent = ?2"
        );
        let c = self.conn();
        let mut st = c.prepare_cached(sql)?;
        let rows = st.query_map(params![folder.0, dir], upload_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Uploads untouched since `before` (abandoned), for cleanup.
    pub fn stale_uploads(&self, before: i64) -> Result<Vec<UploadRow>> {
        let sql = concat!(
            "SELECT ",
            upload_cols!(),
            " FROM uploads WHERE updated_at < ?1"
        );
        let c = self.conn();
        let mut st = c.prepare(sql)?;
        let rows = st.query_map(params![before], upload_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- PHI inventory ----

    /// Stores (or replaces) a file's inventory and its people in one transaction.
    pub fn save_inventory(&self, row: &InventoryRow, persons: &[PersonRow]) -> Result<()> {
        let mut c = self.conn_lazy()?;
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM file_persons WHERE file_id = ?1",
            params![row.file_id.0],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO file_inventory (file_id, format, inner_formats, status, reason, records, persons, \
             element_counts, classifier_version, scanned_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                row.file_id.0,
                row.format,
                row.inner_formats,
                row.status,
                row.reason,
                row.records as i64,
                row.persons as i64,
                row.element_counts,
                row.classifier_version,
                row.scanned_at
            ],
        )?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO file_persons (file_id, fp_ssn, fp_name_dob, fp_other, state, elements) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for p in persons {
                st.execute(params![
                    row.file_id.0,
                    p.fp_ssn.as_ref().map(|f| f.as_slice()),
                    p.fp_name_dob.as_ref().map(|f| f.as_slice()),
                    p.fp_other.as_ref().map(|f| f.as_slice()),
                    p.state,
                    p.elements
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn inventory(&self, file: FileId) -> Result<Option<InventoryRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT file_id, format, inner_formats, status, reason, records, persons, element_counts, \
                 classifier_version, scanned_at FROM file_inventory WHERE file_id = ?1",
                params![file.0],
                |r| {
                    Ok(InventoryRow {
                        file_id: FileId(r.get(0)?),
                        format: r.get(1)?,
                        inner_formats: r.get(2)?,
                        status: r.get(3)?,
                        reason: r.get(4)?,
                        records: r.get::<_, i64>(5)?.max(0) as u64,
                        persons: r.get::<_, i64>(6)?.max(0) as u64,
                        element_counts: r.get(7)?,
                        classifier_version: r.get(8)?,
                        scanned_at: r.get(9)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn inventory_persons(&self, file: FileId) -> Result<Vec<PersonRow>> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT fp_ssn, fp_name_dob, fp_other, state, elements FROM file_persons WHERE file_id = ?1",
        )?;
        let fp = |v: Option<Vec<u8>>| v.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
        let rows = st.query_map(params![file.0], |r| {
            Ok(PersonRow {
                fp_ssn: fp(r.get(0)?),
                fp_name_dob: fp(r.get(1)?),
                fp_other: fp(r.get(2)?),
                state: r.get(3)?,
                elements: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Live files with no inventory, or one made by an older classifier.
    pub fn files_needing_scan(&self, classifier_version: i64) -> Result<Vec<FileRow>> {
        let c = self.conn();
        let mut st = c.prepare(concat!(
            "SELECT ",
            file_cols!(),
            " FROM files WHERE deleted_at IS NULL AND id NOT IN \
             (SELECT file_id FROM file_inventory WHERE classifier_version >= ?1) ORDER BY id"
        ))?;
        let rows = st.query_map(params![classifier_version], file_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- audit ----

    /// Appends one audit record. `build` receives the last record's (seq, hash) and returns the new
    /// record; an IMMEDIATE transaction makes read-last-then-insert atomic across processes, so two
    /// writers can never fork the chain.
    pub fn append_audit(
        &self,
        build: impl FnOnce(Option<(i64, String)>) -> AuditRow,
    ) -> Result<i64> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let row = build(last);
        tx.execute(
            "INSERT INTO audit_log (seq, ts, door, actor, org, source, action, target, outcome, detail, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                row.seq,
                row.ts,
                row.door,
                row.actor,
                row.org,
                row.source,
                row.action,
                row.target,
                row.outcome,
                row.detail,
                row.prev_hash,
                row.hash
            ],
        )?;
        tx.commit()?;
        Ok(row.seq)
    }

    /// Visits every audit record in sequence order; the visitor returns false to stop early.
    pub fn scan_audit(&self, mut visit: impl FnMut(AuditRow) -> bool) -> Result<()> {
        let c = self.conn();
        let mut st = c.prepare(concat!(
            "SELECT ",
            audit_cols!(),
            " FROM audit_log ORDER BY seq"
        ))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            if !visit(audit_from(r)?) {
                break;
            }
        }
        Ok(())
    }
}

impl SqliteStore {
    // ---- audit search ----

    /// Audit records matching `f`, newest first, with each record's time in Unix seconds. Every
    /// filter is a bound parameter; `(?n IS NULL OR ...)` makes an absent filter match everything.
    pub fn search_audit(&self, f: &AuditFilter<'_>) -> Result<Vec<(i64, AuditRow)>> {
        let c = self.conn();
        let mut st = c.prepare_cached(concat!(
            "SELECT ",
            audit_cols!(),
            ", coalesce(unixepoch(ts), 0) FROM audit_log \
             WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR org = ?2) AND (?3 IS NULL OR action = ?3) \
             AND (?4 IS NULL OR unixepoch(ts) >= ?4) AND (?5 IS NULL OR unixepoch(ts) <= ?5) \
             AND (?6 IS NULL OR seq < ?6) ORDER BY seq DESC LIMIT ?7"
        ))?;
        let rows = st.query_map(
            params![
                f.actor,
                f.org,
                f.action,
                f.from,
                f.to,
                f.before_seq,
                f.limit
            ],
            |r| Ok((r.get(12)?, audit_from(r)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- second factor ----

    pub fn totp_for(&self, user: UserId) -> Result<Option<TotpRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT user_id, secret_sealed, active, last_step, created FROM user_totp WHERE user_id = ?1",
                params![user.0],
                |r| {
                    Ok(TotpRow {
                        user_id: UserId(r.get(0)?),
                        secret_sealed: r.get(1)?,
                        active: r.get::<_, i64>(2)? != 0,
                        last_step: r.get(3)?,
                        created: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// Stores a new, inactive secret (replacing an earlier inactive one). Returns false, changing
    /// nothing, if the user already has an active secret.
    pub fn put_pending_totp(&self, user: UserId, sealed: &[u8], now: i64) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT INTO user_totp (user_id, secret_sealed, active, last_step, created) VALUES (?1, ?2, 0, 0, ?3) \
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, last_step = 0, \
             created = excluded.created WHERE user_totp.active = 0",
            params![user.0, sealed, now],
        )?;
        Ok(n == 1)
    }

    /// Activates the inactive secret `sealed` (the one the code was checked against), records `step`
    /// as used and replaces the recovery codes, in one transaction. Returns false if that secret is
    /// no longer the pending one (enrolment restarted meanwhile).
    pub fn activate_totp(
        &self,
        user: UserId,
        sealed: &[u8],
        step: i64,
        code_macs: &[String],
    ) -> Result<bool> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE user_totp SET active = 1, last_step = ?3 WHERE user_id = ?1 AND active = 0 AND secret_sealed = ?2",
            params![user.0, sealed, step],
        )?;
        if n != 1 {
            return Ok(false);
        }
        replace_codes(&tx, user, code_macs)?;
        tx.commit()?;
        Ok(true)
    }

    /// Records `step` as used if it is later than the last one; false means the code was already
    /// used (or an earlier step), so it must be refused.
    pub fn advance_totp_step(&self, user: UserId, step: i64) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE user_totp SET last_step = ?2 WHERE user_id = ?1 AND active = 1 AND last_step < ?2",
            params![user.0, step],
        )?;
        Ok(n == 1)
    }

    /// Forgets the secret and the recovery codes; the user enrols again at the next login.
    pub fn delete_totp(&self, user: UserId) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM user_totp WHERE user_id = ?1", params![user.0])?;
        tx.execute(
            "DELETE FROM recovery_codes WHERE user_id = ?1",
            params![user.0],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn replace_recovery_codes(&self, user: UserId, code_macs: &[String]) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        replace_codes(&tx, user, code_macs)?;
        tx.commit()?;
        Ok(())
    }

    /// Marks an unused recovery code used; false if there is no such unused code.
    pub fn use_recovery_code(&self, user: UserId, code_mac: &str, now: i64) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE recovery_codes SET used_at = ?3 WHERE id = \
             (SELECT id FROM recovery_codes WHERE user_id = ?1 AND code_mac = ?2 AND used_at IS NULL LIMIT 1)",
            params![user.0, code_mac, now],
        )?;
        Ok(n == 1)
    }

    pub fn recovery_codes_left(&self, user: UserId) -> Result<u64> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
            params![user.0],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    // ---- API tokens ----

    #[allow(clippy::too_many_arguments)]
    pub fn create_api_token(
        &self,
        id: &str,
        user: UserId,
        name: &str,
        secret_hash: &str,
        scopes: &str,
        created: i64,
        expires: i64,
    ) -> Result<()> {
        conflict_or(
            self.conn().execute(
                "INSERT INTO api_tokens (id, user_id, name, secret_hash, scopes, created, expires) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, user.0, name, secret_hash, scopes, created, expires],
            ),
            || format!("token {id}"),
        )?;
        Ok(())
    }

    pub fn api_token(&self, id: &str) -> Result<Option<ApiTokenRow>> {
        let sql = concat!("SELECT ", token_cols!(), token_from!(), "WHERE t.id = ?1");
        Ok(self
            .conn()
            .query_row(sql, params![id], token_row)
            .optional()?)
    }

    /// Tokens of one user, or of everyone; newest first.
    pub fn list_api_tokens(&self, user: Option<UserId>) -> Result<Vec<ApiTokenRow>> {
        let sql = concat!(
            "SELECT ",
            token_cols!(),
            token_from!(),
            "WHERE ?1 IS NULL OR t.user_id = ?1 ORDER BY t.created DESC, t.id"
        );
        let c = self.conn();
        let mut st = c.prepare_cached(sql)?;
        let rows = st.query_map(params![user.map(|u| u.0)], token_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Tokens of `user` that are neither revoked nor expired at `now`.
    pub fn live_api_tokens(&self, user: UserId, now: i64) -> Result<u64> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM api_tokens WHERE user_id = ?1 AND revoked IS NULL AND expires > ?2",
            params![user.0, now],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    /// Revokes a token; false if it does not exist or was already revoked.
    pub fn revoke_api_token(&self, id: &str, now: i64) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE api_tokens SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
            params![id, now],
        )?;
        Ok(n == 1)
    }

    /// Notes a use of the token, at most once per `every` seconds so that a busy script does not
    /// turn each request into a database write.
    /// Records a token's use at most once per `every` seconds; true when this call recorded it.
    pub fn touch_api_token(&self, id: &str, now: i64, every: i64) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE api_tokens SET last_used = ?2 WHERE id = ?1 AND (last_used IS NULL OR last_used <= ?2 - ?3)",
            params![id, now, every],
        )?;
        Ok(changed > 0)
    }
}

fn replace_codes(tx: &rusqlite::Transaction<'_>, user: UserId, code_macs: &[String]) -> Result<()> {
    tx.execute(
        "DELETE FROM recovery_codes WHERE user_id = ?1",
        params![user.0],
    )?;
    let mut st =
        tx.prepare_cached("INSERT INTO recovery_codes (user_id, code_mac) VALUES (?1, ?2)")?;
    for mac in code_macs {
        st.execute(params![user.0, mac])?;
    }
    Ok(())
}

fn subject_key(s: Subject) -> (&'static str, i64) {
    match s {
        Subject::User(u) => ("user", u.0),
        Subject::Group(g) => ("group", g.0),
    }
}

/// `parent/name`, or `name` at a folder's top level.
pub fn join_rel(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A committed (deleted) upload's id is never handed to the next upload: the committing session
    /// may still hold a lease under it.
    #[test]
    fn upload_ids_are_never_reused() {
        let mut raw = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let dir = std::env::temp_dir().join(format!("lockbox-store-ids-{}", hex::encode(raw)));
        std::fs::create_dir(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("lockbox.db")).unwrap();
        let org = store.create_org("acme").unwrap();
        let user = store
            .create_user_with_home(org.id, "alice", Role::Transfer, None, "home-alice")
            .unwrap();
        let folder = store.create_folder(org.id, "shared").unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..5 {
            let up = store
                .create_upload(
                    folder.id,
                    "",
                    &format!("f{i}"),
                    user.id,
                    StagedBlob {
                        blob: BlobId::random(),
                        wrapped_key: b"k",
                        resumable: true,
                    },
                )
                .unwrap();
            assert!(seen.insert(up.id.0), "upload id {} reused", up.id.0);
            store.delete_upload(up.id).unwrap();
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A database written by a v3 server gains the org policy column, off for existing orgs.
    #[test]
    fn v3_database_migrates_to_v4_with_policy_off() {
        let mut raw = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let dir = std::env::temp_dir().join(format!("lockbox-store-mig-{}", hex::encode(raw)));
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("lockbox.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute("INSERT INTO orgs (name, created_at) VALUES ('acme', 1)", [])
                .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let acme = store.org_by_name("acme").unwrap().unwrap();
        assert!(!acme.sftp_password_totp);
        assert!(store.set_org_sftp_password_totp(acme.id, true).unwrap());
        assert!(
            store
                .org_by_name("acme")
                .unwrap()
                .unwrap()
                .sftp_password_totp
        );
        assert!(!store.set_org_sftp_password_totp(OrgId(9999), true).unwrap());
        let created = store.create_org("globex").unwrap();
        assert!(!created.sftp_password_totp);
        assert!(!store
            .list_orgs()
            .unwrap()
            .iter()
            .any(|o| o.name == "globex" && o.sftp_password_totp));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
