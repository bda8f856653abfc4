//! The PHI inventory as the vault keeps it: saved with every committed file version (fingerprints,
//! state, elements; never plaintext), rescanned for files stored before the classifier existed or by
//! an older one, and shown to administrators.

use std::collections::BTreeMap;

use lockbox_audit::{Action, Event, Outcome};
use lockbox_crypto::EncryptedReader;
use lockbox_inventory::{ScanStatus, CLASSIFIER_VERSION};
use lockbox_store::{now_unix, FileRow, InventoryRow, PersonRow};
use serde::Serialize;
use serde_json::json;

use crate::admin::AdminActor;
use crate::content::ContentFindings;
use crate::error::{Result, VaultError};
use crate::transfer::analyse_stored;
use crate::Vault;

/// A file's inventory as shown to an administrator: counts only.
#[derive(Debug, Serialize)]
pub struct InventoryView {
    pub path: String,
    pub file_id: i64,
    pub size: u64,
    pub sha256: String,
    pub format: String,
    pub inner_formats: Vec<String>,
    pub status: String,
    pub reason: Option<String>,
    pub records: u64,
    pub persons: u64,
    pub element_counts: BTreeMap<String, u64>,
    pub persons_by_state: BTreeMap<String, u64>,
    pub classifier_version: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct RescanReport {
    pub scanned: u64,
    pub failed: u64,
    pub opaque: u64,
    pub partial: u64,
}

fn status_str(s: &ScanStatus) -> (String, Option<String>) {
    (s.as_str().to_owned(), s.reason().map(str::to_owned))
}

impl Vault {
    /// Stores what the content analysis found for a committed file version. Returns a summary for the
    /// audit record. A failure is logged and summarized (the upload itself already succeeded; the file
    /// shows up as needing a rescan).
    pub(crate) fn save_inventory(
        &self,
        file: lockbox_types::FileId,
        f: &ContentFindings,
    ) -> serde_json::Value {
        let (status, reason) = status_str(&f.scan.status);
        let counts: BTreeMap<&str, u64> = f
            .scan
            .element_counts
            .iter()
            .map(|(e, n)| (e.as_str(), *n))
            .collect();
        let row = InventoryRow {
            file_id: file,
            format: f.scan.format.as_str().to_owned(),
            inner_formats: serde_json::to_string(
                &f.scan
                    .inner_formats
                    .iter()
                    .map(|x| x.as_str())
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_else(|_| "[]".into()),
            status: status.clone(),
            reason: reason.clone(),
            records: f.scan.records,
            persons: f.people.len() as u64,
            element_counts: serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into()),
            classifier_version: CLASSIFIER_VERSION,
            scanned_at: now_unix(),
        };
        let persons: Vec<PersonRow> = f
            .people
            .iter()
            .map(|p| PersonRow {
                fp_ssn: p.fp_ssn,
                fp_name_dob: p.fp_name_dob,
                fp_other: p.fp_other,
                state: p.state.map(|s| String::from_utf8_lossy(&s).into_owned()),
                elements: p.elements.0,
            })
            .collect();
        match self.inner.store.save_inventory(&row, &persons) {
            Ok(()) => {
                json!({"format": row.format, "status": status, "reason": reason, "persons": row.persons, "records": row.records})
            }
            Err(e) => {
                tracing::error!(error = %e, file = file.0, "could not save the inventory; run `lockbox inventory rescan`");
                json!({"status": "not saved"})
            }
        }
    }

    fn analyse_file(&self, file: &FileRow) -> Result<ContentFindings> {
        let wrapped = file
            .wrapped_key
            .as_deref()
            .ok_or_else(|| VaultError::NotFound(format!("file #{} has no key", file.id.0)))?;
        let key = self.inner.keys.unwrap(
            &lockbox_crypto::WrappedKey::from_bytes(wrapped)?,
            &file.blob_id.0,
        )?;
        let blob = self.inner.blobs.open_read(file.blob_id)?;
        let reader = EncryptedReader::new(blob, key, file.blob_id.0, file.size);
        let org = self
            .inner
            .store
            .org_name_of_folder(file.folder_id)?
            .unwrap_or_default();
        analyse_stored(self, &reader, &org)
    }

    /// Scans every live file that has no inventory from the current classifier.
    pub fn rescan_inventory(&self, actor: &AdminActor) -> Result<RescanReport> {
        let mut report = RescanReport::default();
        for file in self.inner.store.files_needing_scan(CLASSIFIER_VERSION)? {
            match self.analyse_file(&file) {
                Ok(f) => {
                    match f.scan.status {
                        ScanStatus::Opaque(_) => report.opaque += 1,
                        ScanStatus::Partial(_) => report.partial += 1,
                        ScanStatus::Complete => {}
                    }
                    self.save_inventory(file.id, &f);
                    report.scanned += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, file = file.id.0, "rescan failed");
                    report.failed += 1;
                }
            }
        }
        self.audit_strict(
            Event::new(actor.door, Action::InventoryRescanned, Outcome::Ok)
                .actor(&actor.name, "")
                .source(&actor.source)
                .detail(json!({"scanned": report.scanned, "failed": report.failed, "opaque": report.opaque,
                               "partial": report.partial, "classifier_version": CLASSIFIER_VERSION})),
        )?;
        Ok(report)
    }

    /// The inventory of the live file at `org/folder/path` (counts only).
    pub fn inventory_show(&self, spec: &str) -> Result<InventoryView> {
        let mut parts = spec.trim_matches('/').splitn(3, '/');
        let (Some(org), Some(folder), Some(rel)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(VaultError::InvalidInput("expected ORG/FOLDER/PATH".into()));
        };
        let org = self.org(org)?;
        let f = self
            .inner
            .store
            .folder_by_name(org.id, folder)?
            .ok_or_else(|| VaultError::NotFound(format!("folder {folder:?} in {:?}", org.name)))?;
        let p = lockbox_types::VirtualPath::parse(&lockbox_types::VirtualPath::root(), rel)?;
        let (parent, name) = match p.parent() {
            Some(parent) => (
                parent.relative_string(),
                p.file_name().unwrap_or_default().to_owned(),
            ),
            None => return Err(VaultError::InvalidInput("expected ORG/FOLDER/PATH".into())),
        };
        let file = self
            .inner
            .store
            .live_file(f.id, &parent, &name)?
            .ok_or_else(|| VaultError::NotFound(spec.to_owned()))?;
        let inv = self.inner.store.inventory(file.id)?.ok_or_else(|| {
            VaultError::NotFound(format!(
                "{spec} has no inventory yet; run `lockbox inventory rescan`"
            ))
        })?;
        let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
        for p in self.inner.store.inventory_persons(file.id)? {
            *by_state
                .entry(p.state.unwrap_or_else(|| "unknown".into()))
                .or_default() += 1;
        }
        Ok(InventoryView {
            path: spec.to_owned(),
            file_id: file.id.0,
            size: file.size,
            sha256: file.sha256,
            format: inv.format,
            inner_formats: serde_json::from_str(&inv.inner_formats).unwrap_or_default(),
            status: inv.status,
            reason: inv.reason,
            records: inv.records,
            persons: inv.persons,
            element_counts: serde_json::from_str(&inv.element_counts).unwrap_or_default(),
            persons_by_state: by_state,
            classifier_version: inv.classifier_version,
        })
    }
}
