//! Hostile and broken input: the scanner never panics, keeps memory bounded, and says what it could not
//! read (`Partial`/`Opaque` with a reason) instead of calling the file clean.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use lockbox_inventory::{Format, Limits, Person, ScanStatus, Scanner};

fn is_partial(s: &ScanStatus) -> bool {
    matches!(s, ScanStatus::Partial(_))
}

fn reason(s: &ScanStatus) -> &str {
    s.reason().unwrap_or_default()
}

#[test]
fn well_formed_834_is_complete() {
    let (r, people) = scan(X12_834.as_bytes());
    assert_eq!(r.format, Format::X12_834, "{r:?}");
    assert_eq!(r.status, ScanStatus::Complete, "{r:?}");
    assert_eq!(r.persons, 2);
    assert_eq!(people.len(), 2);
    assert_eq!(r.bytes, X12_834.len() as u64);
}

/// Needs the X12 parser (landed).
#[test]
fn truncated_x12_is_partial() {
    let cut = X12_834.find("HD*021").expect("fixture");
    let (r, _) = scan(&X12_834.as_bytes()[..cut]);
    assert!(
        matches!(r.format, Format::X12_834 | Format::X12Other),
        "{r:?}"
    );
    assert!(is_partial(&r.status), "{r:?}");
    // Cut inside the ISA header.
    let (r, people) = scan(&X12_834.as_bytes()[..50]);
    assert!(is_partial(&r.status), "{r:?}");
    assert!(people.is_empty());
}

/// Needs the X12 parser (landed).
#[test]
fn wrong_se_count_is_partial() {
    let bad = X12_834.replace("SE*27*0001~", "SE*25*0001~");
    let (r, people) = scan(bad.as_bytes());
    assert!(is_partial(&r.status), "{r:?}");
    assert!(reason(&r.status).contains("SE"), "{r:?}");
    // The people are still reported.
    assert_eq!(people.len(), 2);
}

#[test]
fn missing_isa_is_not_x12() {
    let start = X12_834.find("GS*").expect("fixture");
    let (r, _) = scan(&X12_834.as_bytes()[start..]);
    assert!(
        !matches!(
            r.format,
            Format::X12_834 | Format::X12_837 | Format::X12Other
        ),
        "{r:?}"
    );
    assert_ne!(
        r.status,
        ScanStatus::Complete,
        "unstructured text must not count as clean: {r:?}"
    );
}

#[test]
fn binary_garbage_is_opaque() {
    // Deterministic pseudo-random bytes (xorshift).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for chunk in [1, 3, 4096, 1 << 20] {
        let (r, people) = scan_chunked(&data, chunk, Limits::default());
        assert_eq!(r.format, Format::Binary);
        assert_eq!(r.status, ScanStatus::Opaque("unknown binary format".into()));
        assert!(people.is_empty());
        assert_eq!(r.bytes, data.len() as u64);
    }
}

#[test]
fn invalid_utf8() {
    // Dense invalid UTF-8: binary.
    let dense: Vec<u8> = (0..10_000u32).map(|i| 0x80 | (i % 64) as u8).collect();
    let (r, _) = scan(&dense);
    assert_eq!(r.format, Format::Binary);
    assert!(matches!(r.status, ScanStatus::Opaque(_)));
    // Legacy 8-bit text (Latin-1 names) stays on the text path, and nothing panics.
    let latin1 = b"ssn,first,last,dob\n123-45-6789,Jos\xe9,Mu\xf1oz,05/15/1980\n234-56-7890,Ren\xe9e,O'Brien,07/04/1975\n";
    let (r, _) = scan(latin1);
    assert_ne!(r.format, Format::Binary, "{r:?}");
    // Invalid UTF-8 inside X12, HL7 and JSON.
    for base in [
        X12_834,
        HL7_ADT,
        "[{\"ssn\":\"123-45-6789\",\"name\":\"x\"}]",
    ] {
        let mut v = base.as_bytes().to_vec();
        for i in (10..v.len()).step_by(37) {
            v[i] = 0xC3 ^ (i as u8 & 0x3F);
        }
        for chunk in [1, 7, 4096] {
            let _ = scan_chunked(&v, chunk, Limits::default());
        }
    }
}

