//! What the inventory talks about: data elements, people as extracted from one record, and the result
//! of scanning one file.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A kind of personal data found for a person. The discriminants are stable: they are bit positions in
/// stored `ElementSet`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Element {
    Name = 0,
    Ssn = 1,
    Mbi = 2,
    Hicn = 3,
    MedicaidId = 4,
    MemberId = 5,
    Dob = 6,
    Street = 7,
    City = 8,
    State = 9,
    Zip = 10,
    Phone = 11,
    Email = 12,
    Diagnosis = 13,
    MedicalRecordNumber = 14,
    AccountNumber = 15,
    /// A date of death is recorded (834 INS12 and the like): the person is deceased.
    DeathDate = 16,
}

impl Element {
    pub const ALL: [Element; 17] = [
        Element::Name,
        Element::Ssn,
        Element::Mbi,
        Element::Hicn,
        Element::MedicaidId,
        Element::MemberId,
        Element::Dob,
        Element::Street,
        Element::City,
        Element::State,
        Element::Zip,
        Element::Phone,
        Element::Email,
        Element::Diagnosis,
        Element::MedicalRecordNumber,
        Element::AccountNumber,
        Element::DeathDate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Element::Name => "name",
            Element::Ssn => "ssn",
            Element::Mbi => "mbi",
            Element::Hicn => "hicn",
            Element::MedicaidId => "medicaid_id",
            Element::MemberId => "member_id",
            Element::Dob => "dob",
            Element::Street => "street",
            Element::City => "city",
            Element::State => "state",
            Element::Zip => "zip",
            Element::Phone => "phone",
            Element::Email => "email",
            Element::Diagnosis => "diagnosis",
            Element::MedicalRecordNumber => "medical_record_number",
            Element::AccountNumber => "account_number",
            Element::DeathDate => "death_date",
        }
    }

    pub fn parse(s: &str) -> Option<Element> {
        Element::ALL.iter().copied().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of elements as a bitmask (bit = `Element as u32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub struct ElementSet(pub u32);

impl ElementSet {
    pub fn insert(&mut self, e: Element) {
        self.0 |= 1 << (e as u32);
    }
    pub fn contains(self, e: Element) -> bool {
        self.0 & (1 << (e as u32)) != 0
    }
    pub fn union(self, other: ElementSet) -> ElementSet {
        ElementSet(self.0 | other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Element> {
        Element::ALL.into_iter().filter(move |e| self.contains(*e))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    pub last: String,
    pub first: String,
    pub middle: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Street lines (one or two).
    pub street: Vec<String>,
    pub city: String,
    /// USPS two-letter code, uppercase, validated.
    pub state: String,
    /// 5 digits, or 9 for ZIP+4 (no hyphen).
    pub zip: String,
}

/// One person as found in one record of one file, in plaintext. Only validated values are set: an
/// SSN here passed the SSN rules, a date of birth is a real past date, a phone is a valid NANP number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: Option<Name>,
    /// 9 digits, no dashes.
    pub ssn: Option<String>,
    /// 11 characters, uppercase, no dashes.
    pub mbi: Option<String>,
    pub hicn: Option<String>,
    pub medicaid_id: Option<String>,
    /// The person's own member/subscriber id (a dependent's copy of the subscriber id is not theirs).
    pub member_id: Option<String>,
    pub medical_record_number: Option<String>,
    pub account_number: Option<String>,
    /// (year, month, day).
    pub dob: Option<(u16, u8, u8)>,
    pub death_date: Option<(u16, u8, u8)>,
    /// Residence address (the state of residence comes from here).
    pub address: Option<Address>,
    /// Where mail goes when it differs from the residence (834 loop 2100C).
    pub mailing_address: Option<Address>,
    /// 10 digits.
    pub phones: Vec<String>,
    /// Lowercased.
    pub emails: Vec<String>,
    /// ICD-10-CM (or ICD-9) codes without the dot, uppercase.
    pub diagnoses: Vec<String>,
}

impl Person {
    /// The elements this record holds for the person.
    pub fn elements(&self) -> ElementSet {
        let mut s = ElementSet::default();
        let mut put = |cond: bool, e: Element| {
            if cond {
                s.insert(e)
            }
        };
        put(self.name.is_some(), Element::Name);
        put(self.ssn.is_some(), Element::Ssn);
        put(self.mbi.is_some(), Element::Mbi);
        put(self.hicn.is_some(), Element::Hicn);
        put(self.medicaid_id.is_some(), Element::MedicaidId);
        put(self.member_id.is_some(), Element::MemberId);
        put(
            self.medical_record_number.is_some(),
            Element::MedicalRecordNumber,
        );
        put(self.account_number.is_some(), Element::AccountNumber);
        put(self.dob.is_some(), Element::Dob);
        put(self.death_date.is_some(), Element::DeathDate);
        let addrs = [self.address.as_ref(), self.mailing_address.as_ref()];
        put(
            addrs.iter().flatten().any(|a| !a.street.is_empty()),
            Element::Street,
        );
        put(
            addrs.iter().flatten().any(|a| !a.city.is_empty()),
            Element::City,
        );
        put(
            addrs.iter().flatten().any(|a| !a.state.is_empty()),
            Element::State,
        );
        put(
            addrs.iter().flatten().any(|a| !a.zip.is_empty()),
            Element::Zip,
        );
        put(!self.phones.is_empty(), Element::Phone);
        put(!self.emails.is_empty(), Element::Email);
        put(!self.diagnoses.is_empty(), Element::Diagnosis);
        s
    }

    /// True if this record identifies someone (a name, or any identifier); a bare address or phone
    /// number without anyone attached is not a person.
    pub fn is_identifiable(&self) -> bool {
        self.name.is_some()
            || self.ssn.is_some()
            || self.mbi.is_some()
            || self.hicn.is_some()
            || self.medicaid_id.is_some()
            || self.member_id.is_some()
            || self.medical_record_number.is_some()
    }

    /// Two-letter state of residence (residence address first, then mailing).
    pub fn state(&self) -> Option<&str> {
        [self.address.as_ref(), self.mailing_address.as_ref()]
            .into_iter()
            .flatten()
            .map(|a| a.state.as_str())
            .find(|s| s.len() == 2)
    }
}

/// What kind of file it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    X12_834,
    X12_837,
    /// X12 of another transaction set (270/271, 835, ...): scanned for NM1/DMG/N3/N4 generically.
    X12Other,
    Hl7v2,
    Csv,
    Tsv,
    Json,
    Ndjson,
    Gzip,
    Zip,
    /// Plain text without a recognized structure.
    Text,
    /// PGP/age/encrypted or unknown binary.
    Binary,
    Empty,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::X12_834 => "x12-834",
            Format::X12_837 => "x12-837",
            Format::X12Other => "x12",
            Format::Hl7v2 => "hl7v2",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Gzip => "gzip",
            Format::Zip => "zip",
            Format::Text => "text",
            Format::Binary => "binary",
            Format::Empty => "empty",
        }
    }
}

/// How far the scan got. Opaque means "could not look inside": the exposure report treats such a file
/// as possibly holding PHI, never as clean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum ScanStatus {
    Complete,
    Partial(String),
    Opaque(String),
}

impl ScanStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ScanStatus::Complete => "complete",
            ScanStatus::Partial(_) => "partial",
            ScanStatus::Opaque(_) => "opaque",
        }
    }
    pub fn reason(&self) -> Option<&str> {
        match self {
            ScanStatus::Complete => None,
            ScanStatus::Partial(r) | ScanStatus::Opaque(r) => Some(r),
        }
    }
}

/// The outcome of scanning one file (people were handed to the caller's callback as found).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanResult {
    pub format: Format,
    /// Formats found inside containers (gzip/zip), in order.
    pub inner_formats: Vec<Format>,
    pub status: ScanStatus,
    /// Records seen (members, claims, messages, rows, objects).
    pub records: u64,
    /// People reported.
    pub persons: u64,
    /// How many people had each element.
    pub element_counts: BTreeMap<Element, u64>,
    pub bytes: u64,
}
