//! X12 005010 writers: 834 enrollment and 837P professional claims.

use lockbox_inventory::{Element, ElementSet};
use rand::Rng;

use crate::util::{fold_ascii, pick, ymd, PROVIDERS};
use crate::{address_elements, set_of, Ctx, SynthPerson, TruthBuilder};

#[derive(Clone, Copy)]
struct Delims {
    elem: char,
    comp: char,
    rep: char,
    seg: char,
    newline: &'static str,
}

fn delims(ctx: &mut Ctx<'_>) -> Delims {
    let sets = [
        ('*', ':', '^', '~'),
        ('|', '^', '!', '~'),
        ('*', '>', '^', '~'),
        ('^', '>', '{', '~'),
        ('*', ':', '^', '\''),
    ];
    let (elem, comp, rep, seg) = if ctx.chance(0.5) {
        ('*', ':', '^', '~')
    } else {
        pick(&mut ctx.rng, &sets)
    };
    let newline = pick(&mut ctx.rng, &["", "\n", "\r\n", "\n"]);
    Delims {
        elem,
        comp,
        rep,
        seg,
        newline,
    }
}

struct Writer {
    d: Delims,
    segs: Vec<String>,
}

impl Writer {
    /// Text safe for this interchange: uppercase ASCII without delimiter characters.
    fn t(&self, s: &str) -> String {
        fold_ascii(s)
            .chars()
            .filter(|c| ![self.d.elem, self.d.comp, self.d.rep, self.d.seg, '\r', '\n'].contains(c))
            .collect()
    }
    fn seg(&mut self, parts: &[&str]) {
        let mut v: Vec<&str> = parts.to_vec();
        while v.len() > 1 && v.last().is_some_and(|s| s.is_empty()) {
            v.pop();
        }
        self.segs.push(v.join(&self.d.elem.to_string()));
    }
    fn comp(&self, parts: &[&str]) -> String {
        parts.join(&self.d.comp.to_string())
    }
}

fn pad(s: &str, n: usize) -> String {
    format!("{s:<n$}")
}

/// Wraps the transaction segments in ISA/GS/ST..SE/GE/IEA and serializes.
fn envelope(
    ctx: &mut Ctx<'_>,
    w: &Writer,
    func: &str,
    st: &str,
    version: &str,
    tb: &mut TruthBuilder,
) -> Vec<u8> {
    let d = w.d;
    let ctl = ctx.ssn_like();
    tb.decoy("control_number", &ctl);
    let sd = ctx.service_date();
    let date = ymd(sd);
    let e = d.elem.to_string();
    let sender = pick(
        &mut ctx.rng,
        &["SFTPSENDER01", "PRAIRIEHP", "CLRHOUSE7", "TPA0042"],
    );
    let receiver = pick(&mut ctx.rng, &["LOCKBOX", "SFTPRECVR01", "PARTNER9"]);
    let isa = [
        "ISA",
        "00",
        &pad("", 10),
        "00",
        &pad("", 10),
        "ZZ",
        &pad(sender, 15),
        "ZZ",
        &pad(receiver, 15),
        date.get(2..).unwrap_or("260115"),
        "1200",
        &d.rep.to_string(),
        "00501",
        &ctl,
        "0",
        "P",
        &d.comp.to_string(),
    ]
    .join(&e);
    debug_assert_eq!(isa.len() + 1, 106);
    let gs_ctl = format!("{}", ctx.rng.gen_range(1..100_000u32));
    let mut all: Vec<String> = vec![
        isa,
        [
            "GS", func, sender, receiver, &date, "1200", &gs_ctl, "X", version,
        ]
        .join(&e),
        ["ST", st, "0001", version].join(&e),
    ];
    all.extend(w.segs.iter().cloned());
    let count = w.segs.len() + 2;
    all.push(["SE", &count.to_string(), "0001"].join(&e));
    all.push(["GE", "1", &gs_ctl].join(&e));
    all.push(["IEA", "1", &ctl].join(&e));
    let mut out = String::new();
    for s in all {
        out.push_str(&s);
        out.push(d.seg);
        out.push_str(d.newline);
    }
    out.into_bytes()
}

