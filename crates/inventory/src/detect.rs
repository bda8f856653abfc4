//! Format detection from the first bytes of a file (or of a container entry).
//!
//! The scanner buffers up to [`SNIFF_LEN`] bytes (or the whole file if shorter) and calls [`sniff`].
//! A prefix of exactly `SNIFF_LEN` bytes or more is treated as possibly cut in the middle of a line
//! or character; a shorter one is the whole file.
//!
//! Rules, first match wins:
//! 1. Nothing, or only whitespace (after an optional UTF-8 BOM) -> `Empty`.
//! 2. Magic numbers: gzip `1F 8B` -> `Gzip`; zip `PK\x03\x04` or empty zip `PK\x05\x06` -> `Zip`.
//! 3. Encrypted or unsupported wrappers -> `Opaque`: ASCII-armored PGP (`-----BEGIN PGP`), binary
//!    OpenPGP packets (PKESK/SKESK/SEIPD tags with a plausible version byte), age (binary and armored),
//!    openssl enc (`Salted__`), bzip2/xz/zstd/7z, PDF, UTF-16 text.
//! 4. Text: after an optional UTF-8 BOM and whitespace, `ISA` and a separator -> `X12`; `MSH`/`FHS`/`BHS`
//!    and a separator (optionally after the MLLP start byte 0x0B) -> `Hl7`; `{` or `[` -> `Json`, or
//!    `Ndjson` when the first line is a complete JSON object and the next non-empty line starts with `{`.
//! 5. Text with a consistent delimiter (`csv::sniff_delimiter`) -> `Delimited(delimiter)`.
//! 6. Other text (valid UTF-8, or legacy 8-bit text with few control bytes) -> `Text`.
//! 7. Anything else (NUL bytes, many control bytes, dense invalid UTF-8) -> `Opaque` unknown binary.

use crate::model::Format;

/// How many leading bytes the scanner buffers before deciding.
pub const SNIFF_LEN: usize = 8 * 1024;

/// What the first bytes say the content is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    Empty,
    Gzip,
    Zip,
    X12,
    Hl7,
    Json,
    Ndjson,
    /// CSV-like text; the delimiter (`\t` means TSV).
    Delimited(u8),
    /// Text without a recognized structure.
    Text,
    /// Cannot be looked into (encrypted, unsupported compression, unknown binary).
    Opaque {
        format: Format,
        reason: &'static str,
    },
}

