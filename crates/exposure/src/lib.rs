//! Breach exposure reports. Given a window of compromise, answers which file versions were present (from
//! the file lifecycle kept after deletion) or actually read (from the verified audit log), which people
//! they held per covered entity (organization), de-duplicated across files by their keyed fingerprints,
//! which data elements of each, per-state counts, who has no valid mailing address, which HIPAA
//! thresholds, routes and deadlines apply, and writes the notification package.
//!
//! Layout: `scope` (who/what the report covers, CIDR matching), `engine` (bulk computation over the
//! store: union-find over interned fingerprints, per-organization aggregation), `dates` (deadlines),
//! `obligations` (the call into the state rules table), `mailing` (re-extraction of the affected people
//! from decrypted files), `package` (the output directory), `html` (the human report).
//!
//! Invariants: plaintext identifiers exist only in memory while the mailing list is built and in the
//! package's files (directory 0700, files 0600); the engine works on fingerprints only and keeps memory
//! proportional to the number of person rows (16 bytes each) plus the fingerprint interner.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use lockbox_inventory::Fingerprinter;
use lockbox_types::FileId;
use serde::Serialize;

pub mod dates;
mod engine;
pub mod html;
mod mailing;
pub mod obligations;
pub mod package;
pub mod rules;
pub mod scope;

pub use engine::build_report;
pub use scope::{Cidr, Scope};

/// Version of the summary.json layout; raise it when a field changes meaning or disappears.
pub const REPORT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ExposureError {
    #[error(transparent)]
    Store(#[from] lockbox_store::StoreError),
    #[error("the audit log failed verification, so it cannot tell what was accessed: {0}")]
    AuditBroken(lockbox_audit::AuditError),
    #[error(transparent)]
    Audit(#[from] lockbox_audit::AuditError),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("cannot write the report package at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = ExposureError> = std::result::Result<T, E>;

/// Which files count as exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Every file version on the server at any moment of the window.
    Present,
    /// Only file versions read or downloaded during the window by sessions matching the scope.
    Accessed,
}

impl Basis {
    pub fn parse(s: &str) -> Option<Basis> {
        match s {
            "present" => Some(Basis::Present),
            "accessed" => Some(Basis::Accessed),
            _ => None,
        }
    }
}

/// Whether the key-encryption key (key provider) was compromised together with the data, as stated by
/// the operator. Every stored file is encrypted at rest, so this decides the encryption safe harbor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeysExposed {
    Yes,
    No,
    /// Both views are reported.
    Unknown,
}

impl KeysExposed {
    pub fn parse(s: &str) -> Option<KeysExposed> {
        match s {
            "yes" => Some(KeysExposed::Yes),
            "no" => Some(KeysExposed::No),
            "unknown" => Some(KeysExposed::Unknown),
            _ => None,
        }
    }

    /// The scenarios to assess: keys exposed (true) and/or not (false).
    pub fn scenarios(self) -> &'static [bool] {
        match self {
            KeysExposed::Yes => &[true],
            KeysExposed::No => &[false],
            KeysExposed::Unknown => &[true, false],
        }
    }
}

/// What the operator asks for.
#[derive(Debug, Clone)]
pub struct ExposureRequest {
    /// Start of the window of compromise (UTC, inclusive).
    pub from: time::OffsetDateTime,
    /// End of the window (UTC, inclusive).
    pub to: time::OffsetDateTime,
    /// Date of discovery (deadlines count from it).
    pub discovered: time::Date,
    pub scope: Scope,
    pub basis: Basis,
    pub keys_exposed: KeysExposed,
    /// Days the business associate has to notify each covered entity (BAA; HIPAA maximum 60).
    pub ba_deadline_days: u32,
    /// Build individuals.csv with names and addresses (decrypts the affected files that still have keys).
    pub mailing_list: bool,
    pub out_dir: PathBuf,
    /// Encrypt every file of the package to this age recipient (files become `NAME.age`).
    pub encrypt_to: Option<age::x25519::Recipient>,
}