fn ssn_field(
    ctx: &mut Ctx<'_>,
    p: &SynthPerson,
    p_include: f64,
    tb: &mut TruthBuilder,
) -> (Option<String>, bool) {
    // (value written, valid)
    if ctx.chance(0.025) {
        let bad = crate::util::invalid_ssn(&mut ctx.rng);
        tb.decoy("invalid_ssn", &bad);
        return (Some(bad), false);
    }
    match &p.ssn {
        Some(s) if ctx.chance(p_include) => (Some(s.clone()), true),
        _ => (None, false),
    }
}

fn name_seg(w: &mut Writer, code: &str, p: &SynthPerson, q: &str, id: Option<&str>) {
    let (last, first, middle) = (w.t(&p.last), w.t(&p.first), w.t(&p.middle));
    match id {
        Some(id) => w.seg(&["NM1", code, "1", &last, &first, &middle, "", "", q, id]),
        None => w.seg(&["NM1", code, "1", &last, &first, &middle]),
    }
}

fn address_segs(w: &mut Writer, p: &SynthPerson) {
    if !p.street.is_empty() {
        let lines: Vec<String> = p.street.iter().map(|s| w.t(s)).collect();
        let mut parts = vec!["N3"];
        parts.extend(lines.iter().map(String::as_str));
        w.seg(&parts);
    }
    let (city, zip) = (w.t(&p.city), w.t(&p.zip));
    w.seg(&["N4", &city, &p.state, &zip]);
}

fn zip_decoy(p: &SynthPerson, tb: &mut TruthBuilder) {
    if p.zip.len() == 9 && p.zip.bytes().all(|b| b.is_ascii_digit()) {
        tb.decoy("zip4", &p.zip);
    }
}

