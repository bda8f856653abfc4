//! Accuracy of the inventory against synthetic ground truth (lockbox-synth): for several seeds and every
//! format, scan each generated file (fed in random chunk sizes), map each reported person to an invented
//! person, and measure identity recall/precision, per-element recall/precision (per file and person, with
//! the values checked) and decoys reported as patient data.
//!
//! `cargo test --release -p lockbox-inventory --test accuracy -- --nocapture` prints the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap, HashSet};

use lockbox_inventory::fingerprint::normalize_name;
use lockbox_inventory::{Element, ElementSet, Limits, Person, Scanner};
use lockbox_synth::{generate, GeneratedFile, Spec, SynthPerson, ALL_FORMATS};

const SEEDS: [u64; 3] = [20_260_115, 7, 424_242];
const PEOPLE: usize = 2000;

/// Small deterministic PRNG for chunk sizes (xorshift64*).
struct Chunks(u64);
impl Chunks {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn size(&mut self) -> usize {
        let r = self.next();
        match r % 10 {
            0 => 1 + (r >> 8) as usize % 7,
            1 | 2 => 1 + (r >> 8) as usize % 97,
            _ => 1 + (r >> 8) as usize % 8192,
        }
    }
}

fn scan(bytes: &[u8], seed: u64) -> (Vec<Person>, lockbox_inventory::ScanResult) {
    let mut chunks = Chunks(seed | 1);
    let mut out = Vec::new();
    let mut sc = Scanner::new(Limits::default());
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = chunks.size().min(rest.len());
        let (a, b) = rest.split_at(n);
        sc.feed(a, &mut |p| out.push(p));
        rest = b;
    }
    let res = sc.finish(&mut |p| out.push(p));
    (out, res)
}

fn norm_id(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase()
}

fn ymd(d: (u16, u8, u8)) -> String {
    format!("{:04}{:02}{:02}", d.0, d.1, d.2)
}

/// (last name, first name, date of birth), normalized.
type NameDob = (String, String, (u16, u8, u8));

struct Index {
    ssn: HashMap<String, usize>,
    name_dob: HashMap<NameDob, usize>,
    ids: HashMap<String, usize>,
}

impl Index {
    fn new(pop: &[SynthPerson]) -> Self {
        let mut ix = Index {
            ssn: HashMap::new(),
            name_dob: HashMap::new(),
            ids: HashMap::new(),
        };
        for p in pop {
            if let Some(s) = &p.ssn {
                ix.ssn.insert(s.clone(), p.key);
            }
            ix.name_dob.insert(
                (normalize_name(&p.last), normalize_name(&p.first), p.dob),
                p.key,
            );
            for id in [
                Some(&p.member_id),
                Some(&p.mrn),
                p.mbi.as_ref(),
                p.medicaid_id.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                ix.ids.insert(norm_id(id), p.key);
            }
        }
        ix
    }

    /// By SSN if present, else name + DOB, else member id / MRN / MBI / Medicaid id.
    fn find(&self, p: &Person) -> Option<usize> {
        if let Some(s) = &p.ssn {
            if let Some(k) = self.ssn.get(s) {
                return Some(*k);
            }
        }
        if let (Some(n), Some(d)) = (&p.name, p.dob) {
            if let Some(k) =
                self.name_dob
                    .get(&(normalize_name(&n.last), normalize_name(&n.first), d))
            {
                return Some(*k);
            }
        }
        [
            &p.member_id,
            &p.medical_record_number,
            &p.mbi,
            &p.medicaid_id,
        ]
        .into_iter()
        .flatten()
        .find_map(|v| self.ids.get(&norm_id(v)).copied())
    }
}

