//! Plain records as stored. The vault turns these into decisions; nothing here checks permissions.

use lockbox_types::{FileId, FolderId, GroupId, OrgId, PermissionSet, Role, UploadId, UserId};
use serde::Serialize;

use crate::BlobId;

#[derive(Debug, Clone, Serialize)]
pub struct OrgRow {
    pub id: OrgId,
    pub name: String,
    pub created_at: i64,
    /// SFTP password logins of this organization's users also need a TOTP or recovery code.
    pub sftp_password_totp: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub id: UserId,
    pub org_id: OrgId,
    pub org_name: String,
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SshKeyRow {
    pub id: i64,
    pub user_id: UserId,
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
    pub comment: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    pub id: GroupId,
    pub org_id: OrgId,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FolderRow {
    pub id: FolderId,
    pub org_id: OrgId,
    pub name: String,
    /// Set for a user's home folder.
    pub home_of: Option<UserId>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    User(UserId),
    Group(GroupId),
}

#[derive(Debug, Clone, Serialize)]
pub struct GrantRow {
    pub folder_id: FolderId,
    pub folder_name: String,
    pub org_id: OrgId,
    pub subject: Subject,
    pub subject_name: String,
    #[serde(serialize_with = "ser_perms")]
    pub perms: PermissionSet,
}

fn ser_perms<S: serde::Serializer>(p: &PermissionSet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(p.names())
}

/// A committed file version. Rows stay after deletion (metadata only, key destroyed) so the file's
/// lifecycle can be reconstructed later.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub id: FileId,
    pub folder_id: FolderId,
    pub parent: String,
    pub name: String,
    pub blob_id: BlobId,
    pub wrapped_key: Option<Vec<u8>>,
    pub size: u64,
    pub sha256: String,
    pub mtime: i64,
    pub created_by: UserId,
    pub committed_at: i64,
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DirRow {
    pub folder_id: FolderId,
    pub parent: String,
    pub name: String,
    pub created_at: i64,
}

/// An upload that has not been committed: invisible to everyone, resumable by its owner.
#[derive(Debug, Clone)]
pub struct UploadRow {
    pub id: UploadId,
    pub folder_id: FolderId,
    pub parent: String,
    pub name: String,
    pub user_id: UserId,
    pub blob_id: BlobId,
    pub wrapped_key: Vec<u8>,
    pub size: u64,
    pub created_at: i64,
    pub updated_at: i64,
    /// False for an upload that started as a copy of the committed file (open for update without
    /// truncation): its content is not a prefix of anything a client sends, so it is never
    /// resumed or shown; if interrupted it is discarded.
    pub resumable: bool,
}

/// One audit record as stored; the audit crate owns how `hash` is computed.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub ts: String,
    pub door: String,
    pub actor: String,
    pub org: String,
    pub source: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The inventory of one committed file version (what kind of file, how the scan went, counts).
#[derive(Debug, Clone, Serialize)]
pub struct InventoryRow {
    pub file_id: FileId,
    pub format: String,
    /// JSON array of the formats found inside containers.
    pub inner_formats: String,
    pub status: String,
    pub reason: Option<String>,
    pub records: u64,
    pub persons: u64,
    /// JSON object: element name → number of people with it.
    pub element_counts: String,
    pub classifier_version: i64,
    pub scanned_at: i64,
}

/// One person found in a file: keyed fingerprints only, never plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub fp_ssn: Option<[u8; 32]>,
    pub fp_name_dob: Option<[u8; 32]>,
    pub fp_other: Option<[u8; 32]>,
    pub state: Option<String>,
    pub elements: u32,
}

/// A user's TOTP secret (sealed). Inactive while enrolment awaits its first code.
#[derive(Debug, Clone)]
pub struct TotpRow {
    pub user_id: UserId,
    pub secret_sealed: Vec<u8>,
    pub active: bool,
    /// The last time step a code was accepted for; codes for it or earlier are refused (no replay).
    pub last_step: i64,
    pub created: i64,
}

/// An API token as stored: the secret only as its SHA-256, with the owner's names joined in.
#[derive(Debug, Clone)]
pub struct ApiTokenRow {
    pub id: String,
    pub user_id: UserId,
    pub user_name: String,
    pub org_name: String,
    pub name: String,
    pub secret_hash: String,
    pub scopes: String,
    pub created: i64,
    pub expires: i64,
    pub last_used: Option<i64>,
    pub revoked: Option<i64>,
}

/// Filters for an audit search; `None` matches everything. Newest records first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    pub actor: Option<&'a str>,
    pub org: Option<&'a str>,
    pub action: Option<&'a str>,
    /// Unix seconds, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only records with a smaller sequence number (paging backwards).
    pub before_seq: Option<i64>,
    pub limit: u32,
}