pub(crate) fn write_834(
    ctx: &mut Ctx<'_>,
    hs: &[usize],
    n: usize,
    tb: &mut TruthBuilder,
) -> (String, Vec<u8>) {
    let mut w = Writer {
        d: delims(ctx),
        segs: Vec::new(),
    };
    let bgn_ref = format!("ENR{:06}", ctx.rng.gen_range(0..1_000_000u32));
    let date = ymd(ctx.service_date());
    w.seg(&["BGN", "00", &bgn_ref, &date, "1200", "", "", "", "2"]);
    let ein1 = ctx.ssn_like();
    let ein2 = ctx.ssn_like();
    tb.decoy("ein", &ein1);
    tb.decoy("ein", &ein2);
    w.seg(&["N1", "P5", "EXAMPLE EMPLOYER INC", "FI", &ein1]);
    w.seg(&["N1", "IN", "EXAMPLE HEALTH PLAN", "FI", &ein2]);
    let group = if ctx.chance(0.4) {
        ctx.ssn_like()
    } else {
        format!("GRP-{}", ctx.rng.gen_range(1000..10_000u32))
    };
    tb.decoy("group_number", &group);
    let households = ctx.households;
    let pop = ctx.pop;
    for &h in hs {
        let Some(members) = households.get(h) else {
            continue;
        };
        let Some(sub) = members.first().and_then(|k| pop.get(*k)) else {
            continue;
        };
        for (i, &k) in members.iter().enumerate() {
            let Some(p) = pop.get(k) else { continue };
            // Dependents are sometimes enrolled in another file only.
            if i > 0 && ctx.chance(0.1) {
                continue;
            }
            let is_sub = i == 0;
            let mut els = set_of(&[Element::Name, Element::Dob]);
            let mut ins: Vec<String> = vec![
                "INS".into(),
                if is_sub { "Y" } else { "N" }.into(),
                p.relationship.clone(),
            ];
            ins.extend(["021", "28", "A"].map(String::from));
            ins.extend(["", ""].map(String::from));
            ins.push(if is_sub { "FT".into() } else { String::new() });
            if let Some(dd) = p.death_date {
                ins.extend(["".to_owned(), "N".to_owned(), "D8".to_owned(), ymd(dd)]);
                els.insert(Element::DeathDate);
            }
            let ins_refs: Vec<&str> = ins.iter().map(String::as_str).collect();
            w.seg(&ins_refs);
            // REF*0F: the subscriber's id, on dependents too (not theirs).
            w.seg(&["REF", "0F", &sub.member_id]);
            if is_sub {
                els.insert(Element::MemberId);
            }
            w.seg(&["REF", "1L", &group]);
            if let Some(m) = &p.mbi {
                if ctx.chance(0.8) {
                    w.seg(&["REF", "F6", m]);
                    els.insert(Element::Mbi);
                }
            }
            if let Some(m) = &p.medicaid_id {
                if ctx.chance(0.7) {
                    w.seg(&["REF", "23", m]);
                    els.insert(Element::MedicaidId);
                }
            }
            let dtp = ymd(ctx.service_date());
            tb.decoy("service_date", &dtp);
            w.seg(&["DTP", "356", "D8", &dtp]);
            let (ssn, valid) = ssn_field(ctx, p, 0.8, tb);
            if valid {
                els.insert(Element::Ssn);
            }
            name_seg(&mut w, "IL", p, "34", ssn.as_deref());
            // PER*IP: up to three contacts.
            let mut per: Vec<String> = vec!["PER".into(), "IP".into(), String::new()];
            if ctx.chance(0.85) {
                for (j, ph) in p.phones.iter().enumerate() {
                    per.push(
                        if j == 0 {
                            "HP"
                        } else {
                            pick(&mut ctx.rng, &["CP", "TE", "WP"])
                        }
                        .into(),
                    );
                    per.push(ph.clone());
                    els.insert(Element::Phone);
                }
            }
            if let Some(e) = &p.email {
                if per.len() < 7 && ctx.chance(0.8) {
                    per.push("EM".into());
                    per.push(e.clone());
                    els.insert(Element::Email);
                }
            }
            if per.len() > 3 {
                let refs: Vec<&str> = per.iter().map(String::as_str).collect();
                w.seg(&refs);
            }
            address_segs(&mut w, p);
            zip_decoy(p, tb);
            els = els.union(address_elements(p));
            w.seg(&["DMG", "D8", &ymd(p.dob), &p.sex]);
            // Loop 2100C mailing address, sometimes.
            if is_sub && p.address_valid && ctx.chance(0.06) {
                w.seg(&["NM1", "31", "1"]);
                let po = format!("PO BOX {}", ctx.rng.gen_range(10..9999u32));
                w.seg(&["N3", &po]);
                let city = w.t(&p.city);
                w.seg(&["N4", &city, &p.state, &p.zip]);
            }
            let hd = w.comp(&["HLT"]);
            w.seg(&[
                "HD",
                "021",
                "",
                &hd,
                "",
                if members.len() > 1 { "FAM" } else { "IND" },
            ]);
            let dtp = ymd(ctx.service_date());
            tb.decoy("service_date", &dtp);
            w.seg(&["DTP", "348", "D8", &dtp]);
            tb.person(k, if is_sub { "subscriber" } else { "dependent" }, els);
        }
    }
    let bytes = envelope(ctx, &w, "BE", "834", "005010X220A1", tb);
    let ext = pick(&mut ctx.rng, &["x12", "834", "edi", "dat", "txt"]);
    (format!("enrollment_834_{:03}.{ext}", n + 1), bytes)
}

