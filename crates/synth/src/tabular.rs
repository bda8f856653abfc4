//! CSV and TSV extracts with varied headers, date formats and decoy columns.

use lockbox_inventory::{validate, Element, ElementSet};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::util::{invalid_ssn, iso, pick, us, ymd};
use crate::{Ctx, SynthPerson, TruthBuilder};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Col {
    First,
    Middle,
    Last,
    Dob,
    Sex,
    Ssn,
    MemberId,
    Mbi,
    Medicaid,
    Mrn,
    Street1,
    Street2,
    City,
    State,
    Zip,
    Phone,
    Email,
    Dx,
    Claim,
    Npi,
    ServiceDate,
    Group,
    Notes,
}

fn headers(c: Col) -> &'static [&'static str] {
    match c {
        Col::First => &[
            "First Name",
            "FIRST_NAME",
            "first",
            "Member First Name",
            "fname",
            "GivenName",
            "patient_first_name",
        ],
        Col::Middle => &["MI", "Middle", "middle_name", "Middle Initial"],
        Col::Last => &[
            "Last Name",
            "LAST_NAME",
            "last",
            "Member Last Name",
            "lname",
            "Surname",
            "patient_last_name",
        ],
        Col::Dob => &[
            "DOB",
            "Birth Date",
            "date_of_birth",
            "BirthDate",
            "Member DOB",
            "PATIENT_DOB",
            "Date of Birth",
        ],
        Col::Sex => &["Sex", "Gender", "GENDER_CD"],
        Col::Ssn => &[
            "Member SSN",
            "SUBSCRIBER_SSN",
            "ssn",
            "Social Security Number",
            "SSN",
            "patient_ssn",
        ],
        Col::MemberId => &[
            "Member ID",
            "member_id",
            "Subscriber ID",
            "MEMBER_NBR",
            "MemberNumber",
        ],
        Col::Mbi => &[
            "MBI",
            "Medicare ID",
            "medicare_beneficiary_id",
            "Medicare MBI",
        ],
        Col::Medicaid => &[
            "Medicaid ID",
            "medicaid_id",
            "MEDICAID_NBR",
            "Medicaid Number",
        ],
        Col::Mrn => &["MRN", "Medical Record Number", "patient_mrn", "MED_REC_NO"],
        Col::Street1 => &[
            "Address",
            "Street",
            "Address1",
            "ADDR_LINE_1",
            "address_line_1",
            "Street Address",
        ],
        Col::Street2 => &["Address2", "ADDR_LINE_2", "address_line_2", "Apt/Suite"],
        Col::City => &["City", "CITY", "city"],
        Col::State => &["State", "ST", "state_cd", "STATE"],
        Col::Zip => &["Zip", "ZIP Code", "postal_code", "ZIP", "Zip Code"],
        Col::Phone => &[
            "Phone",
            "Home Phone",
            "phone_number",
            "PHONE_NBR",
            "Contact Phone",
        ],
        Col::Email => &["Email", "email_address", "E-mail", "EMAIL"],
        Col::Dx => &["Diagnosis", "dx_code", "ICD10", "Primary Dx", "DIAG_CD_1"],
        Col::Claim => &[
            "claim_number",
            "Claim #",
            "CLAIM_ID",
            "Claim Number",
            "clm_nbr",
        ],
        Col::Npi => &["npi", "Rendering NPI", "provider_npi", "BILLING_NPI"],
        Col::ServiceDate => &["service_date", "Date of Service", "SVC_DT", "Service Date"],
        Col::Group => &["group_number", "Group #", "GROUP_NBR", "Group Number"],
        Col::Notes => &["Notes", "comments", "REMARKS"],
    }
}

const NOTES: [&str; 6] = [
    "Called re: \"billing\", left message",
    "Prefers mail, no calls",
    "Address verified\nby phone",
    "",
    "Requested ID card, \"urgent\"",
    "Transferred from prior plan; see file",
];

