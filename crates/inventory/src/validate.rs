//! Identifier rules (see shared/reference/identifiers-and-formats.md). Each function takes raw field
//! text and returns the normalized value only if it is valid, so a parser can write
//! `person.ssn = validate::ssn(field)` and never store a claim number as an SSN.

/// Digits only, if the text is digits with optional `-`, ` `, `.`, `(`, `)` separators.
fn digits_of(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars() {
        match c {
            '0'..='9' => out.push(c),
            '-' | ' ' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    Some(out)
}

/// SSN: 9 digits (`AAA-GG-SSSS` or plain). Area 000, 666, 900-999, group 00 and serial 0000 were never
/// issued; 078-05-1120 and 219-09-9999 are famous published samples.
pub fn ssn(s: &str) -> Option<String> {
    let t = s.trim();
    // Only plain digits or the dashed form; "12 345 6789" and other shapes are not SSNs.
    let d: String = if t.len() == 11
        && t.as_bytes().get(3) == Some(&b'-')
        && t.as_bytes().get(6) == Some(&b'-')
    {
        t.chars().filter(|c| *c != '-').collect()
    } else {
        t.to_owned()
    };
    if d.len() != 9 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let area: u32 = d.get(0..3)?.parse().ok()?;
    let group: u32 = d.get(3..5)?.parse().ok()?;
    let serial: u32 = d.get(5..9)?.parse().ok()?;
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return None;
    }
    if d == "078051120" || d == "219099999" {
        return None;
    }
    Some(d)
}

fn mbi_letter(c: u8) -> bool {
    c.is_ascii_uppercase() && !matches!(c, b'S' | b'L' | b'O' | b'I' | b'B' | b'Z')
}

/// Medicare Beneficiary Identifier: 11 characters (dashes allowed in input), case-folded.
pub fn mbi(s: &str) -> Option<String> {
    let v: String = s
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    let b = v.as_bytes();
    if b.len() != 11 {
        return None;
    }
    let ok = |i: usize, f: &dyn Fn(u8) -> bool| b.get(i).is_some_and(|c| f(*c));
    let digit = |c: u8| c.is_ascii_digit();
    let alnum = |c: u8| c.is_ascii_digit() || mbi_letter(c);
    let valid = ok(0, &|c| (b'1'..=b'9').contains(&c))
        && ok(1, &mbi_letter)
        && ok(2, &alnum)
        && ok(3, &digit)
        && ok(4, &mbi_letter)
        && ok(5, &alnum)
        && ok(6, &digit)
        && ok(7, &mbi_letter)
        && ok(8, &mbi_letter)
        && ok(9, &digit)
        && ok(10, &digit);
    valid.then_some(v)
}

/// Legacy Medicare HICN: a valid SSN followed by a 1-2 character beneficiary code (letter, or letter
/// plus digit), or the railroad form (1-3 letters then 6 or 9 digits).
pub fn hicn(s: &str) -> Option<String> {
    let v: String = s
        .trim()
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .collect::<String>()
        .to_ascii_uppercase();
    // Byte offsets below assume ASCII; anything else is not an HICN (and must not split a character).
    if !v.is_ascii() {
        return None;
    }
    if v.len() >= 10 && v.len() <= 11 {
        let (num, code) = v.split_at(9);
        let cb = code.as_bytes();
        let code_ok = cb.first().is_some_and(|c| c.is_ascii_uppercase())
            && cb
                .get(1)
                .is_none_or(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
        if code_ok && ssn(num).is_some() {
            return Some(v);
        }
    }
    let letters = v.bytes().take_while(|c| c.is_ascii_uppercase()).count();
    let rest = v.get(letters..)?;
    if (1..=3).contains(&letters)
        && (rest.len() == 6 || rest.len() == 9)
        && rest.bytes().all(|c| c.is_ascii_digit())
    {
        return Some(v);
    }
    None
}

/// NPI (a provider identifier, never patient data): 10 digits, first 1 or 2, Luhn check with the
/// 80840 prefix. Parsers use this to *exclude* provider numbers.
pub fn npi(s: &str) -> Option<String> {
    let d = s.trim();
    if d.len() != 10
        || !d.bytes().all(|b| b.is_ascii_digit())
        || !matches!(d.as_bytes().first(), Some(b'1' | b'2'))
    {
        return None;
    }
    // Luhn over the 9 payload digits (doubling from the right), plus 24 for the 80840 prefix.
    let mut sum = 24u32;
    for (i, c) in d.bytes().take(9).rev().enumerate() {
        let mut v = u32::from(c - b'0');
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    let check = (10 - sum % 10) % 10;
    (u32::from(*d.as_bytes().get(9)? - b'0') == check).then(|| d.to_owned())
}

/// NANP phone: 10 digits (a leading country code 1 is dropped); area code and exchange start with 2-9
/// and are not N11.
pub fn phone(s: &str) -> Option<String> {
    let t = s.trim().trim_start_matches('+');
    let mut d = digits_of(t)?;
    if d.len() == 11 && d.starts_with('1') {
        d.remove(0);
    }
    if d.len() != 10 {
        return None;
    }
    let b = d.as_bytes();
    let n11 = |i: usize| b.get(i + 1) == Some(&b'1') && b.get(i + 2) == Some(&b'1');
    let starts_ok = |i: usize| b.get(i).is_some_and(|c| (b'2'..=b'9').contains(c));
    (starts_ok(0) && starts_ok(3) && !n11(0) && !n11(3)).then_some(d)
}

/// Email address: one `@`, a local part of 1-64 octets, a domain with a dot, at most 254 octets.
pub fn email(s: &str) -> Option<String> {
    let t = s.trim();
    let t = t.strip_prefix("mailto:").unwrap_or(t);
    if t.len() > 254 {
        return None;
    }
    let (local, domain) = t.split_once('@')?;
    if local.is_empty() || local.len() > 64 || domain.contains('@') || !domain.contains('.') {
        return None;
    }
    let local_ok = local
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&c));
    let domain_ok = domain.split('.').all(|l| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    });
    (local_ok && domain_ok).then(|| t.to_ascii_lowercase())
}

