//! HL7 v2 ADT writer: one message per patient (MSH, EVN, PID, PV1, DG1).

use lockbox_inventory::Element;
use rand::Rng;

use crate::util::{invalid_ssn, pick, ymd, PROVIDERS};
use crate::{address_elements, set_of, Ctx, TruthBuilder};

const DX_TEXT: [(&str, &str); 6] = [
    ("E119", "Type 2 diabetes mellitus without complications"),
    ("I10", "Essential (primary) hypertension"),
    ("J45909", "Unspecified asthma, uncomplicated"),
    ("U071", "COVID-19"),
    ("E785", "Hyperlipidemia, unspecified"),
    ("M545", "Low back pain"),
];

fn dotted(code: &str) -> String {
    match (code.get(..3), code.get(3..)) {
        (Some(a), Some(b)) if !b.is_empty() => format!("{a}.{b}"),
        _ => code.to_owned(),
    }
}

fn ssn_text(ctx: &mut Ctx<'_>, s: &str) -> String {
    if ctx.chance(0.5) {
        format!(
            "{}-{}-{}",
            s.get(..3).unwrap_or(""),
            s.get(3..5).unwrap_or(""),
            s.get(5..).unwrap_or("")
        )
    } else {
        s.to_owned()
    }
}

pub(crate) fn write_adt(
    ctx: &mut Ctx<'_>,
    hs: &[usize],
    n: usize,
    tb: &mut TruthBuilder,
) -> (String, Vec<u8>) {
    // Separators: read from MSH by a correct parser, so sometimes not the usual ones.
    let (f, c, r) = if ctx.chance(0.85) {
        ('|', '^', '~')
    } else {
        ('!', '$', '*')
    };
    let seg_end = pick(&mut ctx.rng, &["\r", "\r", "\n", "\r\n"]);
    let fs = f.to_string();
    let cs = c.to_string();
    let rs = r.to_string();
    let comp = |parts: &[&str]| parts.join(&cs);
    let households = ctx.households;
    let pop = ctx.pop;
    let fac = pick(&mut ctx.rng, &["GOODHOSP", "LAKESIDE", "NSTARMED"]);
    let mut out = String::new();
    let mut msg_no = 0u32;
    for &h in hs {
        let Some(members) = households.get(h) else {
            continue;
        };
        let mut chosen: Vec<usize> = members
            .iter()
            .copied()
            .filter(|_| ctx.rng.gen_bool(0.6))
            .collect();
        if chosen.is_empty() {
            chosen.extend(members.first().copied());
        }
        for k in chosen {
            let Some(p) = pop.get(k) else { continue };
            msg_no += 1;
            let mut els = set_of(&[Element::Name, Element::Dob, Element::MedicalRecordNumber]);
            let sd = ctx.service_date();
            let ts = format!(
                "{}{:02}{:02}00",
                ymd(sd),
                ctx.rng.gen_range(0..24u32),
                ctx.rng.gen_range(0..60u32)
            );
            tb.decoy("service_date", &ymd(sd));
            let event = pick(&mut ctx.rng, &["A04", "A08", "A01", "A03"]);
            let ctl = if ctx.chance(0.5) {
                let v = ctx.ssn_like();
                tb.decoy("control_number", &v);
                v
            } else {
                format!("MSG{msg_no:06}")
            };
            let msh = [
                format!("MSH{f}{c}{r}\\&"),
                "REGSYS".into(),
                fac.into(),
                "LOCKBOX".into(),
                "PARTNER01".into(),
                ts.clone(),
                String::new(),
                comp(&["ADT", event, "ADT_A01"]),
                ctl,
                "P".into(),
                "2.5.1".into(),
            ];
            // MSH-1 is the separator itself: "MSH|^~\&|..." joins from MSH-2.
            out.push_str(&msh.join(&fs));
            out.push_str(seg_end);
            out.push_str(&["EVN", event, &ts].join(&fs));
            out.push_str(seg_end);

            // PID-3 identifiers.
            let mut ids = vec![comp(&[&p.mrn, "", "", fac, "MR"])];
            let mut pid19 = String::new();
            if ctx.chance(0.03) {
                let bad = invalid_ssn(&mut ctx.rng);
                tb.decoy("invalid_ssn", &bad);
                pid19 = ssn_text(ctx, &bad);
            } else if let Some(s) = &p.ssn {
                let in3 = ctx.chance(0.5);
                let in19 = ctx.chance(0.45);
                if in3 {
                    ids.push(comp(&[s, "", "", "SSA", "SS"]));
                }
                if in19 {
                    pid19 = ssn_text(ctx, s);
                }
                if in3 || in19 {
                    els.insert(Element::Ssn);
                }
            }
            if let Some(m) = &p.mbi {
                if ctx.chance(0.7) {
                    ids.push(comp(&[m, "", "", "CMS", "MC"]));
                    els.insert(Element::Mbi);
                }
            }
            if let Some(m) = &p.medicaid_id {
                if ctx.chance(0.6) {
                    ids.push(comp(&[m, "", "", "STATE", "MA"]));
                    els.insert(Element::MedicaidId);
                }
            }
            if ctx.chance(0.25) {
                ids.push(comp(&[&p.member_id, "", "", "PLAN", "MB"]));
                els.insert(Element::MemberId);
            }
            let name = comp(&[&p.last, &p.first, &p.middle, "", "", "", "L"]);
            let addr = if ctx.chance(0.9) {
                els = els.union(address_elements(p));
                let zip = if p.zip.len() == 9 && p.zip.bytes().all(|b| b.is_ascii_digit()) {
                    tb.decoy("zip4", &p.zip);
                    format!(
                        "{}-{}",
                        p.zip.get(..5).unwrap_or(""),
                        p.zip.get(5..).unwrap_or("")
                    )
                } else {
                    p.zip.clone()
                };
                let l1 = p.street.first().map(String::as_str).unwrap_or("");
                let l2 = p.street.get(1).map(String::as_str).unwrap_or("");
                comp(&[
                    &l1.to_uppercase(),
                    &l2.to_uppercase(),
                    &p.city.to_uppercase(),
                    &p.state,
                    &zip,
                    "USA",
                    "H",
                ])
            } else {
                String::new()
            };
            let mut tel: Vec<String> = Vec::new();
            if ctx.chance(0.85) {
                for ph in &p.phones {
                    let (a, x, l) = (
                        ph.get(..3).unwrap_or(""),
                        ph.get(3..6).unwrap_or(""),
                        ph.get(6..).unwrap_or(""),
                    );
                    tel.push(match ctx.rng.gen_range(0..3) {
                        0 => comp(&["", "PRN", "PH", "", "1", a, &format!("{x}{l}")]),
                        1 => comp(&[&format!("({a}){x}-{l}"), "PRN", "PH"]),
                        _ => format!("{a}-{x}-{l}"),
                    });
                    els.insert(Element::Phone);
                }
            }
            if let Some(e) = &p.email {
                if ctx.chance(0.6) {
                    tel.push(comp(&["", "NET", "Internet", e]));
                    els.insert(Element::Email);
                }
            }
            let acct = if ctx.chance(0.7) {
                els.insert(Element::AccountNumber);
                comp(&[
                    &format!("ACCT{:07}", ctx.rng.gen_range(0..10_000_000u32)),
                    "",
                    "",
                    fac,
                    "AN",
                ])
            } else {
                String::new()
            };
            let mut pid: Vec<String> = vec![String::new(); 20];
            let mut put = |i: usize, v: String| {
                if let Some(slot) = pid.get_mut(i) {
                    *slot = v;
                }
            };
            put(0, "PID".into());
            put(1, "1".into());
            put(3, ids.join(&rs));
            put(5, name);
            put(7, ymd(p.dob));
            put(8, p.sex.clone());
            put(11, addr);
            put(13, tel.join(&rs));
            put(18, acct);
            put(19, pid19);
            while pid.len() > 1 && pid.last().is_some_and(String::is_empty) {
                pid.pop();
            }
            out.push_str(&pid.join(&fs));
            out.push_str(seg_end);

            // PV1: attending clinician (provider data) and a visit number.
            let (dl, df) = pick(&mut ctx.rng, &PROVIDERS);
            let npi = ctx.npi();
            tb.decoy("npi", &npi);
            tb.provider(dl, df);
            let mut pv1: Vec<String> = vec![String::new(); 45];
            let mut put = |i: usize, v: String| {
                if let Some(slot) = pv1.get_mut(i) {
                    *slot = v;
                }
            };
            put(0, "PV1".into());
            put(1, "1".into());
            put(2, "O".into());
            put(3, comp(&["CLINIC1", "", "", fac]));
            put(
                7,
                comp(&[&npi, dl, df, "", "", "", "MD", "", "", "", "", "", "NPI"]),
            );
            let visit = ctx.ssn_like();
            tb.decoy("visit_number", &visit);
            put(19, visit);
            put(44, ts.clone());
            out.push_str(&pv1.join(&fs));
            out.push_str(seg_end);

            if ctx.chance(0.75) {
                for (j, dx) in p.diagnoses.iter().enumerate() {
                    let text = DX_TEXT
                        .iter()
                        .find(|d| d.0 == dx)
                        .map(|d| d.1)
                        .unwrap_or("");
                    let code = if ctx.chance(0.8) {
                        dotted(dx)
                    } else {
                        dx.clone()
                    };
                    let dg = [
                        "DG1".to_owned(),
                        (j + 1).to_string(),
                        String::new(),
                        comp(&[&code, text, "I10"]),
                        String::new(),
                        ymd(sd),
                        "W".into(),
                    ];
                    out.push_str(&dg.join(&fs));
                    out.push_str(seg_end);
                }
                els.insert(Element::Diagnosis);
            }
            tb.person(k, "patient", els);
        }
    }
    let ext = pick(&mut ctx.rng, &["hl7", "hl7", "txt", "adt"]);
    (format!("adt_{:03}.{ext}", n + 1), out.into_bytes())
}
