//! The vault's one error type. Doors map `kind()` to their protocol's status codes in one place each;
//! `client_message()` is what a peer may see (internal details stay in the server log).

use lockbox_audit::AuditError;
use lockbox_crypto::CryptoError;
use lockbox_store::StoreError;
use lockbox_types::{PathError, TypesError};

/// What class of failure this is, independent of any protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    PermissionDenied,
    AlreadyExists,
    NotEmpty,
    InvalidInput,
    Unsupported,
    LimitReached,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// A named thing that is not a file (organization, user, group, folder, token) does not exist.
    #[error("{0} does not exist")]
    NoSuch(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("directory {0} is not empty")]
    NotEmpty(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    LimitReached(String),
    /// Free space is under the floor (or the disk is full): the upload cannot continue.
    #[error("{0}")]
    StorageLow(String),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Types(#[from] TypesError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("encryption error: {0}")]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("configuration error: {0}")]
    Config(String),
}

impl VaultError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            VaultError::NotFound(_) | VaultError::NoSuch(_) => ErrorKind::NotFound,
            VaultError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            // A path that tries to escape is treated as a permission problem: the answer is "no".
            VaultError::Path(PathError::ParentComponent) => ErrorKind::PermissionDenied,
            VaultError::Path(_) | VaultError::Types(_) | VaultError::InvalidInput(_) => {
                ErrorKind::InvalidInput
            }
            VaultError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            VaultError::NotEmpty(_) => ErrorKind::NotEmpty,
            VaultError::Unsupported(_) => ErrorKind::Unsupported,
            VaultError::LimitReached(_) | VaultError::StorageLow(_) => ErrorKind::LimitReached,
            VaultError::Store(StoreError::Conflict { .. }) => ErrorKind::AlreadyExists,
            VaultError::Store(StoreError::NotFound { .. }) => ErrorKind::NotFound,
            VaultError::Store(_)
            | VaultError::Crypto(_)
            | VaultError::Audit(_)
            | VaultError::Config(_) => ErrorKind::Internal,
        }
    }

    /// Whether this failed for lack of space: under the floor, or the filesystem is full.
    pub fn is_storage_low(&self) -> bool {
        match self {
            VaultError::StorageLow(_) => true,
            VaultError::Store(e) => e.is_disk_full(),
            VaultError::Audit(AuditError::Store(e)) => e.is_disk_full(),
            VaultError::Audit(AuditError::Io(e)) | VaultError::Crypto(CryptoError::Io(e)) => {
                lockbox_store::io_is_disk_full(e)
            }
            _ => false,
        }
    }

    /// The text a client may see. Internal errors are logged by the door and summarized here, so a
    /// peer never learns file system paths or database details.
    pub fn client_message(&self) -> String {
        match self.kind() {
            ErrorKind::Internal if self.is_storage_low() => {
                "server storage is full; nothing was changed".to_owned()
            }
            ErrorKind::Internal => match self {
                VaultError::Crypto(CryptoError::Integrity { .. }) => {
                    "stored file failed its integrity check; contact the administrator".to_owned()
                }
                _ => "internal server error; the administrator can find details in the server log"
                    .to_owned(),
            },
            _ => self.to_string(),
        }
    }
}

pub type Result<T, E = VaultError> = std::result::Result<T, E>;