/// Plaintext access for the mailing list: the vault provides it (see `lockbox_vault::export`).
pub trait PlaintextSource {
    /// The plaintext of a committed file version whose key still exists.
    fn open(&self, file: FileId) -> std::result::Result<Box<dyn Read + '_>, String>;
    /// Fingerprints people of one organization's files exactly as the inventory did.
    fn fingerprinter(&self, org_name: &str) -> Fingerprinter;
}

// ---------------------------------------------------------------------------------------------------
// The report (summary.json). Every field is plain data; `html::render_html` renders it.
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct ExposureReport {
    pub format_version: u32,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub window: Window,
    /// YYYY-MM-DD.
    pub discovered: String,
    pub basis: Basis,
    /// `all`, `org:NAME`, `user:NAME` or `ip:CIDR`.
    pub scope: String,
    pub keys_exposed: KeysExposed,
    pub safe_harbor: SafeHarbor,
    /// Present for `--basis accessed`: the chain was verified before it was used.
    pub audit: Option<AuditCheck>,
    pub ba_deadline_days: u32,
    pub totals: Totals,
    pub organizations: Vec<OrgReport>,
    pub mailing_list: MailingListInfo,
    pub state_rules: obligations::RulesInfo,
    /// Caveats the reader must know (scan gaps, unrecoverable addresses, ...).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// RFC 3339, UTC, inclusive.
    pub from: String,
    pub to: String,
    pub from_unix: i64,
    pub to_unix: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SafeHarbor {
    /// Every stored file version is encrypted at rest (AES-256-GCM, per-file key wrapped by the KEK).
    pub all_files_encrypted_at_rest: bool,
    /// Human explanation of the assessment.
    pub explanation: String,
    /// The views assessed: `[true]`, `[false]` or both, meaning "keys exposed" in that view.
    pub views: Vec<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditCheck {
    pub verified: bool,
    pub records: i64,
    pub head_hash: String,
    /// `file_read` records in the window (any session).
    pub file_reads_in_window: u64,
    /// Of those, by sessions matching the scope.
    pub file_reads_matching_scope: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub organizations: u64,
    pub files: u64,
    pub files_opaque_or_unscanned: u64,
    /// Distinct individuals over all organizations (one person in two organizations counts once).
    pub individuals: u64,
    /// Individuals whose PHI is unsecured in the "keys exposed" view (equals `individuals`), and in the
    /// view the operator stated; see `OrgReport::assessments` for per-organization numbers.
    pub individuals_unsecured: u64,
    pub individuals_secured: u64,
}

/// One file version in the report.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub file_id: i64,
    pub folder: String,
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// RFC 3339.
    pub committed_at: String,
    pub deleted_at: Option<String>,
    pub encrypted_at_rest: bool,
    /// Per the operator's statement: `yes`, `no` or `unknown`.
    pub key_exposed: KeysExposed,
    /// Secured under the safe harbor: `Some(true)` if keys were not exposed, `Some(false)` if they were,
    /// `None` when unknown (both views reported).
    pub secured: Option<bool>,
    /// The data key has since been destroyed (deleted version): the content cannot be re-read.
    pub key_destroyed: bool,
    /// `complete`, `partial`, `opaque` or `unscanned`.
    pub inventory_status: String,
    pub inventory_reason: Option<String>,
    pub format: Option<String>,
    pub persons: u64,
    /// `file_read` records for this version in the window matching the scope (accessed basis).
    pub reads: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StateCount {
    pub individuals: u64,
    /// More than 500 residents of this state: media notice (164.406).
    pub media_notice_required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubstitutePath {
    /// Everyone has a valid mailing address.
    None,
    /// Fewer than 10 without one: another written form, telephone or other means.
    AlternativeFormOrPhone,
    /// 10 or more: conspicuous web posting for 90 days or major print/broadcast media, plus a
    /// toll-free number for at least 90 days.
    WebPostingOrMediaWithTollFree,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubstituteNotice {
    /// Individuals without a valid mailing address, including those whose address can no longer be
    /// recovered (only in deleted versions).
    pub individuals: u64,
    pub path: SubstitutePath,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HhsRoute {
    /// 500 or more: notify HHS at the same time as the individuals.
    WithIndividualNotice,
    /// Fewer than 500: log, report within 60 days after the end of the calendar year of discovery.
    AnnualLog,
    /// Secured PHI (safe harbor) or nobody affected.
    NotRequired,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deadlines {
    /// Business associate → covered entity (discovery + `ba_deadline_days`).
    pub notify_covered_entity: Option<String>,
    /// Covered entity → individuals (discovery + 60 days).
    pub individual_notice: Option<String>,
    /// Media, when any state has more than 500 residents affected.
    pub media_notice: Option<String>,
    pub hhs_notice: Option<String>,
}

/// The notification assessment of one organization under one safe-harbor view.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// The view: were the keys exposed?
    pub keys_exposed: bool,
    /// Notification required (unsecured PHI of at least one individual).
    pub reportable: bool,
    pub reportable_individuals: u64,
    /// Individuals whose PHI is secured in this view (not reportable).
    pub secured_individuals: u64,
    pub hhs_route: HhsRoute,
    pub media_notice_states: Vec<String>,
    pub deadlines: Deadlines,
    /// From the versioned state rules table (`obligations`).
    pub state_obligations: Vec<serde_json::Value>,
    pub hhs_portal: HhsPortal,
}

/// The HHS breach portal's fields, pre-filled; `None` means "the operator fills this in".
#[derive(Debug, Clone, Serialize)]
pub struct HhsPortal {
    pub covered_entity_name: String,
    pub covered_entity_address: Option<String>,
    /// health_plan / healthcare_clearinghouse / healthcare_provider.
    pub covered_entity_type: Option<String>,
    pub covered_entity_contact: Option<String>,
    pub breach_at_business_associate: bool,
    pub business_associate_name: Option<String>,
    pub breach_start_date: String,
    pub breach_end_date: String,
    pub discovery_start_date: String,
    pub discovery_end_date: String,
    pub individuals_affected: u64,
    pub type_of_breach: String,
    pub location_of_breached_information: String,
    /// demographic / financial / clinical / other.
    pub type_of_phi: Vec<String>,
    pub safeguards_in_place: Vec<String>,
    pub actions_taken: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrgReport {
    pub org_id: i64,
    pub org_name: String,
    /// Directory of this organization inside the package.
    pub package_dir: String,
    pub files: Vec<FileEntry>,
    /// File ids of versions the classifier could not read (or that have no inventory): they may hold
    /// PHI of people not counted here.
    pub opaque_files: Vec<i64>,
    /// Distinct individuals (de-duplicated across this organization's files).
    pub individuals: u64,
    pub by_state: BTreeMap<String, StateCount>,
    /// Individuals with no known state of residence.
    pub state_unknown: u64,
    /// Element name → individuals with it exposed.
    pub by_element: BTreeMap<String, u64>,
    /// Latest known address is not a valid mailing address (street, city, USPS state, ZIP).
    pub without_valid_address: u64,
    /// Seen only in deleted versions whose keys are destroyed: the address cannot be recovered.
    pub address_unrecoverable: u64,
    pub deceased: u64,
    /// Known only when the mailing list was built (age from the date of birth at discovery).
    pub minors: Option<u64>,
    pub substitute_notice: SubstituteNotice,
    pub assessments: Vec<Assessment>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MailingListInfo {
    pub built: bool,
    pub files_decrypted: u64,
    /// Affected versions whose keys were destroyed (deleted since): their people are listed by
    /// fingerprint only.
    pub files_unrecoverable: u64,
    pub files_failed: u64,
    pub individuals_with_contact: u64,
    pub individuals_without_plaintext: u64,
}
