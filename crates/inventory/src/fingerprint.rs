//! Keyed fingerprints: the only trace of a person that the inventory stores. HMAC-SHA256 with a key
//! derived from the key provider (never the file keys), because a plain hash of an SSN is brute-forced
//! in seconds. Two fingerprints per person: one from the SSN when present, one from normalized name +
//! date of birth, so the same person is linked across files even when one file lacks the SSN.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::{ElementSet, Person};

/// What is stored per person per file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PersonRecord {
    pub fp_ssn: Option<[u8; 32]>,
    pub fp_name_dob: Option<[u8; 32]>,
    /// Other identifiers (MBI, member id, MRN...) when neither of the above exists, so an
    /// identifiable record without SSN, name or DOB is still counted.
    pub fp_other: Option<[u8; 32]>,
    pub state: Option<[u8; 2]>,
    pub elements: ElementSet,
}

pub struct Fingerprinter {
    key: [u8; 32],
}

/// Uppercase ASCII letters only: accents folded to their base letter, everything else dropped, so
/// "O'Brien-Núñez" and "OBRIEN NUNEZ" match.
pub fn normalize_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let base = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' => 'A',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'E',
            'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'I',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' => 'O',
            'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'U',
            'ñ' | 'Ñ' => 'N',
            'ç' | 'Ç' => 'C',
            'ý' | 'ÿ' | 'Ý' => 'Y',
            c if c.is_ascii_alphabetic() => c.to_ascii_uppercase(),
            _ => continue,
        };
        out.push(base);
    }
    out
}

impl Fingerprinter {
    pub fn new(key: [u8; 32]) -> Self {
        Fingerprinter { key }
    }

    fn mac(&self, domain: &str, value: &str) -> [u8; 32] {
        // new_from_slice only fails for invalid key lengths, which HMAC does not have.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        m.update(domain.as_bytes());
        m.update(b"\0");
        m.update(value.as_bytes());
        m.finalize().into_bytes().into()
    }

    pub fn record(&self, p: &Person) -> PersonRecord {
        let fp_ssn = p.ssn.as_deref().map(|s| self.mac("ssn", s));
        let fp_name_dob = match (&p.name, p.dob) {
            (Some(n), Some((y, m, d))) => {
                let (last, first) = (normalize_name(&n.last), normalize_name(&n.first));
                (!last.is_empty() && !first.is_empty())
                    .then(|| self.mac("name-dob", &format!("{last}|{first}|{y:04}{m:02}{d:02}")))
            }
            _ => None,
        };
        let fp_other = if fp_ssn.is_none() && fp_name_dob.is_none() {
            let other = [
                ("mbi", &p.mbi),
                ("hicn", &p.hicn),
                ("medicaid", &p.medicaid_id),
                ("member", &p.member_id),
                ("mrn", &p.medical_record_number),
            ]
            .into_iter()
            .find_map(|(k, v)| v.as_deref().map(|v| (k, v)));
            match (other, &p.name) {
                (Some((k, v)), _) => Some(self.mac(k, v)),
                (None, Some(n)) => Some(self.mac("name", &format!("{}|{}", normalize_name(&n.last), normalize_name(&n.first)))),
                (None, None) => None,
            }
        } else {
            None
        };
        let state = p.state().and_then(|s| <[u8; 2]>::try_from(s.as_bytes()).ok());
        PersonRecord {
            fp_ssn,
            fp_name_dob,
            fp_other,
            state,
            elements: p.elements(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Name;

    fn person(ssn: Option<&str>) -> Person {
        Person {
            name: Some(Name { last: "O'Brien-Núñez".into(), first: "José".into(), middle: String::new() }),
            ssn: ssn.map(str::to_owned),
            dob: Some((1980, 5, 15)),
            ..Default::default()
        }
    }

    #[test]
    fn same_person_links_with_and_without_ssn() {
        let f = Fingerprinter::new([7; 32]);
        let a = f.record(&person(Some("123456789")));
        let mut b_person = person(None);
        b_person.name = Some(Name { last: "OBRIEN NUNEZ".into(), first: "jose".into(), middle: "Q".into() });
        let b = f.record(&b_person);
        assert_eq!(a.fp_name_dob, b.fp_name_dob);
        assert!(a.fp_ssn.is_some() && b.fp_ssn.is_none());
        assert_ne!(Fingerprinter::new([8; 32]).record(&person(Some("123456789"))).fp_ssn, a.fp_ssn, "keyed");
    }
}
