//! Building blocks: name and place lists, identifier generators, dates, the population.

use std::collections::HashSet;

use lockbox_inventory::fingerprint::normalize_name;
use lockbox_inventory::validate;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::SynthPerson;

pub(crate) const ORG_NAMES: [&str; 8] = [
    "prairie-health-plan",
    "good-samaritan-hospital",
    "lakeside-clinic",
    "summit-medicaid-mco",
    "riverbend-benefits-tpa",
    "northstar-medical-group",
    "harbor-pharmacy-services",
    "mesa-behavioral-health",
];

// Accented letters only from the set fingerprint::normalize_name folds.
const FEMALE: [&str; 30] = [
    "Jane",
    "Maria",
    "María",
    "Zoë",
    "Renée",
    "Chloé",
    "Inés",
    "Ana",
    "Lucía",
    "Sofía",
    "Emily",
    "Olivia",
    "Aaliyah",
    "Mary-Kate",
    "Anne-Marie",
    "Ngoc",
    "Mei",
    "Priya",
    "Fatima",
    "Siobhán",
    "Brenda",
    "Karen",
    "Linda",
    "Dorothy",
    "Margaret",
    "Hélène",
    "Agnès",
    "Beatriz",
    "Noémie",
    "Yesenia",
];
const MALE: [&str; 28] = [
    "John",
    "José",
    "Luis",
    "François",
    "Jürgen",
    "Jean-Luc",
    "Ahmed",
    "Wei",
    "Raj",
    "Michael",
    "James",
    "Robert",
    "David",
    "William",
    "Tyrone",
    "DeShawn",
    "Seán",
    "Cody",
    "Liam",
    "Noah",
    "Andrés",
    "Joaquín",
    "Ángel",
    "Thomas",
    "Kwame",
    "Darnell",
    "Ethan",
    "Ignacio",
];
const LAST: [&str; 44] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "García",
    "Martínez",
    "Rodríguez",
    "Hernández",
    "López",
    "González",
    "Pérez",
    "Núñez",
    "Peña",
    "Nguyen",
    "Tran",
    "Kim",
    "Patel",
    "Müller",
    "Schröder",
    "O'Brien",
    "O'Connor",
    "D'Angelo",
    "O'Neil",
    "McDonald",
    "MacKenzie",
    "Smith-Jones",
    "Lopez-Rivera",
    "Taylor-Wood",
    "St. Clair",
    "De La Cruz",
    "Washington",
    "Jefferson",
    "Okafor",
    "Adeyemi",
    "Kowalski",
    "Nowak",
    "Çelik",
    "Ibáñez",
    "Lefèvre",
    "Yamamoto",
    "Begay",
    "Al-Sayed",
    "Van Buren",
];
/// Clinicians (provider data, never patients): surnames not used for patients.
pub(crate) const PROVIDERS: [(&str, &str); 8] = [
    ("WELBY", "MARCUS"),
    ("KILDARE", "JAMES"),
    ("QUINN", "MICHAELA"),
    ("HOUSE", "GREGORY"),
    ("GREY", "MEREDITH"),
    ("ROSS", "DOUGLAS"),
    ("CRANE", "FRASIER"),
    ("BAILEY", "MIRANDA"),
];
/// (city, state, ZIP prefix, weight).
const PLACES: [(&str, &str, &str, u32); 36] = [
    ("Springfield", "IL", "627", 20),
    ("Chicago", "IL", "606", 40),
    ("Peoria", "IL", "616", 10),
    ("Urbana", "IL", "618", 8),
    ("Naperville", "IL", "605", 10),
    ("Los Angeles", "CA", "900", 12),
    ("San Diego", "CA", "921", 8),
    ("Fresno", "CA", "937", 5),
    ("Austin", "TX", "787", 7),
    ("Houston", "TX", "770", 8),
    ("El Paso", "TX", "799", 4),
    ("Miami", "FL", "331", 7),
    ("Tampa", "FL", "336", 5),
    ("New York", "NY", "100", 8),
    ("Buffalo", "NY", "142", 3),
    ("Seattle", "WA", "981", 4),
    ("Denver", "CO", "802", 4),
    ("Cañon City", "CO", "812", 1),
    ("Atlanta", "GA", "303", 4),
    ("Phoenix", "AZ", "850", 4),
    ("Las Vegas", "NV", "891", 3),
    ("Boston", "MA", "021", 4),
    ("Portland", "OR", "972", 3),
    ("Detroit", "MI", "482", 4),
    ("Columbus", "OH", "432", 4),
    ("San Juan", "PR", "009", 2),
    ("Mayagüez", "PR", "006", 1),
    ("Washington", "DC", "200", 2),
    ("Honolulu", "HI", "968", 1),
    ("Anchorage", "AK", "995", 1),
    ("Burlington", "VT", "054", 1),
    ("Santa Fe", "NM", "875", 1),
    ("Hagatna", "GU", "969", 1),
    ("APO", "AE", "090", 1),
    ("Charlotte Amalie", "VI", "008", 1),
    ("Gary", "IN", "464", 3),
];
const STREETS: [&str; 14] = [
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Elm St",
    "Cedar Ln",
    "Washington Blvd",
    "Lake Shore Dr",
    "Pine Ct",
    "Sunset Rd",
    "Calle Sol",
    "Martin Luther King Jr Way",
    "Prairie View Rd",
    "Old Mill Rd",
    "Cherry Hill Pkwy",
];
const UNITS: [&str; 5] = ["Apt 4B", "Unit 12", "Apt 301", "Suite 200", "Lot 7"];
const BAD_ZIPS: [&str; 6] = ["00000", "1234", "ABCDE", "123456", "9999", "6270"];
/// Valid NANP area codes (2-9 start, not N11).
const AREA: [&str; 16] = [
    "217", "312", "773", "309", "415", "213", "512", "713", "305", "212", "206", "303", "404",
    "602", "617", "787",
];
/// ICD-10-CM codes, no dot.
pub(crate) const DIAGNOSES: [&str; 20] = [
    "E119", "I10", "J45909", "U071", "E785", "M545", "F329", "Z0000", "K219", "N390", "R0789",
    "J069", "E039", "F419", "G4733", "M170", "I2510", "Z23", "E6601", "O0900",
];
const MBI_LETTERS: &[u8] = b"ACDEFGHJKMNPQRTUVWXY";

