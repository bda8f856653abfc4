//! Plain domain types shared by every Lockbox crate: identifiers, names, permissions and the parsed
//! `VirtualPath`. No I/O lives here; every type is parsed once at the boundary and trusted afterwards.
#![forbid(unsafe_code)]

use std::fmt;

use serde::{Deserialize, Serialize};

mod path;
pub use path::{PathError, VirtualPath, MAX_COMPONENTS, MAX_NAME_LEN};

/// Errors from parsing untrusted text into domain types.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TypesError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("invalid {what} {value:?}: {why}")]
    InvalidName {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("unknown permission {0:?} (expected list, read, write, delete, mkdir, rename or all)")]
    UnknownPermission(String),
    #[error("unknown role {0:?} (expected transfer or admin)")]
    UnknownRole(String),
}

macro_rules! id_type {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        pub struct $name(pub i64);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(OrgId, "Row id of an organization (tenant).");
id_type!(UserId, "Row id of a user.");
id_type!(
    GroupId,
    "Row id of a group of users within one organization."
);
id_type!(
    FolderId,
    "Row id of a folder (a storage root owned by one organization)."
);
id_type!(FileId, "Row id of a committed file version.");
id_type!(UploadId, "Row id of an upload in progress (staging).");

/// Longest organization, user, group or folder name. Names appear in paths and log lines, so they are short.
pub const MAX_ENTITY_NAME_LEN: usize = 64;

/// A name for an organization, user, group or folder: lowercase ASCII letters, digits, `-`, `_`, `.`,
/// starting with a letter or digit. Narrow on purpose: these names end up in SSH user names, virtual
/// paths and audit records, where anything exotic only creates ambiguity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityName(String);

impl EntityName {
    pub fn parse(what: &'static str, value: &str) -> Result<Self, TypesError> {
        let bad = |why| TypesError::InvalidName {
            what,
            value: value.chars().take(80).collect(),
            why,
        };
        if value.is_empty() {
            return Err(bad("must not be empty"));
        }
        if value.len() > MAX_ENTITY_NAME_LEN {
            return Err(bad("longer than 64 characters"));
        }
        let mut chars = value.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok {
            return Err(bad("must start with a lowercase letter or digit"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        {
            return Err(bad("may only contain a-z, 0-9, '-', '_' and '.'"));
        }
        Ok(EntityName(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EntityName {
    type Error = TypesError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EntityName::parse("name", &value)
    }
}

impl From<EntityName> for String {
    fn from(value: EntityName) -> Self {
        value.0
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user is for. Admins manage the server and never move files over data protocols,
/// so a stolen admin credential cannot be used to read partner files over SFTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Transfer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Transfer => "transfer",
        }
    }

    pub fn parse(s: &str) -> Result<Self, TypesError> {
        match s {
            "admin" => Ok(Role::Admin),
            "transfer" => Ok(Role::Transfer),
            other => Err(TypesError::UnknownRole(other.chars().take(40).collect())),
        }
    }
}

/// One permission a grant can give on a folder. Every vault operation names exactly which it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    List,
    Read,
    Write,
    Delete,
    Mkdir,
    Rename,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::List,
        Permission::Read,
        Permission::Write,
        Permission::Delete,
        Permission::Mkdir,
        Permission::Rename,
    ];

    fn bit(self) -> u32 {
        match self {
            Permission::List => 1,
            Permission::Read => 2,
            Permission::Write => 4,
            Permission::Delete => 8,
            Permission::Mkdir => 16,
            Permission::Rename => 32,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::List => "list",
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Delete => "delete",
            Permission::Mkdir => "mkdir",
            Permission::Rename => "rename",
        }
    }
}

/// A set of permissions, stored as a bitmask. The empty set is the default: deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PermissionSet(u32);

impl PermissionSet {
    pub const NONE: PermissionSet = PermissionSet(0);
    pub const ALL: PermissionSet = PermissionSet(63);

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn with(self, p: Permission) -> Self {
        PermissionSet(self.0 | p.bit())
    }

    pub fn union(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn bits(self) -> u32 {
        self.0
    }

    /// Bits from the metadata store; unknown bits are dropped rather than trusted.
    pub fn from_bits(bits: u32) -> Self {
        PermissionSet(bits & Self::ALL.0)
    }

    /// Parses `list,read,write` or `all`.
    pub fn parse(s: &str) -> Result<Self, TypesError> {
        let mut set = PermissionSet::NONE;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                set = PermissionSet::ALL;
                continue;
            }
            let p = Permission::ALL
                .iter()
                .find(|p| p.as_str() == part)
                .ok_or_else(|| TypesError::UnknownPermission(part.chars().take(40).collect()))?;
            set = set.with(*p);
        }
        Ok(set)
    }

    pub fn names(self) -> Vec<&'static str> {
        Permission::ALL
            .iter()
            .filter(|p| self.contains(**p))
            .map(|p| p.as_str())
            .collect()
    }
}

impl fmt::Display for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// Which protocol door a request came through; recorded in audit events and used for policy
/// (admins are refused on data doors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Door {
    Sftp,
    Https,
    Cli,
}

impl Door {
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Sftp => "sftp",
            Door::Https => "https",
            Door::Cli => "cli",
        }
    }

    /// Data doors move file content for partners; admin accounts are not allowed on them.
    pub fn is_data_door(self) -> bool {
        matches!(self, Door::Sftp)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn entity_names_are_narrow() {
        assert!(EntityName::parse("user", "alice").is_ok());
        assert!(EntityName::parse("user", "a.b-c_1").is_ok());
        for bad in [
            "",
            "Alice",
            "-x",
            "a/b",
            "a b",
            "a\0b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(EntityName::parse("user", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn permission_sets_parse_and_print() {
        let p = PermissionSet::parse("list,read").unwrap();
        assert!(p.contains(Permission::List) && p.contains(Permission::Read));
        assert!(!p.contains(Permission::Write));
        assert_eq!(p.to_string(), "list,read");
        assert_eq!(PermissionSet::parse("all").unwrap(), PermissionSet::ALL);
        assert!(PermissionSet::parse("list,admin").is_err());
        assert_eq!(PermissionSet::default(), PermissionSet::NONE);
        assert_eq!(PermissionSet::from_bits(0xffff_ffff), PermissionSet::ALL);
    }
}
