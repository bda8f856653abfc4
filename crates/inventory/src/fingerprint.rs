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
    /// HMAC-SHA256 already keyed (the inner and outer padded-key blocks are absorbed once, here);
    /// each fingerprint clones it instead of re-keying, which halves the SHA-256 work per value.
    keyed: Hmac<Sha256>,
    /// The organization the fingerprinted file belongs to ("" when unscoped).
    scope: String,
}

/// Uppercase ASCII letters only: accents folded to their base letter, everything else dropped, so
/// "O'Brien-Núñez" and "OBRIEN NUNEZ" match.
pub fn normalize_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    normalize_name_into(s, &mut out);
    out
}

/// `normalize_name`, appended to `out`.
fn normalize_name_into(s: &str, out: &mut String) {
    if s.is_ascii() {
        out.extend(
            s.bytes()
                .filter(u8::is_ascii_alphabetic)
                .map(|b| char::from(b.to_ascii_uppercase())),
        );
        return;
    }
    for c in s.chars() {
        let base = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' => {
                'A'
            }
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
}

/// Appends `v` as exactly `width` decimal digits (zero-padded; wider values are written in full).
fn push_num(out: &mut String, v: u32, width: usize) {
    let mut digits = [0u8; 10];
    let mut n = v;
    let mut len = 0;
    for slot in digits.iter_mut() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    for _ in len..width {
        out.push('0');
    }
    for d in digits.iter().take(len).rev() {
        out.push(char::from(*d));
    }
}

impl Fingerprinter {
    /// Fingerprints without an organization scope (offline scans, tests).
    pub fn new(key: [u8; 32]) -> Self {
        Self::scoped(key, "")
    }

    /// Fingerprints for files of one organization (covered entity). Identifiers that only mean
    /// something inside one organization when they stand alone (a member id without a name, a
    /// medical record number) are bound to `scope`, so the same number at two organizations never
    /// links two different people.
    pub fn scoped(key: [u8; 32], scope: &str) -> Self {
        // new_from_slice only fails for invalid key lengths, which HMAC does not have.
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap_or_else(|_| unreachable!());
        Fingerprinter {
            keyed,
            scope: scope.to_owned(),
        }
    }

    /// HMAC(key, domain || 0 || value): the same bytes as keying a fresh HMAC, without re-keying.
    fn mac(&self, domain: &str, value: &str) -> [u8; 32] {
        let mut m = self.keyed.clone();
        m.update(domain.as_bytes());
        m.update(b"\0");
        m.update(value.as_bytes());
        m.finalize().into_bytes().into()
    }

    pub fn record(&self, p: &Person) -> PersonRecord {
        let fp_ssn = p.ssn.as_deref().map(|s| self.mac("ssn", s));
        // "LAST|FIRST|YYYYMMDD" (or "LAST|FIRST"), built in one buffer.
        let mut buf = String::new();
        let name_key = |buf: &mut String, n: &crate::model::Name| -> bool {
            buf.clear();
            normalize_name_into(&n.last, buf);
            let last_len = buf.len();
            buf.push('|');
            let before_first = buf.len();
            normalize_name_into(&n.first, buf);
            last_len > 0 && buf.len() > before_first
        };
        let fp_name_dob = match (&p.name, p.dob) {
            (Some(n), Some((y, m, d))) => {
                buf.reserve(n.last.len() + n.first.len() + 10);
                name_key(&mut buf, n).then(|| {
                    buf.push('|');
                    push_num(&mut buf, u32::from(y), 4);
                    push_num(&mut buf, u32::from(m), 2);
                    push_num(&mut buf, u32::from(d), 2);
                    self.mac("name-dob", &buf)
                })
            }
            _ => None,
        };
        // Member id + name: links a subscriber listed on claims with only name and member id (837
        // loop 2010BA without DMG) to the same subscriber's enrollment record, also when the claim
        // sits at a provider and the enrollment at the plan (the member id is the payer's and travels
        // on claims). The name is part of it because extracts often repeat the subscriber's member id
        // on every dependent's row: family members must not merge into one person.
        let member_name = match (&p.member_id, &p.name) {
            (Some(m), Some(n)) if name_key(&mut buf, n) => {
                let value = format!("{m}\0{buf}");
                Some(self.mac("member-name", &value))
            }
            _ => None,
        };
        let fp_other = if member_name.is_some() {
            member_name
        } else if fp_ssn.is_none() && fp_name_dob.is_none() {
            let other = [
                ("mbi", &p.mbi, false),
                ("hicn", &p.hicn, false),
                ("medicaid", &p.medicaid_id, false),
                ("member", &p.member_id, true),
                ("mrn", &p.medical_record_number, true),
            ]
            .into_iter()
            .find_map(|(k, v, scoped)| v.as_deref().map(|v| (k, v, scoped)));
            match (other, &p.name) {
                (Some((k, v, true)), _) => Some(self.mac(k, &format!("{}\0{v}", self.scope))),
                (Some((k, v, false)), _) => Some(self.mac(k, v)),
                (None, Some(n)) => {
                    name_key(&mut buf, n);
                    Some(self.mac("name", &buf))
                }
                (None, None) => None,
            }
        } else {
            None
        };
        let state = p
            .state()
            .and_then(|s| <[u8; 2]>::try_from(s.as_bytes()).ok());
        PersonRecord {
            fp_ssn,
            fp_name_dob,
            fp_other,
            state,
            elements: p.elements(),
        }
    }
}