impl Detected {
    /// The format recorded for a file detected as this (X12 is refined by its parser).
    pub fn format(&self) -> Format {
        match self {
            Detected::Empty => Format::Empty,
            Detected::Gzip => Format::Gzip,
            Detected::Zip => Format::Zip,
            Detected::X12 => Format::X12Other,
            Detected::Hl7 => Format::Hl7v2,
            Detected::Json => Format::Json,
            Detected::Ndjson => Format::Ndjson,
            Detected::Delimited(b'\t') => Format::Tsv,
            Detected::Delimited(_) => Format::Csv,
            Detected::Text => Format::Text,
            Detected::Opaque { format, .. } => *format,
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Length of a leading UTF-8 byte order mark (0 or 3).
pub fn bom_len(prefix: &[u8]) -> usize {
    if prefix.starts_with(BOM) {
        BOM.len()
    } else {
        0
    }
}

/// Length of the leading UTF-8 BOM plus whitespace (space, tab, CR, LF, FF).
pub fn leading_space_len(prefix: &[u8]) -> usize {
    let b = bom_len(prefix);
    let rest = prefix.get(b..).unwrap_or_default();
    b + rest.iter().take_while(|c| is_space(**c)).count()
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0C)
}

/// A segment/field separator right after a tag (`ISA*`, `MSH|`, or a control byte such as 0x1D): not a
/// letter, digit or whitespace.
fn is_separator(c: Option<&u8>) -> bool {
    c.is_some_and(|c| !c.is_ascii_alphanumeric() && !c.is_ascii_whitespace() && *c != 0)
}

/// Detects the format of a file from its first bytes (see the module documentation for the rules).
pub fn sniff(prefix: &[u8]) -> Detected {
    let truncated = prefix.len() >= SNIFF_LEN;

    // Containers and encrypted or compressed wrappers: magic numbers at offset 0.
    if prefix.starts_with(&[0x1F, 0x8B]) {
        return Detected::Gzip;
    }
    if prefix.starts_with(b"PK\x03\x04") || prefix.starts_with(b"PK\x05\x06") {
        return Detected::Zip;
    }
    if let Some(reason) = opaque_magic(prefix) {
        return Detected::Opaque {
            format: Format::Binary,
            reason,
        };
    }
    if prefix.starts_with(b"\xFF\xFE") || prefix.starts_with(b"\xFE\xFF") || looks_utf16(prefix) {
        return Detected::Opaque {
            format: Format::Text,
            reason: "UTF-16 text: not scanned for people",
        };
    }

    let start = leading_space_len(prefix);
    let body = prefix.get(start..).unwrap_or_default();
    if body.is_empty() {
        return Detected::Empty;
    }
    // Armored PGP and age may follow whitespace.
    if body.starts_with(b"-----BEGIN PGP") {
        return Detected::Opaque {
            format: Format::Binary,
            reason: "encrypted (PGP)",
        };
    }
    if body.starts_with(b"-----BEGIN AGE ENCRYPTED FILE") {
        return Detected::Opaque {
            format: Format::Binary,
            reason: "encrypted (age)",
        };
    }

    if !is_text(prefix, truncated) {
        return Detected::Opaque {
            format: Format::Binary,
            reason: "unknown binary format",
        };
    }

    if body.starts_with(b"ISA") && is_separator(body.get(3)) {
        return Detected::X12;
    }
    let hl7 = body.strip_prefix(b"\x0B").unwrap_or(body);
    if (hl7.starts_with(b"MSH") || hl7.starts_with(b"FHS") || hl7.starts_with(b"BHS"))
        && is_separator(hl7.get(3))
    {
        return Detected::Hl7;
    }
    match body.first() {
        Some(b'[') => return Detected::Json,
        Some(b'{') => {
            return if is_ndjson(body) {
                Detected::Ndjson
            } else {
                Detected::Json
            }
        }
        _ => {}
    }

    // Delimited text: give the sniffer whole lines only when the prefix was cut.
    let text = prefix.get(bom_len(prefix)..).unwrap_or_default();
    let sample = if truncated {
        match text.iter().rposition(|c| *c == b'\n') {
            Some(i) => text.get(..=i).unwrap_or(text),
            None => text,
        }
    } else {
        text
    };
    if let Some(d) = sniff_delimiter(sample) {
        return Detected::Delimited(d);
    }
    Detected::Text
}

/// The CSV module's delimiter sniffer.
fn sniff_delimiter(sample: &[u8]) -> Option<u8> {
    crate::csv::sniff_delimiter(sample)
}

/// Magic numbers of formats that cannot be looked into.
fn opaque_magic(p: &[u8]) -> Option<&'static str> {
    if p.starts_with(b"age-encryption.org/v1") {
        return Some("encrypted (age)");
    }
    if p.starts_with(b"Salted__") {
        return Some("encrypted (openssl enc)");
    }
    if is_openpgp_binary(p) {
        return Some("encrypted (PGP)");
    }
    if p.starts_with(b"BZh")
        && p.get(3).is_some_and(|c| (b'1'..=b'9').contains(c))
        && p.get(4..10) == Some(b"1AY&SY")
    {
        return Some("compressed (bzip2): not supported");
    }
    if p.starts_with(b"\xFD7zXZ\x00") {
        return Some("compressed (xz): not supported");
    }
    if p.starts_with(b"\x28\xB5\x2F\xFD") {
        return Some("compressed (zstd): not supported");
    }
    if p.starts_with(b"7z\xBC\xAF\x27\x1C") {
        return Some("archive (7z): not supported");
    }
    if p.starts_with(b"Rar!\x1A\x07") {
        return Some("archive (rar): not supported");
    }
    if p.starts_with(b"%PDF-") {
        return Some("document (PDF): not scanned for people");
    }
    None
}

/// Binary OpenPGP message starts: a public-key or symmetric-key encrypted session key packet, or
/// symmetrically encrypted (integrity protected) data, with a plausible version byte. Conservative:
/// anything else falls through (and being binary, ends up opaque anyway).
fn is_openpgp_binary(p: &[u8]) -> bool {
    let Some(&tag_byte) = p.first() else {
        return false;
    };
    if tag_byte & 0x80 == 0 {
        return false;
    }
    let (tag, body_at) = if tag_byte & 0x40 == 0 {
        // Old format: tag in bits 5-2, length type in bits 1-0.
        let tag = (tag_byte >> 2) & 0x0F;
        let len_bytes = match tag_byte & 0x03 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => 0,
        };
        (tag, 1 + len_bytes)
    } else {
        // New format: tag in bits 5-0; one, two or five length octets.
        let tag = tag_byte & 0x3F;
        let len_bytes = match p.get(1) {
            Some(0..=191) => 1,
            Some(192..=223) => 2,
            Some(255) => 5,
            // Partial body lengths (224..=254): one octet.
            Some(_) => 1,
            None => return false,
        };
        (tag, 1 + len_bytes)
    };
    let version = p.get(body_at).copied();
    match tag {
        1 => matches!(version, Some(3 | 6)),  // PKESK
        3 => matches!(version, Some(4..=6)),  // SKESK
        18 => matches!(version, Some(1 | 2)), // SEIPD
        20 => matches!(version, Some(1)),     // AEAD encrypted data
        9 => p.len() > body_at + 16,          // legacy symmetrically encrypted data
        _ => false,
    }
}

