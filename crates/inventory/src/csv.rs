//! CSV / TSV: an RFC 4180 streaming state machine (any chunking, quoted fields with delimiters, doubled
//! quotes and line breaks, CRLF/LF/CR, a UTF-8 BOM, lossy UTF-8), header → column roles decided from the
//! header text plus a bounded sample of values, then one person per data row.
//!
//! Also home of the key vocabulary shared with the JSON parser (`key_info`) and of the per-record person
//! builder (`Builder`) that applies the identifier validators.

use crate::model::{Address, Format, Name, Person, ScanStatus};
use crate::validate;
use crate::{ParseOutcome, RecordParser};

/// Longest field kept; a longer one makes its record skipped.
pub const MAX_FIELD: usize = 64 * 1024;
/// Longest record kept (sum of its fields).
pub const MAX_RECORD: usize = 1 << 20;
/// Most fields in one record.
pub const MAX_FIELDS: usize = 4096;
/// Data rows buffered before column roles are decided.
pub const SAMPLE_ROWS: usize = 50;
/// Bytes of sample rows buffered at most (roles are decided early when exceeded).
pub const SAMPLE_BYTES: usize = 4 << 20;

// ---------------------------------------------------------------------------------------------------
// Key vocabulary (shared with json.rs)
// ---------------------------------------------------------------------------------------------------

/// What a column / JSON key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Ssn,
    First,
    Last,
    Middle,
    /// "LAST, FIRST M" or "First M Last".
    FullName,
    Dob,
    DeathDate,
    Street,
    /// Second street line.
    Street2,
    City,
    State,
    Zip,
    Phone,
    Email,
    /// MBI, else legacy HICN.
    Mbi,
    Medicaid,
    MemberId,
    Mrn,
    Account,
    Diagnosis,
    /// The key says it is something else (claim number, NPI, service date, group number, amounts, other
    /// parties): never personal, whatever the values look like.
    NotPersonal,
    Unknown,
}

/// A key's meaning plus modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyInfo {
    pub role: Role,
    /// Address part of a mailing address ("Mailing City").
    pub mailing: bool,
    /// Diagnosis codes are ICD-9.
    pub icd9: bool,
    /// The generic key "name" (weak evidence of a person in JSON).
    pub weak: bool,
}

impl KeyInfo {
    pub(crate) const fn of(role: Role) -> KeyInfo {
        KeyInfo {
            role,
            mailing: false,
            icd9: false,
            weak: false,
        }
    }
}