/// A `HashMap` hasher for keys made of fingerprints (`PersonRecord` identities). Fingerprints are
/// HMAC outputs under a secret key, so they are already uniformly distributed and cannot be chosen by
/// whoever writes the file: mixing their bytes with a multiply is enough (no SipHash, no HashDoS).
/// Do not use it for keys an outsider controls.
#[derive(Debug, Clone, Copy, Default)]
pub struct FingerprintHasher(u64);

impl std::hash::Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for b in chunks.remainder() {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// `BuildHasher` for [`FingerprintHasher`].
pub type FingerprintHashBuilder = std::hash::BuildHasherDefault<FingerprintHasher>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::model::Name;

    fn person(ssn: Option<&str>) -> Person {
        Person {
            name: Some(Name {
                last: "O'Brien-Núñez".into(),
                first: "José".into(),
                middle: String::new(),
            }),
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
        b_person.name = Some(Name {
            last: "OBRIEN NUNEZ".into(),
            first: "jose".into(),
            middle: "Q".into(),
        });
        let b = f.record(&b_person);
        assert_eq!(a.fp_name_dob, b.fp_name_dob);
        assert!(a.fp_ssn.is_some() && b.fp_ssn.is_none());
        assert_ne!(
            Fingerprinter::new([8; 32])
                .record(&person(Some("123456789")))
                .fp_ssn,
            a.fp_ssn,
            "keyed"
        );
    }

    /// The pre-keyed HMAC and the hand-built messages give exactly the fingerprints stored so far:
    /// HMAC(key, "ssn\0" + ssn), HMAC(key, "name-dob\0LAST|FIRST|YYYYMMDD"), HMAC(key, "name\0LAST|FIRST").
    #[test]
    fn fingerprints_are_stable() {
        let key = [7u8; 32];
        let reference = |domain: &str, value: &str| -> [u8; 32] {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            m.update(domain.as_bytes());
            m.update(b"\0");
            m.update(value.as_bytes());
            m.finalize().into_bytes().into()
        };
        let f = Fingerprinter::new(key);
        let mut p = person(Some("123456789"));
        p.dob = Some((987, 5, 1));
        let r = f.record(&p);
        assert_eq!(r.fp_ssn, Some(reference("ssn", "123456789")));
        assert_eq!(
            r.fp_name_dob,
            Some(reference("name-dob", "OBRIENNUNEZ|JOSE|09870501"))
        );
        p.ssn = None;
        p.dob = None;
        assert_eq!(
            f.record(&p).fp_other,
            Some(reference("name", "OBRIENNUNEZ|JOSE"))
        );
        p.name = Some(Name {
            last: String::new(),
            first: "Jo".into(),
            middle: String::new(),
        });
        assert_eq!(f.record(&p).fp_other, Some(reference("name", "|JO")));
        p.member_id = Some("M1".into());
        assert_eq!(f.record(&p).fp_other, Some(reference("member", "\0M1")));
        assert_eq!(normalize_name("O'Brien-Núñez"), "OBRIENNUNEZ");
    }

    #[test]
    fn member_id_links_the_same_named_member_within_one_organization() {
        let key = [9u8; 32];
        let named = |first: &str, ssn: Option<&str>, dob: Option<(u16, u8, u8)>| Person {
            name: Some(Name {
                last: "Sample".into(),
                first: first.into(),
                middle: String::new(),
            }),
            member_id: Some("SUB1000001".into()),
            ssn: ssn.map(str::to_owned),
            dob,
            ..Default::default()
        };
        let acme = Fingerprinter::scoped(key, "acme");
        // Enrollment record (SSN, DOB) and a claim listing only name + member id: one person.
        let enrolled = acme.record(&named("Jane", Some("123456789"), Some((1980, 5, 15))));
        let on_claim = acme.record(&named("Jane", None, None));
        assert!(enrolled.fp_other.is_some());
        assert_eq!(enrolled.fp_other, on_claim.fp_other);
        // A dependent listed under the subscriber's member id is someone else.
        assert_ne!(
            acme.record(&named("Tommy", None, None)).fp_other,
            on_claim.fp_other
        );
        // The payer's member id travels on claims: the same member at a provider links too...
        let clinic = Fingerprinter::scoped(key, "clinic");
        assert_eq!(
            clinic.record(&named("Jane", None, None)).fp_other,
            on_claim.fp_other
        );
        // ...but a bare member id (no name) only links within its organization.
        let bare = |f: &Fingerprinter| {
            f.record(&Person {
                member_id: Some("SUB1000001".into()),
                ..Default::default()
            })
            .fp_other
        };
        assert_ne!(bare(&acme), bare(&clinic));
    }
}