/// UTF-16 without a BOM: ASCII text with a NUL in every other byte.
fn looks_utf16(p: &[u8]) -> bool {
    let n = p.len().min(512) & !1;
    if n < 8 {
        return false;
    }
    let pairs = p.get(..n).unwrap_or_default().chunks_exact(2);
    let total = pairs.len();
    let (mut le, mut be) = (0usize, 0usize);
    for pair in pairs {
        if let [a, b] = pair {
            if *b == 0 && *a != 0 && a.is_ascii() {
                le += 1;
            }
            if *a == 0 && *b != 0 && b.is_ascii() {
                be += 1;
            }
        }
    }
    le * 10 >= total * 9 || be * 10 >= total * 9
}

/// Text or binary? No NUL bytes, few control bytes, and valid UTF-8 or (legacy 8-bit text) mostly ASCII.
fn is_text(p: &[u8], truncated: bool) -> bool {
    if p.is_empty() {
        return true;
    }
    let mut controls = 0usize;
    let mut high = 0usize;
    for &c in p {
        match c {
            0 => return false,
            b'\t' | b'\n' | b'\r' | 0x0B | 0x0C | 0x1A | 0x1C | 0x1D | 0x1E | 0x1F => {}
            0x01..=0x1F | 0x7F => controls += 1,
            0x80..=0xFF => high += 1,
            _ => {}
        }
    }
    if controls * 50 > p.len() {
        return false;
    }
    let utf8_ok = match std::str::from_utf8(p) {
        Ok(_) => true,
        // Cut in the middle of a character at the end of a truncated prefix.
        Err(e) => truncated && e.error_len().is_none(),
    };
    utf8_ok || high * 10 <= p.len() * 3
}