/// Lowercase ASCII alphanumerics only: "Member SSN", "member_ssn" and "memberSsn" all become "memberssn".
pub(crate) fn normalize(h: &str) -> String {
    h.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

pub(crate) fn key_info(raw: &str) -> KeyInfo {
    let n = normalize(raw);
    let role = role_of_norm(&n);
    KeyInfo {
        role,
        mailing: n.contains("mail") && !n.contains("email"),
        icd9: n.contains("icd9"),
        weak: n == "name",
    }
}

/// Prefixes that name the record's own person ("Member SSN", "Patient Last Name", "Home Phone").
/// Longer spellings first.
const PREFIXES: &[&str] = &[
    "policyholder",
    "beneficiary",
    "participant",
    "residential",
    "subscriber",
    "cardholder",
    "individual",
    "permanent",
    "residence",
    "secondary",
    "principal",
    "admitting",
    "recipient",
    "applicant",
    "enrollee",
    "customer",
    "personal",
    "consumer",
    "employee",
    "physical",
    "resident",
    "primary",
    "patient",
    "insured",
    "current",
    "contact",
    "mailing",
    "member",
    "client",
    "person",
    "legal",
    "other",
    "home",
    "bene",
    "mail",
    "cust",
    "mbr",
    "sbr",
    "pat",
    "emp",
    "sub",
    "pt",
    "ee",
];

/// Substrings of keys that are not the record's person's data. Checked only after the exact vocabulary
/// failed, so "patientaccountnumber" is an account number but "patientcontrolnumber" is not.
const DECOYS: &[&str] = &[
    "claim",
    "clm",
    "control",
    "ctrl",
    "npi",
    "provider",
    "service",
    "svc",
    "admission",
    "admit",
    "discharge",
    "group",
    "grp",
    "amount",
    "amt",
    "charge",
    "billed",
    "paid",
    "payer",
    "payor",
    "employer",
    "physician",
    "prescriber",
    "facility",
    "rendering",
    "referring",
    "attending",
    "invoice",
    "batch",
    "transaction",
    "check",
    "routing",
    "bank",
    "ndc",
    "cpt",
    "hcpcs",
    "procedure",
    "revenue",
    "taxid",
    "taxonomy",
    "license",
    "dea",
    "plan",
    "coverage",
    "effective",
    "termination",
    "termdate",
    "eligib",
    "created",
    "updated",
    "modified",
    "timestamp",
    "deductible",
    "copay",
    "coinsurance",
    "premium",
    "balance",
    "units",
    "quantity",
    "visit",
    "encounter",
    "appointment",
    "order",
    "lab",
    "specimen",
    "rx",
    "prescription",
    "insurer",
    "carrier",
    "vendor",
    "broker",
    "company",
    "clinic",
    "hospital",
    "pharmacy",
    "doctor",
    "nurse",
    "pcp",
    "emergency",
    "guarantor",
    "spouse",
    "parent",
    "guardian",
    "mother",
    "father",
    "kin",
    "relative",
    "caregiver",
    "dependent",
    "authorization",
    "auth",
    "referral",
    "reference",
    "trace",
    "file",
    "sequence",
    "icn",
    "dcn",
    "tcn",
    "dos",
    "fromdate",
    "todate",
    "thru",
    "tin",
    "ein",
    "practitioner",
    "agent",
    "sponsor",
    "submitter",
    "receiver",
    "sender",
    "organization",
    "location",
    "department",
    "status",
];

fn exact_role(n: &str) -> Option<Role> {
    use Role::*;
    Some(match n {
        "ssn"
        | "socialsecuritynumber"
        | "socialsecurity"
        | "socsecnumber"
        | "socsec"
        | "ssnumber"
        | "ssnnumber"
        | "socialsecnumber"
        | "ssnid"
        | "socialsecuritynbr"
        | "social" => Ssn,
        "tin" | "taxid" | "taxidnumber" | "ein" | "fein" | "tinnumber" | "taxpayerid" | "npi"
        | "npinumber" => NotPersonal,
        "firstname" | "fname" | "givenname" | "first" | "firstnm" | "forename" | "given"
        | "namefirst" | "nmfirst" => First,
        "lastname" | "lname" | "surname" | "familyname" | "last" | "lastnm" | "family"
        | "namelast" | "nmlast" => Last,
        "middlename" | "middle" | "mname" | "middleinitial" | "mi" | "middlenm" | "minitial"
        | "namemiddle" => Middle,
        "fullname" | "name" | "namefull" | "personname" | "legalname" => FullName,
        "dob" | "dateofbirth" | "birthdate" | "birthdt" | "bdate" | "birthday" | "dtofbirth"
        | "dobdate" | "datebirth" | "birth" | "dobdt" => Dob,
        "deathdate" | "dateofdeath" | "dod" | "deceaseddate" | "deathdt" | "dtofdeath"
        | "dateofdeathdod" => DeathDate,
        "address" | "addressline" | "addr" | "addrline" | "street" | "streetaddress"
        | "streetline" | "line" | "streetaddr" | "addressstreet" => Street,
        "apt" | "aptsuite" | "suite" | "unit" | "aptnumber" => Street2,
        "city" | "town" | "cityname" | "municipality" | "addresscity" => City,
        "state" | "st" | "statecode" | "stateprovince" | "province" | "stateabbr"
        | "stateabbreviation" | "addressstate" => State,
        "zip" | "zipcode" | "postalcode" | "postcode" | "postal" | "zipplus4" | "zippostalcode"
        | "zipcd" | "addresszip" => Zip,
        "phone" | "phonenumber" | "cell" | "cellphone" | "mobile" | "mobilephone" | "telephone"
        | "tel" | "telephonenumber" | "workphone" | "cellnumber" | "mobilenumber" | "telnumber"
        | "phonenum" => Phone,
        "email" | "emailaddress" | "emailaddr" => Email,
        "mbi"
        | "medicareid"
        | "medicarebeneficiaryid"
        | "medicarebeneficiaryidentifier"
        | "hicn"
        | "medicarenumber"
        | "hicnumber"
        | "hic"
        | "medicareidnumber"
        | "medicare"
        | "medicarebeneficiarynumber"
        | "mbinumber"
        | "hicnnumber" => Mbi,
        "medicaidid" | "medicaidnumber" | "medicaid" | "medicaididnumber" => Medicaid,
        "memberid"
        | "subscriberid"
        | "membernumber"
        | "subscribernumber"
        | "policynumber"
        | "policyid"
        | "insuredid"
        | "enrolleeid"
        | "mbrid"
        | "memberidentifier"
        | "subscriberidentifier"
        | "cardholderid"
        | "beneficiaryid"
        | "memberidnumber"
        | "subscriberidnumber"
        | "policy"
        | "uniquememberid" => MemberId,
        "mrn"
        | "medicalrecordnumber"
        | "medicalrecord"
        | "medicalrecordid"
        | "mrnumber"
        | "medrecnumber"
        | "chartnumber"
        | "mrnnumber" => Mrn,
        "account" | "accountnumber" | "acct" | "acctnumber" | "accountid" => Account,
        "dx" | "dxcode" | "diagnosis" | "diagnoses" | "diagnosiscode" | "icd" | "icd10"
        | "icd9" => Diagnosis,
        _ => return None,
    })
}

/// "memberno" → "membernumber", "acct_num" → "acctnumber".
fn canon_suffix(n: &str) -> Option<String> {
    for suf in ["nbr", "num", "no"] {
        if let Some(base) = n.strip_suffix(suf) {
            if base.len() >= 2 {
                return Some(format!("{base}number"));
            }
        }
    }
    if let Some(base) = n.strip_suffix("cd").filter(|b| b.len() >= 2) {
        return Some(format!("{base}code"));
    }
    n.strip_suffix("identifier")
        .filter(|b| !b.is_empty())
        .map(|b| format!("{b}id"))
}

fn lookup(n: &str) -> Option<Role> {
    if let Some(r) = exact_role(n) {
        return Some(r);
    }
    if let Some(r) = canon_suffix(n).as_deref().and_then(exact_role) {
        return Some(r);
    }
    // Trailing digits: "address1", "address2", "phone2", "zip5", "dx3".
    let base = n.trim_end_matches(|c: char| c.is_ascii_digit());
    if base.len() < n.len() && !base.is_empty() {
        let digits = n.get(base.len()..).unwrap_or("");
        if let Some(r) = exact_role(base) {
            return Some(if r == Role::Street && digits != "1" {
                Role::Street2
            } else {
                r
            });
        }
    }
    None
}

fn role_of_norm(n: &str) -> Role {
    use Role::*;
    if n.is_empty() {
        return Unknown;
    }
    if (n.contains("diag") || n.contains("icd"))
        && ![
            "date",
            "pointer",
            "provider",
            "npi",
            "version",
            "qualifier",
            "type",
        ]
        .iter()
        .any(|d| n.contains(d))
    {
        return Diagnosis;
    }
    let mut cur = n;
    for _ in 0..4 {
        if let Some(r) = lookup(cur) {
            return r;
        }
        match PREFIXES
            .iter()
            .find(|p| cur.len() > p.len() && cur.starts_with(*p))
        {
            Some(p) => cur = cur.get(p.len()..).unwrap_or(""),
            None => break,
        }
    }
    if n.contains("memberid") || n.contains("subscriberid") {
        return MemberId;
    }
    if DECOYS.iter().any(|d| n.contains(d)) {
        return NotPersonal;
    }
    let has = |s: &str| n.contains(s);
    if has("socialsecurity") || n.ends_with("ssn") || n.starts_with("ssn") {
        Ssn
    } else if has("birth") || n.starts_with("dob") {
        Dob
    } else if has("death") || has("deceased") {
        DeathDate
    } else if has("medicaid") {
        Medicaid
    } else if has("medicare") || has("mbi") || has("hicn") {
        Mbi
    } else if has("email") {
        Email
    } else if has("phone") || has("mobile") || has("cell") {
        Phone
    } else if has("zip") || has("postal") {
        Zip
    } else if has("firstname") || has("givenname") {
        First
    } else if has("lastname") || has("surname") || has("familyname") {
        Last
    } else if has("middlename") || has("middleinitial") {
        Middle
    } else if has("address") || has("street") {
        if n.ends_with('2') {
            Street2
        } else {
            Street
        }
    } else if has("city") {
        City
    } else if has("mrn") || has("medicalrecord") {
        Mrn
    } else if has("account") || has("acct") {
        Account
    } else {
        Unknown
    }
}

// ---------------------------------------------------------------------------------------------------
// Value checks and the person builder (shared with json.rs)
// ---------------------------------------------------------------------------------------------------

const NULL_WORDS: [&str; 13] = [
    "n/a",
    "na",
    "null",
    "none",
    "nil",
    "unknown",
    "unk",
    "-",
    "--",
    "?",
    "tbd",
    "redacted",
    "undefined",
];

/// A placeholder instead of a value (case-insensitive, ASCII).
fn null_word(v: &str) -> bool {
    v.len() <= 9 && NULL_WORDS.iter().any(|w| w.eq_ignore_ascii_case(v))
}

/// `name_ok` for ASCII text (most values): no char decoding.
fn ascii_name_ok(v: &[u8], max: usize, comma: bool) -> bool {
    v.len() <= max
        && v.iter().any(u8::is_ascii_alphabetic)
        && v.iter().all(|c| {
            c.is_ascii_alphabetic()
                || matches!(c, b' ' | b'\'' | b'-' | b'.')
                || (comma && *c == b',')
        })
}

/// A name part: letters (any script), spaces, apostrophes, hyphens, periods; no digits.
pub(crate) fn name_ok(v: &str) -> bool {
    if v.is_ascii() {
        return ascii_name_ok(v.as_bytes(), 60, false) && !null_word(v);
    }
    v.chars().count() <= 60
        && v.chars().any(char::is_alphabetic)
        && v.chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '\'' | '\u{2019}' | '-' | '.'))
        && !null_word(v)
}