/// ZIP or ZIP+4 (with or without the hyphen): returns 5 or 9 digits. 00000 is not a ZIP.
pub fn zip(s: &str) -> Option<String> {
    let t = s.trim();
    let d: String = t.chars().filter(|c| *c != '-').collect();
    if !(d.len() == 5 || d.len() == 9) || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if t.contains('-') && !(t.len() == 10 && t.as_bytes().get(5) == Some(&b'-')) {
        return None;
    }
    if d.starts_with("00000") {
        return None;
    }
    Some(d)
}

/// USPS state and territory codes accepted as a state of residence.
pub const STATES: [&str; 62] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "AS", "FM", "GU", "MH", "MP", "PR", "PW", "VI", "AA", "AE", "AP",
];

pub fn state(s: &str) -> Option<String> {
    let u = s.trim().to_ascii_uppercase();
    STATES.contains(&u.as_str()).then_some(u)
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A real calendar date.
pub fn real_date(y: u16, m: u8, d: u8) -> bool {
    (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

/// Parses `CCYYMMDD`, `CCYY-MM-DD`, `MM/DD/CCYY` (also with `-`), and HL7 timestamps that start
/// with `CCYYMMDD`. Returns (year, month, day) if it is a real date.
pub fn date(s: &str) -> Option<(u16, u8, u8)> {
    let t = s.trim();
    let num = |a: &str| a.parse::<u32>().ok();
    let (y, m, d) = if t.len() >= 8 && t.bytes().take(8).all(|b| b.is_ascii_digit()) {
        // CCYYMMDD, possibly followed by HL7 time digits (HHMM[SS[.S]][+ZZZZ]).
        let rest = t.get(8..)?;
        if !rest
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'+' || b == b'-')
        {
            return None;
        }
        (num(t.get(0..4)?)?, num(t.get(4..6)?)?, num(t.get(6..8)?)?)
    } else if t.len() == 10
        && t.as_bytes().get(4) == Some(&b'-')
        && t.as_bytes().get(7) == Some(&b'-')
    {
        (num(t.get(0..4)?)?, num(t.get(5..7)?)?, num(t.get(8..10)?)?)
    } else {
        let parts: Vec<&str> = t.split(['/', '-']).collect();
        match parts.as_slice() {
            [m, d, y] if y.len() == 4 && m.len() <= 2 && d.len() <= 2 => {
                (num(y)?, num(m)?, num(d)?)
            }
            _ => return None,
        }
    };
    let (y, m, d) = (
        u16::try_from(y).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(d).ok()?,
    );
    real_date(y, m, d).then_some((y, m, d))
}

/// A plausible date of birth: a real date, not after `today`, not more than 125 years before it.
pub fn dob(s: &str, today: (u16, u8, u8)) -> Option<(u16, u8, u8)> {
    let d = date(s)?;
    (d <= today && d.0 + 125 >= today.0).then_some(d)
}

/// Today's date (UTC), for DOB plausibility.
pub fn today() -> (u16, u8, u8) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil_from_days((secs / 86_400) as i64)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (u16, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y as u16, m as u8, d as u8)
}

/// ICD-10-CM code (dot optional), or an ICD-9 code when `icd9` is set. Returns it uppercase, no dot.
pub fn diagnosis(s: &str, icd9: bool) -> Option<String> {
    let v: String = s
        .trim()
        .chars()
        .filter(|c| *c != '.')
        .collect::<String>()
        .to_ascii_uppercase();
    let b = v.as_bytes();
    if icd9 {
        let ok = (3..=5).contains(&b.len())
            && (b
                .first()
                .is_some_and(|c| c.is_ascii_digit() || *c == b'V' || *c == b'E'))
            && b.iter().skip(1).all(|c| c.is_ascii_digit());
        return ok.then_some(v);
    }
    let ok = (3..=7).contains(&b.len())
        && b.first().is_some_and(|c| c.is_ascii_uppercase())
        && b.get(1).is_some_and(|c| c.is_ascii_digit())
        && b.get(2).is_some_and(|c| c.is_ascii_alphanumeric())
        && b.iter().skip(3).all(|c| c.is_ascii_alphanumeric());
    ok.then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssn_rules() {
        assert_eq!(ssn("123-45-6789").as_deref(), Some("123456789"));
        assert_eq!(ssn("123456789").as_deref(), Some("123456789"));
        assert_eq!(
            ssn("899-45-6789").as_deref(),
            Some("899456789"),
            "areas above 772 are issued since 2011"
        );
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
            "078-05-1120",
            "219-09-9999",
            "12345678",
            "1234567890",
            "12-345-6789",
        ] {
            assert_eq!(ssn(bad), None, "{bad}");
        }
    }

    #[test]
    fn mbi_rules() {
        assert_eq!(mbi("1EG4-TE5-MK73").as_deref(), Some("1EG4TE5MK73"));
        assert_eq!(mbi("1eg4te5mk73").as_deref(), Some("1EG4TE5MK73"));
        assert_eq!(mbi("0EG4TE5MK73"), None);
        assert_eq!(mbi("1SG4TE5MK73"), None, "S is excluded");
        assert_eq!(mbi("1EG4TE5MK7"), None);
    }

    #[test]
    fn npi_rules() {
        assert!(npi("1234567893").is_some());
        assert!(npi("1234567890").is_none());
        assert!(npi("3234567893").is_none());
    }

    #[test]
    fn phone_rules() {
        assert_eq!(phone("(217) 555-0101").as_deref(), Some("2175550101"));
        assert_eq!(phone("+1 217 555 0101").as_deref(), Some("2175550101"));
        assert_eq!(phone("1175550101"), None);
        assert_eq!(phone("2171550101"), None, "exchange may not start with 1");
        assert_eq!(phone("9115550101"), None, "N11 area code");
        assert_eq!(phone("21755501012"), None);
    }

    #[test]
    fn dates() {
        let today = (2026, 11, 25);
        assert_eq!(dob("19800515", today), Some((1980, 5, 15)));
        assert_eq!(dob("05/15/1980", today), Some((1980, 5, 15)));
        assert_eq!(dob("1980-05-15", today), Some((1980, 5, 15)));
        assert_eq!(dob("19800231", today), None);
        assert_eq!(dob("20300101", today), None);
        assert_eq!(dob("18800101", today), None);
        assert_eq!(date("20260115120000"), Some((2026, 1, 15)));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }

    #[test]
    fn other_rules() {
        assert_eq!(zip("62701-1234").as_deref(), Some("627011234"));
        assert_eq!(zip("627011234").as_deref(), Some("627011234"));
        assert_eq!(zip("00000"), None);
        assert_eq!(state("il").as_deref(), Some("IL"));
        assert_eq!(state("XX"), None);
        assert_eq!(
            email("Jane.Sample@Example.com").as_deref(),
            Some("jane.sample@example.com")
        );
        assert_eq!(email("not-an-email"), None);
        assert_eq!(diagnosis("E11.9", false).as_deref(), Some("E119"));
        assert_eq!(diagnosis("U07.1", false).as_deref(), Some("U071"));
        assert_eq!(diagnosis("250.00", true).as_deref(), Some("25000"));
        assert_eq!(diagnosis("12", false), None);
        assert_eq!(hicn("123456789A").as_deref(), Some("123456789A"));
        assert_eq!(hicn("123456789C1").as_deref(), Some("123456789C1"));
        assert_eq!(hicn("A123456").as_deref(), Some("A123456"));
        assert_eq!(hicn("000000000A"), None);
        assert_eq!(hicn("1GTE5MK\u{FFFD}3"), None, "non-ASCII must not panic");
        assert_eq!(hicn("12345678\u{e9}A"), None);
    }
}