/// Whether the value the parser reported for element `e` is this person's.
fn value_ok(e: Element, p: &Person, sp: &SynthPerson) -> bool {
    let addrs: Vec<_> = [p.address.as_ref(), p.mailing_address.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    match e {
        Element::Name => p.name.as_ref().is_some_and(|n| {
            normalize_name(&n.last) == normalize_name(&sp.last)
                && normalize_name(&n.first) == normalize_name(&sp.first)
        }),
        Element::Ssn => p.ssn.is_some() && p.ssn == sp.ssn,
        Element::Mbi => p.mbi.is_some() && p.mbi == sp.mbi,
        Element::Hicn => false,
        Element::MedicaidId => {
            p.medicaid_id.as_deref().map(norm_id) == sp.medicaid_id.as_deref().map(norm_id)
        }
        Element::MemberId => p.member_id.as_deref().map(norm_id) == Some(norm_id(&sp.member_id)),
        Element::MedicalRecordNumber => {
            p.medical_record_number.as_deref().map(norm_id) == Some(norm_id(&sp.mrn))
        }
        Element::AccountNumber => true,
        Element::Dob => p.dob == Some(sp.dob),
        Element::DeathDate => p.death_date.is_some() && p.death_date == sp.death_date,
        Element::Street => {
            let want = sp.street.first().map(|s| norm_id(s));
            addrs
                .iter()
                .any(|a| a.street.first().map(|s| norm_id(s)) == want)
        }
        Element::City => addrs
            .iter()
            .any(|a| normalize_name(&a.city) == normalize_name(&sp.city)),
        Element::State => addrs.iter().any(|a| a.state == sp.state),
        Element::Zip => addrs.iter().any(|a| a.zip == sp.zip),
        Element::Phone => p.phones.iter().all(|ph| sp.phones.contains(ph)),
        Element::Email => p
            .emails
            .iter()
            .all(|m| sp.email.as_deref() == Some(m.as_str())),
        Element::Diagnosis => p.diagnoses.iter().all(|d| sp.diagnoses.contains(d)),
    }
}

#[derive(Default, Clone)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl Counts {
    fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }
    fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }
}

#[derive(Default)]
struct Stats {
    files: u64,
    true_persons: u64,
    found: u64,
    emitted: u64,
    matched_emitted: u64,
    elements: BTreeMap<Element, Counts>,
    decoys: u64,
    misdetected: Vec<String>,
    not_complete: Vec<String>,
    examples: Vec<String>,
}

impl Stats {
    fn recall(&self) -> f64 {
        if self.true_persons == 0 {
            1.0
        } else {
            self.found as f64 / self.true_persons as f64
        }
    }
    fn precision(&self) -> f64 {
        if self.emitted == 0 {
            if self.true_persons == 0 {
                1.0
            } else {
                0.0
            }
        } else {
            self.matched_emitted as f64 / self.emitted as f64
        }
    }
    fn add(&mut self, o: &Stats) {
        self.files += o.files;
        self.true_persons += o.true_persons;
        self.found += o.found;
        self.emitted += o.emitted;
        self.matched_emitted += o.matched_emitted;
        self.decoys += o.decoys;
        for (e, c) in &o.elements {
            let m = self.elements.entry(*e).or_default();
            m.tp += c.tp;
            m.fp += c.fp;
            m.fn_ += c.fn_;
        }
    }
    fn example(&mut self, s: String) {
        if self.examples.len() < 6 {
            self.examples.push(s);
        }
    }
}

