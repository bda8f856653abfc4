//! Seeded synthetic data for the PHI inventory: a population of invented people, files in every format
//! partners exchange (X12 834/837P, HL7 v2 ADT, CSV, TSV, NDJSON, JSON) that each hold a subset of them
//! (the same person in several files and organizations, sometimes without their SSN), decoys that must
//! never be taken for patient data (claim numbers, NPIs, service dates, ZIP+4, invalid SSNs ...), and the
//! ground truth: for each file, which people it holds and exactly which elements a correct parser finds.
//!
//! Everything is invented: SSNs follow the issuance rules but are random, phones are 555-01xx, emails
//! are at example.com/.org/.net, NPIs are random Luhn-valid numbers.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use lockbox_inventory::fingerprint::normalize_name;
use lockbox_inventory::{validate, Element, ElementSet, Format};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

mod hl7;
mod json;
mod tabular;
mod util;
mod x12;

pub use util::{fold_ascii, ymd};

/// What to generate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// Population size.
    pub people: usize,
    /// Files of each format.
    pub files_per_format: usize,
    /// Partner organizations (covered entities); each file belongs to one.
    pub orgs: usize,
    /// Formats to produce (X12_834, X12_837, Hl7v2, Csv, Tsv, Ndjson, Json).
    pub formats: Vec<Format>,
    /// Reference date for ages (minor = under 18 on this date). DOBs of minors are 1-16 years before it
    /// and adults at least 19, so the minor flag does not flip for a year or two after it.
    pub as_of: (u16, u8, u8),
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            people: 2000,
            files_per_format: 3,
            orgs: 4,
            formats: ALL_FORMATS.to_vec(),
            as_of: (2026, 1, 15),
        }
    }
}

/// Every format the generator writes.
pub const ALL_FORMATS: [Format; 7] = [
    Format::X12_834,
    Format::X12_837,
    Format::Hl7v2,
    Format::Csv,
    Format::Tsv,
    Format::Ndjson,
    Format::Json,
];

/// One invented person (the population's ground truth, also the input of exposure-report tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthPerson {
    /// Stable key: the index in `Corpus::population`.
    pub key: usize,
    pub household: usize,
    /// 834 relationship code: 18 self (subscriber), 01 spouse, 19 child.
    pub relationship: String,
    pub first: String,
    pub middle: String,
    pub last: String,
    /// "F" or "M".
    pub sex: String,
    pub dob: (u16, u8, u8),
    /// 9 digits, valid per the SSN rules; None for people without one.
    pub ssn: Option<String>,
    pub mbi: Option<String>,
    pub medicaid_id: Option<String>,
    /// The person's own member id (dependents have their own; 834 files carry only the subscriber's).
    pub member_id: String,
    pub mrn: String,
    /// Street lines (empty for the few without a street).
    pub street: Vec<String>,
    pub city: String,
    pub state: String,
    /// As written in files: 5 or 9 digits when valid, something invalid otherwise.
    pub zip: String,
    /// Street, city, USPS state and a valid ZIP (breach-notification "valid mailing address").
    pub address_valid: bool,
    /// 10 digits each.
    pub phones: Vec<String>,
    pub email: Option<String>,
    /// ICD-10-CM, uppercase, no dot.
    pub diagnoses: Vec<String>,
    pub death_date: Option<(u16, u8, u8)>,
    pub deceased: bool,
    pub minor: bool,
    /// Organizations with at least one file holding this person.
    pub orgs: Vec<String>,
}

/// A value that looks like an identifier but is not patient data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Decoy {
    /// claim_number, npi, service_date, zip4, invalid_ssn, group_number, ein, control_number, visit_number,
    /// provider_name.
    pub kind: String,
    /// Normalized: digits/letters without separators; dates as YYYYMMDD; provider names as LAST|FIRST
    /// (normalized like fingerprint::normalize_name).
    pub value: String,
}

/// One person present in a file and the elements a correct parser reports for them there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthPerson {
    pub key: usize,
    /// subscriber, dependent, patient, member, row ...
    pub role: String,
    pub elements: Vec<Element>,
}

