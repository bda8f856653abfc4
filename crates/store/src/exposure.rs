//! Bulk read queries for the exposure report: which file versions existed during a window (from the
//! lifecycle kept after deletion), the people inventoried in a set of files (streamed, no per-row
//! allocation), and audit records of one action. Read-only; statements are literals with bound
//! parameters like everywhere else in this crate.

use lockbox_types::{FileId, OrgId};
use rusqlite::params;
use rusqlite::types::ValueRef;

use crate::rows::AuditRow;
use crate::sqlite::SqliteStore;
use crate::Result;

/// A committed file version with where it lived and what its inventory says.
#[derive(Debug, Clone)]
pub struct ExposureFileRow {
    pub id: FileId,
    pub org_id: OrgId,
    pub org_name: String,
    pub folder_name: String,
    /// Path inside the folder (`parent/name`).
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub committed_at: i64,
    pub deleted_at: Option<i64>,
    /// The wrapped data key was destroyed (deleted version): the content can no longer be read.
    pub key_destroyed: bool,
    /// `complete`, `partial`, `opaque`, or `None` when the version has no inventory.
    pub inventory_status: Option<String>,
    pub inventory_reason: Option<String>,
    pub format: Option<String>,
    pub persons: u64,
}

/// One inventoried person of one file, borrowed from the current row (fingerprints only).
#[derive(Debug, Clone, Copy)]
pub struct ExposurePersonRef<'a> {
    pub file_id: FileId,
    pub fp_ssn: Option<&'a [u8; 32]>,
    pub fp_name_dob: Option<&'a [u8; 32]>,
    pub fp_other: Option<&'a [u8; 32]>,
    pub state: Option<[u8; 2]>,
    pub elements: u32,
}

fn fp_ref<'a>(v: ValueRef<'a>) -> Option<&'a [u8; 32]> {
    match v {
        ValueRef::Blob(b) => <&[u8; 32]>::try_from(b).ok(),
        _ => None,
    }
}

fn state_ref(v: ValueRef<'_>) -> Option<[u8; 2]> {
    match v {
        ValueRef::Text(t) => <[u8; 2]>::try_from(t).ok(),
        _ => None,
    }
}

impl SqliteStore {
    /// Every committed file version whose lifetime intersects `[from, to]` (seconds since the epoch,
    /// both inclusive): committed at or before `to` and not deleted before `from`. Ordered by commit
    /// time then id, so later positions are later versions.
    pub fn exposure_files(&self, from: i64, to: i64) -> Result<Vec<ExposureFileRow>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT f.id, fo.org_id, o.name, fo.name, f.parent, f.name, f.size, f.sha256, f.committed_at, \
                    f.deleted_at, f.wrapped_key IS NULL, i.status, i.reason, i.format, COALESCE(i.persons, 0) \
             FROM files f JOIN folders fo ON fo.id = f.folder_id JOIN orgs o ON o.id = fo.org_id \
             LEFT JOIN file_inventory i ON i.file_id = f.id \
             WHERE f.committed_at <= ?2 AND (f.deleted_at IS NULL OR f.deleted_at >= ?1) \
             ORDER BY f.committed_at, f.id",
        )?;
        let rows = st.query_map(params![from, to], |r| {
            let parent: String = r.get(4)?;
            let name: String = r.get(5)?;
            Ok(ExposureFileRow {
                id: FileId(r.get(0)?),
                org_id: OrgId(r.get(1)?),
                org_name: r.get(2)?,
                folder_name: r.get(3)?,
                path: crate::sqlite::join_rel(&parent, &name),
                size: r.get::<_, i64>(6)?.max(0) as u64,
                sha256: r.get(7)?,
                committed_at: r.get(8)?,
                deleted_at: r.get(9)?,
                key_destroyed: r.get::<_, i64>(10)? != 0,
                inventory_status: r.get(11)?,
                inventory_reason: r.get(12)?,
                format: r.get(13)?,
                persons: r.get::<_, i64>(14)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Streams the inventoried people of `files`, file by file in the order given. Rows are borrowed:
    /// nothing is allocated per person.
    pub fn exposure_persons(
        &self,
        files: &[FileId],
        mut visit: impl FnMut(ExposurePersonRef<'_>),
    ) -> Result<()> {
        let c = self.conn();
        let mut st = c.prepare_cached(
            "SELECT fp_ssn, fp_name_dob, fp_other, state, elements FROM file_persons WHERE file_id = ?1",
        )?;
        for &file_id in files {
            let mut rows = st.query(params![file_id.0])?;
            while let Some(r) = rows.next()? {
                visit(ExposurePersonRef {
                    file_id,
                    fp_ssn: fp_ref(r.get_ref(0)?),
                    fp_name_dob: fp_ref(r.get_ref(1)?),
                    fp_other: fp_ref(r.get_ref(2)?),
                    state: state_ref(r.get_ref(3)?),
                    elements: r.get::<_, i64>(4)?.clamp(0, i64::from(u32::MAX)) as u32,
                });
            }
        }
        Ok(())
    }

    /// Every file version that has an inventory, in id order (deleted versions included: their
    /// people still tell which records belong to the same person).
    pub fn inventoried_file_ids(&self) -> Result<Vec<FileId>> {
        let c = self.conn();
        let mut st = c.prepare("SELECT file_id FROM file_inventory ORDER BY file_id")?;
        let rows = st.query_map([], |r| Ok(FileId(r.get(0)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Visits the audit records of one action (e.g. `file_read`) in sequence order. The caller verifies
    /// the chain first; this only filters.
    pub fn audit_records_of(&self, action: &str, mut visit: impl FnMut(AuditRow)) -> Result<()> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT seq, ts, door, actor, org, source, action, target, outcome, detail, prev_hash, hash \
             FROM audit_log WHERE action = ?1 ORDER BY seq",
        )?;
        let mut rows = st.query(params![action])?;
        while let Some(r) = rows.next()? {
            visit(AuditRow {
                seq: r.get(0)?,
                ts: r.get(1)?,
                door: r.get(2)?,
                actor: r.get(3)?,
                org: r.get(4)?,
                source: r.get(5)?,
                action: r.get(6)?,
                target: r.get(7)?,
                outcome: r.get(8)?,
                detail: r.get(9)?,
                prev_hash: r.get(10)?,
                hash: r.get(11)?,
            });
        }
        Ok(())
    }
}
