#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashSet;

use lockbox_inventory::fingerprint::normalize_name;
use lockbox_inventory::{validate, Element, Format};

use super::*;

fn corpus(seed: u64) -> Corpus {
    generate(
        seed,
        &Spec {
            people: 600,
            ..Spec::default()
        },
    )
}

#[test]
fn deterministic() {
    let a = corpus(7);
    let b = corpus(7);
    assert_eq!(a.population, b.population);
    assert_eq!(a.files.len(), b.files.len());
    for (x, y) in a.files.iter().zip(&b.files) {
        assert_eq!(x.bytes, y.bytes);
        assert_eq!(x.truth, y.truth);
    }
    assert_ne!(corpus(8).population, a.population);
}

#[test]
fn population_rules() {
    let c = generate(
        3,
        &Spec {
            people: 3000,
            ..Spec::default()
        },
    );
    let pop = &c.population;
    assert_eq!(pop.len(), 3000);
    let n = pop.len() as f64;
    let mut ssns = HashSet::new();
    let mut names = HashSet::new();
    for p in pop {
        if let Some(s) = &p.ssn {
            assert_eq!(validate::ssn(s).as_deref(), Some(s.as_str()));
            assert!(ssns.insert(s.clone()), "unique SSN");
        }
        if let Some(m) = &p.mbi {
            assert_eq!(validate::mbi(m).as_deref(), Some(m.as_str()));
        }
        assert!(
            names.insert((normalize_name(&p.first), normalize_name(&p.last), p.dob)),
            "name+dob unique"
        );
        assert!(validate::dob(&ymd(p.dob), validate::today()).is_some());
        assert!(validate::state(&p.state).is_some());
        for ph in &p.phones {
            assert_eq!(validate::phone(ph).as_deref(), Some(ph.as_str()));
            assert_eq!(ph.get(3..8), Some("55501"));
        }
        if let Some(e) = &p.email {
            assert!(validate::email(e).is_some(), "{e}");
            assert!(e.contains("@example."));
        }
        for d in &p.diagnoses {
            assert_eq!(validate::diagnosis(d, false).as_deref(), Some(d.as_str()));
        }
        let valid = !p.street.is_empty() && validate::zip(&p.zip).is_some();
        assert_eq!(valid, p.address_valid);
        assert_eq!(p.deceased, p.death_date.is_some());
        let age = c_age(p.dob, (2026, 1, 15));
        assert_eq!(p.minor, age < 18);
    }
    let frac = |f: &dyn Fn(&SynthPerson) -> bool| pop.iter().filter(|p| f(p)).count() as f64 / n;
    let mbi = frac(&|p| p.mbi.is_some());
    let minors = frac(&|p| p.minor);
    let dead = frac(&|p| p.deceased);
    let bad_addr = frac(&|p| !p.address_valid);
    let no_ssn = frac(&|p| p.ssn.is_none());
    let high_area = frac(&|p| p.ssn.as_ref().is_some_and(|s| s.as_str() > "772"));
    eprintln!("mbi {mbi:.3} minors {minors:.3} deceased {dead:.3} bad address {bad_addr:.3} no ssn {no_ssn:.3} area>772 {high_area:.3}");
    assert!((0.22..0.38).contains(&mbi));
    assert!((0.1..0.35).contains(&minors));
    assert!((0.003..0.03).contains(&dead));
    assert!((0.01..0.06).contains(&bad_addr));
    assert!(no_ssn > 0.02 && high_area > 0.05);
    let accented = pop
        .iter()
        .filter(|p| !p.first.is_ascii() || !p.last.is_ascii())
        .count();
    let apostrophe = pop.iter().filter(|p| p.last.contains('\'')).count();
    let hyphen = pop
        .iter()
        .filter(|p| p.last.contains('-') || p.first.contains('-'))
        .count();
    assert!(accented > 0 && apostrophe > 0 && hyphen > 0);
}

fn c_age(dob: (u16, u8, u8), at: (u16, u8, u8)) -> u16 {
    let mut a = at.0 - dob.0;
    if (at.1, at.2) < (dob.1, dob.2) {
        a -= 1;
    }
    a
}