fn decoy_hits(
    p: &Person,
    sp: Option<&SynthPerson>,
    ids: &HashSet<String>,
    dates: &HashSet<String>,
    providers: &HashSet<String>,
) -> Vec<String> {
    let mut hits = Vec::new();
    let mut check = |what: &str, v: &Option<String>, own: Option<&str>| {
        if let Some(v) = v {
            let n = norm_id(v);
            if ids.contains(&n) && own.map(norm_id) != Some(n.clone()) {
                hits.push(format!("{what}={v}"));
            }
        }
    };
    check("ssn", &p.ssn, sp.and_then(|s| s.ssn.as_deref()));
    check("mbi", &p.mbi, sp.and_then(|s| s.mbi.as_deref()));
    check("hicn", &p.hicn, None);
    check(
        "medicaid_id",
        &p.medicaid_id,
        sp.and_then(|s| s.medicaid_id.as_deref()),
    );
    check("member_id", &p.member_id, sp.map(|s| s.member_id.as_str()));
    check("mrn", &p.medical_record_number, sp.map(|s| s.mrn.as_str()));
    check("account_number", &p.account_number, None);
    for ph in &p.phones {
        check("phone", &Some(ph.clone()), None);
    }
    // A service date reported as a date of birth or death (unless it is that person's real one).
    let own = [sp.map(|s| s.dob), sp.and_then(|s| s.death_date)];
    for (what, d, own) in [("dob", p.dob, own[0]), ("death_date", p.death_date, own[1])] {
        if let Some(d) = d {
            if dates.contains(&ymd(d)) && own != Some(d) {
                hits.push(format!("{what}={}", ymd(d)));
            }
        }
    }
    if let Some(n) = &p.name {
        let key = format!("{}|{}", normalize_name(&n.last), normalize_name(&n.first));
        if providers.contains(&key) {
            hits.push(format!("provider name {key}"));
        }
    }
    hits
}

fn evaluate(f: &GeneratedFile, pop: &[SynthPerson], ix: &Index, scan_seed: u64) -> Stats {
    let mut st = Stats {
        files: 1,
        ..Stats::default()
    };
    let (emitted, res) = scan(&f.bytes, scan_seed);
    let label = format!("{}/{}", f.org, f.name);
    if res.format != f.format {
        st.misdetected
            .push(format!("{label}: detected {:?}", res.format));
    }
    if res.status != lockbox_inventory::ScanStatus::Complete {
        st.not_complete.push(format!("{label}: {:?}", res.status));
    }
    let truth: HashMap<usize, ElementSet> = f
        .truth
        .persons
        .iter()
        .map(|t| (t.key, t.element_set()))
        .collect();
    let roles: HashMap<usize, &str> = f
        .truth
        .persons
        .iter()
        .map(|t| (t.key, t.role.as_str()))
        .collect();
    let mut ids = HashSet::new();
    let mut dates = HashSet::new();
    let mut providers = HashSet::new();
    for d in &f.truth.decoys {
        match d.kind.as_str() {
            "service_date" => dates.insert(d.value.clone()),
            "provider_name" => providers.insert(d.value.clone()),
            _ => ids.insert(d.value.clone()),
        };
    }
    st.true_persons = truth.len() as u64;
    st.emitted = emitted.len() as u64;
    // (key) -> elements reported with this person's values, and elements reported with wrong values.
    let mut got: HashMap<usize, (ElementSet, ElementSet)> = HashMap::new();
    for p in &emitted {
        let key = ix.find(p);
        let sp = key.and_then(|k| pop.get(k));
        let hits = decoy_hits(p, sp, &ids, &dates, &providers);
        if !hits.is_empty() {
            st.decoys += hits.len() as u64;
            st.example(format!(
                "{label}: decoy reported as patient data: {}",
                hits.join(", ")
            ));
        }
        match key.filter(|k| truth.contains_key(k)) {
            Some(k) => {
                st.matched_emitted += 1;
                let sp = &pop[k];
                let entry = got.entry(k).or_default();
                for e in p.elements().iter() {
                    if value_ok(e, p, sp) {
                        entry.0.insert(e);
                    } else {
                        entry.1.insert(e);
                    }
                }
            }
            None => {
                for e in p.elements().iter() {
                    st.elements.entry(e).or_default().fp += 1;
                }
                st.example(format!(
                    "{label}: reported person not in this file's truth (key {key:?}): name {:?} dob {:?} elements {:?}",
                    p.name.as_ref().map(|n| format!("{} {}", n.first, n.last)),
                    p.dob,
                    p.elements().iter().collect::<Vec<_>>()
                ));
            }
        }
    }
    for (k, want) in &truth {
        let (ok, bad) = got.get(k).copied().unwrap_or_default();
        if got.contains_key(k) {
            st.found += 1;
        } else {
            st.example(format!("{label}: missed person {k} ({})", roles[k]));
        }
        let mut missing = Vec::new();
        let mut extra = Vec::new();
        for e in Element::ALL {
            let c = st.elements.entry(e).or_default();
            let t = want.contains(e);
            let good = ok.contains(e);
            if t && good {
                c.tp += 1;
            }
            if t && !good {
                c.fn_ += 1;
                missing.push(e);
            }
            if (!t && (good || bad.contains(e))) || (t && !good && bad.contains(e)) {
                c.fp += 1;
                extra.push(e);
            }
        }
        if got.contains_key(k) && (!missing.is_empty() || !extra.is_empty()) {
            st.example(format!(
                "{label}: person {k} ({}): missing {missing:?}, extra/wrong {extra:?}",
                roles[k]
            ));
        }
    }
    st
}

