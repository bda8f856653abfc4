//! `VirtualPath`: a path in a user's view of the vault, parsed once from untrusted text. It can only hold
//! normal components (no `..`, `.`, NUL, control characters, `/` inside a name, or over-long names), so
//! code that receives one cannot be tricked into escaping anything. Names parsed from a client are in
//! Unicode NFC and hold no format characters (bidi overrides, zero-width characters).

use std::fmt;

/// Longest single name, as on common filesystems (and OpenSSH clients never need more).
pub const MAX_NAME_LEN: usize = 255;
/// Deepest path we accept; deeper trees are almost certainly an attack on recursive code.
pub const MAX_COMPONENTS: usize = 64;
/// Longest path text we even look at.
pub const MAX_PATH_TEXT: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is longer than {MAX_PATH_TEXT} bytes")]
    TooLong,
    #[error("a name in the path is longer than {MAX_NAME_LEN} bytes")]
    NameTooLong,
    #[error("path is deeper than {MAX_COMPONENTS} levels")]
    TooDeep,
    #[error("path may not contain '..'")]
    ParentComponent,
    #[error("path may not contain NUL or control characters")]
    ControlCharacter,
    #[error("path may not contain a backslash")]
    Backslash,
    #[error(
        "path may not contain invisible formatting characters (bidirectional overrides, zero-width characters)"
    )]
    FormatCharacter,
}

/// Unicode format characters (general category Cf, Unicode 15): invisible, and some reorder what
/// is displayed, so `report\u{202E}fdp.exe` shows as `reportexe.pdf`. A name holding one could
/// pass for another in every listing, so new names may not contain them.
const FORMAT_CHARACTERS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

fn is_format_character(c: char) -> bool {
    FORMAT_CHARACTERS
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// A name from a client: refused if it holds a format character, and stored in Unicode NFC, so
/// "é" typed as one code point or as "e" plus a combining accent is one name, not two look-alikes.
fn client_name(name: &str) -> Result<String, PathError> {
    if name.chars().any(is_format_character) {
        return Err(PathError::FormatCharacter);
    }
    let nfc: String = unicode_normalization::UnicodeNormalization::nfc(name).collect();
    check_name(&nfc)?;
    Ok(nfc)
}

/// An absolute path in the virtual namespace, as a list of validated names. The empty list is `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VirtualPath {
    names: Vec<String>,
}

fn check_name(name: &str) -> Result<(), PathError> {
    if name.len() > MAX_NAME_LEN {
        return Err(PathError::NameTooLong);
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(PathError::ControlCharacter);
    }
    // Backslashes are path separators to Windows clients; refusing them avoids names that mean two things.
    if name.contains('\\') {
        return Err(PathError::Backslash);
    }
    Ok(())
}

impl VirtualPath {
    pub fn root() -> Self {
        VirtualPath { names: Vec::new() }
    }

    /// Parses `text`, relative to `base` unless it starts with `/`. Empty and `.` components are
    /// skipped; `..` is refused.
    pub fn parse(base: &VirtualPath, text: &str) -> Result<Self, PathError> {
        Self::parse_inner(base, text, false)
    }

    /// Like [`parse`](Self::parse), but `..` removes the previous name, clamped at `/` (as inside a
    /// chroot). Only for answering "where would this be" (SFTP realpath, `cd ..`): the result still
    /// holds no `..`, so nothing can escape the namespace.
    pub fn normalize(base: &VirtualPath, text: &str) -> Result<Self, PathError> {
        Self::parse_inner(base, text, true)
    }