/// A whole name ("SAMPLE, JANE Q", "Jane Q. Sample").
pub(crate) fn full_name_ok(v: &str) -> bool {
    v.chars().count() <= 120
        && v.chars().any(char::is_alphabetic)
        && v.chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '\'' | '\u{2019}' | '-' | '.' | ','))
        && v.matches(',').count() <= 1
        && !null_word(v)
}

/// A member id, MRN, account number, Medicaid id: 3-40 letters/digits/dashes, at least one digit.
pub(crate) fn id_ok(v: &str) -> bool {
    (3..=40).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes().any(|b| b.is_ascii_alphanumeric() && b != b'0')
}

fn street_ok(v: &str) -> bool {
    v.chars().count() <= 200
        && v.chars().any(char::is_alphanumeric)
        && !null_word(v)
        && !v.contains('@')
}

fn city_ok(v: &str) -> bool {
    if v.is_ascii() {
        return ascii_name_ok(v.as_bytes(), 64, false) && !null_word(v);
    }
    v.chars().count() <= 64
        && v.chars().any(char::is_alphabetic)
        && v.chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '\'' | '\u{2019}' | '-' | '.'))
        && !null_word(v)
}

/// Does a free-text value plausibly hold the role (used to trust or distrust a column from its sample)?
fn plausible(role: Role, v: &str) -> bool {
    match role {
        Role::First | Role::Last | Role::Middle => name_ok(v),
        Role::FullName => full_name_ok(v),
        Role::Street | Role::Street2 => street_ok(v),
        Role::City => city_ok(v),
        Role::MemberId | Role::Mrn | Role::Account | Role::Medicaid => id_ok(v),
        _ => true,
    }
}

const NAME_SUFFIXES: &[&str] = &["jr", "sr", "ii", "iii", "iv", "md", "phd"];

/// "LAST, FIRST M" or "First M Last" → Name.
pub(crate) fn split_full_name(v: &str) -> Option<Name> {
    let v = v.trim();
    if let Some((last, rest)) = v.split_once(',') {
        let mut toks: Vec<&str> = rest.split_whitespace().collect();
        if toks.last().is_some_and(|t| {
            NAME_SUFFIXES.contains(&t.trim_end_matches('.').to_ascii_lowercase().as_str())
        }) {
            toks.pop();
        }
        let first = toks.first().copied().unwrap_or("").to_owned();
        let middle = toks.get(1..).map(|m| m.join(" ")).unwrap_or_default();
        let last = last.trim().to_owned();
        return (!last.is_empty() || !first.is_empty()).then_some(Name {
            last,
            first,
            middle,
        });
    }
    let mut toks: Vec<&str> = v.split_whitespace().collect();
    if toks.len() > 1
        && toks.last().is_some_and(|t| {
            NAME_SUFFIXES.contains(&t.trim_end_matches('.').to_ascii_lowercase().as_str())
        })
    {
        toks.pop();
    }
    match toks.as_slice() {
        [] => None,
        [one] => Some(Name {
            last: (*one).to_owned(),
            ..Name::default()
        }),
        [first, mid @ .., last] => Some(Name {
            last: (*last).to_owned(),
            first: (*first).to_owned(),
            middle: mid.join(" "),
        }),
    }
}

const MAX_LIST: usize = 16;
const MAX_DX: usize = 64;

/// Collects one record's values for one person, keeping only values that pass the validators.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    p: Person,
    first: String,
    last: String,
    middle: String,
    full: String,
    /// The name came from an explicit key (first/last name, "member name"), not a generic "name".
    strong_name: bool,
    addr: Address,
    mail: Address,
    /// Second street lines (residence, mailing), placed after the first line at the end.
    street2: [String; 2],
}

impl Builder {
    pub(crate) fn apply(&mut self, k: KeyInfo, raw: &str, today: (u16, u8, u8)) {
        let v = raw.trim();
        if v.is_empty() || v.len() > 4096 {
            return;
        }
        let p = &mut self.p;
        match k.role {
            Role::Ssn => {
                if p.ssn.is_none() {
                    p.ssn = validate::ssn(v);
                }
            }
            Role::First => {
                if name_ok(v) {
                    if self.first.is_empty() {
                        self.first = v.to_owned();
                        self.strong_name = true;
                    } else if self.middle.is_empty() {
                        // A second given name (FHIR "given": ["Jane", "Q"]).
                        self.middle = v.to_owned();
                    }
                }
            }
            Role::Last => {
                if name_ok(v) && self.last.is_empty() {
                    self.last = v.to_owned();
                    self.strong_name = true;
                }
            }
            Role::Middle => {
                if name_ok(v) && self.middle.is_empty() {
                    self.middle = v.to_owned();
                }
            }
            Role::FullName => {
                if full_name_ok(v) && self.full.is_empty() {
                    self.full = v.to_owned();
                    if !k.weak {
                        self.strong_name = true;
                    }
                }
            }
            Role::Dob => {
                if p.dob.is_none() {
                    p.dob = validate::dob(v, today);
                }
            }
            Role::DeathDate => {
                if p.death_date.is_none() {
                    p.death_date = validate::date(v).filter(|d| *d <= today);
                }
            }
            Role::Street => {
                let a = if k.mailing {
                    &mut self.mail
                } else {
                    &mut self.addr
                };
                if street_ok(v) && a.street.len() < 2 && !a.street.iter().any(|s| s == v) {
                    a.street.push(v.to_owned());
                }
            }
            Role::Street2 => {
                if let Some(slot) = self.street2.get_mut(usize::from(k.mailing)) {
                    if street_ok(v) && slot.is_empty() {
                        *slot = v.to_owned();
                    }
                }
            }
            Role::City => {
                let a = if k.mailing {
                    &mut self.mail
                } else {
                    &mut self.addr
                };
                if a.city.is_empty() && city_ok(v) {
                    a.city = v.to_owned();
                }
            }
            Role::State => {
                let a = if k.mailing {
                    &mut self.mail
                } else {
                    &mut self.addr
                };
                if a.state.is_empty() {
                    a.state = validate::state(v).unwrap_or_default();
                }
            }
            Role::Zip => {
                let a = if k.mailing {
                    &mut self.mail
                } else {
                    &mut self.addr
                };
                if a.zip.is_empty() {
                    a.zip = validate::zip(v).unwrap_or_default();
                }
            }
            Role::Phone => {
                if let Some(ph) = validate::phone(v) {
                    if p.phones.len() < MAX_LIST && !p.phones.contains(&ph) {
                        p.phones.push(ph);
                    }
                }
            }
            Role::Email => {
                if let Some(e) = validate::email(v) {
                    if p.emails.len() < MAX_LIST && !p.emails.contains(&e) {
                        p.emails.push(e);
                    }
                }
            }
            Role::Mbi => {
                if let Some(m) = validate::mbi(v) {
                    p.mbi.get_or_insert(m);
                } else if let Some(h) = validate::hicn(v) {
                    p.hicn.get_or_insert(h);
                }
            }
            Role::Medicaid => {
                if p.medicaid_id.is_none() && id_ok(v) {
                    p.medicaid_id = Some(v.to_owned());
                }
            }
            Role::MemberId => {
                if p.member_id.is_none() && id_ok(v) {
                    p.member_id = Some(v.to_owned());
                }
            }
            Role::Mrn => {
                if p.medical_record_number.is_none() && id_ok(v) {
                    p.medical_record_number = Some(v.to_owned());
                }
            }
            Role::Account => {
                if p.account_number.is_none() && id_ok(v) {
                    p.account_number = Some(v.to_owned());
                }
            }
            Role::Diagnosis => {
                for code in v
                    .split([';', ',', '|', ' ', '^', '~', '\t'])
                    .filter(|c| !c.is_empty())
                {
                    if let Some(d) = validate::diagnosis(code, k.icd9) {
                        if p.diagnoses.len() < MAX_DX && !p.diagnoses.contains(&d) {
                            p.diagnoses.push(d);
                        }
                    }
                }
            }
            Role::NotPersonal | Role::Unknown => {}
        }
    }

