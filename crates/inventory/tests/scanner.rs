//! The scanner end to end: detection, parsers behind it, containers, chunking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use lockbox_inventory::{Element, Format, Limits, ScanStatus};

const CSV: &str = "Member SSN,First Name,Last Name,DOB\n123-45-6789,Jane,Sample,05/15/1980\n234-56-7890,Tommy,Sample,07/04/2012\n";

#[test]
fn empty_and_blank() {
    let (r, _) = scan(b"");
    assert_eq!(
        (r.format, r.status, r.bytes),
        (Format::Empty, ScanStatus::Complete, 0)
    );
    let (r, _) = scan(b"\xEF\xBB\xBF \r\n\n");
    assert_eq!((r.format, r.status), (Format::Empty, ScanStatus::Complete));
    // Whitespace longer than the sniff window, then text.
    let mut v = vec![b' '; 20_000];
    let (r, _) = scan(&v);
    assert_eq!(r.format, Format::Empty);
    v.extend_from_slice(b"hello");
    let (r, _) = scan(&v);
    assert_eq!(r.format, Format::Text);
    assert!(matches!(r.status, ScanStatus::Partial(_)));
}

#[test]
fn unstructured_text_is_not_clean() {
    let (r, _) = scan(b"Dear team: the member's SSN is 123-45-6789.\nThanks\n");
    assert_eq!(r.format, Format::Text);
    assert_eq!(
        r.status,
        ScanStatus::Partial("unstructured text: not scanned for people".into())
    );
}

#[test]
fn text_formats_through_their_parsers() {
    let (r, people) = scan(HL7_ADT.as_bytes());
    assert_eq!(r.format, Format::Hl7v2, "{r:?}");
    assert_eq!(people.len(), 1);
    assert_eq!(r.persons, 1);
    assert!(
        r.element_counts.get(&Element::Ssn).is_some_and(|n| *n == 1),
        "{r:?}"
    );

    // BOM and blank lines before ISA / MSH.
    let (r, people) = scan(format!("\u{feff}\r\n  {X12_834}").as_bytes());
    assert_eq!(r.format, Format::X12_834, "{r:?}");
    assert_eq!(people.len(), 2);
    let (r, people) = scan(format!("\n\n{HL7_ADT}").as_bytes());
    assert_eq!(r.format, Format::Hl7v2);
    assert_eq!(people.len(), 1);

    let (r, people) = scan(CSV.as_bytes());
    assert_eq!(r.format, Format::Csv, "{r:?}");
    assert_eq!(people.len(), 2, "{r:?}");
    let (r, _) = scan(CSV.replace(',', "\t").as_bytes());
    assert_eq!(r.format, Format::Tsv, "{r:?}");

    let nd = "{\"ssn\":\"123-45-6789\",\"first_name\":\"Jane\",\"last_name\":\"Sample\"}\n{\"ssn\":\"234-56-7890\",\"first_name\":\"Tommy\",\"last_name\":\"Sample\"}\n";
    let (r, _) = scan(nd.as_bytes());
    assert_eq!(r.format, Format::Ndjson, "{r:?}");
    let (r, _) = scan(format!("[{}]", nd.trim_end().replace('\n', ",")).as_bytes());
    assert_eq!(r.format, Format::Json, "{r:?}");
}

#[test]
fn element_counts_match_people() {
    let (r, people) = scan(X12_834.as_bytes());
    for e in Element::ALL {
        let n = people.iter().filter(|p| p.elements().contains(e)).count() as u64;
        assert_eq!(r.element_counts.get(&e).copied().unwrap_or(0), n, "{e}");
    }
}

fn sample_zip() -> Vec<u8> {
    zip(&[
        zip_entry("dir/", b"", 0, 0),
        zip_entry("dir/a.x12", X12_834.as_bytes(), 8, 0),
        zip_entry("dir/b.hl7", HL7_ADT.as_bytes(), 0, 0),
        zip_entry("dir/c.csv", CSV.as_bytes(), 8, 8),
        zip_entry("dir/empty.txt", b"", 0, 0),
        zip_entry("dir/d.x12.gz", &gzip(X12_834.as_bytes()), 0, 0),
    ])
}

#[test]
fn zip_entries_are_scanned() {
    let (r, people) = scan(&sample_zip());
    assert_eq!(r.format, Format::Zip);
    assert_eq!(r.status, ScanStatus::Complete, "{r:?}");
    assert_eq!(
        r.inner_formats,
        vec![
            Format::X12_834,
            Format::Hl7v2,
            Format::Csv,
            Format::Empty,
            Format::Gzip,
            Format::X12_834
        ]
    );
    assert_eq!(people.len(), 2 + 1 + 2 + 2);
    assert_eq!(r.persons, 7);

    let (r, _) = scan(b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    assert_eq!(
        (r.format, r.status, r.inner_formats.len()),
        (Format::Zip, ScanStatus::Complete, 0)
    );

    // Stored with a data descriptor cannot be delimited while streaming.
    let (r, _) = scan(&zip(&[zip_entry("a.csv", CSV.as_bytes(), 0, 8)]));
    assert!(matches!(r.status, ScanStatus::Opaque(_)), "{r:?}");
}

#[test]
fn gzip_multi_member() {
    let (a, b) = X12_834.split_at(700);
    let mut file = gzip(a.as_bytes());
    file.extend_from_slice(&gzip(b.as_bytes()));
    file.extend_from_slice(&[0; 16]); // padding
    let (r, people) = scan(&file);
    assert_eq!(
        (r.format, &r.status),
        (Format::Gzip, &ScanStatus::Complete),
        "{r:?}"
    );
    assert_eq!(r.inner_formats, vec![Format::X12_834]);
    assert_eq!(people.len(), 2);
    // Trailing garbage is not silently ignored.
    file.extend_from_slice(b"trailing");
    let (r, _) = scan(&file);
    assert!(matches!(r.status, ScanStatus::Partial(_)), "{r:?}");
}

#[test]
fn any_chunking_gives_the_same_result() {
    let files = [
        sample_zip(),
        gzip(&gzip(CSV.as_bytes())),
        X12_834.as_bytes().to_vec(),
        HL7_ADT.as_bytes().to_vec(),
    ];
    for f in &files {
        let whole = scan_chunked(f, f.len(), Limits::default());
        for chunk in [1, 2, 3, 7, 64, 4095] {
            let r = scan_chunked(f, chunk, Limits::default());
            assert_eq!(r, whole, "chunk {chunk}");
        }
    }
}
