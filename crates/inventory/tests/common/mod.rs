//! Shared helpers for the scanner tests: inline synthetic fixtures and container builders.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::io::Write;

use flate2::write::{DeflateEncoder, GzEncoder};
use flate2::{Compress, Compression, Crc, FlushCompress};
use lockbox_inventory::{Limits, Person, ScanResult, Scanner};

pub const TODAY: (u16, u8, u8) = (2026, 3, 1);

/// The two-member 834 from shared/reference/fixtures (synthetic people).
pub const X12_834: &str = "ISA*00*          *00*          *ZZ*SFTPSENDER01   *ZZ*SFTPRECVR01    *260115*1200*^*00501*000000101*0*T*:~
GS*BE*SFTPSENDER01*SFTPRECVR01*20260115*1200*101*X*005010X220A1~
ST*834*0001*005010X220A1~
BGN*00*SYNTH-0001*20260115*1200****2~
N1*P5*EXAMPLE EMPLOYER INC*FI*000000000~
N1*IN*EXAMPLE HEALTH PLAN*FI*000000001~
INS*Y*18*021*28*A***FT~
REF*0F*SUB1000001~
REF*1L*GRP-7734~
REF*F6*1EG4TE5MK73~
DTP*356*D8*20260201~
NM1*IL*1*SAMPLE*JANE*Q***34*123456789~
PER*IP**HP*2175550101*EM*jane.sample@example.com~
N3*123 MAIN ST*APT 4~
N4*SPRINGFIELD*IL*627011234~
DMG*D8*19800515*F~
HD*021**HLT**FAM~
DTP*348*D8*20260201~
INS*N*19*021*28*A~
REF*0F*SUB1000001~
REF*1L*GRP-7734~
DTP*356*D8*20260201~
NM1*IL*1*SAMPLE*TOMMY****34*234567890~
N3*123 MAIN ST*APT 4~
N4*SPRINGFIELD*IL*62701~
DMG*D8*20120704*M~
HD*021**HLT**FAM~
DTP*348*D8*20260201~
SE*27*0001~
GE*1*101~
IEA*1*000000101~
";

/// The one-patient ADT^A04 from shared/reference/fixtures (CR-terminated segments).
pub const HL7_ADT: &str = "MSH|^~\\&|REGSYS|GOODHOSP|SFTPGW|PARTNER01|20260115120000||ADT^A04^ADT_A01|MSG000001|T|2.5.1\rEVN|A04|20260115120000\rPID|1||MRN0012345^^^GOODHOSP^MR~123456789^^^SSA^SS~1EG4TE5MK73^^^CMS^MC||SAMPLE^JANE^Q^^^^L||19800515|F|||123 MAIN ST^APT 4^SPRINGFIELD^IL^62701-1234^USA^H||^PRN^PH^^1^217^5550101~^NET^Internet^jane.sample@example.com|||||ACCT0001^^^GOODHOSP^AN|123-45-6789\rPV1|1|O|CLINIC1^^^GOODHOSP||||1234567893^WELBY^MARCUS^^^^MD^^^^^^NPI\rDG1|1||E11.9^Type 2 diabetes mellitus without complications^I10||20260115|W\r";

/// Scans `data` fed in chunks of `chunk` bytes.
pub fn scan_chunked(data: &[u8], chunk: usize, limits: Limits) -> (ScanResult, Vec<Person>) {
    let mut people = Vec::new();
    let mut s = Scanner::with_today(limits, TODAY);
    for c in data.chunks(chunk.max(1)) {
        s.feed(c, &mut |p| people.push(p));
    }
    let r = s.finish(&mut |p| people.push(p));
    (r, people)
}

pub fn scan(data: &[u8]) -> (ScanResult, Vec<Person>) {
    scan_chunked(data, 64 * 1024, Limits::default())
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("deflate");
    e.finish().expect("deflate")
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = Crc::new();
    c.update(data);
    c.sum()
}

/// One zip local file entry. `method` 0 stores, 8 deflates, anything else stores the bytes as given.
/// Flag bit 3 writes a data descriptor (sizes and CRC zero in the local header).
pub fn zip_entry(name: &str, content: &[u8], method: u16, flags: u16) -> Vec<u8> {
    let body = if method == 8 {
        deflate(content)
    } else {
        content.to_vec()
    };
    zip_entry_raw(
        name,
        &body,
        content.len() as u32,
        crc32(content),
        method,
        flags,
    )
}

pub fn zip_entry_raw(
    name: &str,
    body: &[u8],
    usize: u32,
    crc: u32,
    method: u16,
    flags: u16,
) -> Vec<u8> {
    let descriptor = flags & 8 != 0;
    let mut v = b"PK\x03\x04".to_vec();
    v.extend_from_slice(&20u16.to_le_bytes());
    v.extend_from_slice(&flags.to_le_bytes());
    v.extend_from_slice(&method.to_le_bytes());
    v.extend_from_slice(&[0; 4]); // time, date
    let (c, cs, us) = if descriptor {
        (0, 0, 0)
    } else {
        (crc, body.len() as u32, usize)
    };
    v.extend_from_slice(&c.to_le_bytes());
    v.extend_from_slice(&cs.to_le_bytes());
    v.extend_from_slice(&us.to_le_bytes());
    v.extend_from_slice(&(name.len() as u16).to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(body);
    if descriptor {
        v.extend_from_slice(b"PK\x07\x08");
        v.extend_from_slice(&crc.to_le_bytes());
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(&usize.to_le_bytes());
    }
    v
}

/// A zip file from entries (the central directory is reduced to an end record: the scanner stops at
/// the first central directory signature anyway).
pub fn zip(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut v: Vec<u8> = entries.concat();
    v.extend_from_slice(b"PK\x05\x06");
    v.extend_from_slice(&[0; 18]);
    v
}

/// A raw deflate stream that expands to `unit` repeated `repeats` times, built without compressing
/// all of it: a sync-flushed block for the first unit, the (identical) sync-flushed block of a second
/// unit repeated, then the final block. Valid because the decoder's window is the same after each unit
/// (`unit` must be at least 32 KiB).
pub fn repeated_deflate(unit: &[u8], repeats: usize) -> Vec<u8> {
    assert!(unit.len() >= 32 * 1024 && repeats >= 2);
    let mut c = Compress::new(Compression::best(), false);
    let mut step = |input: &[u8], flush: FlushCompress| {
        let mut out = Vec::with_capacity(input.len() + 1024);
        let start = c.total_in();
        c.compress_vec(input, &mut out, flush).expect("compress");
        assert_eq!(
            (c.total_in() - start) as usize,
            input.len(),
            "all input consumed"
        );
        out
    };
    let first = step(unit, FlushCompress::Sync);
    let again = step(unit, FlushCompress::Sync);
    let end = step(&[], FlushCompress::Finish);
    let mut v = first;
    for _ in 1..repeats {
        v.extend_from_slice(&again);
    }
    v.extend_from_slice(&end);
    v
}

/// Peak resident memory of this process (Linux), in bytes.
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