    /// The only thing identifying this record is a name from a generic "name" key.
    pub(crate) fn weak_name_only(&self) -> bool {
        let p = &self.p;
        !self.strong_name
            && p.ssn.is_none()
            && p.mbi.is_none()
            && p.hicn.is_none()
            && p.medicaid_id.is_none()
            && p.member_id.is_none()
            && p.medical_record_number.is_none()
            && p.account_number.is_none()
            && p.dob.is_none()
            && p.phones.is_empty()
            && p.emails.is_empty()
            && self.addr.street.is_empty()
            && self.street2.iter().all(String::is_empty)
    }

    pub(crate) fn finish(self) -> Person {
        let Builder {
            mut p,
            first,
            last,
            middle,
            full,
            mut addr,
            mut mail,
            street2,
            ..
        } = self;
        for (a, line2) in [&mut addr, &mut mail].into_iter().zip(street2) {
            if !line2.is_empty() && a.street.len() < 2 && !a.street.contains(&line2) {
                a.street.push(line2);
            }
        }
        if !first.is_empty() || !last.is_empty() {
            p.name = Some(Name {
                last,
                first,
                middle,
            });
        } else if !full.is_empty() {
            p.name = split_full_name(&full).map(|mut n| {
                if n.middle.is_empty() {
                    n.middle = middle;
                }
                n
            });
        }
        let has = |a: &Address| {
            !a.street.is_empty() || !a.city.is_empty() || !a.state.is_empty() || !a.zip.is_empty()
        };
        if has(&addr) {
            p.address = Some(addr);
        }
        if has(&mail) {
            p.mailing_address = Some(mail);
        }
        p
    }
}

// ---------------------------------------------------------------------------------------------------
// Delimiter sniffing
// ---------------------------------------------------------------------------------------------------

/// Guesses the delimiter of a delimited text file from its first bytes (a few KiB are plenty): among
/// `,` `\t` `;` `|`, the one that occurs (outside quotes) the same number of times on every complete line,
/// most often. `None` if none occurs on the first line. Call it after ruling out X12/HL7/JSON.
pub fn sniff_delimiter(sample: &[u8]) -> Option<u8> {
    const CANDIDATES: [u8; 4] = [b'\t', b',', b';', b'|'];
    let sample = sample.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(sample);
    let mut lines: Vec<[u32; 4]> = Vec::new();
    let mut cur = [0u32; 4];
    let mut in_q = false;
    let mut complete = false;
    let mut i = 0;
    while i < sample.len() && lines.len() < 20 {
        let b = sample.get(i).copied().unwrap_or(0);
        if b == b'"' {
            in_q = !in_q;
        } else if !in_q && (b == b'\n' || b == b'\r') {
            if b == b'\r' && sample.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            lines.push(cur);
            cur = [0; 4];
            complete = true;
        } else if !in_q {
            if let Some(k) = CANDIDATES.iter().position(|c| *c == b) {
                if let Some(slot) = cur.get_mut(k) {
                    *slot += 1;
                }
            }
        }
        i += 1;
    }
    if !complete {
        lines.push(cur);
    }
    let first = *lines.first()?;
    let mut best: Option<(bool, u32, u8)> = None;
    for (k, c) in CANDIDATES.iter().enumerate() {
        let n0 = first.get(k).copied().unwrap_or(0);
        if n0 == 0 {
            continue;
        }
        let consistent = lines.iter().all(|l| l.get(k).copied().unwrap_or(0) == n0);
        let key = (consistent, n0, *c);
        if best.is_none_or(|b| (key.0, key.1) > (b.0, b.1)) {
            best = Some(key);
        }
    }
    best.map(|b| b.2)
}

// ---------------------------------------------------------------------------------------------------
// The streaming parser
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: either a doubled quote or the end of the field.
    QuoteInQuoted,
    /// After a CR that ended a record: a following LF belongs to it.
    AfterCr,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the first record (header or data).
    First,
    /// Buffering up to `SAMPLE_ROWS` data rows.
    Sampling,
    /// Roles decided: rows become people as they arrive.
    Streaming,
}

/// Streaming CSV/TSV parser. One person per data row.
pub struct CsvParser {
    delim: u8,
    today: (u16, u8, u8),
    lex: Lex,
    bom_pending: Vec<u8>,
    bom_done: bool,
    /// The current record's kept fields, back to back (the current field starts at `field_start`).
    /// Reused from record to record: no allocation per field or per row.
    buf: Vec<u8>,
    /// End offset in `buf` of each kept field of the current record.
    ends: Vec<usize>,
    field_start: usize,
    field_quoted: bool,
    record_bytes: usize,
    oversize: bool,
    phase: Phase,
    header: Option<Vec<KeyInfo>>,
    sample: Vec<Vec<String>>,
    sample_bytes: usize,
    plan: Vec<Option<KeyInfo>>,
    no_header: bool,
    records: u64,
    skipped: u64,
    unterminated: bool,
}

impl CsvParser {
    /// `delimiter`: b',' for CSV, b'\t' for TSV (b';' and b'|' also work), e.g. from `sniff_delimiter`.
    pub fn new(delimiter: u8, today: (u16, u8, u8)) -> Self {
        // A delimiter that collides with the quoting or line structure would make the state machine
        // ambiguous; fall back to a comma.
        let delim = if matches!(delimiter, b'"' | b'\r' | b'\n') {
            b','
        } else {
            delimiter
        };
        CsvParser {
            delim,
            today,
            lex: Lex::FieldStart,
            bom_pending: Vec::new(),
            bom_done: false,
            buf: Vec::new(),
            ends: Vec::new(),
            field_start: 0,
            field_quoted: false,
            record_bytes: 0,
            oversize: false,
            phase: Phase::First,
            header: None,
            sample: Vec::new(),
            sample_bytes: 0,
            plan: Vec::new(),
            no_header: false,
            records: 0,
            skipped: 0,
            unterminated: false,
        }
    }