fn quote(s: &str, sep: char, always: bool) -> String {
    if always || s.contains(sep) || s.contains('"') || s.contains('\n') || s.contains('\r') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub(crate) fn write(
    ctx: &mut Ctx<'_>,
    hs: &[usize],
    n: usize,
    tsv: bool,
    tb: &mut TruthBuilder,
) -> (String, Vec<u8>) {
    let sep = if tsv { '\t' } else { ',' };
    let mut cols = vec![Col::First, Col::Last, Col::Dob];
    let optional: [(Col, f64); 12] = [
        (Col::Middle, 0.5),
        (Col::Sex, 0.5),
        (Col::Ssn, 0.75),
        (Col::MemberId, 0.7),
        (Col::Mbi, 0.4),
        (Col::Medicaid, 0.3),
        (Col::Mrn, 0.3),
        (Col::Phone, 0.6),
        (Col::Email, 0.5),
        (Col::Dx, 0.4),
        (Col::Claim, 0.5),
        (Col::Npi, 0.4),
    ];
    for (c, p) in optional {
        if ctx.chance(p) {
            cols.push(c);
        }
    }
    if ctx.chance(0.5) {
        cols.push(Col::ServiceDate);
    }
    if ctx.chance(0.4) {
        cols.push(Col::Group);
    }
    if ctx.chance(0.8) {
        cols.push(Col::Street1);
        if ctx.chance(0.5) {
            cols.push(Col::Street2);
        }
        cols.extend([Col::City, Col::State, Col::Zip]);
    }
    if !tsv && ctx.chance(0.3) {
        cols.push(Col::Notes);
    }
    if ctx.chance(0.5) {
        cols.shuffle(&mut ctx.rng);
    }
    let date_fmt: fn((u16, u8, u8)) -> String = match ctx.rng.gen_range(0..3) {
        0 => us,
        1 => iso,
        _ => ymd,
    };
    let ssn_dashed = ctx.chance(0.5);
    let zip_hyphen = ctx.chance(0.5);
    let dx_dot = ctx.chance(0.6);
    let always_quote = !tsv && ctx.chance(0.2);
    let phone_style = ctx.rng.gen_range(0..4);
    let upper_names = ctx.chance(0.3);
    let eol = if ctx.chance(0.5) { "\r\n" } else { "\n" };
    let group = if ctx.chance(0.5) {
        ctx.ssn_like()
    } else {
        format!("GRP{}", ctx.rng.gen_range(100..999u32))
    };

    let mut out = String::new();
    if !tsv && ctx.chance(0.2) {
        out.push('\u{feff}');
    }
    let header: Vec<String> = cols
        .iter()
        .map(|c| quote(pick(&mut ctx.rng, headers(*c)), sep, always_quote))
        .collect();
    out.push_str(&header.join(&sep.to_string()));
    out.push_str(eol);

    let households = ctx.households;
    let pop = ctx.pop;
    let mut rows: Vec<usize> = Vec::new();
    for &h in hs {
        if let Some(m) = households.get(h) {
            rows.extend(m.iter().copied().filter(|_| ctx.rng.gen_bool(0.85)));
        }
    }
    if ctx.chance(0.5) {
        rows.shuffle(&mut ctx.rng);
    }
    for k in rows {
        let Some(p) = pop.get(k) else { continue };
        let mut els = ElementSet::default();
        els.insert(Element::Name);
        els.insert(Element::Dob);
        let mut cells: Vec<String> = Vec::with_capacity(cols.len());
        for &c in &cols {
            let v = cell(
                ctx,
                c,
                p,
                &mut els,
                tb,
                date_fmt,
                ssn_dashed,
                zip_hyphen,
                dx_dot,
                phone_style,
                upper_names,
                &group,
            );
            cells.push(quote(&v, sep, always_quote));
        }
        out.push_str(&cells.join(&sep.to_string()));
        out.push_str(eol);
        tb.person(k, "row", els);
    }
    if ctx.chance(0.3) {
        // Trailing blank line, as spreadsheets write.
        out.push_str(eol);
    }
    let name = if tsv {
        format!(
            "extract_{:03}.{}",
            n + 1,
            pick(&mut ctx.rng, &["tsv", "tab", "txt"])
        )
    } else {
        format!(
            "members_{:03}.{}",
            n + 1,
            pick(&mut ctx.rng, &["csv", "csv", "txt"])
        )
    };
    (name, out.into_bytes())
}

#[allow(clippy::too_many_arguments)]
fn cell(
    ctx: &mut Ctx<'_>,
    c: Col,
    p: &SynthPerson,
    els: &mut ElementSet,
    tb: &mut TruthBuilder,
    date_fmt: fn((u16, u8, u8)) -> String,
    ssn_dashed: bool,
    zip_hyphen: bool,
    dx_dot: bool,
    phone_style: u32,
    upper_names: bool,
    group: &str,
) -> String {
    let name = |s: &str| {
        if upper_names {
            s.to_uppercase()
        } else {
            s.to_owned()
        }
    };
    let dash_ssn = |s: &str| {
        if ssn_dashed {
            format!(
                "{}-{}-{}",
                s.get(..3).unwrap_or(""),
                s.get(3..5).unwrap_or(""),
                s.get(5..).unwrap_or("")
            )
        } else {
            s.to_owned()
        }
    };
    match c {
        Col::First => name(&p.first),
        Col::Middle => name(&p.middle),
        Col::Last => name(&p.last),
        Col::Dob => date_fmt(p.dob),
        Col::Sex => p.sex.clone(),
        Col::Ssn => {
            if ctx.chance(0.04) {
                let bad = invalid_ssn(&mut ctx.rng);
                tb.decoy("invalid_ssn", &bad);
                dash_ssn(&bad)
            } else {
                match &p.ssn {
                    Some(s) if ctx.chance(0.9) => {
                        els.insert(Element::Ssn);
                        dash_ssn(s)
                    }
                    _ => String::new(),
                }
            }
        }
        Col::MemberId => {
            els.insert(Element::MemberId);
            p.member_id.clone()
        }
        Col::Mbi => match &p.mbi {
            Some(m) => {
                els.insert(Element::Mbi);
                m.clone()
            }
            None => String::new(),
        },
        Col::Medicaid => match &p.medicaid_id {
            Some(m) => {
                els.insert(Element::MedicaidId);
                m.clone()
            }
            None => String::new(),
        },
        Col::Mrn => {
            els.insert(Element::MedicalRecordNumber);
            p.mrn.clone()
        }
        Col::Street1 => match p.street.first() {
            Some(s) => {
                els.insert(Element::Street);
                s.clone()
            }
            None => String::new(),
        },
        Col::Street2 => p.street.get(1).cloned().unwrap_or_default(),
        Col::City => {
            els.insert(Element::City);
            name(&p.city)
        }
        Col::State => {
            els.insert(Element::State);
            p.state.clone()
        }
        Col::Zip => {
            if validate::zip(&p.zip).is_some() {
                els.insert(Element::Zip);
            }
            if p.zip.len() == 9 && p.zip.bytes().all(|b| b.is_ascii_digit()) {
                tb.decoy("zip4", &p.zip);
                if zip_hyphen {
                    return format!(
                        "{}-{}",
                        p.zip.get(..5).unwrap_or(""),
                        p.zip.get(5..).unwrap_or("")
                    );
                }
            }
            p.zip.clone()
        }
        Col::Phone => match p.phones.first() {
            Some(ph) => {
                els.insert(Element::Phone);
                let (a, x, l) = (
                    ph.get(..3).unwrap_or(""),
                    ph.get(3..6).unwrap_or(""),
                    ph.get(6..).unwrap_or(""),
                );
                match phone_style {
                    0 => format!("({a}) {x}-{l}"),
                    1 => format!("{a}-{x}-{l}"),
                    2 => ph.clone(),
                    _ => format!("+1 {a} {x} {l}"),
                }
            }
            None => String::new(),
        },
        Col::Email => match &p.email {
            Some(e) => {
                els.insert(Element::Email);
                e.clone()
            }
            None => String::new(),
        },
        Col::Dx => {
            if ctx.chance(0.8) {
                els.insert(Element::Diagnosis);
                let dx = pick(
                    &mut ctx.rng,
                    &p.diagnoses.iter().map(String::as_str).collect::<Vec<_>>(),
                )
                .to_owned();
                match (dx_dot, dx.get(..3), dx.get(3..)) {
                    (true, Some(a), Some(b)) if !b.is_empty() => format!("{a}.{b}"),
                    _ => dx,
                }
            } else {
                String::new()
            }
        }
        Col::Claim => {
            let v = ctx.ssn_like();
            tb.decoy("claim_number", &v);
            v
        }
        Col::Npi => {
            let v = ctx.npi();
            tb.decoy("npi", &v);
            v
        }
        Col::ServiceDate => {
            let d = ctx.service_date();
            tb.decoy("service_date", &ymd(d));
            date_fmt(d)
        }
        Col::Group => {
            tb.decoy("group_number", group);
            group.to_owned()
        }
        Col::Notes => pick(&mut ctx.rng, &NOTES).to_owned(),
    }
}
