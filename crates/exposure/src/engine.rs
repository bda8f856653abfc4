//! The computation. Files come from the lifecycle query (present) or the verified audit log (accessed);
//! their inventoried people are streamed from the store once. Each fingerprint (SSN, name+DOB, other) is
//! interned to a `u32`; each person row unites its fingerprints (union-find with path halving), so a
//! person seen without an SSN in one file and with it in another is one node. Rows are 16 bytes; they
//! are sorted by (organization, person, file order) and aggregated in one linear pass, where the latest
//! file wins for the state and the address.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use lockbox_audit::{AuditError, AuditLog};
use lockbox_inventory::fingerprint::FingerprintHashBuilder;
use lockbox_inventory::{Element, ElementSet};
use lockbox_store::{ExposureFileRow, SqliteStore};
use lockbox_types::FileId;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::dates::{hhs_annual_deadline, iso, plus_days};
use crate::mailing::{self, Contact};
use crate::package;
use crate::scope::Scope;
use crate::{
    obligations, Assessment, AuditCheck, Basis, Deadlines, ExposureError, ExposureReport,
    ExposureRequest, FileEntry, HhsPortal, HhsRoute, KeysExposed, MailingListInfo, OrgReport,
    PlaintextSource, Result, SafeHarbor, StateCount, SubstituteNotice, SubstitutePath, Totals,
    Window, REPORT_FORMAT_VERSION,
};

const MEDIA_THRESHOLD: u64 = 500; // strictly more than
const HHS_IMMEDIATE: u64 = 500; // 500 or more
const SUBSTITUTE_WEB: u64 = 10; // 10 or more
const ADDRESS_BITS: u32 = (1 << Element::Street as u32)
    | (1 << Element::City as u32)
    | (1 << Element::State as u32)
    | (1 << Element::Zip as u32);
const NO_STATE: [u8; 2] = [0, 0];

/// Fingerprints interned to dense ids, with a union-find forest over them.
struct Persons {
    ids: HashMap<[u8; 32], u32, FingerprintHashBuilder>,
    parent: Vec<u32>,
}

impl Persons {
    /// `rows_hint`: the expected number of person rows. Most rows carry one or two fingerprints and
    /// people repeat across files, so sizing the table for one fingerprint per row usually avoids
    /// every rehash (and the transient double-size table a rehash needs) without over-allocating.
    fn with_capacity(rows_hint: usize) -> Self {
        Persons {
            ids: HashMap::with_capacity_and_hasher(rows_hint, FingerprintHashBuilder::default()),
            parent: Vec::with_capacity(rows_hint),
        }
    }

    fn fresh(&mut self) -> u32 {
        let id = self.parent.len() as u32;
        self.parent.push(id);
        id
    }

    fn intern(&mut self, fp: &[u8; 32]) -> u32 {
        // One probe: insert the next id if absent, then create the node if it was taken.
        let next = self.parent.len() as u32;
        let id = *self.ids.entry(*fp).or_insert(next);
        if id == next {
            self.parent.push(next);
        }
        id
    }

    fn find(&mut self, mut x: u32) -> u32 {
        loop {
            let p = self.parent.get(x as usize).copied().unwrap_or(x);
            if p == x {
                return x;
            }
            let gp = self.parent.get(p as usize).copied().unwrap_or(p);
            if let Some(slot) = self.parent.get_mut(x as usize) {
                *slot = gp;
            }
            x = gp;
        }
    }

    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return ra;
        }
        // Smaller id as root: deterministic.
        let (root, child) = if ra < rb { (ra, rb) } else { (rb, ra) };
        if let Some(slot) = self.parent.get_mut(child as usize) {
            *slot = root;
        }
        root
    }

    /// Fully compresses the forest: afterwards `parent[x]` is `x`'s root.
    fn flatten(&mut self) {
        for x in 0..self.parent.len() as u32 {
            let r = self.find(x);
            if let Some(slot) = self.parent.get_mut(x as usize) {
                *slot = r;
            }
        }
    }

    /// The person (root) a fingerprint belongs to, after `flatten`.
    fn person_of(&self, fp: &[u8; 32]) -> Option<u32> {
        self.ids
            .get(fp)
            .and_then(|&id| self.parent.get(id as usize).copied())
    }
}

