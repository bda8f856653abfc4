//! The mailing list: decrypts only the affected versions of one organization whose keys still exist,
//! runs the classifier again, fingerprints each person found, and keeps plaintext only for people whose
//! fingerprints belong to an affected individual. The latest file (commit order) wins for the address.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;

use lockbox_inventory::{Address, Fingerprinter, Limits, Person, Scanner};
use lockbox_store::ExposureFileRow;

use crate::engine::Individual;
use crate::PlaintextSource;

pub(crate) const CSV_HEADER: [&str; 16] = [
    "person_ref",
    "last_name",
    "first_name",
    "middle_name",
    "street_1",
    "street_2",
    "city",
    "state",
    "zip",
    "state_of_residence",
    "elements_exposed",
    "deceased",
    "minor",
    "no_valid_address",
    "date_of_birth",
    "contact_source",
];

/// What the mailing list needs about one person, in plaintext.
#[derive(Debug, Clone, Default)]
pub(crate) struct Contact {
    last: String,
    first: String,
    middle: String,
    address: Option<Address>,
    dob: Option<(u16, u8, u8)>,
    pub(crate) deceased: bool,
    /// File id the address (or, without one, the name) came from.
    source_file: i64,
}

impl Contact {
    pub(crate) fn is_minor(&self, at: time::Date) -> bool {
        let Some((y, m, d)) = self.dob else {
            return false;
        };
        let (ay, am, ad) = (at.year(), u8::from(at.month()), at.day());
        let mut age = ay - i32::from(y);
        if (am, ad) < (m, d) {
            age -= 1;
        }
        (0..18).contains(&age)
    }

    fn address_valid(&self) -> bool {
        self.address.as_ref().is_some_and(valid_mailing_address)
    }
}

/// A street line, a city, a USPS code and a 5-digit ZIP (optionally +4).
pub(crate) fn valid_mailing_address(a: &Address) -> bool {
    a.street.first().is_some_and(|s| !s.trim().is_empty())
        && !a.city.trim().is_empty()
        && lockbox_inventory::validate::state(&a.state).is_some()
        && lockbox_inventory::validate::zip(&a.zip).is_some()
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) decrypted: u64,
    pub(crate) unrecoverable: u64,
    pub(crate) failed: u64,
    pub(crate) failures: Vec<i64>,
}

/// For each individual (same order), their contact details if any readable file holds them.
pub(crate) fn extract(
    src: &dyn PlaintextSource,
    fpr: &Fingerprinter,
    files: &[&ExposureFileRow],
    individuals: &[Individual],
    person_of: impl Fn(&[u8; 32]) -> Option<u32>,
) -> (Vec<Option<Contact>>, Stats) {
    let index: HashMap<u32, usize> = individuals
        .iter()
        .enumerate()
        .map(|(i, ind)| (ind.person, i))
        .collect();
    let mut out: Vec<Option<Contact>> = vec![None; individuals.len()];
    let mut stats = Stats::default();
    // `files` is in commit order: later files overwrite earlier ones.
    for f in files {
        if f.key_destroyed {
            stats.unrecoverable += 1;
            continue;
        }
        let mut reader = match src.open(f.id) {
            Ok(r) => r,
            Err(_) => {
                stats.failed += 1;
                stats.failures.push(f.id.0);
                continue;
            }
        };
        let mut scanner = Scanner::new(Limits::default());
        let mut buf = vec![0u8; 256 * 1024];
        let file_id = f.id.0;
        let mut take = |p: Person| {
            let rec = fpr.record(&p);
            let person = [rec.fp_ssn, rec.fp_name_dob, rec.fp_other]
                .iter()
                .flatten()
                .find_map(&person_of);
            let Some(slot) = person
                .and_then(|x| index.get(&x))
                .and_then(|&i| out.get_mut(i))
            else {
                return;
            };
            let c = slot.get_or_insert_with(Contact::default);
            if let Some(n) = &p.name {
                c.last.clone_from(&n.last);
                c.first.clone_from(&n.first);
                c.middle.clone_from(&n.middle);
                if c.address.is_none() {
                    c.source_file = file_id;
                }
            }
            if let Some(a) = p.mailing_address.or(p.address) {
                c.address = Some(a);
                c.source_file = file_id;
            }
            if p.dob.is_some() {
                c.dob = p.dob;
            }
            if p.death_date.is_some() {
                c.deceased = true;
            }
        };
        let mut ok = true;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => scanner.feed(buf.get(..n).unwrap_or_default(), &mut take),
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        scanner.finish(&mut take);
        if ok {
            stats.decrypted += 1;
        } else {
            stats.failed += 1;
            stats.failures.push(f.id.0);
        }
    }
    (out, stats)
}

fn yn(b: bool) -> Cow<'static, str> {
    Cow::Borrowed(if b { "yes" } else { "no" })
}

/// One individuals.csv record. Cells are borrowed where they can be: this runs once per individual.
pub(crate) fn csv_cells<'a>(
    ind: &Individual,
    contact: Option<&'a Contact>,
    deceased: bool,
    minor: bool,
    elements: &[&str],
) -> [Cow<'a, str>; 16] {
    let residence = if ind.state == [0, 0] {
        Cow::Borrowed("")
    } else {
        Cow::Owned(String::from_utf8_lossy(&ind.state).into_owned())
    };
    let none = || Cow::Borrowed("");
    let (name, addr, dob, source, valid) = match contact {
        Some(c) => {
            let a = c.address.as_ref();
            (
                [
                    Cow::Borrowed(c.last.as_str()),
                    Cow::Borrowed(c.first.as_str()),
                    Cow::Borrowed(c.middle.as_str()),
                ],
                [
                    a.and_then(|a| a.street.first())
                        .map_or_else(none, |s| Cow::Borrowed(s.as_str())),
                    a.and_then(|a| a.street.get(1))
                        .map_or_else(none, |s| Cow::Borrowed(s.as_str())),
                    a.map_or_else(none, |a| Cow::Borrowed(a.city.as_str())),
                    a.map_or_else(none, |a| Cow::Borrowed(a.state.as_str())),
                    a.map_or_else(none, |a| Cow::Borrowed(a.zip.as_str())),
                ],
                c.dob.map_or_else(none, |(y, m, d)| {
                    Cow::Owned(format!("{y:04}-{m:02}-{d:02}"))
                }),
                Cow::Owned(format!("file #{}", c.source_file)),
                c.address_valid(),
            )
        }
        None => (
            [none(), none(), none()],
            [none(), none(), none(), none(), none()],
            none(),
            Cow::Borrowed(if ind.recoverable {
                "not re-extracted"
            } else {
                "unrecoverable: only in deleted versions (keys destroyed)"
            }),
            ind.address_valid && ind.recoverable,
        ),
    };
    let [last, first, middle] = name;
    let [street_1, street_2, city, state, zip] = addr;
    [
        Cow::Owned(format!("P{:08}", ind.person)),
        last,
        first,
        middle,
        street_1,
        street_2,
        city,
        state,
        zip,
        residence,
        Cow::Owned(elements.join(";")),
        yn(deceased),
        yn(minor),
        yn(!valid),
        dob,
        source,
    ]
}