    fn push_byte(&mut self, b: u8) {
        self.push_run(&[b]);
    }

    /// Appends bytes to the current field (at most `MAX_FIELD` of them; more makes the record oversize).
    /// Nothing is kept once the record is oversize: it is skipped anyway.
    fn push_run(&mut self, run: &[u8]) {
        if self.oversize {
            return;
        }
        let room = MAX_FIELD.saturating_sub(self.buf.len() - self.field_start);
        if run.len() > room {
            self.buf
                .extend_from_slice(run.get(..room).unwrap_or_default());
            self.oversize = true;
        } else {
            self.buf.extend_from_slice(run);
        }
    }

    fn end_field(&mut self) {
        if self.ends.len() >= MAX_FIELDS {
            self.oversize = true;
        }
        self.record_bytes += self.buf.len() - self.field_start + 1;
        if self.record_bytes > MAX_RECORD {
            self.oversize = true;
        }
        if self.oversize {
            self.buf.truncate(self.field_start);
        } else {
            self.ends.push(self.buf.len());
            self.field_start = self.buf.len();
        }
    }

    /// Field `i` of the current record (raw bytes; empty when absent).
    fn field(&self, i: usize) -> &[u8] {
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).copied().unwrap_or(usize::MAX),
            None => 0,
        };
        let end = self.ends.get(i).copied().unwrap_or(0);
        self.buf.get(start..end).unwrap_or_default()
    }

    fn end_record(&mut self, out: &mut dyn FnMut(Person)) {
        let blank = !self.oversize
            && self.ends.len() == 1
            && self.ends.first() == Some(&0)
            && !self.field_quoted;
        let oversize = self.oversize;
        self.record_bytes = 0;
        self.oversize = false;
        self.field_quoted = false;
        if !blank && !oversize {
            if matches!(self.phase, Phase::Streaming) {
                // The common case: straight from the record buffer to a person.
                self.records += 1;
                let n = self.ends.len();
                self.emit_with(n, |c| self.field(c), out);
            } else {
                let rec: Vec<String> = (0..self.ends.len())
                    .map(|c| String::from_utf8_lossy(self.field(c)).into_owned())
                    .collect();
                self.handle_record(rec, out);
            }
        }
        self.buf.clear();
        self.ends.clear();
        self.field_start = 0;
        if blank {
            return;
        }
        if oversize {
            self.skipped += 1;
            if !matches!(self.phase, Phase::First) {
                self.records += 1;
            }
        }
    }

    fn step(&mut self, b: u8, out: &mut dyn FnMut(Person)) {
        let d = self.delim;
        match self.lex {
            Lex::AfterCr => {
                self.lex = Lex::FieldStart;
                if b != b'\n' {
                    self.step(b, out);
                }
            }
            Lex::FieldStart | Lex::Unquoted => {
                if b == d {
                    self.end_field();
                    self.lex = Lex::FieldStart;
                } else if b == b'\n' || b == b'\r' {
                    self.end_field();
                    self.end_record(out);
                    self.lex = if b == b'\r' {
                        Lex::AfterCr
                    } else {
                        Lex::FieldStart
                    };
                } else if b == b'"' && self.lex == Lex::FieldStart {
                    self.lex = Lex::Quoted;
                    self.field_quoted = true;
                } else {
                    self.push_byte(b);
                    self.lex = Lex::Unquoted;
                }
            }
            Lex::Quoted => {
                if b == b'"' {
                    self.lex = Lex::QuoteInQuoted;
                } else {
                    self.push_byte(b);
                }
            }
            Lex::QuoteInQuoted => {
                if b == b'"' {
                    self.push_byte(b'"');
                    self.lex = Lex::Quoted;
                } else if b == d {
                    self.end_field();
                    self.lex = Lex::FieldStart;
                } else if b == b'\n' || b == b'\r' {
                    self.end_field();
                    self.end_record(out);
                    self.lex = if b == b'\r' {
                        Lex::AfterCr
                    } else {
                        Lex::FieldStart
                    };
                } else {
                    // `"abc"def`: not RFC 4180; keep the text as is.
                    self.push_byte(b);
                    self.lex = Lex::Unquoted;
                }
            }
        }
    }

    fn handle_record(&mut self, rec: Vec<String>, out: &mut dyn FnMut(Person)) {
        match self.phase {
            Phase::First => {
                self.phase = Phase::Sampling;
                if is_header_row(&rec) {
                    self.header = Some(rec.iter().map(|h| key_info(h)).collect());
                } else {
                    self.no_header = true;
                    self.push_sample(rec, out);
                }
            }
            Phase::Sampling => self.push_sample(rec, out),
            Phase::Streaming => {
                self.records += 1;
                self.emit(&rec, out);
            }
        }
    }

    fn push_sample(&mut self, rec: Vec<String>, out: &mut dyn FnMut(Person)) {
        self.records += 1;
        self.sample_bytes += rec.iter().map(|f| f.len() + 1).sum::<usize>();
        self.sample.push(rec);
        if self.sample.len() >= SAMPLE_ROWS || self.sample_bytes > SAMPLE_BYTES {
            self.decide(out);
        }
    }

    /// Decides column roles from the header and the buffered sample, then replays the sample.
    fn decide(&mut self, out: &mut dyn FnMut(Person)) {
        let ncols = match &self.header {
            Some(h) => h.len(),
            None => self.sample.iter().map(Vec::len).max().unwrap_or(0),
        }
        .min(MAX_FIELDS);
        let mut plan = Vec::with_capacity(ncols);
        for c in 0..ncols {
            let vals: Vec<&str> = self
                .sample
                .iter()
                .filter_map(|r| r.get(c))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty() && !null_word(v))
                .collect();
            let ki = self
                .header
                .as_ref()
                .and_then(|h| h.get(c).copied())
                .unwrap_or(KeyInfo::of(Role::Unknown));
            let decided = match ki.role {
                Role::NotPersonal => None,
                Role::Unknown => infer_strict(&vals).map(KeyInfo::of),
                r => {
                    let ok = vals.iter().filter(|v| plausible(r, v)).count();
                    // A free-text column whose values mostly do not look like its header is not trusted.
                    // (Identifier columns are validated value by value anyway.)
                    (vals.is_empty() || ok * 2 >= vals.len()).then_some(ki)
                }
            };
            plan.push(decided);
        }
        self.plan = plan;
        self.phase = Phase::Streaming;
        let sample = std::mem::take(&mut self.sample);
        self.sample_bytes = 0;
        for row in &sample {
            self.emit(row, out);
        }
    }

    fn emit(&self, row: &[String], out: &mut dyn FnMut(Person)) {
        self.emit_with(
            row.len(),
            |c| row.get(c).map_or(&[][..], |v| v.as_bytes()),
            out,
        );
    }

    /// One person from a row of `n` fields; only the columns the plan uses are looked at.
    fn emit_with<'r>(
        &self,
        n: usize,
        field: impl Fn(usize) -> &'r [u8],
        out: &mut dyn FnMut(Person),
    ) {
        let mut b = Builder::default();
        let mut any = false;
        for (c, k) in self.plan.iter().enumerate().take(n) {
            if let Some(k) = k {
                let raw = field(c);
                // Valid UTF-8 (nearly always) is borrowed; the lossy decoder is much slower.
                let v = match std::str::from_utf8(raw) {
                    Ok(v) => std::borrow::Cow::Borrowed(v),
                    Err(_) => String::from_utf8_lossy(raw),
                };
                b.apply(*k, &v, self.today);
                any = true;
            }
        }
        if !any {
            return;
        }
        let p = b.finish();
        if p.is_identifiable() {
            out(p);
        }
    }

    fn format(&self) -> Format {
        if self.delim == b'\t' {
            Format::Tsv
        } else {
            Format::Csv
        }
    }

    fn feed_bytes(&mut self, data: &[u8], out: &mut dyn FnMut(Person)) {
        // Runs of ordinary bytes are copied at once; only delimiters, line breaks and quotes go through
        // the state machine byte by byte.
        let d = self.delim;
        let mut rest = data;
        while let Some((&b, tail)) = rest.split_first() {
            match self.lex {
                Lex::Unquoted | Lex::FieldStart if !(b == b'"' && self.lex == Lex::FieldStart) => {
                    let run = memchr::memchr3(d, b'\n', b'\r', rest).unwrap_or(rest.len());
                    if run > 0 {
                        let (text, after) = rest.split_at(run);
                        self.push_run(text);
                        self.lex = Lex::Unquoted;
                        rest = after;
                    } else {
                        self.step(b, out);
                        rest = tail;
                    }
                }
                Lex::Quoted => {
                    let run = memchr::memchr(b'"', rest).unwrap_or(rest.len());
                    let (text, after) = rest.split_at(run);
                    self.push_run(text);
                    match after.split_first() {
                        Some((_, after)) => {
                            self.lex = Lex::QuoteInQuoted;
                            rest = after;
                        }
                        None => rest = after,
                    }
                }
                _ => {
                    self.step(b, out);
                    rest = tail;
                }
            }
        }
    }
}