/// One inventoried person in one file: 16 bytes.
#[derive(Clone, Copy)]
struct Row {
    person: u32,
    file_ix: u32,
    elements: u32,
    org_ix: u16,
    state: [u8; 2],
}

/// One person within one organization, aggregated.
#[derive(Clone, Copy)]
pub(crate) struct Individual {
    pub(crate) person: u32,
    pub(crate) elements: u32,
    pub(crate) state: [u8; 2],
    pub(crate) address_valid: bool,
    /// Seen in at least one version whose key still exists.
    pub(crate) recoverable: bool,
}

fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

fn element_names(bits: u32) -> Vec<&'static str> {
    ElementSet(bits).iter().map(Element::as_str).collect()
}

/// Which HHS "type of PHI" categories the exposed elements fall into.
fn phi_types(bits: u32) -> Vec<String> {
    let s = ElementSet(bits);
    let any = |els: &[Element]| els.iter().any(|e| s.contains(*e));
    let mut out = Vec::new();
    if any(&[
        Element::Name,
        Element::Ssn,
        Element::Dob,
        Element::Street,
        Element::City,
        Element::State,
        Element::Zip,
        Element::Phone,
        Element::Email,
    ]) {
        out.push("demographic".to_owned());
    }
    if any(&[Element::AccountNumber]) {
        out.push("financial".to_owned());
    }
    if any(&[Element::Diagnosis, Element::MedicalRecordNumber]) {
        out.push("clinical".to_owned());
    }
    if any(&[
        Element::Mbi,
        Element::Hicn,
        Element::MedicaidId,
        Element::MemberId,
        Element::DeathDate,
    ]) {
        out.push("other".to_owned());
    }
    out
}

/// Reads of file versions in the window by sessions in scope, from the verified audit log.
fn accessed_files(
    store: &SqliteStore,
    audit: &AuditLog,
    req: &ExposureRequest,
    org_ids: &HashMap<String, i64>,
) -> Result<(AuditCheck, HashMap<i64, u64>)> {
    let verified = audit.verify().map_err(|e| match e {
        AuditError::Broken { .. } => ExposureError::AuditBroken(e),
        other => ExposureError::Audit(other),
    })?;
    let (from, to) = (req.from, req.to);
    let mut in_window = 0u64;
    let mut matching = 0u64;
    let mut reads: HashMap<i64, u64> = HashMap::new();
    // A read counts from its open (`file_opened`, written before the first byte). Records from
    // before opens were recorded have only the `file_read` written at close: such a close counts
    // when no open of the same file in the same session is left to match it.
    let mut unmatched_opens: HashMap<(String, i64), u64> = HashMap::new();
    let mut opens = Vec::new();
    store.audit_records_of("file_opened", |row| opens.push(row))?;
    for row in &opens {
        if row.outcome != "ok" {
            continue;
        }
        let detail = serde_json::from_str::<serde_json::Value>(&row.detail).ok();
        let key = detail.as_ref().and_then(|d| {
            let id = d.get("file_id").and_then(serde_json::Value::as_i64)?;
            let s = d.get("session").and_then(serde_json::Value::as_str)?;
            Some((s.to_owned(), id))
        });
        if let Some(k) = key {
            *unmatched_opens.entry(k).or_default() += 1;
        }
    }
    let mut visit = |row: lockbox_store::AuditRow, is_open: bool| {
        if row.outcome != "ok" {
            return;
        }
        let detail = serde_json::from_str::<serde_json::Value>(&row.detail).ok();
        let file_id = detail
            .as_ref()
            .and_then(|d| d.get("file_id").and_then(serde_json::Value::as_i64));
        let session = detail
            .as_ref()
            .and_then(|d| d.get("session").and_then(serde_json::Value::as_str))
            .unwrap_or_default()
            .to_owned();
        if !is_open {
            if let Some(id) = file_id {
                if let Some(n) = unmatched_opens.get_mut(&(session, id)) {
                    if *n > 0 {
                        *n -= 1;
                        return;
                    }
                }
            }
        }
        let Ok(ts) = OffsetDateTime::parse(&row.ts, &Rfc3339) else {
            return;
        };
        if ts < from || ts > to {
            return;
        }
        in_window += 1;
        if !req.scope.matches_session(
            &row.actor,
            &row.org,
            org_ids.get(&row.org).copied(),
            &row.source,
        ) {
            return;
        }
        if let Some(id) = file_id {
            matching += 1;
            *reads.entry(id).or_default() += 1;
        }
    };
    for row in opens {
        visit(row, true);
    }
    store.audit_records_of("file_read", |row| visit(row, false))?;
    Ok((
        AuditCheck {
            verified: true,
            records: verified.records,
            head_hash: verified.head_hash,
            file_reads_in_window: in_window,
            file_reads_matching_scope: matching,
        },
        reads,
    ))
}