    fn parse_inner(base: &VirtualPath, text: &str, allow_parent: bool) -> Result<Self, PathError> {
        if text.len() > MAX_PATH_TEXT {
            return Err(PathError::TooLong);
        }
        let mut names = if text.starts_with('/') {
            Vec::new()
        } else {
            base.names.clone()
        };
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." if allow_parent => {
                    names.pop();
                }
                ".." => return Err(PathError::ParentComponent),
                name => names.push(client_name(name)?),
            }
            if names.len() > MAX_COMPONENTS {
                return Err(PathError::TooDeep);
            }
        }
        Ok(VirtualPath { names })
    }

    /// Builds a path from names that were validated already (for example read back from the store).
    pub fn from_names<I: IntoIterator<Item = S>, S: AsRef<str>>(
        names: I,
    ) -> Result<Self, PathError> {
        let mut out = Vec::new();
        for n in names {
            let n = n.as_ref();
            if n.is_empty() || n == "." || n == ".." || n.contains('/') {
                return Err(PathError::ParentComponent);
            }
            check_name(n)?;
            out.push(n.to_owned());
        }
        if out.len() > MAX_COMPONENTS {
            return Err(PathError::TooDeep);
        }
        Ok(VirtualPath { names: out })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    pub fn file_name(&self) -> Option<&str> {
        self.names.last().map(String::as_str)
    }

    pub fn parent(&self) -> Option<VirtualPath> {
        if self.names.is_empty() {
            return None;
        }
        let mut names = self.names.clone();
        names.pop();
        Some(VirtualPath { names })
    }

    /// Splits off the first name (the folder mount) from the rest (the path inside that folder).
    pub fn split_first(&self) -> Option<(&str, VirtualPath)> {
        let (first, rest) = self.names.split_first()?;
        Some((
            first.as_str(),
            VirtualPath {
                names: rest.to_vec(),
            },
        ))
    }

    pub fn join(&self, name: &str) -> Result<VirtualPath, PathError> {
        VirtualPath::from_names(
            self.names
                .iter()
                .map(String::as_str)
                .chain(std::iter::once(name)),
        )
    }

    /// True if `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &VirtualPath) -> bool {
        self.names.starts_with(&other.names)
    }

    /// The path without its leading `/`, for storage keys (`a/b/c`; empty for the root).
    pub fn relative_string(&self) -> String {
        self.names.join("/")
    }
}

impl fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.names.is_empty() {
            return f.write_str("/");
        }
        for n in &self.names {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<VirtualPath, PathError> {
        VirtualPath::parse(&VirtualPath::root(), s)
    }

    #[test]
    fn format_characters_are_refused_and_names_are_nfc() {
        let root = VirtualPath::root();
        for bad in [
            "/home/report\u{202E}fdp.exe",
            "/home/a\u{200B}b",
            "/home/\u{FEFF}x",
            "/home/x\u{2066}y",
            "/home/soft\u{00AD}hyphen",
        ] {
            assert_eq!(
                VirtualPath::parse(&root, bad),
                Err(PathError::FormatCharacter),
                "{bad:?}"
            );
        }
        let nfd = VirtualPath::parse(&root, "/home/Nguye\u{0302}\u{0303}n.csv").unwrap();
        let nfc = VirtualPath::parse(&root, "/home/Nguy\u{1EC5}n.csv").unwrap();
        assert_eq!(nfd, nfc);
        assert_eq!(nfc.to_string(), "/home/Nguy\u{1EC5}n.csv");
        // Names read back from the store are taken as they are.
        assert!(VirtualPath::from_names(["a\u{200B}b"]).is_ok());
    }

    #[test]
    fn parses_normal_paths() {
        assert_eq!(p("/a/b/c").unwrap().to_string(), "/a/b/c");
        assert_eq!(p("//a/./b/").unwrap().to_string(), "/a/b");
        assert_eq!(p("/").unwrap(), VirtualPath::root());
        let home = p("/home").unwrap();
        assert_eq!(
            VirtualPath::parse(&home, "x.txt").unwrap().to_string(),
            "/home/x.txt"
        );
    }

    #[test]
    fn refuses_escapes_and_bad_names() {
        assert_eq!(p("/a/../b"), Err(PathError::ParentComponent));
        assert_eq!(p(".."), Err(PathError::ParentComponent));
        assert_eq!(p("/a\0b"), Err(PathError::ControlCharacter));
        assert_eq!(p("/a\nb"), Err(PathError::ControlCharacter));
        assert_eq!(p("/a\\..\\b"), Err(PathError::Backslash));
        assert_eq!(
            p(&format!("/{}", "x".repeat(256))),
            Err(PathError::NameTooLong)
        );
        assert_eq!(p(&"/a".repeat(65)), Err(PathError::TooDeep));
        assert_eq!(p(&"a".repeat(5000)), Err(PathError::TooLong));
    }

    #[test]
    fn normalize_clamps_at_root() {
        let home = p("/home").unwrap();
        assert_eq!(
            VirtualPath::normalize(&home, "..").unwrap(),
            VirtualPath::root()
        );
        assert_eq!(
            VirtualPath::normalize(&home, "../../../etc")
                .unwrap()
                .to_string(),
            "/etc"
        );
        assert_eq!(
            VirtualPath::normalize(&home, "/a/b/../c")
                .unwrap()
                .to_string(),
            "/a/c"
        );
    }

    #[test]
    fn from_names_refuses_dots() {
        assert!(VirtualPath::from_names(["a", ".."]).is_err());
        assert!(VirtualPath::from_names(["a/b"]).is_err());
        assert!(VirtualPath::from_names(["a", "b"]).is_ok());
    }
}