/// The dashed SSN shape `AAA-GG-SSSS` (and valid).
fn dashed_ssn(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 11
        && b.iter().enumerate().all(|(i, c)| {
            if i == 3 || i == 6 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
        && validate::ssn(v).is_some()
}

/// Roles decided from values alone (no or meaningless header): only shapes that cannot be much else.
fn infer_strict(vals: &[&str]) -> Option<Role> {
    if vals.is_empty() {
        return None;
    }
    let frac =
        |f: &dyn Fn(&str) -> bool| vals.iter().filter(|v| f(v)).count() * 10 >= vals.len() * 9;
    if frac(&dashed_ssn) {
        Some(Role::Ssn)
    } else if frac(&|v| validate::email(v).is_some()) {
        Some(Role::Email)
    } else if frac(&|v| validate::mbi(v).is_some()) {
        Some(Role::Mbi)
    } else {
        None
    }
}

/// Does the first record look like column names rather than data?
fn is_header_row(rec: &[String]) -> bool {
    let data_like = |v: &str| {
        let v = v.trim();
        let digits = v.bytes().filter(u8::is_ascii_digit).count();
        validate::date(v).is_some()
            || dashed_ssn(v)
            || validate::email(v).is_some()
            || validate::mbi(v).is_some()
            || validate::phone(v).is_some()
            || digits >= 3
    };
    if rec.iter().any(|v| data_like(v)) {
        return false;
    }
    let known = rec.iter().any(|v| key_info(v).role != Role::Unknown);
    let label_like = |v: &str| {
        let v = v.trim();
        !v.is_empty() && v.len() <= 64 && v.chars().next().is_some_and(char::is_alphabetic)
    };
    let labels = rec.iter().filter(|v| label_like(v)).count();
    known || labels * 2 >= rec.len().max(1)
}

impl RecordParser for CsvParser {
    fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Person)) {
        if self.bom_done {
            self.feed_bytes(data, out);
            return;
        }
        // Hold back up to 3 bytes until we know whether the file starts with a UTF-8 BOM.
        let mut rest = data;
        while !self.bom_done {
            let Some((&b, tail)) = rest.split_first() else {
                return;
            };
            rest = tail;
            self.bom_pending.push(b);
            let bom = b"\xEF\xBB\xBF";
            if bom.starts_with(&self.bom_pending) {
                if self.bom_pending.len() == 3 {
                    self.bom_pending.clear();
                    self.bom_done = true;
                }
            } else {
                self.bom_done = true;
                let pending = std::mem::take(&mut self.bom_pending);
                self.feed_bytes(&pending, out);
            }
        }
        self.feed_bytes(rest, out);
    }

    fn finish(&mut self, out: &mut dyn FnMut(Person)) -> ParseOutcome {
        if !self.bom_done {
            self.bom_done = true;
            let pending = std::mem::take(&mut self.bom_pending);
            // A lone partial BOM is not text worth keeping.
            if !b"\xEF\xBB\xBF".starts_with(&pending) {
                self.feed_bytes(&pending, out);
            }
        }
        match self.lex {
            Lex::FieldStart if self.ends.is_empty() && self.buf.len() == self.field_start => {}
            Lex::AfterCr => {}
            lex => {
                if lex == Lex::Quoted {
                    self.unterminated = true;
                }
                self.end_field();
                self.end_record(out);
            }
        }
        self.lex = Lex::FieldStart;
        if matches!(self.phase, Phase::Sampling) {
            self.decide(out);
        }
        let mut reasons = Vec::new();
        if self.no_header {
            reasons.push("no header row; roles inferred from values".to_owned());
        }
        if self.skipped > 0 {
            reasons.push(format!(
                "{} record(s) skipped: over the field ({} KiB), record ({} KiB) or field-count ({}) limit",
                self.skipped,
                MAX_FIELD / 1024,
                MAX_RECORD / 1024,
                MAX_FIELDS
            ));
        }
        if self.unterminated {
            reasons.push("unterminated quoted field at end of file".to_owned());
        }
        let status = if reasons.is_empty() {
            ScanStatus::Complete
        } else {
            ScanStatus::Partial(reasons.join("; "))
        };
        ParseOutcome {
            format: self.format(),
            records: self.records,
            status,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const TODAY: (u16, u8, u8) = (2026, 11, 25);

    fn run_chunks(delim: u8, data: &[u8], chunk: usize) -> (Vec<Person>, ParseOutcome) {
        crate::test_support::run_chunks(CsvParser::new(delim, TODAY), data, chunk)
    }

    fn run(data: &str) -> (Vec<Person>, ParseOutcome) {
        run_chunks(b',', data.as_bytes(), 1 << 16)
    }

    #[test]
    fn header_synonyms() {
        let csv = "Member SSN,FNAME,Surname,Birth Date,Addr Line 1,Address Line 2,City,ST,Zip+4,Home Phone,E-mail,Medicare ID,Medicaid_Number,Subscriber ID,MRN,Acct #,DX1,dx2,Date of Death\n\
                   123-45-6789,Jane,Sample,05/15/1980,123 Main St,Apt 4,Springfield,il,62701-1234,(217) 555-0101,Jane.Sample@Example.com,1EG4-TE5-MK73,MCD123456,SUB1000001,MRN0012345,ACCT0001,E11.9,I10,\n";
        let (people, o) = run(csv);
        assert_eq!(o.status, ScanStatus::Complete);
        assert_eq!(o.records, 1);
        assert_eq!(o.format, Format::Csv);
        let p = &people[0];
        assert_eq!(p.ssn.as_deref(), Some("123456789"));
        let n = p.name.as_ref().unwrap();
        assert_eq!((n.first.as_str(), n.last.as_str()), ("Jane", "Sample"));
        assert_eq!(p.dob, Some((1980, 5, 15)));
        let a = p.address.as_ref().unwrap();
        assert_eq!(a.street, vec!["123 Main St".to_owned(), "Apt 4".to_owned()]);
        assert_eq!(
            (a.city.as_str(), a.state.as_str(), a.zip.as_str()),
            ("Springfield", "IL", "627011234")
        );
        assert_eq!(p.phones, vec!["2175550101".to_owned()]);
        assert_eq!(p.emails, vec!["jane.sample@example.com".to_owned()]);
        assert_eq!(p.mbi.as_deref(), Some("1EG4TE5MK73"));
        assert_eq!(p.medicaid_id.as_deref(), Some("MCD123456"));
        assert_eq!(p.member_id.as_deref(), Some("SUB1000001"));
        assert_eq!(p.medical_record_number.as_deref(), Some("MRN0012345"));
        assert_eq!(p.account_number.as_deref(), Some("ACCT0001"));
        assert_eq!(p.diagnoses, vec!["E119".to_owned(), "I10".to_owned()]);
        assert_eq!(p.death_date, None);
    }

    #[test]
    fn key_vocabulary() {
        let r = |h: &str| key_info(h).role;
        for h in [
            "SSN",
            "Social Security Number",
            "SUBSCRIBER_SSN",
            "ss_no",
            "memberSsn",
            "Patient SSN",
        ] {
            assert_eq!(r(h), Role::Ssn, "{h}");
        }
        for h in [
            "TIN",
            "Tax ID",
            "Claim Number",
            "CLM_CTRL_NO",
            "NPI",
            "Rendering Provider ID",
            "Service Date",
            "Admission Date",
            "Group Number",
            "Billed Amount",
            "Dependent SSN",
        ] {
            assert_eq!(r(h), Role::NotPersonal, "{h}");
        }
        for (h, want) in [
            ("first name", Role::First),
            ("given_name", Role::First),
            ("lname", Role::Last),
            ("Family Name", Role::Last),
            ("Patient Name", Role::FullName),
            ("member name", Role::FullName),
            ("Middle Initial", Role::Middle),
            ("DOB", Role::Dob),
            ("bdate", Role::Dob),
            ("dateOfBirth", Role::Dob),
            ("Address2", Role::Street2),
            ("street", Role::Street),
            ("zip code", Role::Zip),
            ("Postal Code", Role::Zip),
            ("zip5", Role::Zip),
            ("cell", Role::Phone),
            ("Mobile", Role::Phone),
            ("telephone", Role::Phone),
            ("HICN", Role::Mbi),
            ("Medicare Beneficiary ID", Role::Mbi),
            ("medicaidId", Role::Medicaid),
            ("policy number", Role::MemberId),
            ("memberid", Role::MemberId),
            ("Medical Record Number", Role::Mrn),
            ("acct", Role::Account),
            ("Patient Account Number", Role::Account),
            ("ICD10", Role::Diagnosis),
            ("dx12", Role::Diagnosis),
            ("Diagnosis Code", Role::Diagnosis),
            ("Principal Dx", Role::Diagnosis),
            ("DOD", Role::DeathDate),
            ("patient id", Role::Unknown),
            ("id", Role::Unknown),
        ] {
            assert_eq!(r(h), want, "{h}");
        }
        assert!(key_info("Mailing City").mailing);
        assert!(!key_info("email").mailing);
    }

    #[test]
    fn quoting_and_names() {
        let csv = "\u{feff}name,ssn,notes\r\n\
                   \"O'Brien-Smith, José M\",234-56-7890,\"says \"\"hi\"\", then, leaves\"\r\n\
                   \"Zoë D'Angelo\",345678901,\"line one\r\nline two, with comma\"\r\n\
                   \"Nguyen, Thị\",456-78-9012,plain\r\n";
        let (people, o) = run(csv);
        assert_eq!(o.records, 3, "{o:?}");
        assert_eq!(o.status, ScanStatus::Complete);
        assert_eq!(people.len(), 3);
        let n0 = people[0].name.as_ref().unwrap();
        assert_eq!(
            (n0.last.as_str(), n0.first.as_str(), n0.middle.as_str()),
            ("O'Brien-Smith", "José", "M")
        );
        let n1 = people[1].name.as_ref().unwrap();
        assert_eq!((n1.first.as_str(), n1.last.as_str()), ("Zoë", "D'Angelo"));
        assert_eq!(people[1].ssn.as_deref(), Some("345678901"));
        assert_eq!(people[2].name.as_ref().unwrap().first, "Thị");
    }

    #[test]
    fn street_lines_keep_their_order() {
        let csv = "Apt/Suite,last,ADDR_LINE_1,state_cd\nApt 4,Sample,123 Main St,IL\n";
        let (people, _) = run(csv);
        let a = people[0].address.as_ref().unwrap();
        assert_eq!(a.street, vec!["123 Main St".to_owned(), "Apt 4".to_owned()]);
        assert_eq!(a.state, "IL");
    }

    #[test]
    fn date_formats() {
        let csv = "member_id,dob\nA100001,05/15/1980\nA100002,1980-05-15\nA100003,19800515\nA100004,02/30/1980\nA100005,01/01/2099\n";
        let (people, _) = run(csv);
        let dobs: Vec<_> = people.iter().map(|p| p.dob).collect();
        assert_eq!(
            dobs,
            vec![
                Some((1980, 5, 15)),
                Some((1980, 5, 15)),
                Some((1980, 5, 15)),
                None,
                None
            ]
        );
    }

    #[test]
    fn decoys_are_not_reported() {
        let csv = "first_name,last_name,claim_number,npi,service_date,group_number,zip,billed_amount,patient_control_number\n\
                   Jane,Sample,123456789,1234567893,2024-01-15,123456789,62701-1234,123456789,234567890\n\
                   Tom,Sample,234567890,1234567893,01/16/2024,GRP-7734,62701,100.00,345678901\n";
        let (people, o) = run(csv);
        assert_eq!(o.records, 2);
        assert_eq!(people.len(), 2);
        for p in &people {
            assert_eq!(p.ssn, None);
            assert_eq!(p.dob, None);
            assert_eq!(p.member_id, None);
            assert_eq!(p.account_number, None);
        }
        assert_eq!(people[0].address.as_ref().unwrap().zip, "627011234");
        assert_eq!(people[1].address.as_ref().unwrap().zip, "62701");
    }

    #[test]
    fn value_sampling() {
        // An "id" column holding dashed SSNs is an SSN column; an "ssn" column of masked values is not
        // trusted (only validating values are reported); a "first name" column of numbers is dropped.
        let mut csv = String::from("id,ssn,first name,last name\n");
        for i in 0..60 {
            csv.push_str(&format!(
                "{:03}-45-{:04},XXX-XX-{:04},{},Sample\n",
                100 + i,
                1000 + i,
                1000 + i,
                90000 + i
            ));
        }
        csv.push_str("299-45-1000,345-67-8901,77,Late\n");
        let (people, o) = run(&csv);
        assert_eq!(o.records, 61);
        assert_eq!(people.len(), 61);
        assert_eq!(people[0].ssn.as_deref(), Some("100451000"));
        assert!(people
            .iter()
            .all(|p| p.name.as_ref().is_some_and(|n| n.first.is_empty())));
        assert_eq!(
            people[60].ssn.as_deref(),
            Some("299451000"),
            "first SSN column wins"
        );
    }

    #[test]
    fn no_header_row() {
        let csv = "Jane,Sample,123-45-6789,jane@example.com,999999999\nTom,Sample,234-56-7890,tom@example.com,123456789\n";
        let (people, o) = run(csv);
        assert_eq!(o.records, 2);
        assert_eq!(
            o.status,
            ScanStatus::Partial("no header row; roles inferred from values".into())
        );
        assert_eq!(people.len(), 2);
        assert_eq!(people[1].ssn.as_deref(), Some("234567890"));
        assert_eq!(people[1].emails, vec!["tom@example.com".to_owned()]);
        assert_eq!(
            people[1].name, None,
            "names are not inferred without a header"
        );
    }

    #[test]
    fn tsv_and_other_delimiters() {
        let tsv = "Last Name\tFirst Name\tSSN\nSample\tMary-Jo\t123-45-6789\n";
        let (people, o) = run_chunks(b'\t', tsv.as_bytes(), 3);
        assert_eq!(o.format, Format::Tsv);
        assert_eq!(people[0].name.as_ref().unwrap().first, "Mary-Jo");
        assert_eq!(sniff_delimiter(tsv.as_bytes()), Some(b'\t'));
        assert_eq!(sniff_delimiter(b"a;b;c\n\"1;2\";3;4\n"), Some(b';'));
        assert_eq!(
            sniff_delimiter(b"\xEF\xBB\xBFname,ssn,\"x,y\"\r\nJane,1,2\r\n"),
            Some(b',')
        );
        assert_eq!(sniff_delimiter(b"a|b|c\n1|2|3\n"), Some(b'|'));
        assert_eq!(sniff_delimiter(b"just words\nmore words\n"), None);
        let (people, _) = run_chunks(b'|', b"ssn|name\n123-45-6789|Sample, Jane\n", 7);
        assert_eq!(people[0].name.as_ref().unwrap().last, "Sample");
    }

    fn sample_file() -> String {
        let mut s =
            String::from("\u{feff}Patient Name,DOB,SSN,Address,City,State,Zip,Phone,Email,Dx\r\n");
        for i in 0..120u32 {
            s.push_str(&format!(
                "\"{}, Jane Q\",{:02}/15/19{},{}-45-{:04},\"{} Main St, Apt {i}\",Springfield,IL,62701,217-555-01{:02},j{i}@example.com,\"E11.9; I10\"\r\n",
                ["Sample", "O'Neil", "Núñez-Ruiz"][i as usize % 3],
                1 + i % 12,
                50 + i % 40,
                100 + i,
                1000 + i,
                i + 1,
                i % 100
            ));
        }
        s.push_str("\"Last, Person\",1980-01-01,\"123-45-\n6789\",\"multi\nline\",Springfield,IL,62701,,,\n");
        s
    }

    #[test]
    fn byte_at_a_time_is_the_same() {
        let data = sample_file();
        let (a, oa) = run_chunks(b',', data.as_bytes(), 1 << 20);
        let (b, ob) = run_chunks(b',', data.as_bytes(), 1);
        let (c, oc) = run_chunks(b',', data.as_bytes(), 7);
        assert_eq!(oa.records, 121);
        assert_eq!(a.len(), 121);
        assert_eq!(
            a[3].address.as_ref().unwrap().street,
            vec!["4 Main St, Apt 3".to_owned()]
        );
        assert_eq!(a[3].diagnoses, vec!["E119".to_owned(), "I10".to_owned()]);
        assert_eq!(
            a[120].ssn, None,
            "a line break inside the SSN does not validate"
        );
        assert_eq!(a[2].name.as_ref().unwrap().last, "Núñez-Ruiz");
        assert_eq!(a[120].name.as_ref().unwrap().first, "Person");
        assert_eq!((&a, &oa), (&b, &ob));
        assert_eq!((&a, &oa), (&c, &oc));
    }

    #[test]
    fn oversize_and_unterminated() {
        let mut s = String::from("ssn,notes\n123-45-6789,ok\n234-56-7890,\"");
        s.push_str(&"x".repeat(MAX_FIELD + 10));
        s.push_str("\"\n345-67-8901,fine\n456-78-9012,\"never closed\n");
        let (people, o) = run_chunks(b',', s.as_bytes(), 4096);
        assert_eq!(o.records, 4);
        let ssns: Vec<_> = people.iter().filter_map(|p| p.ssn.clone()).collect();
        assert_eq!(ssns, vec!["123456789", "345678901", "456789012"]);
        let r = o.status.reason().unwrap();
        assert!(
            r.contains("1 record(s) skipped") && r.contains("unterminated"),
            "{r}"
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b",;\t|\"\r\n abc0123456789-/@.\xEF\xBB\xBF\xC3";
        let base = sample_file().into_bytes();
        for i in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut data: Vec<u8> = if i % 2 == 0 {
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            } else {
                (0..len).map(|_| next() as u8).collect()
            };
            if i % 5 == 0 {
                // Mutate a real file.
                let start = (next() as usize) % base.len();
                data = base[start..(start + 400).min(base.len())].to_vec();
                for _ in 0..4 {
                    let k = (next() as usize) % data.len().max(1);
                    if let Some(b) = data.get_mut(k) {
                        *b = next() as u8;
                    }
                }
            }
            let delim = [b',', b'\t', b';', b'|'][i % 4];
            let _ = sniff_delimiter(&data);
            let chunk = 1 + (next() % 17) as usize;
            let (people, o) = run_chunks(delim, &data, chunk);
            assert!(people.len() as u64 <= o.records);
        }
    }
}
