//! The output package: a directory only its owner can enter (0700) holding files only its owner can
//! read (0600), because individuals.csv carries plaintext names and addresses.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{ExposureError, Result};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExposureError + '_ {
    move |source| ExposureError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Creates the package directory (0700). An existing directory must be empty; its mode is tightened.
pub fn create_root(dir: &Path) -> Result<()> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
        if entries.next().is_some() {
            return Err(ExposureError::Invalid(format!(
                "output directory {} is not empty; choose a new one so no earlier report is mixed in",
                dir.display()
            )));
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(dir))?;
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    // `recursive` applies the mode to every created level, but umask may have narrowed nothing wider;
    // set it explicitly on the leaf.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}

/// Creates a subdirectory (0700).
pub fn create_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

/// An age recipient to encrypt every package file to (`NAME.age`), or `None` for plain files.
pub type Seal<'a> = Option<&'a age::x25519::Recipient>;

/// A new file (0600); refuses to overwrite. With a `seal`, the file is written age-encrypted to the
/// recipient under `NAME.age`, so the plaintext never touches the disk.
pub fn create_file(path: &Path, seal: Seal<'_>) -> Result<PackageFile> {
    let path = match seal {
        Some(_) => {
            let mut p = path.as_os_str().to_owned();
            p.push(".age");
            PathBuf::from(p)
        }
        None => path.to_path_buf(),
    };
    let f: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    let w = match seal {
        None => Sink::Plain(BufWriter::new(f)),
        Some(r) => {
            let enc = age::Encryptor::with_recipients(std::iter::once(r as &dyn age::Recipient))
                .map_err(|e| {
                    ExposureError::Invalid(format!("cannot encrypt to the recipient: {e}"))
                })?;
            Sink::Age(enc.wrap_output(BufWriter::new(f)).map_err(io_err(&path))?)
        }
    };
    Ok(PackageFile {
        path,
        w,
        line: String::new(),
    })
}

enum Sink {
    Plain(BufWriter<File>),
    Age(age::stream::StreamWriter<BufWriter<File>>),
}

pub struct PackageFile {
    path: PathBuf,
    w: Sink,
    /// Reused by `csv_row`.
    line: String,
}

impl PackageFile {
    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.w {
            Sink::Plain(w) => w.write_all(data),
            Sink::Age(w) => w.write_all(data),
        }
        .map_err(io_err(&self.path))
    }

    /// Writes one CSV record (RFC 4180 quoting; cells that a spreadsheet would run as a formula are
    /// prefixed with an apostrophe).
    pub fn csv_row<S: AsRef<str>>(&mut self, cells: &[S]) -> Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            push_csv_cell(&mut line, c.as_ref());
        }
        line.push_str("\r\n");
        let r = self.write_all(line.as_bytes());
        self.line = line;
        r
    }

    pub fn finish(self) -> Result<()> {
        let PackageFile { path, w, .. } = self;
        let w = match w {
            Sink::Plain(w) => w,
            // Writes the final age chunk; without it the file would not decrypt.
            Sink::Age(w) => w.finish().map_err(io_err(&path))?,
        };
        let f = w.into_inner().map_err(|e| ExposureError::Io {
            path: path.display().to_string(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io_err(&path))
    }
}

fn push_csv_cell(out: &mut String, v: &str) {
    let formula = v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || v.contains([',', '"', '\n', '\r']);
    if !quote {
        out.push_str(v);
        return;
    }
    out.push('"');
    if formula {
        out.push('\'');
    }
    for (i, part) in v.split('"').enumerate() {
        if i > 0 {
            out.push_str("\"\"");
        }
        out.push_str(part);
    }
    out.push('"');
}

/// Writes a whole file (0600).
pub fn write_file(path: &Path, data: &[u8], seal: Seal<'_>) -> Result<()> {
    let mut f = create_file(path, seal)?;
    f.write_all(data)?;
    f.finish()
}

/// A directory name for an organization: its id and name, reduced to safe characters.
pub fn org_dir_name(id: i64, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("org-{id}-{}", clean.trim_start_matches('.'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn csv_cells() {
        let mut s = String::new();
        push_csv_cell(&mut s, "O\"Brien, Jr");
        assert_eq!(s, "\"O\"\"Brien, Jr\"");
        let mut s = String::new();
        push_csv_cell(&mut s, "=HYPERLINK(1)");
        assert_eq!(s, "\"'=HYPERLINK(1)\"");
        assert_eq!(org_dir_name(3, "../acme"), "org-3-_acme");
    }
}