/// Runs the report and writes the package into `req.out_dir`. Returns what summary.json holds.
pub fn build_report(
    store: &SqliteStore,
    audit: &AuditLog,
    plaintext: Option<&dyn PlaintextSource>,
    req: &ExposureRequest,
) -> Result<ExposureReport> {
    if req.from > req.to {
        return Err(ExposureError::Invalid(
            "the window starts after it ends (--from is later than --to)".into(),
        ));
    }
    if req.mailing_list && plaintext.is_none() {
        return Err(ExposureError::Invalid(
            "a mailing list needs access to the files' plaintext".into(),
        ));
    }
    let (from, to) = (req.from.unix_timestamp(), req.to.unix_timestamp());
    let mut notes = Vec::new();

    // ---- which files ----
    let mut files = store.exposure_files(from, to)?;
    let mut org_ids: HashMap<String, i64> = HashMap::new();
    for o in store.list_orgs()? {
        org_ids.insert(o.name, o.id.0);
    }
    if let Scope::Org(o) = &req.scope {
        let id = org_ids
            .get(o)
            .copied()
            .or_else(|| {
                o.parse::<i64>()
                    .ok()
                    .filter(|id| org_ids.values().any(|v| v == id))
            })
            .ok_or_else(|| ExposureError::Invalid(format!("no organization {o:?}")))?;
        files.retain(|f| f.org_id.0 == id);
    }
    let mut audit_check = None;
    let mut reads: HashMap<i64, u64> = HashMap::new();
    match req.basis {
        Basis::Present => {
            if matches!(req.scope, Scope::User(_) | Scope::Ip(_)) {
                return Err(ExposureError::Invalid(
                    "user and ip scopes select sessions, which only the accessed basis uses: add --basis accessed".into(),
                ));
            }
        }
        Basis::Accessed => {
            let (check, r) = accessed_files(store, audit, req, &org_ids)?;
            audit_check = Some(check);
            reads = r;
            files.retain(|f| reads.contains_key(&f.id.0));
        }
    }

    // ---- organizations, in name order ----
    let mut org_names: Vec<(String, i64)> = files
        .iter()
        .map(|f| (f.org_name.clone(), f.org_id.0))
        .collect();
    org_names.sort();
    org_names.dedup();
    if org_names.len() > usize::from(u16::MAX) {
        return Err(ExposureError::Invalid(
            "more than 65535 organizations in one report".into(),
        ));
    }
    let org_ix_of: HashMap<i64, u16> = org_names
        .iter()
        .enumerate()
        .map(|(i, (_, id))| (*id, i as u16))
        .collect();
    let file_ix_of: HashMap<i64, (u32, u16)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                f.id.0,
                (i as u32, org_ix_of.get(&f.org_id.0).copied().unwrap_or(0)),
            )
        })
        .collect();

    // ---- people: stream, intern, unite ----
    // The inventory's per-file person counts size the structures up front (growing them doubles peak
    // memory). The hint is capped: a corrupt count must not turn into a huge allocation; beyond the
    // cap the structures simply grow.
    const MAX_ROWS_HINT: u64 = 64 << 20;
    let rows_hint = usize::try_from(
        files
            .iter()
            .map(|f| f.persons)
            .fold(0u64, u64::saturating_add)
            .min(MAX_ROWS_HINT),
    )
    .unwrap_or(0);
    let mut persons = Persons::with_capacity(rows_hint);
    let mut rows: Vec<Row> = Vec::with_capacity(rows_hint);
    let ids: Vec<FileId> = files.iter().map(|f| f.id).collect();
    store.exposure_persons(&ids, |p| {
        let Some(&(file_ix, org_ix)) = file_ix_of.get(&p.file_id.0) else {
            return;
        };
        let mut node: Option<u32> = None;
        for fp in [p.fp_ssn, p.fp_name_dob, p.fp_other].into_iter().flatten() {
            let id = persons.intern(fp);
            node = Some(match node {
                Some(n) => persons.union(n, id),
                None => id,
            });
        }
        // A row without any fingerprint cannot be linked: it counts as its own person.
        let person = node.unwrap_or_else(|| persons.fresh());
        rows.push(Row {
            person,
            file_ix,
            elements: p.elements,
            org_ix,
            state: p.state.unwrap_or(NO_STATE),
        });
    })?;
    // Identity is resolved over every inventoried file, not only those in the window: a record outside
    // the window (or at another organization) that carries both the SSN and name + date of birth is
    // what ties an SSN-only record to a name-only one inside it. Those rows are not counted.
    let in_window: std::collections::HashSet<i64> = ids.iter().map(|f| f.0).collect();
    let others: Vec<FileId> = store
        .inventoried_file_ids()?
        .into_iter()
        .filter(|f| !in_window.contains(&f.0))
        .collect();
    store.exposure_persons(&others, |p| {
        let mut node: Option<u32> = None;
        for fp in [p.fp_ssn, p.fp_name_dob, p.fp_other].into_iter().flatten() {
            // Only fingerprints that can tie together people of the window matter, but a chain may
            // pass through fingerprints the window never saw, so all are interned.
            let id = persons.intern(fp);
            node = Some(match node {
                Some(n) => persons.union(n, id),
                None => id,
            });
        }
    })?;
    persons.flatten();
    for r in &mut rows {
        r.person = persons
            .parent
            .get(r.person as usize)
            .copied()
            .unwrap_or(r.person);
    }
    rows.sort_unstable_by_key(|r| (r.org_ix, r.person, r.file_ix));

    // ---- overall distinct ----
    let mut seen = vec![false; persons.parent.len()];
    let mut overall = 0u64;
    for r in &rows {
        if let Some(s) = seen.get_mut(r.person as usize) {
            if !*s {
                *s = true;
                overall += 1;
            }
        }
    }
    drop(seen);

    // ---- package root ----
    package::create_root(&req.out_dir)?;
    let rules = crate::rules::StateRules::embedded();

    // ---- per organization ----
    let secured_flag = match req.keys_exposed {
        KeysExposed::Yes => Some(false),
        KeysExposed::No => Some(true),
        KeysExposed::Unknown => None,
    };
    let mut mailing_info = MailingListInfo {
        built: req.mailing_list,
        ..Default::default()
    };
    let mut orgs_out = Vec::new();
    let mut row_pos = 0usize;
    for (org_ix, (org_name, org_id)) in org_names.iter().enumerate() {
        let org_files: Vec<&ExposureFileRow> =
            files.iter().filter(|f| f.org_id.0 == *org_id).collect();
        // Aggregate this organization's rows (contiguous after the sort).
        let mut individuals: Vec<Individual> = Vec::new();
        while let Some(r) = rows.get(row_pos) {
            if usize::from(r.org_ix) != org_ix {
                break;
            }
            let key_alive = files
                .get(r.file_ix as usize)
                .is_some_and(|f| !f.key_destroyed);
            match individuals.last_mut() {
                Some(last) if last.person == r.person => {
                    last.elements |= r.elements;
                    if r.state != NO_STATE {
                        last.state = r.state;
                    }
                    if r.elements & ADDRESS_BITS != 0 {
                        last.address_valid = r.elements & ADDRESS_BITS == ADDRESS_BITS;
                    }
                    last.recoverable |= key_alive;
                }
                _ => individuals.push(Individual {
                    person: r.person,
                    elements: r.elements,
                    state: r.state,
                    address_valid: r.elements & ADDRESS_BITS == ADDRESS_BITS,
                    recoverable: key_alive,
                }),
            }
            row_pos += 1;
        }

        let dir_name = package::org_dir_name(*org_id, org_name);
        let dir = req.out_dir.join(&dir_name);
        package::create_dir(&dir)?;

        // Mailing list: decrypt this organization's affected versions that still have keys.
        let contacts: Option<Vec<Option<Contact>>> = match (req.mailing_list, plaintext) {
            (true, Some(src)) => {
                let fpr = src.fingerprinter(org_name);
                let (c, stats) = mailing::extract(src, &fpr, &org_files, &individuals, |fp| {
                    persons.person_of(fp)
                });
                mailing_info.files_decrypted += stats.decrypted;
                mailing_info.files_unrecoverable += stats.unrecoverable;
                mailing_info.files_failed += stats.failed;
                for f in stats.failures {
                    notes.push(format!(
                        "{org_name}: could not re-read file #{f} for the mailing list"
                    ));
                }
                Some(c)
            }
            _ => None,
        };

        let mut by_state: BTreeMap<String, StateCount> = BTreeMap::new();
        let mut by_element: BTreeMap<String, u64> = BTreeMap::new();
        let (mut state_unknown, mut no_addr, mut unrecoverable, mut deceased, mut minors) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut elements_union = 0u32;
        let mut csv = package::create_file(&dir.join("individuals.csv"), req.encrypt_to.as_ref())?;
        csv.csv_row(&mailing::CSV_HEADER)?;
        for (i, ind) in individuals.iter().enumerate() {
            elements_union |= ind.elements;
            if ind.state == NO_STATE {
                state_unknown += 1;
            } else {
                let st = String::from_utf8_lossy(&ind.state).into_owned();
                by_state
                    .entry(st)
                    .or_insert(StateCount {
                        individuals: 0,
                        media_notice_required: false,
                    })
                    .individuals += 1;
            }
            for e in ElementSet(ind.elements).iter() {
                *by_element.entry(e.as_str().to_owned()).or_default() += 1;
            }
            if !ind.recoverable {
                unrecoverable += 1;
            } else if !ind.address_valid {
                no_addr += 1;
            }
            let contact = contacts
                .as_ref()
                .and_then(|c| c.get(i))
                .and_then(Option::as_ref);
            let is_deceased = ElementSet(ind.elements).contains(Element::DeathDate)
                || contact.is_some_and(|c| c.deceased);
            if is_deceased {
                deceased += 1;
            }
            let is_minor = contact.is_some_and(|c| c.is_minor(req.discovered));
            if is_minor {
                minors += 1;
            }
            if contacts.is_some() {
                if contact.is_some() {
                    mailing_info.individuals_with_contact += 1;
                } else {
                    mailing_info.individuals_without_plaintext += 1;
                }
            }
            csv.csv_row(&mailing::csv_cells(
                ind,
                contact,
                is_deceased,
                is_minor,
                &element_names(ind.elements),
            ))?;
        }
        csv.finish()?;
        for c in by_state.values_mut() {
            c.media_notice_required = c.individuals > MEDIA_THRESHOLD;
        }

        let total = individuals.len() as u64;
        let without = no_addr + unrecoverable;
        let substitute = SubstituteNotice {
            individuals: without,
            path: if without == 0 {
                SubstitutePath::None
            } else if without < SUBSTITUTE_WEB {
                SubstitutePath::AlternativeFormOrPhone
            } else {
                SubstitutePath::WebPostingOrMediaWithTollFree
            },
            description: if without == 0 {
                "every individual has a valid mailing address".into()
            } else if without < SUBSTITUTE_WEB {
                format!("{without} individuals without a valid mailing address (fewer than 10): substitute notice by an alternative written form, telephone or other means")
            } else {
                format!("{without} individuals without a valid mailing address (10 or more): conspicuous web-site posting for 90 days or major print/broadcast media where they likely live, plus a toll-free number for at least 90 days")
            },
        };

        let media_states: Vec<String> = by_state
            .iter()
            .filter(|(_, c)| c.media_notice_required)
            .map(|(s, _)| s.clone())
            .collect();
        let assessments: Vec<Assessment> = req
            .keys_exposed
            .scenarios()
            .iter()
            .map(|&exposed| {
                let reportable = exposed && total > 0;
                let route = if !reportable {
                    HhsRoute::NotRequired
                } else if total >= HHS_IMMEDIATE {
                    HhsRoute::WithIndividualNotice
                } else {
                    HhsRoute::AnnualLog
                };
                let deadlines = if reportable {
                    Deadlines {
                        notify_covered_entity: Some(iso(plus_days(req.discovered, req.ba_deadline_days))),
                        individual_notice: Some(iso(plus_days(req.discovered, 60))),
                        media_notice: (!media_states.is_empty()).then(|| iso(plus_days(req.discovered, 60))),
                        hhs_notice: Some(iso(match route {
                            HhsRoute::WithIndividualNotice => plus_days(req.discovered, 60),
                            _ => hhs_annual_deadline(req.discovered),
                        })),
                    }
                } else {
                    Deadlines { notify_covered_entity: None, individual_notice: None, media_notice: None, hhs_notice: None }
                };
                let state_obligations = if reportable {
                    by_state
                        .iter()
                        .flat_map(|(s, c)| obligations::state_obligations(&rules, s, c.individuals, req.discovered))
                        .collect()
                } else {
                    Vec::new()
                };
                Assessment {
                    keys_exposed: exposed,
                    reportable,
                    reportable_individuals: if reportable { total } else { 0 },
                    secured_individuals: if exposed { 0 } else { total },
                    hhs_route: route,
                    media_notice_states: if reportable { media_states.clone() } else { Vec::new() },
                    deadlines,
                    state_obligations,
                    hhs_portal: HhsPortal {
                        covered_entity_name: org_name.clone(),
                        covered_entity_address: None,
                        covered_entity_type: None,
                        covered_entity_contact: None,
                        breach_at_business_associate: true,
                        business_associate_name: None,
                        breach_start_date: iso(req.from.date()),
                        breach_end_date: iso(req.to.date()),
                        discovery_start_date: iso(req.discovered),
                        discovery_end_date: iso(req.discovered),
                        individuals_affected: if reportable { total } else { 0 },
                        type_of_breach: "Hacking/IT Incident".into(),
                        location_of_breached_information: "Network Server".into(),
                        type_of_phi: phi_types(elements_union),
                        safeguards_in_place: vec![
                            "Encryption of stored files at rest (AES-256-GCM, per-file data keys wrapped by a separate key-encryption key)".into(),
                            "Role-based access control with per-folder grants; organizations isolated".into(),
                            "Tamper-evident (hash-chained) audit log".into(),
                        ],
                        actions_taken: None,
                    },
                }
            })
            .collect();

        let entries: Vec<FileEntry> = org_files
            .iter()
            .map(|f| FileEntry {
                file_id: f.id.0,
                folder: f.folder_name.clone(),
                path: f.path.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
                committed_at: rfc3339(f.committed_at),
                deleted_at: f.deleted_at.map(rfc3339),
                encrypted_at_rest: true,
                key_exposed: req.keys_exposed,
                secured: secured_flag,
                key_destroyed: f.key_destroyed,
                inventory_status: f
                    .inventory_status
                    .clone()
                    .unwrap_or_else(|| "unscanned".into()),
                inventory_reason: f.inventory_reason.clone(),
                format: f.format.clone(),
                persons: f.persons,
                reads: reads.get(&f.id.0).copied().unwrap_or(0),
            })
            .collect();
        let opaque_files: Vec<i64> = entries
            .iter()
            .filter(|f| f.inventory_status == "opaque" || f.inventory_status == "unscanned")
            .map(|f| f.file_id)
            .collect();
        let partial = entries
            .iter()
            .filter(|f| f.inventory_status == "partial")
            .count();
        if partial > 0 {
            notes.push(format!("{org_name}: {partial} file(s) were only partly scanned; more people may be affected than counted"));
        }
        if !opaque_files.is_empty() {
            notes.push(format!("{org_name}: {} file(s) could not be read by the classifier and may hold PHI (see opaque_files)", opaque_files.len()));
        }
        if unrecoverable > 0 {
            notes.push(format!("{org_name}: {unrecoverable} individual(s) appear only in deleted versions whose keys were destroyed; their addresses cannot be recovered"));
        }

        let report = OrgReport {
            org_id: *org_id,
            org_name: org_name.clone(),
            package_dir: dir_name,
            files: entries,
            opaque_files,
            individuals: total,
            by_state,
            state_unknown,
            by_element,
            without_valid_address: no_addr,
            address_unrecoverable: unrecoverable,
            deceased,
            minors: contacts.as_ref().map(|_| minors),
            substitute_notice: substitute,
            assessments,
        };
        write_json(&dir.join("summary.json"), &report, req.encrypt_to.as_ref())?;
        write_opaque_list(
            &dir.join("opaque_files.csv"),
            &report,
            req.encrypt_to.as_ref(),
        )?;
        orgs_out.push(report);
    }

    let opaque_total = orgs_out.iter().map(|o| o.opaque_files.len() as u64).sum();
    let report = ExposureReport {
        format_version: REPORT_FORMAT_VERSION,
        generated_at: OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        window: Window {
            from: req.from.format(&Rfc3339).unwrap_or_default(),
            to: req.to.format(&Rfc3339).unwrap_or_default(),
            from_unix: from,
            to_unix: to,
        },
        discovered: iso(req.discovered),
        basis: req.basis,
        scope: req.scope.to_string(),
        keys_exposed: req.keys_exposed,
        safe_harbor: SafeHarbor {
            all_files_encrypted_at_rest: true,
            explanation: match req.keys_exposed {
                KeysExposed::No => "Every file version is encrypted at rest and the operator states the key provider was not compromised: the PHI is secured (encryption safe harbor) and not reportable. Keep the evidence for that statement.".into(),
                KeysExposed::Yes => "Every file version is encrypted at rest, but the operator states the key provider was compromised too: the PHI is unsecured and reportable.".into(),
                KeysExposed::Unknown => "Every file version is encrypted at rest; whether the key provider was compromised is not established. Both views are reported: keys exposed (reportable) and keys not exposed (secured, not reportable).".into(),
            },
            views: req.keys_exposed.scenarios().to_vec(),
        },
        audit: audit_check,
        ba_deadline_days: req.ba_deadline_days,
        totals: Totals {
            organizations: orgs_out.len() as u64,
            files: files.len() as u64,
            files_opaque_or_unscanned: opaque_total,
            individuals: overall,
            individuals_unsecured: if req.keys_exposed == KeysExposed::No { 0 } else { overall },
            individuals_secured: if req.keys_exposed == KeysExposed::No { overall } else { 0 },
        },
        organizations: orgs_out,
        mailing_list: mailing_info,
        state_rules: obligations::rules_info(&rules),
        notes,
    };
    write_json(
        &req.out_dir.join("summary.json"),
        &report,
        req.encrypt_to.as_ref(),
    )?;
    package::write_file(
        &req.out_dir.join("report.html"),
        crate::html::render_html(&report).as_bytes(),
        req.encrypt_to.as_ref(),
    )?;
    Ok(report)
}

fn write_json<T: serde::Serialize>(path: &Path, v: &T, seal: package::Seal<'_>) -> Result<()> {
    let text = serde_json::to_vec_pretty(v)
        .map_err(|e| ExposureError::Invalid(format!("cannot serialize the report: {e}")))?;
    package::write_file(path, &text, seal)
}

fn write_opaque_list(path: &Path, org: &OrgReport, seal: package::Seal<'_>) -> Result<()> {
    let mut f = package::create_file(path, seal)?;
    f.csv_row(&[
        "file_id",
        "folder",
        "path",
        "status",
        "reason",
        "committed_at",
        "deleted_at",
    ])?;
    for e in org
        .files
        .iter()
        .filter(|e| org.opaque_files.contains(&e.file_id))
    {
        f.csv_row(&[
            e.file_id.to_string(),
            e.folder.clone(),
            e.path.clone(),
            e.inventory_status.clone(),
            e.inventory_reason.clone().unwrap_or_default(),
            e.committed_at.clone(),
            e.deleted_at.clone().unwrap_or_default(),
        ])?;
    }
    f.finish()
}
