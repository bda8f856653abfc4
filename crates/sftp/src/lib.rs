//! The SFTP door: SFTP v3 (as OpenSSH speaks it) over russh. `protocol` parses and encodes packets,
//! `engine` serves one session by calling the vault, `server` accepts SSH connections within limits
//! and authenticates them through the vault's verdict. Nothing here decides permissions.
#![forbid(unsafe_code)]

pub mod engine;
mod errors;
pub mod protocol;
pub mod server;

pub use engine::DoorControl;
pub use server::{serve, SftpConfig, SftpError};