fn provider(ctx: &mut Ctx<'_>, w: &mut Writer, code: &str, tb: &mut TruthBuilder) {
    let (last, first) = pick(&mut ctx.rng, &PROVIDERS);
    let npi = ctx.npi();
    tb.decoy("npi", &npi);
    tb.provider(last, first);
    w.seg(&["NM1", code, "1", last, first, "", "", "", "XX", &npi]);
    w.seg(&["PRV", "PE", "PXC", "207Q00000X"]);
}

pub(crate) fn write_837(
    ctx: &mut Ctx<'_>,
    hs: &[usize],
    n: usize,
    tb: &mut TruthBuilder,
) -> (String, Vec<u8>) {
    let mut w = Writer {
        d: delims(ctx),
        segs: Vec::new(),
    };
    let batch = format!("{}", ctx.rng.gen_range(100_000..999_999u32));
    let date = ymd(ctx.service_date());
    w.seg(&["BHT", "0019", "00", &batch, &date, "1200", "CH"]);
    w.seg(&[
        "NM1",
        "41",
        "2",
        "EXAMPLE BILLING SERVICE",
        "",
        "",
        "",
        "",
        "46",
        "SUBM0042",
    ]);
    w.seg(&["PER", "IC", "CLAIMS DEPT", "TE", "3125550100"]);
    w.seg(&[
        "NM1",
        "40",
        "2",
        "EXAMPLE PAYER",
        "",
        "",
        "",
        "",
        "46",
        "RCV0001",
    ]);
    w.seg(&["HL", "1", "", "20", "1"]);
    w.seg(&["PRV", "BI", "PXC", "207Q00000X"]);
    let bnpi = ctx.npi();
    tb.decoy("npi", &bnpi);
    w.seg(&[
        "NM1",
        "85",
        "2",
        "LAKESIDE FAMILY CLINIC",
        "",
        "",
        "",
        "",
        "XX",
        &bnpi,
    ]);
    w.seg(&["N3", "100 CLINIC WAY"]);
    let bzip = format!("627{:06}", ctx.rng.gen_range(10_000..999_999u32));
    tb.decoy("zip4", &bzip);
    w.seg(&["N4", "SPRINGFIELD", "IL", &bzip]);
    let ein = ctx.ssn_like();
    tb.decoy("ein", &ein);
    w.seg(&["REF", "EI", &ein]);
    let mut hl = 1usize;
    let households = ctx.households;
    let pop = ctx.pop;
    for &h in hs {
        let Some(members) = households.get(h) else {
            continue;
        };
        let Some(&sk) = members.first() else { continue };
        let Some(sub) = pop.get(sk) else { continue };
        // Who gets a claim: the subscriber, or one dependent (with the subscriber's loop as context).
        let patient_key = if members.len() > 1 && ctx.chance(0.45) {
            members
                .get(ctx.rng.gen_range(1..members.len()))
                .copied()
                .unwrap_or(sk)
        } else {
            sk
        };
        let Some(patient) = pop.get(patient_key) else {
            continue;
        };
        let sub_is_patient = patient_key == sk;
        hl += 1;
        let sub_hl = hl;
        w.seg(&[
            "HL",
            &sub_hl.to_string(),
            "1",
            "22",
            if sub_is_patient { "0" } else { "1" },
        ]);
        let group = if ctx.chance(0.5) {
            ctx.ssn_like()
        } else {
            format!("G{}", ctx.rng.gen_range(10_000..99_999u32))
        };
        tb.decoy("group_number", &group);
        w.seg(&[
            "SBR",
            "P",
            if sub_is_patient { "18" } else { "" },
            &group,
            "",
            "",
            "",
            "",
            "",
            "CI",
        ]);
        let mut sub_els = set_of(&[Element::Name, Element::MemberId]);
        name_seg(&mut w, "IL", sub, "MI", Some(&sub.member_id));
        if sub_is_patient || ctx.chance(0.6) {
            address_segs(&mut w, sub);
            zip_decoy(sub, tb);
            sub_els = sub_els.union(address_elements(sub));
            w.seg(&["DMG", "D8", &ymd(sub.dob), &sub.sex]);
            sub_els.insert(Element::Dob);
        }
        let (ssn, valid) = ssn_field(ctx, sub, 0.35, tb);
        if let Some(s) = &ssn {
            w.seg(&["REF", "SY", s]);
            if valid {
                sub_els.insert(Element::Ssn);
            }
        }
        w.seg(&[
            "NM1",
            "PR",
            "2",
            "EXAMPLE PAYER",
            "",
            "",
            "",
            "",
            "PI",
            "PAYER01",
        ]);
        let mut pat_els = if sub_is_patient {
            sub_els
        } else {
            ElementSet::default()
        };
        if !sub_is_patient {
            tb.person(sk, "subscriber", sub_els);
            hl += 1;
            w.seg(&["HL", &hl.to_string(), &sub_hl.to_string(), "23", "0"]);
            w.seg(&["PAT", &patient.relationship.replace("18", "19")]);
            name_seg(&mut w, "QC", patient, "", None);
            address_segs(&mut w, patient);
            zip_decoy(patient, tb);
            w.seg(&["DMG", "D8", &ymd(patient.dob), &patient.sex]);
            pat_els = set_of(&[Element::Name, Element::Dob]).union(address_elements(patient));
        }
        // Claim: one per patient.
        let clm = ctx.ssn_like();
        tb.decoy("claim_number", &clm);
        let pos = w.comp(&["11", "B", "1"]);
        let amount = format!("{}", ctx.rng.gen_range(40..900u32));
        w.seg(&["CLM", &clm, &amount, "", "", &pos, "Y", "A", "Y", "Y"]);
        if ctx.chance(0.4) {
            w.seg(&["REF", "EA", &patient.mrn]);
            pat_els.insert(Element::MedicalRecordNumber);
        }
        let mut hi: Vec<String> = vec!["HI".into()];
        for (j, dx) in patient.diagnoses.iter().enumerate() {
            hi.push(w.comp(&[if j == 0 { "ABK" } else { "ABF" }, dx]));
        }
        let hi_refs: Vec<&str> = hi.iter().map(String::as_str).collect();
        w.seg(&hi_refs);
        pat_els.insert(Element::Diagnosis);
        if ctx.chance(0.5) {
            provider(ctx, &mut w, "82", tb);
        }
        if ctx.chance(0.2) {
            let (last, first) = pick(&mut ctx.rng, &PROVIDERS);
            let npi = ctx.npi();
            tb.decoy("npi", &npi);
            tb.provider(last, first);
            w.seg(&["NM1", "DN", "1", last, first, "", "", "", "XX", &npi]);
        }
        let lines = ctx.rng.gen_range(1..=2);
        for l in 1..=lines {
            w.seg(&["LX", &l.to_string()]);
            let proc = w.comp(&[
                "HC",
                pick(&mut ctx.rng, &["99213", "99214", "87635", "90471", "36415"]),
            ]);
            let dxp = w.comp(&["1"]);
            w.seg(&["SV1", &proc, &amount, "UN", "1", "", "", &dxp]);
            let sd = ymd(ctx.service_date());
            tb.decoy("service_date", &sd);
            w.seg(&["DTP", "472", "D8", &sd]);
        }
        tb.person(
            patient_key,
            if sub_is_patient {
                "subscriber-patient"
            } else {
                "patient"
            },
            pat_els,
        );
    }
    let bytes = envelope(ctx, &w, "HC", "837", "005010X222A1", tb);
    let ext = pick(&mut ctx.rng, &["x12", "837", "edi", "txt"]);
    (format!("claims_837p_{:03}.{ext}", n + 1), bytes)
}

/// Exposed for tests: the ISA must be exactly 106 characters whatever the delimiters.
#[cfg(test)]
pub(crate) fn isa_len(bytes: &[u8]) -> Option<usize> {
    let seg = *bytes.get(105)?;
    bytes.iter().position(|b| *b == seg).map(|p| p + 1)
}
