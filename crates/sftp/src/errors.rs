//! The SFTP door's one error mapping: vault error kinds to SFTP v3 status codes.

use lockbox_vault::{ErrorKind, VaultError};

use crate::protocol::StatusCode;

pub fn status_of(e: &VaultError) -> StatusCode {
    match e.kind() {
        ErrorKind::NotFound => StatusCode::NoSuchFile,
        ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        ErrorKind::Unsupported => StatusCode::OpUnsupported,
        // v3 has no finer codes for these; the message says which it was.
        ErrorKind::AlreadyExists
        | ErrorKind::NotEmpty
        | ErrorKind::InvalidInput
        | ErrorKind::LimitReached
        | ErrorKind::Internal => StatusCode::Failure,
    }
}