/// A deflate stream of ~1 GiB of text, compressed about 1000:1, in a zip: the ratio limit stops it
/// right after the grace output, long before 1 GiB.
#[test]
fn zip_bomb_stops_at_ratio_limit() {
    let line = b"The quick brown fox jumps over the lazy dog again and again.\n";
    let unit: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
    let body = repeated_deflate(&unit, 1024); // 1 GiB when expanded
    assert!(body.len() < 8 << 20, "compressed size {}", body.len());
    let file = zip(&[zip_entry_raw("members.txt", &body, 1 << 30, 0, 8, 0)]);
    let t = Instant::now();
    let (r, _) = scan_chunked(&file, 1 << 20, Limits::default());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(r.format, Format::Zip);
    assert!(is_partial(&r.status), "{r:?}");
    assert!(
        reason(&r.status).contains("decompression limit reached"),
        "{r:?}"
    );
    assert!(reason(&r.status).contains("ratio"), "{r:?}");

    // The same stream in gzip, with the total limit instead of the ratio.
    let mut gz = vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF];
    gz.extend_from_slice(&body);
    gz.extend_from_slice(&[0; 8]);
    let limits = Limits {
        max_ratio: 1_000_000,
        max_expanded: 64 << 20,
        ..Limits::default()
    };
    let (r, _) = scan_chunked(&gz, 1 << 20, limits);
    assert_eq!(r.format, Format::Gzip);
    assert!(is_partial(&r.status), "{r:?}");
    assert!(
        reason(&r.status).contains(&format!("more than {} bytes expanded", 64u64 << 20)),
        "{r:?}"
    );
}

#[test]
fn gzip_nesting_depth() {
    let inner = X12_834.as_bytes();
    let g3 = gzip(&gzip(&gzip(inner)));
    let (r, people) = scan(&g3);
    assert_eq!(r.format, Format::Gzip);
    assert_eq!(
        r.inner_formats,
        vec![Format::Gzip, Format::Gzip, Format::X12_834]
    );
    assert_eq!(r.status, ScanStatus::Complete, "{r:?}");
    assert_eq!(people.len(), 2);
    assert_eq!(r.records, 2);

    let g4 = gzip(&g3);
    let (r, people) = scan(&g4);
    assert_eq!(r.format, Format::Gzip);
    assert!(matches!(r.status, ScanStatus::Opaque(_)), "{r:?}");
    assert!(
        reason(&r.status).contains("containers nested too deep"),
        "{r:?}"
    );
    assert!(people.is_empty());
}

#[test]
fn pgp_armored_is_opaque() {
    let file = b"-----BEGIN PGP MESSAGE-----\n\nhQEMA1234567890ABAQf/abcdefghijklmnopqrstuvwxyz0123456789+/\n=ABCD\n-----END PGP MESSAGE-----\n";
    let (r, _) = scan(file);
    assert_eq!(r.format, Format::Binary);
    assert_eq!(r.status, ScanStatus::Opaque("encrypted (PGP)".into()));
    let (r, _) = scan(b"age-encryption.org/v1\n-> X25519 abc\n--- def\n\x01\x02\x03");
    assert_eq!(r.status, ScanStatus::Opaque("encrypted (age)".into()));
    let (r, _) = scan(b"Salted__\x11\x22\x33\x44\x55\x66\x77\x88\xAA\xBB");
    assert_eq!(
        r.status,
        ScanStatus::Opaque("encrypted (openssl enc)".into())
    );
}

#[test]
fn encrypted_zip_entry_is_opaque() {
    let file = zip(&[
        zip_entry("members.x12", X12_834.as_bytes(), 8, 0),
        zip_entry("secret.csv", b"\x8a\x11\x93\x04 pretend ciphertext", 0, 1),
        zip_entry("aes.csv", b"pretend AES ciphertext", 99, 1),
    ]);
    let (r, people) = scan(&file);
    assert_eq!(r.format, Format::Zip);
    assert!(matches!(r.status, ScanStatus::Opaque(_)), "{r:?}");
    assert!(reason(&r.status).contains("encrypted zip entry"), "{r:?}");
    // The readable entry was still scanned.
    assert_eq!(people.len(), 2);
    assert_eq!(
        r.inner_formats,
        vec![Format::X12_834, Format::Binary, Format::Binary]
    );

    // Encrypted with a data descriptor: the end cannot be found, so the rest is not scanned either.
    let file = zip(&[
        zip_entry("secret.csv", b"pretend ciphertext", 8, 1 | 8),
        zip_entry("m.x12", X12_834.as_bytes(), 8, 0),
    ]);
    let (r, people) = scan(&file);
    assert!(matches!(r.status, ScanStatus::Opaque(_)), "{r:?}");
    assert!(people.is_empty());
}

