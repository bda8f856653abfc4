//! The SQLite schema and its version. Migrations are append-only: a new version adds a step.

pub const SCHEMA_VERSION: i64 = 7;

pub const SCHEMA_V1: &str = r#"
CREATE TABLE orgs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'transfer')),
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    created_at INTEGER NOT NULL
);
CREATE TABLE ssh_keys (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    algorithm TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    public_key TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, fingerprint)
);
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE folders (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    home_of INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE grants (
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'group')),
    subject_id INTEGER NOT NULL,
    perms INTEGER NOT NULL,
    PRIMARY KEY (folder_id, subject_kind, subject_id)
);
CREATE TABLE dirs (
    folder_id INTEGER NOT NULL REFERENCES folders(id),
    parent TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (folder_id, parent, name)
);
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    folder_id INTEGER NOT NULL REFERENCES folders(id),
    parent TEXT NOT NULL,
    name TEXT NOT NULL,
    blob_id BLOB NOT NULL,
    wrapped_key BLOB,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    mtime INTEGER NOT NULL,
    created_by INTEGER NOT NULL REFERENCES users(id),
    committed_at INTEGER NOT NULL,
    deleted_at INTEGER,
    deleted_by INTEGER
);
CREATE UNIQUE INDEX files_live ON files (folder_id, parent, name) WHERE deleted_at IS NULL;
CREATE INDEX files_by_parent ON files (folder_id, parent);
CREATE TABLE uploads (
    id INTEGER PRIMARY KEY,
    folder_id INTEGER NOT NULL REFERENCES folders(id),
    parent TEXT NOT NULL,
    name TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    blob_id BLOB NOT NULL,
    wrapped_key BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (folder_id, parent, name, user_id)
);
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    door TEXT NOT NULL,
    actor TEXT NOT NULL,
    org TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
"#;

/// v2: the PHI inventory. One row per scanned file version, and one row per person found in it
/// holding only keyed fingerprints, the state of residence and which data elements were present.
pub const SCHEMA_V2: &str = r#"
CREATE TABLE file_inventory (
    file_id INTEGER PRIMARY KEY REFERENCES files(id),
    format TEXT NOT NULL,
    inner_formats TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('complete', 'partial', 'opaque')),
    reason TEXT,
    records INTEGER NOT NULL,
    persons INTEGER NOT NULL,
    element_counts TEXT NOT NULL,
    classifier_version INTEGER NOT NULL,
    scanned_at INTEGER NOT NULL
);
CREATE TABLE file_persons (
    file_id INTEGER NOT NULL REFERENCES files(id),
    fp_ssn BLOB,
    fp_name_dob BLOB,
    fp_other BLOB,
    state TEXT,
    elements INTEGER NOT NULL
);
CREATE INDEX file_persons_by_file ON file_persons (file_id);
CREATE INDEX file_persons_by_ssn ON file_persons (fp_ssn) WHERE fp_ssn IS NOT NULL;
CREATE INDEX file_persons_by_name_dob ON file_persons (fp_name_dob) WHERE fp_name_dob IS NOT NULL;
"#;

/// v3: second factor and API tokens. TOTP secrets are stored sealed (AES-256-GCM under a key derived
/// from the key provider, the user id as associated data); recovery codes and token secrets only as
/// keyed MACs or hashes, so the database alone lets nobody log in.
pub const SCHEMA_V3: &str = r#"
CREATE TABLE user_totp (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed BLOB NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    last_step INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);
CREATE TABLE recovery_codes (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_mac TEXT NOT NULL,
    used_at INTEGER
);
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id, code_mac);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    last_used INTEGER,
    revoked INTEGER
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
"#;

/// v4: per-organization login policy. `sftp_password_totp` = 1 makes an SFTP password login also
/// ask for a TOTP or recovery code (keyboard-interactive); existing organizations keep 0 (off).
pub const SCHEMA_V4: &str = r#"
ALTER TABLE orgs ADD COLUMN sftp_password_totp INTEGER NOT NULL DEFAULT 0;
"#;

/// Upload ids are never reused (AUTOINCREMENT): a commit deletes the staging row while the committing
/// session still refers to its id, and a plain rowid table hands that id to the next upload.
pub const SCHEMA_V5: &str = r#"
CREATE TABLE uploads_v5 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder_id INTEGER NOT NULL REFERENCES folders(id),
    parent TEXT NOT NULL,
    name TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    blob_id BLOB NOT NULL,
    wrapped_key BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (folder_id, parent, name, user_id)
);
INSERT INTO uploads_v5 SELECT id, folder_id, parent, name, user_id, blob_id, wrapped_key, size, created_at, updated_at FROM uploads;
DROP TABLE uploads;
ALTER TABLE uploads_v5 RENAME TO uploads;
"#;

/// v6: installation facts, one row per name. `kek_check` is a check value of the key-encryption
/// key (an HMAC under a key derived from it, never the key), so a server started with a missing or
/// different key refuses instead of writing data nobody can read later.
pub const SCHEMA_V6: &str = r#"
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#;

/// v7: whether a staged upload may be resumed (not when it began as a copy of the committed file).
pub const SCHEMA_V7: &str = r#"
ALTER TABLE uploads ADD COLUMN resumable INTEGER NOT NULL DEFAULT 1;
"#;