pub(crate) fn pick<T: Copy + Default>(rng: &mut StdRng, s: &[T]) -> T {
    s.choose(rng).copied().unwrap_or_default()
}

pub fn ymd(d: (u16, u8, u8)) -> String {
    format!("{:04}{:02}{:02}", d.0, d.1, d.2)
}
pub(crate) fn iso(d: (u16, u8, u8)) -> String {
    format!("{:04}-{:02}-{:02}", d.0, d.1, d.2)
}
pub(crate) fn us(d: (u16, u8, u8)) -> String {
    format!("{:02}/{:02}/{:04}", d.1, d.2, d.0)
}

/// Days since 1970-01-01 (inverse of validate::civil_from_days).
pub(crate) fn days_from_civil(d: (u16, u8, u8)) -> i64 {
    let (y, m, d) = (i64::from(d.0), i64::from(d.1), i64::from(d.2));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Uppercase ASCII for X12: accents folded (the same letters fingerprint::normalize_name folds), other
/// non-ASCII dropped.
pub fn fold_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_uppercase());
        } else {
            let f = normalize_name(&c.to_string());
            out.push_str(&f);
        }
    }
    out
}

pub(crate) fn random_ssn(rng: &mut StdRng) -> String {
    loop {
        let area = rng.gen_range(1..900u32);
        let v = format!(
            "{:03}{:02}{:04}",
            area,
            rng.gen_range(1..100u32),
            rng.gen_range(1..10_000u32)
        );
        if validate::ssn(&v).is_some() && v != "123456789" {
            return v;
        }
    }
}

/// An SSN-shaped value that was never issued (area 000, 666 or 9xx).
pub(crate) fn invalid_ssn(rng: &mut StdRng) -> String {
    let area = match rng.gen_range(0..4) {
        0 => 0,
        1 => 666,
        _ => rng.gen_range(900..1000u32),
    };
    format!(
        "{:03}{:02}{:04}",
        area,
        rng.gen_range(0..100u32),
        rng.gen_range(0..10_000u32)
    )
}

pub(crate) fn random_npi(rng: &mut StdRng) -> String {
    loop {
        let base = format!(
            "{}{:08}",
            rng.gen_range(1..3u32),
            rng.gen_range(0..100_000_000u32)
        );
        for check in 0..10 {
            let v = format!("{base}{check}");
            if validate::npi(&v).is_some() {
                return v;
            }
        }
    }
}