#[test]
fn corrupt_and_truncated_containers() {
    let gz = gzip(X12_834.as_bytes());
    // Truncated gzip: partial, people before the cut may be reported, no panic at any cut.
    for cut in [2, 5, 10, 11, gz.len() / 2, gz.len() - 4, gz.len() - 1] {
        let (r, _) = scan(&gz[..cut]);
        assert_eq!(r.format, Format::Gzip);
        assert_ne!(r.status, ScanStatus::Complete, "cut {cut}: {r:?}");
    }
    // Corrupted CRC.
    let mut bad = gz.clone();
    let n = bad.len();
    bad[n - 8] ^= 0xFF;
    let (r, _) = scan(&bad);
    assert!(reason(&r.status).contains("checksum"), "{r:?}");
    // Flipped bits in the deflate data.
    for i in (10..gz.len() - 8).step_by(5) {
        let mut bad = gz.clone();
        bad[i] ^= 0x5A;
        let _ = scan(&bad);
    }
    // Unsupported gzip method.
    let (r, _) = scan(b"\x1f\x8b\x07\x00\x00\x00\x00\x00\x00\x03garbage");
    assert!(matches!(r.status, ScanStatus::Opaque(_)), "{r:?}");

    let z = zip(&[
        zip_entry("a.x12", X12_834.as_bytes(), 8, 0),
        zip_entry("b.x12", X12_834.as_bytes(), 0, 0),
    ]);
    for cut in [
        4,
        20,
        30,
        40,
        z.len() / 3,
        z.len() / 2,
        z.len() - 22,
        z.len() - 1,
    ] {
        let (r, _) = scan(&z[..cut]);
        assert_eq!(r.format, Format::Zip);
        if cut < z.len() - 22 {
            assert_ne!(r.status, ScanStatus::Complete, "cut {cut}: {r:?}");
        }
    }
    for i in (0..z.len()).step_by(3) {
        let mut bad = z.clone();
        bad[i] ^= 0xA5;
        let _ = scan_chunked(&bad, 11, Limits::default());
    }
    // Unsupported method (bzip2 = 12) with known size: that entry is opaque, the next one is read.
    let z = zip(&[
        zip_entry("a.bin", b"BZh91AY&SY....", 12, 0),
        zip_entry("b.x12", X12_834.as_bytes(), 8, 0),
    ]);
    let (r, people) = scan(&z);
    assert!(matches!(r.status, ScanStatus::Opaque(_)), "{r:?}");
    assert!(
        reason(&r.status).contains("unsupported compression method (12)"),
        "{r:?}"
    );
    assert_eq!(people.len(), 2);
}

/// Feeds a single line of `total` bytes (no newline) after `head`, in 1 MiB chunks generated on the fly.
fn long_line(head: &[u8], fill: &[u8], total: u64) -> lockbox_inventory::ScanResult {
    let chunk: Vec<u8> = fill.iter().copied().cycle().take(1 << 20).collect();
    let mut s = Scanner::with_today(Limits::default(), TODAY);
    let mut sink = |_: Person| {};
    s.feed(head, &mut sink);
    let mut sent = head.len() as u64;
    while sent < total {
        let n = (total - sent).min(chunk.len() as u64) as usize;
        s.feed(&chunk[..n], &mut sink);
        sent += n as u64;
    }
    let r = s.finish(&mut sink);
    assert_eq!(r.bytes, total);
    r
}

fn long_lines(total: u64) {
    let t = Instant::now();
    let cases: [(&[u8], &[u8]); 6] = [
        (b"", b"a"),
        (b"ISA*00*", b"x*"),
        (b"MSH|^~\\&|", b"x|^"),
        (b"ssn,name,dob\n", b"1234,"),
        (b"[\"", b"abc"),
        (b"{\"k\":\"", b"abc"),
    ];
    for (head, fill) in cases {
        let r = long_line(head, fill, total);
        assert_ne!(r.status, ScanStatus::Complete, "{head:?}: {r:?}");
    }
    if let Some(peak) = peak_rss() {
        assert!(peak < 1 << 30, "peak RSS {peak}");
    }
    eprintln!("long lines of {total} bytes: {:?}", t.elapsed());
}

#[test]
fn long_single_line_256mib() {
    long_lines(256 << 20);
}

#[test]
#[ignore = "2 GiB per case: run with --ignored"]
fn long_single_line_2gib() {
    long_lines(2 << 30);
}