fn print(name: &str, s: &Stats) {
    eprintln!(
        "{name:<8} files {:>3}  persons {:>6}  identity recall {:.4} precision {:.4}  (emitted {}, matched {})  decoys {}",
        s.files,
        s.true_persons,
        s.recall(),
        s.precision(),
        s.emitted,
        s.matched_emitted,
        s.decoys
    );
    let mut line = String::new();
    for (e, c) in &s.elements {
        if c.tp + c.fp + c.fn_ == 0 {
            continue;
        }
        line.push_str(&format!(
            "  {e}: R {:.3} P {:.3} (n {})",
            c.recall(),
            c.precision(),
            c.tp + c.fn_
        ));
    }
    eprintln!("        {line}");
    for m in s.misdetected.iter().chain(&s.not_complete).take(4) {
        eprintln!("        ! {m}");
    }
    for ex in &s.examples {
        eprintln!("        e.g. {ex}");
    }
}

#[test]
fn accuracy_against_synthetic_ground_truth() {
    let mut per_format: BTreeMap<&'static str, Stats> = BTreeMap::new();
    for (i, seed) in SEEDS.iter().enumerate() {
        let corpus = generate(
            *seed,
            &Spec {
                people: PEOPLE,
                files_per_format: 3,
                ..Spec::default()
            },
        );
        let ix = Index::new(&corpus.population);
        for (j, f) in corpus.files.iter().enumerate() {
            let st = evaluate(
                f,
                &corpus.population,
                &ix,
                seed.wrapping_mul(31).wrapping_add((i * 1000 + j) as u64),
            );
            let agg = per_format.entry(f.format.as_str()).or_default();
            agg.add(&st);
            agg.misdetected.extend(st.misdetected);
            agg.not_complete.extend(st.not_complete);
            for ex in st.examples {
                agg.example(ex);
            }
        }
    }
    let mut overall = Stats::default();
    eprintln!(
        "\n== inventory accuracy ({} seeds x {PEOPLE} people) ==",
        SEEDS.len()
    );
    for f in ALL_FORMATS {
        if let Some(s) = per_format.get(f.as_str()) {
            print(f.as_str(), s);
            overall.add(s);
        }
    }
    print("overall", &overall);

    let mut failures = Vec::new();
    for (name, s) in per_format
        .iter()
        .map(|(k, v)| (*k, v))
        .chain([("overall", &overall)])
    {
        if s.recall() < 0.995 {
            failures.push(format!("{name}: identity recall {:.4} < 0.995", s.recall()));
        }
        if s.precision() < 0.995 {
            failures.push(format!(
                "{name}: identity precision {:.4} < 0.995",
                s.precision()
            ));
        }
        if s.decoys != 0 {
            failures.push(format!(
                "{name}: {} decoys reported as patient data",
                s.decoys
            ));
        }
        for (e, c) in &s.elements {
            // Per format only where the sample is large enough for 0.99 to mean something; overall always.
            let n = c.tp + c.fn_ + c.fp;
            if name != "overall" && n < 200 {
                continue;
            }
            if c.recall() < 0.99 {
                failures.push(format!("{name}: {e} recall {:.4} < 0.99", c.recall()));
            }
            if c.precision() < 0.99 {
                failures.push(format!("{name}: {e} precision {:.4} < 0.99", c.precision()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "accuracy below thresholds:\n  {}",
        failures.join("\n  ")
    );
}
