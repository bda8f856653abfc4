//! Plugs the exposure report engine into the web door's admin pages. Packages made from the browser
//! live under `DATA/exposure-packages/ID/`, are always age-encrypted (the form requires a
//! recipient), and are read back only by relative paths confined to their package directory.

use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use lockbox_vault::admin::AdminActor;
use lockbox_vault::{Action, AuditEvent, Outcome, Vault};
use lockbox_web::{ExposureParams, ExposureRunner, ExposureSummary, PackageListing};
use rand::RngCore;
use serde_json::json;

use crate::exposure_cmd::{build_and_audit, ReportParams};

pub struct WebExposure {
    vault: Vault,
    root: PathBuf,
}

impl WebExposure {
    pub fn new(vault: Vault) -> WebExposure {
        let root = lockbox_web::packages_dir(vault.data_dir());
        WebExposure { vault, root }
    }
}

/// Package ids are ours (`YYYYMMDD-HHMMSS-hex`); anything else is refused before touching the disk.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A relative path of names made of safe characters; no `.`/`..`, no absolute paths.
fn valid_rel(rel: &str) -> bool {
    !rel.is_empty()
        && rel.len() <= 1024
        && rel.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.chars()
                    .all(|ch| ch.is_alphanumeric() || "._- ()&,'".contains(ch))
        })
}

fn walk(dir: &Path, base: &Path, depth: usize, out: &mut Vec<(String, u64)>) {
    if depth > 4 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, base, depth + 1, out);
        } else if meta.is_file() {
            if let Ok(rel) = path.strip_prefix(base) {
                out.push((rel.to_string_lossy().into_owned(), meta.len()));
            }
        }
    }
}

impl ExposureRunner for WebExposure {
    fn run(&self, actor: &AdminActor, p: &ExposureParams) -> Result<ExposureSummary, String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| format!("cannot create {}: {e}", self.root.display()))?;
        let mut suffix = [0u8; 4];
        rand::rngs::OsRng.fill_bytes(&mut suffix);
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]-[hour][minute][second]"
            ))
            .unwrap_or_default();
        let id = format!("{stamp}-{}", hex::encode(suffix));
        let out = self.root.join(&id);
        let report = build_and_audit(
            &self.vault,
            actor,
            &ReportParams {
                from: &p.from,
                to: &p.to,
                discovered: &p.discovered,
                scope: &p.scope,
                basis: &p.basis,
                keys_exposed: &p.keys_exposed,
                ba_deadline_days: p.ba_deadline_days,
                mailing_list: p.mailing_list,
                encrypt_to: Some(&p.encrypt_to),
                out: &out,
            },
        )
        .map_err(|e| format!("{e:#}"))?;
        Ok(ExposureSummary {
            id,
            text: format!(
                "{} files, {} distinct individuals in {} organizations ({} basis, scope {})",
                report.totals.files,
                report.totals.individuals,
                report.totals.organizations,
                p.basis,
                report.scope
            ),
        })
    }

    fn list(&self) -> Result<Vec<PackageListing>, String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if !meta.is_dir() || !valid_id(&id) {
                continue;
            }
            let created = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let mut files = Vec::new();
            walk(&e.path(), &e.path(), 0, &mut files);
            out.push(PackageListing { id, created, files });
        }
        out.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(out)
    }

    fn open(
        &self,
        actor: &AdminActor,
        id: &str,
        rel: &str,
    ) -> Result<(Box<dyn Read + Send>, u64), String> {
        const MISSING: &str = "no such package file";
        if !valid_id(id) || !valid_rel(rel) {
            return Err(MISSING.into());
        }
        let dir = self.root.join(id);
        let path = dir.join(rel);
        // Confinement: the resolved file must still be inside its package (no symlink escapes).
        let (Ok(cdir), Ok(cpath)) = (dir.canonicalize(), path.canonicalize()) else {
            return Err(MISSING.into());
        };
        if !cpath.starts_with(&cdir) {
            return Err(MISSING.into());
        }
        let f = std::fs::File::open(&cpath).map_err(|_| MISSING.to_owned())?;
        let meta = f.metadata().map_err(|_| MISSING.to_owned())?;
        if !meta.is_file() {
            return Err(MISSING.into());
        }
        self.vault
            .record(
                AuditEvent::new(actor.door, Action::ExposurePackageRead, Outcome::Ok)
                    .actor(&actor.name, "")
                    .source(&actor.source)
                    .target(format!("exposure:{id}/{rel}"))
                    .detail(json!({"bytes": meta.len()})),
            )
            .map_err(|e| format!("cannot record the download: {e}"))?;
        Ok((Box::new(f), meta.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_paths_are_confined() {
        assert!(valid_id("20261125-044501-a1b2c3d4"));
        assert!(!valid_id("../x"));
        assert!(!valid_id(""));
        assert!(valid_rel("acme/individuals.csv.age"));
        assert!(valid_rel("summary.json.age"));
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            ".",
            "a/./b",
            "a\\b",
            "x\0y",
        ] {
            assert!(!valid_rel(bad), "{bad}");
        }
    }
}
