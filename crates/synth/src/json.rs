//! NDJSON (one member object per line) and JSON (an array of members, bare or under "members").

use lockbox_inventory::{validate, Element, ElementSet};
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::util::{invalid_ssn, iso, pick, us, ymd};
use crate::{Ctx, SynthPerson, TruthBuilder};

struct Style {
    camel: bool,
    nested_name: bool,
    fhir_address: bool,
    phone_objects: bool,
    date_fmt: fn((u16, u8, u8)) -> String,
    ssn_dashed: bool,
}

fn k(style: &Style, snake: &'static str, camel: &'static str) -> String {
    if style.camel { camel } else { snake }.to_owned()
}

fn member(
    ctx: &mut Ctx<'_>,
    st: &Style,
    p: &SynthPerson,
    tb: &mut TruthBuilder,
) -> (Value, ElementSet) {
    let mut els = ElementSet::default();
    let mut o = Map::new();
    els.insert(Element::Name);
    els.insert(Element::Dob);
    if ctx.chance(0.8) {
        o.insert(k(st, "member_id", "memberId"), json!(p.member_id));
        els.insert(Element::MemberId);
    }
    if st.nested_name {
        let mut n = Map::new();
        n.insert(
            if st.camel { "given" } else { "first" }.into(),
            json!(p.first),
        );
        n.insert(
            if st.camel { "family" } else { "last" }.into(),
            json!(p.last),
        );
        if !p.middle.is_empty() {
            n.insert("middle".into(), json!(p.middle));
        }
        o.insert("name".into(), Value::Object(n));
    } else {
        o.insert(k(st, "first_name", "firstName"), json!(p.first));
        o.insert(k(st, "last_name", "lastName"), json!(p.last));
        o.insert(k(st, "middle_name", "middleName"), json!(p.middle));
    }
    o.insert(k(st, "dob", "birthDate"), json!((st.date_fmt)(p.dob)));
    o.insert("gender".into(), json!(p.sex));
    let dash = |s: &str| {
        if st.ssn_dashed {
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
    if ctx.chance(0.04) {
        let bad = invalid_ssn(&mut ctx.rng);
        tb.decoy("invalid_ssn", &bad);
        o.insert("ssn".into(), json!(dash(&bad)));
    } else {
        match &p.ssn {
            Some(s) if ctx.chance(0.8) => {
                o.insert("ssn".into(), json!(dash(s)));
                els.insert(Element::Ssn);
            }
            _ => {
                o.insert("ssn".into(), Value::Null);
            }
        }
    }
    if let Some(m) = &p.mbi {
        if ctx.chance(0.8) {
            o.insert(k(st, "mbi", "medicareId"), json!(m));
            els.insert(Element::Mbi);
        }
    }
    if let Some(m) = &p.medicaid_id {
        if ctx.chance(0.7) {
            o.insert(k(st, "medicaid_id", "medicaidId"), json!(m));
            els.insert(Element::MedicaidId);
        }
    }
    if ctx.chance(0.3) {
        o.insert("mrn".into(), json!(p.mrn));
        els.insert(Element::MedicalRecordNumber);
    }
    if ctx.chance(0.9) {
        let mut a = Map::new();
        if st.fhir_address {
            a.insert("line".into(), json!(p.street));
            a.insert("city".into(), json!(p.city));
            a.insert("state".into(), json!(p.state));
            a.insert("postalCode".into(), json!(p.zip));
        } else {
            if let Some(l1) = p.street.first() {
                a.insert("line1".into(), json!(l1));
            }
            if let Some(l2) = p.street.get(1) {
                a.insert("line2".into(), json!(l2));
            }
            a.insert("city".into(), json!(p.city));
            a.insert("state".into(), json!(p.state));
            a.insert("zip".into(), json!(p.zip));
        }
        if !p.street.is_empty() {
            els.insert(Element::Street);
        }
        els.insert(Element::City);
        els.insert(Element::State);
        if validate::zip(&p.zip).is_some() {
            els.insert(Element::Zip);
        }
        if p.zip.len() == 9 && p.zip.bytes().all(|b| b.is_ascii_digit()) {
            tb.decoy("zip4", &p.zip);
        }
        o.insert("address".into(), Value::Object(a));
    }
    let mut phones = Vec::new();
    if ctx.chance(0.85) {
        for (i, ph) in p.phones.iter().enumerate() {
            let (a, x, l) = (
                ph.get(..3).unwrap_or(""),
                ph.get(3..6).unwrap_or(""),
                ph.get(6..).unwrap_or(""),
            );
            let text = if ctx.chance(0.5) {
                format!("({a}) {x}-{l}")
            } else {
                ph.clone()
            };
            phones.push(if st.phone_objects {
                json!({"type": if i == 0 { "mobile" } else { "home" }, "number": text})
            } else {
                json!(text)
            });
            els.insert(Element::Phone);
        }
    }
    o.insert("phones".into(), Value::Array(phones));
    if let Some(e) = &p.email {
        if ctx.chance(0.7) {
            o.insert("email".into(), json!(e));
            els.insert(Element::Email);
        }
    }
    if ctx.chance(0.5) {
        let dx: Vec<String> = p.diagnoses.iter().map(|d| dotted(d)).collect();
        o.insert(k(st, "diagnoses", "diagnosisCodes"), json!(dx));
        els.insert(Element::Diagnosis);
    }
    // Decoys: a claim with its number, rendering NPI and service date; the group number.
    if ctx.chance(0.6) {
        let clm = ctx.ssn_like();
        let npi = ctx.npi();
        let sd = ctx.service_date();
        tb.decoy("claim_number", &clm);
        tb.decoy("npi", &npi);
        tb.decoy("service_date", &ymd(sd));
        let mut c = Map::new();
        c.insert(k(st, "claim_number", "claimNumber"), json!(clm));
        c.insert(k(st, "rendering_npi", "renderingNpi"), json!(npi));
        c.insert(
            k(st, "service_date", "serviceDate"),
            json!((st.date_fmt)(sd)),
        );
        c.insert(
            k(st, "billed_amount", "billedAmount"),
            json!(ctx.rng.gen_range(40..900u32)),
        );
        o.insert("claim".into(), Value::Object(c));
    }
    if ctx.chance(0.5) {
        let g = ctx.ssn_like();
        tb.decoy("group_number", &g);
        o.insert(k(st, "group_number", "groupNumber"), json!(g));
    }
    (Value::Object(o), els)
}

fn dotted(code: &str) -> String {
    match (code.get(..3), code.get(3..)) {
        (Some(a), Some(b)) if !b.is_empty() => format!("{a}.{b}"),
        _ => code.to_owned(),
    }
}

pub(crate) fn write(
    ctx: &mut Ctx<'_>,
    hs: &[usize],
    n: usize,
    nd: bool,
    tb: &mut TruthBuilder,
) -> (String, Vec<u8>) {
    let st = Style {
        camel: ctx.chance(0.5),
        nested_name: ctx.chance(0.7),
        fhir_address: ctx.chance(0.3),
        phone_objects: ctx.chance(0.6),
        date_fmt: match ctx.rng.gen_range(0..4) {
            0 | 1 => iso,
            2 => ymd,
            _ => us,
        },
        ssn_dashed: ctx.chance(0.5),
    };
    let households = ctx.households;
    let pop = ctx.pop;
    let mut objs = Vec::new();
    for &h in hs {
        let Some(m) = households.get(h) else { continue };
        for &key in m {
            if !ctx.rng.gen_bool(0.85) {
                continue;
            }
            let Some(p) = pop.get(key) else { continue };
            let (v, els) = member(ctx, &st, p, tb);
            tb.person(key, "member", els);
            objs.push(v);
        }
    }
    let mut out = String::new();
    if nd {
        for v in &objs {
            out.push_str(&v.to_string());
            out.push('\n');
        }
        (
            format!(
                "members_{:03}.{}",
                n + 1,
                pick(&mut ctx.rng, &["ndjson", "jsonl", "json"])
            ),
            out.into_bytes(),
        )
    } else {
        let arr = Value::Array(objs);
        let doc = if ctx.chance(0.5) {
            json!({"source": "extract", "count": arr.as_array().map_or(0, Vec::len), "members": arr})
        } else {
            arr
        };
        let s = if ctx.chance(0.5) {
            serde_json::to_string_pretty(&doc)
        } else {
            serde_json::to_string(&doc)
        };
        (
            format!("export_{:03}.json", n + 1),
            s.unwrap_or_default().into_bytes(),
        )
    }
}