impl TruthPerson {
    pub fn element_set(&self) -> ElementSet {
        let mut s = ElementSet::default();
        for e in &self.elements {
            s.insert(*e);
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTruth {
    /// Sorted by key; each person once.
    pub persons: Vec<TruthPerson>,
    /// Sorted, deduplicated.
    pub decoys: Vec<Decoy>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratedFile {
    /// File name (relative to the org directory).
    pub name: String,
    /// Organization id (directory name).
    pub org: String,
    pub format: Format,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub truth: FileTruth,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Corpus {
    pub seed: u64,
    pub files: Vec<GeneratedFile>,
    pub population: Vec<SynthPerson>,
}

/// Collects one file's ground truth while a writer emits it.
#[derive(Default)]
pub(crate) struct TruthBuilder {
    persons: BTreeMap<usize, (String, ElementSet)>,
    decoys: BTreeSet<Decoy>,
}

impl TruthBuilder {
    pub(crate) fn person(&mut self, key: usize, role: &str, els: ElementSet) {
        let e = self
            .persons
            .entry(key)
            .or_insert_with(|| (role.to_owned(), ElementSet::default()));
        e.1 = e.1.union(els);
    }
    pub(crate) fn decoy(&mut self, kind: &str, value: &str) {
        let v: String = if kind == "provider_name" {
            value.to_owned()
        } else {
            value
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_uppercase()
        };
        self.decoys.insert(Decoy {
            kind: kind.to_owned(),
            value: v,
        });
    }
    pub(crate) fn provider(&mut self, last: &str, first: &str) {
        self.decoy(
            "provider_name",
            &format!("{}|{}", normalize_name(last), normalize_name(first)),
        );
    }
    fn build(self) -> FileTruth {
        FileTruth {
            persons: self
                .persons
                .into_iter()
                .map(|(key, (role, els))| TruthPerson {
                    key,
                    role,
                    elements: els.iter().collect(),
                })
                .collect(),
            decoys: self.decoys.into_iter().collect(),
        }
    }
}

/// Shared state of one generation run.
pub(crate) struct Ctx<'a> {
    pub rng: StdRng,
    pub pop: &'a [SynthPerson],
    pub households: &'a [Vec<usize>],
    pub as_of: (u16, u8, u8),
    /// Values a decoy must never collide with (real SSNs).
    pub ssns: HashSet<String>,
}

impl Ctx<'_> {
    /// A 9-digit number that passes the SSN rules but is not anyone's SSN (claim numbers, EINs ...).
    pub(crate) fn ssn_like(&mut self) -> String {
        loop {
            let v = util::random_ssn(&mut self.rng);
            if !self.ssns.contains(&v) {
                return v;
            }
        }
    }
    /// A service / transaction date well after every DOB.
    pub(crate) fn service_date(&mut self) -> (u16, u8, u8) {
        let end = util::days_from_civil(self.as_of) - 5;
        let start = end - 340;
        validate::civil_from_days(self.rng.gen_range(start..end))
    }
    pub(crate) fn npi(&mut self) -> String {
        util::random_npi(&mut self.rng)
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }
}

/// Address elements a file holding this person's address shows (Street only with a street line, Zip only
/// when the ZIP is valid).
pub(crate) fn address_elements(p: &SynthPerson) -> ElementSet {
    let mut s = ElementSet::default();
    if !p.street.is_empty() {
        s.insert(Element::Street);
    }
    s.insert(Element::City);
    s.insert(Element::State);
    if validate::zip(&p.zip).is_some() {
        s.insert(Element::Zip);
    }
    s
}

pub(crate) fn set_of(els: &[Element]) -> ElementSet {
    let mut s = ElementSet::default();
    for e in els {
        s.insert(*e);
    }
    s
}

/// Generates the population and the files.
pub fn generate(seed: u64, spec: &Spec) -> Corpus {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut population, households) = util::population(&mut rng, spec.people, spec.as_of);
    let orgs: Vec<String> = (0..spec.orgs.max(1))
        .map(|i| {
            format!(
                "org{:02}-{}",
                i + 1,
                util::ORG_NAMES
                    .get(i % util::ORG_NAMES.len())
                    .copied()
                    .unwrap_or("partner")
            )
        })
        .collect();
    // Each household belongs to one to three organizations.
    let mut org_households: Vec<Vec<usize>> = vec![Vec::new(); orgs.len()];
    for h in 0..households.len() {
        let n = if rng.gen_bool(0.12) {
            3
        } else if rng.gen_bool(0.35) {
            2
        } else {
            1
        };
        let mut idx: Vec<usize> = (0..orgs.len()).collect();
        idx.shuffle(&mut rng);
        for o in idx.into_iter().take(n) {
            if let Some(v) = org_households.get_mut(o) {
                v.push(h);
            }
        }
    }
    let ssns: HashSet<String> = population.iter().filter_map(|p| p.ssn.clone()).collect();
    let mut ctx = Ctx {
        rng,
        pop: &population,
        households: &households,
        as_of: spec.as_of,
        ssns,
    };
    let mut files = Vec::new();
    let mut org_rr = 0usize;
    for &format in &spec.formats {
        for n in 0..spec.files_per_format {
            let o = org_rr % orgs.len();
            org_rr += 1;
            let org = orgs.get(o).cloned().unwrap_or_default();
            let pool = org_households.get(o).cloned().unwrap_or_default();
            // A fifth to a third of the organization's households.
            let mut hs = pool;
            hs.shuffle(&mut ctx.rng);
            let lo = (hs.len() / 5).max(1);
            let hi = (hs.len() / 3).max(lo + 1);
            let take = ctx.rng.gen_range(lo..=hi).min(hs.len());
            hs.truncate(take);
            let mut tb = TruthBuilder::default();
            let (name, bytes) = match format {
                Format::X12_834 => x12::write_834(&mut ctx, &hs, n, &mut tb),
                Format::X12_837 => x12::write_837(&mut ctx, &hs, n, &mut tb),
                Format::Hl7v2 => hl7::write_adt(&mut ctx, &hs, n, &mut tb),
                Format::Csv => tabular::write(&mut ctx, &hs, n, false, &mut tb),
                Format::Tsv => tabular::write(&mut ctx, &hs, n, true, &mut tb),
                Format::Ndjson => json::write(&mut ctx, &hs, n, true, &mut tb),
                Format::Json => json::write(&mut ctx, &hs, n, false, &mut tb),
                _ => continue,
            };
            files.push(GeneratedFile {
                name,
                org,
                format,
                bytes,
                truth: tb.build(),
            });
        }
    }
    for f in &files {
        for tp in &f.truth.persons {
            if let Some(p) = population.get_mut(tp.key) {
                if !p.orgs.contains(&f.org) {
                    p.orgs.push(f.org.clone());
                }
            }
        }
    }
    for p in &mut population {
        p.orgs.sort();
    }
    Corpus {
        seed,
        files,
        population,
    }
}

#[cfg(test)]
mod tests;