#[test]
fn files_and_truth() {
    let c = corpus(11);
    let formats: HashSet<Format> = c.files.iter().map(|f| f.format).collect();
    for f in ALL_FORMATS {
        assert!(formats.contains(&f), "{f:?}");
    }
    // The same person in several files and organizations.
    let mut seen: BTreeMap<usize, HashSet<&str>> = BTreeMap::new();
    let mut files_per: BTreeMap<usize, usize> = BTreeMap::new();
    for f in &c.files {
        assert!(!f.bytes.is_empty());
        assert!(!f.truth.persons.is_empty(), "{}", f.name);
        for tp in &f.truth.persons {
            seen.entry(tp.key).or_default().insert(&f.org);
            *files_per.entry(tp.key).or_default() += 1;
            let els = tp.element_set();
            assert!(els.contains(Element::Name));
            let p = &c.population[tp.key];
            if els.contains(Element::Ssn) {
                assert!(p.ssn.is_some());
            }
            if els.contains(Element::Mbi) {
                assert!(p.mbi.is_some());
            }
            if els.contains(Element::DeathDate) {
                assert!(p.deceased);
            }
        }
        // Decoys never collide with a real SSN.
        for d in &f.truth.decoys {
            if d.kind == "claim_number" {
                assert!(
                    validate::ssn(&d.value).is_some(),
                    "claim numbers pass the SSN rules"
                );
                assert!(!c
                    .population
                    .iter()
                    .any(|p| p.ssn.as_deref() == Some(d.value.as_str())));
            }
            if d.kind == "npi" {
                assert!(validate::npi(&d.value).is_some());
            }
            if d.kind == "invalid_ssn" {
                assert!(validate::ssn(&d.value).is_none());
            }
        }
    }
    assert!(
        seen.values().filter(|o| o.len() > 1).count() > 50,
        "people in several orgs"
    );
    assert!(
        files_per.values().filter(|n| **n > 2).count() > 100,
        "people in several files"
    );
    // Dependents in 834 never get a member id; some files omit an SSN the person has.
    let mut dep = 0;
    let mut omitted = 0;
    for f in &c.files {
        for tp in &f.truth.persons {
            if f.format == Format::X12_834 && tp.role == "dependent" {
                dep += 1;
                assert!(!tp.element_set().contains(Element::MemberId));
            }
            if c.population[tp.key].ssn.is_some() && !tp.element_set().contains(Element::Ssn) {
                omitted += 1;
            }
        }
    }
    assert!(dep > 10 && omitted > 50);
}

#[test]
fn x12_envelopes() {
    let c = corpus(5);
    let mut delims = HashSet::new();
    for f in c
        .files
        .iter()
        .filter(|f| matches!(f.format, Format::X12_834 | Format::X12_837))
    {
        let b = &f.bytes;
        assert_eq!(x12::isa_len(b), Some(106), "{}", f.name);
        let elem = b[3] as char;
        let seg = b[105] as char;
        let comp = b[104] as char;
        delims.insert((elem, comp, seg, b.get(106).copied()));
        let text = String::from_utf8(b.clone()).unwrap();
        assert!(text.is_ascii(), "X12 is ASCII");
        let segs: Vec<&str> = text
            .split(seg)
            .map(|s| s.trim_start_matches(['\r', '\n']))
            .filter(|s| !s.is_empty())
            .collect();
        let st = segs
            .iter()
            .position(|s| s.starts_with(&format!("ST{elem}")))
            .unwrap();
        let se = segs
            .iter()
            .position(|s| s.starts_with(&format!("SE{elem}")))
            .unwrap();
        let count: usize = segs[se].split(elem).nth(1).unwrap().parse().unwrap();
        assert_eq!(count, se - st + 1, "SE01 in {}", f.name);
        let gs = segs
            .iter()
            .find(|s| s.starts_with(&format!("GS{elem}")))
            .unwrap();
        let want = if f.format == Format::X12_834 {
            "005010X220A1"
        } else {
            "005010X222A1"
        };
        assert!(gs.ends_with(want));
    }
    let c2 = generate(
        99,
        &Spec {
            people: 300,
            files_per_format: 12,
            formats: vec![Format::X12_834],
            ..Spec::default()
        },
    );
    for f in &c2.files {
        delims.insert((
            f.bytes[3] as char,
            f.bytes[104] as char,
            f.bytes[105] as char,
            f.bytes.get(106).copied(),
        ));
    }
    assert!(delims.len() > 2, "delimiters vary: {delims:?}");
}

#[test]
fn hl7_and_tabular_shapes() {
    let c = corpus(21);
    for f in &c.files {
        let text = String::from_utf8(f.bytes.clone()).unwrap();
        match f.format {
            Format::Hl7v2 => {
                assert!(text.starts_with("MSH"));
                let msgs = text.matches("MSH").count();
                assert_eq!(msgs, f.truth.persons.len());
            }
            Format::Ndjson => {
                for line in text.lines() {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    assert!(v.get("address").is_none_or(|a| a.is_object()));
                    assert!(v.get("phones").unwrap().is_array());
                }
            }
            Format::Json => {
                let _: serde_json::Value = serde_json::from_str(&text).unwrap();
            }
            _ => {}
        }
    }
}