fn random_mbi(rng: &mut StdRng) -> String {
    let letter = |rng: &mut StdRng| char::from(pick(rng, MBI_LETTERS));
    let digit = |rng: &mut StdRng| char::from(b'0' + rng.gen_range(0..10u8));
    let alnum = |rng: &mut StdRng| {
        if rng.gen_bool(0.5) {
            letter(rng)
        } else {
            digit(rng)
        }
    };
    let mut s = String::new();
    s.push(char::from(b'1' + rng.gen_range(0..9u8)));
    s.push(letter(rng));
    s.push(alnum(rng));
    s.push(digit(rng));
    s.push(letter(rng));
    s.push(alnum(rng));
    s.push(digit(rng));
    s.push(letter(rng));
    s.push(letter(rng));
    s.push(digit(rng));
    s.push(digit(rng));
    s
}

fn random_date(rng: &mut StdRng, from: (u16, u8, u8), to: (u16, u8, u8)) -> (u16, u8, u8) {
    validate::civil_from_days(rng.gen_range(days_from_civil(from)..=days_from_civil(to)))
}

fn years_before(d: (u16, u8, u8), years: u16) -> (u16, u8, u8) {
    let (y, m, day) = (d.0 - years, d.1, d.2);
    (y, m, day.min(28))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Age {
    Child,
    Adult,
    Elder,
}

fn dob_for(rng: &mut StdRng, age: Age, as_of: (u16, u8, u8)) -> (u16, u8, u8) {
    let (old, young) = match age {
        Age::Child => (16, 1),
        Age::Adult => (64, 19),
        Age::Elder => (98, 65),
    };
    // Born between `old + 1` years (exclusive) and `young` years before as_of.
    let from = years_before(as_of, old + 1);
    let to = years_before(as_of, young);
    let from = validate::civil_from_days(days_from_civil(from) + 1);
    random_date(rng, from, to)
}

struct Household {
    last: String,
    street: Vec<String>,
    city: String,
    state: String,
    zip: String,
    address_valid: bool,
    home_phone: Option<String>,
}

fn phone(rng: &mut StdRng) -> String {
    format!("{}55501{:02}", pick(rng, &AREA), rng.gen_range(0..100u32))
}

fn household(rng: &mut StdRng) -> Household {
    let total: u32 = PLACES.iter().map(|p| p.3).sum();
    let mut r = rng.gen_range(0..total);
    let mut place = PLACES[0];
    for p in PLACES {
        if r < p.3 {
            place = p;
            break;
        }
        r -= p.3;
    }
    let (city, state, prefix, _) = place;
    let mut street = vec![format!(
        "{} {}",
        rng.gen_range(1..9999u32),
        pick(rng, &STREETS)
    )];
    if rng.gen_bool(0.25) {
        street.push(pick(rng, &UNITS).to_owned());
    }
    let mut zip = format!("{prefix}{:02}", rng.gen_range(1..100u32));
    if rng.gen_bool(0.3) {
        zip.push_str(&format!("{:04}", rng.gen_range(1..10_000u32)));
    }
    let mut address_valid = true;
    if rng.gen_bool(0.03) {
        address_valid = false;
        if rng.gen_bool(0.5) {
            street.clear();
        } else {
            zip = pick(rng, &BAD_ZIPS).to_owned();
        }
    }
    Household {
        last: pick(rng, &LAST).to_owned(),
        street,
        city: city.to_owned(),
        state: state.to_owned(),
        zip,
        address_valid,
        home_phone: rng.gen_bool(0.5).then(|| phone(rng)),
    }
}

/// The population, grouped in households (the first member of each is the subscriber).
pub(crate) fn population(
    rng: &mut StdRng,
    people: usize,
    as_of: (u16, u8, u8),
) -> (Vec<SynthPerson>, Vec<Vec<usize>>) {
    let mut pop: Vec<SynthPerson> = Vec::with_capacity(people);
    let mut households: Vec<Vec<usize>> = Vec::new();
    let mut name_keys: HashSet<(String, String, (u16, u8, u8))> = HashSet::new();
    let mut ssns: HashSet<String> = HashSet::new();
    let mut mbis: HashSet<String> = HashSet::new();
    while pop.len() < people {
        let h = household(rng);
        let hid = households.len();
        // (age, relationship)
        let roll = rng.gen_range(0..100);
        let mut members: Vec<(Age, &str)> = Vec::new();
        if roll < 25 {
            members.push((Age::Adult, "18"));
        } else if roll < 40 {
            members.push((Age::Adult, "18"));
            members.push((Age::Adult, "01"));
        } else if roll < 65 {
            members.push((Age::Adult, "18"));
            if rng.gen_bool(0.6) {
                members.push((Age::Adult, "01"));
            }
            for _ in 0..rng.gen_range(1..=3) {
                members.push((Age::Child, "19"));
            }
        } else {
            members.push((Age::Elder, "18"));
            if rng.gen_bool(0.5) {
                members.push((Age::Elder, "01"));
            }
        }
        let mut idx = Vec::new();
        for (age, rel) in members {
            if pop.len() >= people {
                break;
            }
            let key = pop.len();
            let female = rng.gen_bool(0.5);
            let first = if female {
                pick(rng, &FEMALE)
            } else {
                pick(rng, &MALE)
            }
            .to_owned();
            let middle = match rng.gen_range(0..10) {
                0..=4 => char::from(b'A' + rng.gen_range(0..26u8)).to_string(),
                5 => (if female {
                    pick(rng, &FEMALE)
                } else {
                    pick(rng, &MALE)
                })
                .to_owned(),
                _ => String::new(),
            };
            let last = if rel == "01" && rng.gen_bool(0.2) {
                // A spouse who kept their own name.
                pick(rng, &LAST).to_owned()
            } else {
                h.last.clone()
            };
            let mut dob = dob_for(rng, age, as_of);
            while !name_keys.insert((normalize_name(&first), normalize_name(&last), dob)) {
                dob = dob_for(rng, age, as_of);
            }
            let no_ssn = match age {
                Age::Child => 0.12,
                _ => 0.05,
            };
            let ssn = (!rng.gen_bool(no_ssn)).then(|| loop {
                let s = random_ssn(rng);
                if ssns.insert(s.clone()) {
                    break s;
                }
            });
            let medicare = match age {
                Age::Elder => true,
                Age::Adult => rng.gen_bool(0.06),
                Age::Child => rng.gen_bool(0.01),
            };
            let mbi = medicare.then(|| loop {
                let m = random_mbi(rng);
                if m != "1EG4TE5MK73" && validate::mbi(&m).is_some() && mbis.insert(m.clone()) {
                    break m;
                }
            });
            let medicaid = match age {
                Age::Child => rng.gen_bool(0.4),
                Age::Adult => rng.gen_bool(0.1),
                Age::Elder => rng.gen_bool(0.12),
            };
            let medicaid_id = medicaid.then(|| {
                format!(
                    "{}{}{:05}{}",
                    char::from(b'A' + rng.gen_range(0..26u8)),
                    char::from(b'A' + rng.gen_range(0..26u8)),
                    key,
                    char::from(b'A' + rng.gen_range(0..26u8))
                )
            });
            let mut phones = Vec::new();
            if age != Age::Child && rng.gen_bool(0.7) {
                phones.push(phone(rng));
            }
            if let Some(hp) = &h.home_phone {
                if age != Age::Child || rng.gen_bool(0.3) {
                    phones.push(hp.clone());
                }
            }
            phones.dedup();
            let email = (age != Age::Child && rng.gen_bool(0.6)).then(|| {
                let local: String = format!("{}.{}", fold_ascii(&first), fold_ascii(&last))
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                    .collect::<String>()
                    .to_ascii_lowercase();
                format!(
                    "{local}{}@{}",
                    key,
                    pick(rng, &["example.com", "example.org", "example.net"])
                )
            });
            let mut diagnoses: Vec<String> = Vec::new();
            for _ in 0..rng.gen_range(1..=3) {
                let d = pick(rng, &DIAGNOSES).to_owned();
                if !diagnoses.contains(&d) {
                    diagnoses.push(d);
                }
            }
            let deceased = rng.gen_bool(match age {
                Age::Elder => 0.03,
                _ => 0.003,
            });
            let death_date = deceased.then(|| {
                let from = years_before(as_of, 1);
                let to = validate::civil_from_days(days_from_civil(as_of) - 30);
                let d = random_date(rng, from, to);
                d.max(dob)
            });
            pop.push(SynthPerson {
                key,
                household: hid,
                relationship: rel.to_owned(),
                first,
                middle,
                last,
                sex: if female { "F" } else { "M" }.to_owned(),
                dob,
                ssn,
                mbi,
                medicaid_id,
                member_id: format!(
                    "{}{:08}",
                    pick(rng, &["MBR", "XJH", "W", "ZGP"]),
                    10_000_000 + key * 7
                ),
                mrn: if rng.gen_bool(0.5) {
                    format!("MRN{:07}", key + 1)
                } else {
                    format!("E{:08}", 40_000_000 + key)
                },
                street: h.street.clone(),
                city: h.city.clone(),
                state: h.state.clone(),
                zip: h.zip.clone(),
                address_valid: h.address_valid,
                phones,
                email,
                diagnoses,
                death_date,
                deceased,
                minor: age == Age::Child,
                orgs: Vec::new(),
            });
            idx.push(key);
        }
        if !idx.is_empty() {
            households.push(idx);
        }
    }
    (pop, households)
}