/// First non-empty line is a complete JSON object and the next non-empty line starts with `{`.
fn is_ndjson(body: &[u8]) -> bool {
    let mut lines = body
        .split(|c| *c == b'\n')
        .map(trim_ascii)
        .filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return false;
    };
    // The first line must be followed by a newline (complete) and parse as an object.
    let Some(first_end) = body.iter().position(|c| *c == b'\n') else {
        return false;
    };
    if first_end < first.len() {
        return false;
    }
    if !first.starts_with(b"{") || serde_json::from_slice::<serde::de::IgnoredAny>(first).is_err() {
        return false;
    }
    lines.next().is_some_and(|l| l.starts_with(b"{"))
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(sniff(b""), Detected::Empty);
        assert_eq!(sniff(b" \r\n\t"), Detected::Empty);
        assert_eq!(sniff(b"\x1f\x8b\x08\x00"), Detected::Gzip);
        assert_eq!(sniff(b"PK\x03\x04...."), Detected::Zip);
        assert_eq!(sniff(b"PK\x05\x06\0\0\0\0"), Detected::Zip);
        assert!(matches!(
            sniff(b"-----BEGIN PGP MESSAGE-----\n\nhQEMA"),
            Detected::Opaque {
                reason: "encrypted (PGP)",
                ..
            }
        ));
        assert!(matches!(
            sniff(b"age-encryption.org/v1\n-> X25519"),
            Detected::Opaque {
                reason: "encrypted (age)",
                ..
            }
        ));
        assert!(matches!(
            sniff(b"Salted__\x01\x02\x03\x04\x05\x06\x07\x08"),
            Detected::Opaque { .. }
        ));
        // Old-format PKESK, one-octet length, version 3.
        assert!(matches!(
            sniff(b"\x84\x5e\x03\x11\x22\x33"),
            Detected::Opaque {
                reason: "encrypted (PGP)",
                ..
            }
        ));
        // New-format SKESK, version 4.
        assert!(matches!(
            sniff(b"\xc3\x0d\x04\x07\x03"),
            Detected::Opaque {
                reason: "encrypted (PGP)",
                ..
            }
        ));
        assert!(matches!(
            sniff(b"\x00\x01\x02\x03binary"),
            Detected::Opaque {
                reason: "unknown binary format",
                ..
            }
        ));
        assert!(matches!(
            sniff(b"\xff\xfeM\0e\0m\0b\0e\0r\0"),
            Detected::Opaque {
                format: Format::Text,
                ..
            }
        ));
    }

    #[test]
    fn text_formats() {
        assert_eq!(sniff(b"ISA*00*          *00*"), Detected::X12);
        assert_eq!(sniff(b"\xEF\xBB\xBF\r\nISA|00|"), Detected::X12);
        assert_ne!(sniff(b"ISAAC,NEWTON\n"), Detected::X12);
        assert_ne!(sniff(b"ISA IS A WORD\n"), Detected::X12);
        assert_eq!(sniff(b"ISA\x1d00\x1d"), Detected::X12);
        assert_eq!(sniff(b"MSH|^~\\&|SENDER"), Detected::Hl7);
        assert_eq!(sniff(b"\x0bMSH|^~\\&|SENDER"), Detected::Hl7);
        assert_eq!(sniff(b"FHS|^~\\&|"), Detected::Hl7);
        assert_eq!(sniff(b"[{\"a\":1}]"), Detected::Json);
        assert_eq!(sniff(b"{\n  \"a\": 1\n}\n"), Detected::Json);
        assert_eq!(sniff(b"{\"a\":1}\n{\"a\":2}\n"), Detected::Ndjson);
        assert_eq!(sniff(b"{\"a\":1}\n"), Detected::Json);
        assert_eq!(sniff(b"just some words here\nand more\n"), Detected::Text);
        // Legacy 8-bit (Windows-1252) text is still text.
        assert_ne!(
            sniff(b"Jos\xe9 Mu\xf1oz lives here\n").format(),
            Format::Binary
        );
    }
}
