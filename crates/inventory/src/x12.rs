//! Streaming X12 005010 parser (834 enrollment, 837 claims, and other transaction sets generically).
//!
//! The delimiters come from each interchange's ISA header (element separator = 4th byte, repetition
//! separator = ISA11, component separator = ISA16, segment terminator = the byte after ISA16), never
//! assumed. Segments are cut on the terminator as chunks arrive; only the segment being assembled
//! (bounded by [`MAX_SEGMENT`]) and the people of the current loop are held in memory.
//!
//! Who is a person:
//! - 834: one member per `INS` (loop 2000) with its 2100A `NM1*IL`/`NM1*74` demographics and 2100C
//!   `NM1*31` mailing address. `REF*0F` is the member's own id only for the subscriber (`INS01=Y`).
//!   Sponsor/payer `N1` loops, 2100D-H entities, coverage (`HD`) and reporting loops are not the member.
//! - 837: the subscriber (`HL` 22, 2010BA `NM1*IL`), the patient (`HL` 23, 2010CA `NM1*QC`), and an
//!   other-payer subscriber (2330A `NM1*IL`, after `CLM`). Claim data (`REF*EA`, `HI` diagnoses) goes to
//!   the patient of the claim (the subscriber when there is no `HL` 23). `CLM01` is never an SSN;
//!   provider loops (NPIs) are never patient data.
//! - Other transaction sets: every `NM1` with entity code IL, QC or 74 starts a person, followed by its
//!   `N3`/`N4`/`DMG`/`PER`/`REF`.
//!
//! `ParseOutcome.records` counts members (`INS`) in 834 transaction sets, claims (`CLM`) in 837
//! transaction sets, and transaction sets (`ST`) of any other kind.

use crate::model::{Address, Format, Name, Person, ScanStatus};
use crate::validate;
use crate::{ParseOutcome, RecordParser};

/// Longest segment accepted; a longer one is skipped and the outcome becomes partial.
pub const MAX_SEGMENT: usize = 64 * 1024;
/// Longest ISA header searched for its 16 element separators (a conformant one is 106 bytes).
const MAX_ISA: usize = 512;
/// Elements split per segment (id included); later elements are ignored (HI12 is element 12).
const MAX_ELEMS: usize = 24;
const MAX_ISSUES: usize = 4;
const MAX_PHONES: usize = 8;
const MAX_EMAILS: usize = 8;
const MAX_DIAGNOSES: usize = 64;
const MAX_STREET_LINES: usize = 4;

/// The delimiters of the current interchange, as read from its ISA header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub element: u8,
    /// ISA11 when it is a separator character (in 00401 it is the letter `U`: no repetition).
    pub repetition: Option<u8>,
    pub component: u8,
    pub segment: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Looking for (or assembling) an ISA header.
    AwaitIsa,
    /// Inside an interchange: cutting segments on the terminator.
    Segments,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Enrollment,
    Claim,
    Other,
}

impl Kind {
    fn format(self) -> Format {
        match self {
            Kind::Enrollment => Format::X12_834,
            Kind::Claim => Format::X12_837,
            Kind::Other => Format::X12Other,
        }
    }
}

/// Where we are inside a transaction set, as far as people are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loop {
    /// Header loops, or anything that is not about a person we track.
    Other,
    /// 834 loop 2000 (after INS, before the member's NM1).
    Member,
    /// 834 loop 2100A (member name, demographics, residence address, contacts).
    MemberName,
    /// 834 loop 2100C (member mailing address).
    Mailing,
    /// 837 loop 2000B (HL 22, SBR).
    SubscriberHl,
    /// 837 loop 2010BA.
    SubscriberName,
    /// 837 loop 2000C (HL 23, PAT).
    PatientHl,
    /// 837 loop 2010CA.
    PatientName,
    /// 837 loop 2300 (CLM, REF*EA, HI).
    Claim,
    /// 837 loop 2330A (other payer's subscriber).
    OtherInsured,
    /// Other transaction sets: after an NM1 IL/QC/74.
    GenericPerson,
}

/// The elements of one segment as byte slices (no allocation): the end offset of each element.
struct Elems<'a> {
    seg: &'a [u8],
    ends: [u32; MAX_ELEMS],
    n: usize,
}

impl<'a> Elems<'a> {
    fn split(seg: &'a [u8], sep: u8) -> Self {
        let mut ends = [0u32; MAX_ELEMS];
        let mut n = 0usize;
        let mut push = |i: usize| {
            if let Some(slot) = ends.get_mut(n) {
                *slot = i as u32;
                n += 1;
            }
        };
        // Word at a time: an exact per-byte match mask, then one step per separator found.
        let pat = LO.wrapping_mul(u64::from(sep));
        let mut chunks = seg.chunks_exact(8);
        let mut base = 0usize;
        for c in &mut chunks {
            let w = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8])) ^ pat;
            let mut z = !((((w & LOW7) + LOW7) | w) | LOW7);
            while z != 0 {
                push(base + (z.trailing_zeros() / 8) as usize);
                z &= z - 1;
            }
            base += 8;
        }
        for (i, b) in chunks.remainder().iter().enumerate() {
            if *b == sep {
                push(base + i);
            }
        }
        push(seg.len());
        Elems { seg, ends, n }
    }

    /// Element `i` (0 = segment id), trimmed; empty when absent.
    fn get(&self, i: usize) -> &'a [u8] {
        if i >= self.n {
            return &[];
        }
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).map_or(usize::MAX, |e| *e as usize + 1),
            None => 0,
        };
        let end = self.ends.get(i).map_or(0, |e| *e as usize);
        self.seg.get(start..end).unwrap_or(&[]).trim_ascii()
    }

    fn str(&self, i: usize) -> &'a str {
        std::str::from_utf8(self.get(i)).unwrap_or("")
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\r' | b'\n' | b'\t')
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// First position of `needle` in `hay` (word-at-a-time; no allocation).
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    let pat = LO.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0usize;
    for c in &mut chunks {
        let w = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8])) ^ pat;
        // The lowest flagged byte is always a real match (false positives only sit above a match).
        let z = w.wrapping_sub(LO) & !w & HI;
        if z != 0 {
            return Some(base + (z.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|b| *b == needle)
        .map(|p| base + p)
}

/// Reads the delimiters from an ISA segment (without its terminator).
fn parse_isa(seg: &[u8], terminator: u8) -> Option<Delimiters> {
    if !seg.starts_with(b"ISA") {
        return None;
    }
    let element = *seg.get(3)?;
    if element.is_ascii_alphanumeric() || is_ws(element) {
        return None;
    }
    let parts: Vec<&[u8]> = seg.split(|b| *b == element).collect();
    if parts.len() != 17 {
        return None;
    }
    let isa16 = parts.get(16)?;
    let component = match isa16 {
        [c] => *c,
        _ => return None,
    };
    let repetition = match parts.get(11)? {
        [c] if !c.is_ascii_alphanumeric() && !is_ws(*c) => Some(*c),
        _ => None,
    };
    let distinct = component != element && terminator != element && terminator != component;
    let plausible = !component.is_ascii_alphanumeric()
        && !terminator.is_ascii_alphanumeric()
        && terminator != b' ';
    (distinct && plausible).then_some(Delimiters {
        element,
        repetition,
        component,
        segment: terminator,
    })
}

/// `validate::state` without its intermediate allocation.
fn state(b: &[u8]) -> Option<String> {
    let [x, y] = <[u8; 2]>::try_from(b.trim_ascii()).ok()?;
    let code = [x.to_ascii_uppercase(), y.to_ascii_uppercase()];
    validate::STATES
        .iter()
        .find(|s| s.as_bytes() == code)
        .map(|s| (*s).to_owned())
}

fn text(b: &[u8]) -> String {
    let b = b.trim_ascii();
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// A plausible identifier (member id, Medicaid id, MRN): 1-50 characters of letters, digits and
/// `-_./`, at least one letter or digit, not all zeros.
fn ident(b: &[u8]) -> Option<String> {
    let b = b.trim_ascii();
    let ok = !b.is_empty()
        && b.len() <= 50
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./".contains(c))
        && b.iter().any(|c| c.is_ascii_alphanumeric())
        && !b
            .iter()
            .all(|c| matches!(c, b'0' | b'-' | b'.' | b'/' | b'_'));
    ok.then(|| String::from_utf8_lossy(b).into_owned())
}

fn set_ctl(dst: &mut Vec<u8>, v: &[u8]) {
    dst.clear();
    dst.extend_from_slice(v.get(..v.len().min(32)).unwrap_or(&[]));
}

fn parse_count(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b.trim_ascii()).ok()?.parse().ok()
}

fn set_name(p: &mut Person, e: &Elems) {
    let (last, first, middle) = (e.get(3), e.get(4), e.get(5));
    if p.name.is_none() && (!last.is_empty() || !first.is_empty()) {
        p.name = Some(Name {
            last: text(last),
            first: text(first),
            middle: text(middle),
        });
    }
}

/// NM108/NM109 of a person's NM1: 34 = SSN, MI = member id (also an MBI when it has that exact shape).
/// XX (NPI) and anything else are not taken.
fn set_nm1_id(p: &mut Person, e: &Elems) {
    let id = e.get(9);
    match e.get(8) {
        b"34" => {
            fill(&mut p.ssn, || validate::ssn(e.str(9)));
        }
        b"MI" => {
            fill(&mut p.mbi, || validate::mbi(e.str(9)));
            fill(&mut p.member_id, || ident(id));
        }
        _ => {}
    }
}

fn set_medicare(p: &mut Person, v: &str) {
    if let Some(m) = validate::mbi(v) {
        p.mbi.get_or_insert(m);
    } else if let Some(h) = validate::hicn(v) {
        p.hicn.get_or_insert(h);
    }
}

fn fill<T>(slot: &mut Option<T>, value: impl FnOnce() -> Option<T>) {
    if slot.is_none() {
        *slot = value();
    }
}

fn push_bounded(v: &mut Vec<String>, s: String, max: usize) {
    if v.len() < max && !v.contains(&s) {
        v.push(s);
    }
}

fn emit(p: Option<Person>, out: &mut dyn FnMut(Person)) {
    let Some(mut p) = p else { return };
    let empty = |a: &Option<Address>| {
        a.as_ref().is_some_and(|a| {
            a.street.is_empty() && a.city.is_empty() && a.state.is_empty() && a.zip.is_empty()
        })
    };
    if empty(&p.address) {
        p.address = None;
    }
    if empty(&p.mailing_address) {
        p.mailing_address = None;
    }
    if p.is_identifiable() {
        out(p);
    }
}

/// Streaming X12 parser; see the module documentation.
pub struct X12Parser {
    today: (u16, u8, u8),
    stage: Stage,
    delims: Delimiters,
    /// The ISA header being assembled (AwaitIsa).
    isa_buf: Vec<u8>,
    isa_seps: u8,
    isa_sep16: usize,
    /// The segment being assembled across chunks (without terminator).
    seg: Vec<u8>,
    /// Discarding the rest of an overlong segment.
    skipping: bool,

    // Envelopes.
    interchanges: u64,
    in_isa: bool,
    in_gs: bool,
    in_st: bool,
    isa_gs: u64,
    gs_st: u64,
    st_segments: u64,
    gs_kind: Option<Kind>,
    /// Control numbers (ISA13, GS06, ST02) to match against IEA02, GE02, SE02.
    isa_ctl: Vec<u8>,
    gs_ctl: Vec<u8>,
    st_ctl: Vec<u8>,
    kind: Kind,
    format: Option<Format>,
    records: u64,
    issues: Vec<String>,
    more_issues: u64,

    // People.
    lp: Loop,
    /// 834 member, 837 subscriber, or the generic person.
    primary: Option<Person>,
    primary_is_subscriber: bool,
    /// 837 patient (HL 23).
    patient: Option<Person>,
    /// 837 other payer's subscriber (2330A).
    aux: Option<Person>,
    /// 837: a CLM was seen since the last HL (an NM1*IL now is the other insured).
    in_claim: bool,
}

impl X12Parser {
    pub fn new(today: (u16, u8, u8)) -> Self {
        X12Parser {
            today,
            stage: Stage::AwaitIsa,
            delims: Delimiters {
                element: b'*',
                repetition: None,
                component: b':',
                segment: b'~',
            },
            isa_buf: Vec::with_capacity(128),
            isa_seps: 0,
            isa_sep16: 0,
            seg: Vec::new(),
            skipping: false,
            interchanges: 0,
            in_isa: false,
            in_gs: false,
            in_st: false,
            isa_gs: 0,
            gs_st: 0,
            st_segments: 0,
            gs_kind: None,
            isa_ctl: Vec::new(),
            gs_ctl: Vec::new(),
            st_ctl: Vec::new(),
            kind: Kind::Other,
            format: None,
            records: 0,
            issues: Vec::new(),
            more_issues: 0,
            lp: Loop::Other,
            primary: None,
            primary_is_subscriber: false,
            patient: None,
            aux: None,
            in_claim: false,
        }
    }

    /// The delimiters of the current (or last) interchange, once an ISA header was read.
    pub fn delimiters(&self) -> Option<Delimiters> {
        (self.interchanges > 0).then_some(self.delims)
    }

    fn issue(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        if self.issues.contains(&reason) {
            return;
        }
        if self.issues.len() < MAX_ISSUES {
            self.issues.push(reason);
        } else {
            self.more_issues += 1;
        }
    }

    fn flush_all(&mut self, out: &mut dyn FnMut(Person)) {
        emit(self.primary.take(), out);
        emit(self.patient.take(), out);
        emit(self.aux.take(), out);
        self.primary_is_subscriber = false;
        self.in_claim = false;
        self.lp = Loop::Other;
    }

    fn no_isa(&mut self) {
        if self.interchanges == 0 {
            self.issue("missing ISA header");
        } else {
            self.issue("unexpected data after IEA (no ISA header)");
        }
    }

    /// Assembles an ISA header; returns how many bytes of `data` were consumed.
    fn feed_isa(&mut self, data: &[u8], out: &mut dyn FnMut(Person)) -> usize {
        for (i, &b) in data.iter().enumerate() {
            let n = self.isa_buf.len();
            if n == 0 && (is_ws(b) || (self.interchanges == 0 && matches!(b, 0xEF | 0xBB | 0xBF))) {
                continue;
            }
            if n < 3 {
                if b"ISA".get(n) == Some(&b) {
                    self.isa_buf.push(b);
                } else {
                    self.no_isa();
                    self.isa_buf.clear();
                    if b == b'I' {
                        self.isa_buf.push(b);
                    }
                }
                continue;
            }
            self.isa_buf.push(b);
            if n == 3 {
                if b.is_ascii_alphanumeric() || is_ws(b) {
                    self.no_isa();
                    self.isa_buf.clear();
                }
                self.isa_seps = 1;
                continue;
            }
            let element = self.isa_buf.get(3).copied().unwrap_or(0);
            if self.isa_seps < 16 {
                if b == element {
                    self.isa_seps += 1;
                    self.isa_sep16 = n;
                }
            } else if n == self.isa_sep16 + 2 {
                let head = self.isa_buf.get(..n).unwrap_or(&[]);
                if let Some(d) = parse_isa(head, b) {
                    self.delims = d;
                    self.stage = Stage::Segments;
                    let buf = std::mem::take(&mut self.isa_buf);
                    self.segment(buf.get(..n).unwrap_or(&[]), out);
                    self.isa_buf = buf;
                    self.isa_buf.clear();
                    return i + 1;
                }
                self.issue("garbled ISA header");
                self.isa_buf.clear();
                continue;
            }
            if self.isa_buf.len() > MAX_ISA {
                self.issue("garbled ISA header");
                self.isa_buf.clear();
            }
        }
        data.len()
    }

    fn feed_segments<'d>(&mut self, data: &'d [u8], out: &mut dyn FnMut(Person)) -> &'d [u8] {
        let mut rest = data;
        while self.stage == Stage::Segments {
            let Some(i) = find_byte(rest, self.delims.segment) else {
                if !self.skipping {
                    let add = if self.seg.is_empty() {
                        rest.trim_ascii_start()
                    } else {
                        rest
                    };
                    if self.seg.len() + add.len() > MAX_SEGMENT {
                        self.seg.clear();
                        self.skipping = true;
                    } else {
                        self.seg.extend_from_slice(add);
                    }
                }
                return &[];
            };
            let head = rest.get(..i).unwrap_or(&[]);
            rest = rest.get(i + 1..).unwrap_or(&[]);
            if self.skipping {
                self.skipping = false;
                self.skipped_segment();
            } else if self.seg.is_empty() && head.len() <= MAX_SEGMENT {
                self.segment(head, out);
            } else if self.seg.len() + head.len() > MAX_SEGMENT {
                self.seg.clear();
                self.skipped_segment();
            } else {
                let mut buf = std::mem::take(&mut self.seg);
                buf.extend_from_slice(head);
                self.segment(&buf, out);
                buf.clear();
                self.seg = buf;
            }
        }
        rest
    }

    fn skipped_segment(&mut self) {
        if self.in_st {
            self.st_segments += 1;
        }
        self.issue(format!("segment longer than {MAX_SEGMENT} bytes skipped"));
    }

    /// One complete segment (terminator removed).
    fn segment(&mut self, seg: &[u8], out: &mut dyn FnMut(Person)) {
        let seg = seg.trim_ascii();
        if seg.is_empty() {
            return;
        }
        let e = Elems::split(seg, self.delims.element);
        let id = e.get(0);
        if self.in_st {
            self.st_segments += 1;
        }
        match id {
            b"ISA" => self.isa(seg, out),
            b"GS" => {
                if self.in_gs {
                    self.close_txn_if_open("GE", out);
                    self.issue("GS without preceding GE");
                }
                self.in_gs = true;
                self.isa_gs += 1;
                self.gs_st = 0;
                self.gs_kind = kind_from_version(e.get(8));
                set_ctl(&mut self.gs_ctl, e.get(6));
            }
            b"ST" => self.st(&e, out),
            b"SE" => {
                if !self.in_st {
                    self.issue("SE without ST");
                    return;
                }
                if let Some(n) = parse_count(e.get(1)) {
                    if n != self.st_segments {
                        self.issue(format!(
                            "SE01 says {n} segments, found {}",
                            self.st_segments
                        ));
                    }
                } else {
                    self.issue("SE01 is not a number");
                }
                if e.get(2) != self.st_ctl.as_slice() {
                    self.issue("SE02 does not match the ST02 control number");
                }
                self.flush_all(out);
                self.in_st = false;
            }
            b"GE" => {
                self.close_txn_if_open("GE", out);
                if !self.in_gs {
                    self.issue("GE without GS");
                } else if let Some(n) = parse_count(e.get(1)).filter(|n| *n != self.gs_st) {
                    self.issue(format!(
                        "GE01 says {n} transaction sets, found {}",
                        self.gs_st
                    ));
                }
                if self.in_gs && e.get(2) != self.gs_ctl.as_slice() {
                    self.issue("GE02 does not match the GS06 control number");
                }
                self.in_gs = false;
            }
            b"IEA" => {
                self.close_txn_if_open("IEA", out);
                if self.in_gs {
                    self.issue("GE missing before IEA");
                    self.in_gs = false;
                }
                if let Some(n) = parse_count(e.get(1)).filter(|n| *n != self.isa_gs) {
                    self.issue(format!(
                        "IEA01 says {n} functional groups, found {}",
                        self.isa_gs
                    ));
                }
                if self.in_isa && e.get(2) != self.isa_ctl.as_slice() {
                    self.issue("IEA02 does not match the ISA13 control number");
                }
                self.in_isa = false;
                self.stage = Stage::AwaitIsa;
            }
            b"TA1" => {}
            _ => {
                if !self.in_st {
                    self.issue("segment outside a transaction set");
                    return;
                }
                match self.kind {
                    Kind::Enrollment => self.seg_834(id, &e, out),
                    Kind::Claim => self.seg_837(id, &e, out),
                    Kind::Other => self.seg_other(id, &e, out),
                }
            }
        }
    }

    fn close_txn_if_open(&mut self, before: &str, out: &mut dyn FnMut(Person)) {
        if self.in_st {
            self.issue(format!("SE missing before {before}"));
            self.flush_all(out);
            self.in_st = false;
        }
    }

    fn isa(&mut self, seg: &[u8], out: &mut dyn FnMut(Person)) {
        match parse_isa(seg, self.delims.segment) {
            Some(d) => {
                self.delims = d;
                let e = Elems::split(seg, d.element);
                set_ctl(&mut self.isa_ctl, e.get(13));
            }
            None => self.issue("garbled ISA header"),
        }
        if self.in_isa {
            self.close_txn_if_open("ISA", out);
            self.issue("interchange not closed (IEA missing) before the next ISA");
        }
        self.in_isa = true;
        self.in_gs = false;
        self.isa_gs = 0;
        self.interchanges += 1;
    }

    fn st(&mut self, e: &Elems, out: &mut dyn FnMut(Person)) {
        if self.in_st {
            self.issue("ST without preceding SE");
            self.flush_all(out);
        }
        if !self.in_gs {
            self.issue("ST outside a functional group");
        }
        self.in_st = true;
        self.st_segments = 1;
        set_ctl(&mut self.st_ctl, e.get(2));
        self.gs_st += 1;
        self.kind = match e.get(1) {
            b"834" => Kind::Enrollment,
            b"837" => Kind::Claim,
            _ => kind_from_version(e.get(3))
                .or(self.gs_kind)
                .unwrap_or(Kind::Other),
        };
        if self.kind == Kind::Other {
            self.records += 1;
        }
        self.format.get_or_insert(self.kind.format());
        self.flush_all(out);
    }

    /// The person the current loop describes.
    fn person_mut(&mut self) -> Option<&mut Person> {
        match self.lp {
            Loop::Member
            | Loop::MemberName
            | Loop::Mailing
            | Loop::SubscriberHl
            | Loop::SubscriberName => self.primary.as_mut(),
            Loop::GenericPerson => self.primary.as_mut(),
            Loop::PatientHl | Loop::PatientName => self.patient.as_mut(),
            Loop::OtherInsured => self.aux.as_mut(),
            Loop::Claim | Loop::Other => None,
        }
    }

    /// Demographic segments (N3, N4, DMG, PER) of a person's name loop.
    fn demographics(&mut self, id: &[u8], e: &Elems) {
        let today = self.today;
        let mailing = self.lp == Loop::Mailing;
        if !matches!(
            self.lp,
            Loop::MemberName
                | Loop::Mailing
                | Loop::SubscriberName
                | Loop::PatientName
                | Loop::OtherInsured
                | Loop::GenericPerson
        ) {
            return;
        }
        let Some(p) = self.person_mut() else { return };
        match id {
            b"N3" | b"N4" => {
                let slot = if mailing {
                    &mut p.mailing_address
                } else {
                    &mut p.address
                };
                let a = slot.get_or_insert_with(Address::default);
                if id == b"N3" {
                    for line in [e.get(1), e.get(2)] {
                        if !line.is_empty() && a.street.len() < MAX_STREET_LINES {
                            a.street.push(text(line));
                        }
                    }
                } else {
                    if a.city.is_empty() && !e.get(1).is_empty() {
                        a.city = text(e.get(1));
                    }
                    if a.state.is_empty() {
                        a.state = state(e.get(2)).unwrap_or_default();
                    }
                    if a.zip.is_empty() {
                        a.zip = validate::zip(e.str(3)).unwrap_or_default();
                    }
                }
            }
            b"DMG" if !mailing => {
                fill(&mut p.dob, || validate::dob(e.str(2), today));
            }
            b"PER" if !mailing => {
                for (q, v) in [(3, 4), (5, 6), (7, 8)] {
                    match e.get(q) {
                        b"HP" | b"TE" | b"CP" | b"WP" => {
                            if let Some(ph) = validate::phone(e.str(v)) {
                                push_bounded(&mut p.phones, ph, MAX_PHONES);
                            }
                        }
                        b"EM" => {
                            if let Some(em) = validate::email(e.str(v)) {
                                push_bounded(&mut p.emails, em, MAX_EMAILS);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn death_date(&self, s: &str) -> Option<(u16, u8, u8)> {
        validate::date(s).filter(|d| *d <= self.today)
    }

    // ---- 834 ----

    fn seg_834(&mut self, id: &[u8], e: &Elems, out: &mut dyn FnMut(Person)) {
        match id {
            b"INS" => {
                self.flush_all(out);
                self.records += 1;
                self.primary = Some(Person {
                    death_date: self.death_date(e.str(12)),
                    ..Default::default()
                });
                self.primary_is_subscriber = e.get(1) == b"Y";
                self.lp = Loop::Member;
            }
            b"REF" => {
                if !matches!(self.lp, Loop::Member | Loop::MemberName) {
                    return;
                }
                let subscriber = self.primary_is_subscriber;
                let Some(p) = self.primary.as_mut() else {
                    return;
                };
                match e.get(1) {
                    b"0F" if subscriber => {
                        fill(&mut p.member_id, || ident(e.get(2)));
                    }
                    b"F6" => set_medicare(p, e.str(2)),
                    b"23" => {
                        fill(&mut p.medicaid_id, || ident(e.get(2)));
                    }
                    _ => {}
                }
            }
            b"NM1" => match e.get(1) {
                b"IL" | b"74"
                    if self.primary.is_none()
                        || matches!(self.lp, Loop::Member | Loop::MemberName) =>
                {
                    if e.get(2) == b"2" {
                        self.lp = Loop::Other;
                        return;
                    }
                    let p = self.primary.get_or_insert_with(Person::default);
                    set_name(p, e);
                    set_nm1_id(p, e);
                    self.lp = Loop::MemberName;
                }
                b"31" if self.primary.is_some() => self.lp = Loop::Mailing,
                _ => self.lp = Loop::Other,
            },
            b"N3" | b"N4" | b"DMG" | b"PER" => self.demographics(id, e),
            // Loops that are not about the member: 1000 N1, 2200 DSB, 2300 HD, 2310 LX, 2320 COB, 2700 LS.
            b"N1" | b"HD" | b"LX" | b"COB" | b"DSB" | b"LS" | b"LE" => self.lp = Loop::Other,
            _ => {}
        }
    }

    // ---- 837 ----

    fn claim_person(&mut self) -> Option<&mut Person> {
        if self.patient.is_some() {
            self.patient.as_mut()
        } else {
            self.primary.as_mut()
        }
    }

    fn seg_837(&mut self, id: &[u8], e: &Elems, out: &mut dyn FnMut(Person)) {
        match id {
            b"HL" => {
                emit(self.aux.take(), out);
                self.in_claim = false;
                match e.get(3) {
                    b"22" => {
                        self.flush_all(out);
                        self.primary = Some(Person::default());
                        self.lp = Loop::SubscriberHl;
                    }
                    b"23" => {
                        // The subscriber's own loops are over; a new patient starts.
                        emit(self.primary.take(), out);
                        emit(self.patient.take(), out);
                        self.patient = Some(Person::default());
                        self.lp = Loop::PatientHl;
                    }
                    _ => {
                        self.flush_all(out);
                    }
                }
            }
            b"NM1" => {
                let person = e.get(2) != b"2";
                match e.get(1) {
                    b"IL" if person && self.in_claim => {
                        emit(self.aux.take(), out);
                        let mut p = Person::default();
                        set_name(&mut p, e);
                        set_nm1_id(&mut p, e);
                        self.aux = Some(p);
                        self.lp = Loop::OtherInsured;
                    }
                    b"IL" if person && self.primary.is_some() && self.patient.is_none() => {
                        if let Some(p) = self.primary.as_mut() {
                            set_name(p, e);
                            set_nm1_id(p, e);
                        }
                        self.lp = Loop::SubscriberName;
                    }
                    b"QC" if person && !self.in_claim => {
                        let p = self.patient.get_or_insert_with(Person::default);
                        set_name(p, e);
                        set_nm1_id(p, e);
                        self.lp = Loop::PatientName;
                    }
                    // Submitter, receiver, providers (NPIs), payers, non-person entities: not patients.
                    _ => self.lp = Loop::Other,
                }
            }
            // PAT05/06: the patient's date of death.
            b"PAT" if e.get(5) == b"D8" => {
                let dd = self.death_date(e.str(6));
                if let Some(p) = self.person_mut() {
                    fill(&mut p.death_date, || dd);
                }
            }
            b"REF" => match self.lp {
                Loop::SubscriberName | Loop::PatientName | Loop::OtherInsured => {
                    let Some(p) = self.person_mut() else { return };
                    match e.get(1) {
                        b"SY" => {
                            fill(&mut p.ssn, || validate::ssn(e.str(2)));
                        }
                        b"1W" => {
                            fill(&mut p.member_id, || ident(e.get(2)));
                        }
                        _ => {}
                    }
                }
                Loop::Claim if e.get(1) == b"EA" => {
                    let mrn = ident(e.get(2));
                    if let Some(p) = self.claim_person() {
                        fill(&mut p.medical_record_number, || mrn);
                    }
                }
                _ => {}
            },
            b"CLM" => {
                emit(self.aux.take(), out);
                self.records += 1;
                self.in_claim = true;
                self.lp = Loop::Claim;
            }
            b"HI" if self.lp == Loop::Claim => {
                let comp = self.delims.component;
                let Some(p) = self.claim_person() else { return };
                for i in 1..MAX_ELEMS {
                    let el = e.get(i);
                    if el.is_empty() {
                        continue;
                    }
                    let mut parts = el.split(|b| *b == comp);
                    let q = parts.next().unwrap_or(&[]);
                    let code = std::str::from_utf8(parts.next().unwrap_or(&[])).unwrap_or("");
                    let dx = match q {
                        b"ABK" | b"ABF" | b"ABJ" | b"APR" | b"ABN" => {
                            validate::diagnosis(code, false)
                        }
                        b"BK" | b"BF" | b"BJ" | b"PR" | b"BN" => validate::diagnosis(code, true),
                        _ => None,
                    };
                    if let Some(dx) = dx {
                        push_bounded(&mut p.diagnoses, dx, MAX_DIAGNOSES);
                    }
                }
            }
            // 2320 other subscriber information, 2400 service lines: not demographics.
            b"SBR" if self.in_claim => self.lp = Loop::Other,
            b"LX" => self.lp = Loop::Other,
            b"N3" | b"N4" | b"DMG" | b"PER" => self.demographics(id, e),
            _ => {}
        }
    }

    // ---- other transaction sets ----

    fn seg_other(&mut self, id: &[u8], e: &Elems, out: &mut dyn FnMut(Person)) {
        match id {
            b"NM1" => match e.get(1) {
                b"IL" | b"QC" | b"74" if e.get(2) != b"2" => {
                    emit(self.primary.take(), out);
                    let mut p = Person::default();
                    set_name(&mut p, e);
                    set_nm1_id(&mut p, e);
                    self.primary = Some(p);
                    self.lp = Loop::GenericPerson;
                }
                _ => self.lp = Loop::Other,
            },
            b"HL" | b"CLP" => {
                emit(self.primary.take(), out);
                self.lp = Loop::Other;
            }
            b"N1" => self.lp = Loop::Other,
            b"REF" if self.lp == Loop::GenericPerson => {
                let Some(p) = self.primary.as_mut() else {
                    return;
                };
                match e.get(1) {
                    b"SY" => {
                        fill(&mut p.ssn, || validate::ssn(e.str(2)));
                    }
                    b"1W" => {
                        fill(&mut p.member_id, || ident(e.get(2)));
                    }
                    b"EA" => {
                        fill(&mut p.medical_record_number, || ident(e.get(2)));
                    }
                    b"F6" => set_medicare(p, e.str(2)),
                    _ => {}
                }
            }
            b"N3" | b"N4" | b"DMG" | b"PER" => self.demographics(id, e),
            _ => {}
        }
    }
}

/// GS08 / ST03 implementation guide → transaction kind.
fn kind_from_version(v: &[u8]) -> Option<Kind> {
    let has = |needle: &[u8]| v.windows(needle.len()).any(|w| w == needle);
    if has(b"X220") {
        Some(Kind::Enrollment)
    } else if has(b"X222") || has(b"X223") || has(b"X224") {
        Some(Kind::Claim)
    } else {
        None
    }
}

impl RecordParser for X12Parser {
    fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Person)) {
        let mut rest = data;
        while !rest.is_empty() {
            match self.stage {
                Stage::AwaitIsa => {
                    let used = self.feed_isa(rest, out);
                    rest = rest.get(used..).unwrap_or(&[]);
                }
                Stage::Segments => rest = self.feed_segments(rest, out),
            }
        }
    }

    fn finish(&mut self, out: &mut dyn FnMut(Person)) -> ParseOutcome {
        match self.stage {
            Stage::AwaitIsa => {
                if !self.isa_buf.is_empty() {
                    if self.interchanges == 0 {
                        self.issue("missing ISA header");
                    } else {
                        self.issue("truncated: incomplete ISA header at end of input");
                    }
                    self.isa_buf.clear();
                }
            }
            Stage::Segments => {
                if self.skipping {
                    self.skipping = false;
                    self.skipped_segment();
                }
                let buf = std::mem::take(&mut self.seg);
                let last = buf.trim_ascii();
                if !last.is_empty() {
                    // A final trailer without its terminator is complete; anything else was cut off.
                    let id = last
                        .split(|b| *b == self.delims.element)
                        .next()
                        .unwrap_or(&[])
                        .trim_ascii();
                    if matches!(id, b"IEA" | b"GE" | b"SE") {
                        self.segment(last, out);
                    } else {
                        self.issue("truncated: last segment has no terminator");
                    }
                }
            }
        }
        if self.interchanges == 0 {
            self.issue("missing ISA header");
        } else if self.in_isa {
            let mut missing = Vec::new();
            if self.in_st {
                missing.push("SE");
            }
            if self.in_gs {
                missing.push("GE");
            }
            missing.push("IEA");
            self.issue(format!(
                "truncated: interchange not closed (missing {})",
                missing.join(", ")
            ));
        }
        self.flush_all(out);
        self.in_st = false;
        self.in_gs = false;
        self.in_isa = false;
        self.stage = Stage::AwaitIsa;

        let status = if self.issues.is_empty() {
            ScanStatus::Complete
        } else {
            let mut r = self.issues.join("; ");
            if self.more_issues > 0 {
                r.push_str(&format!(" (+{} more)", self.more_issues));
            }
            ScanStatus::Partial(r)
        };
        ParseOutcome {
            format: self.format.unwrap_or(Format::X12Other),
            records: self.records,
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/enrollment-834-two-members.x12");
    const TODAY: (u16, u8, u8) = (2026, 11, 25);

    fn run_chunks(data: &[u8], chunk: impl Fn(usize) -> usize) -> (Vec<Person>, ParseOutcome) {
        let mut p = X12Parser::new(TODAY);
        let mut people = Vec::new();
        let mut pos = 0;
        let mut k = 0;
        while pos < data.len() {
            let n = chunk(k).max(1).min(data.len() - pos);
            p.feed(&data[pos..pos + n], &mut |x| people.push(x));
            pos += n;
            k += 1;
        }
        let outcome = p.finish(&mut |x| people.push(x));
        (people, outcome)
    }

    fn run(data: &[u8]) -> (Vec<Person>, ParseOutcome) {
        run_chunks(data, |_| usize::MAX)
    }

    fn jane() -> Person {
        Person {
            name: Some(Name {
                last: "SAMPLE".into(),
                first: "JANE".into(),
                middle: "Q".into(),
            }),
            ssn: Some("123456789".into()),
            mbi: Some("1EG4TE5MK73".into()),
            member_id: Some("SUB1000001".into()),
            phones: vec!["2175550101".into()],
            emails: vec!["jane.sample@example.com".into()],
            address: Some(Address {
                street: vec!["123 MAIN ST".into(), "APT 4".into()],
                city: "SPRINGFIELD".into(),
                state: "IL".into(),
                zip: "627011234".into(),
            }),
            dob: Some((1980, 5, 15)),
            ..Default::default()
        }
    }

    fn tommy() -> Person {
        Person {
            name: Some(Name {
                last: "SAMPLE".into(),
                first: "TOMMY".into(),
                middle: String::new(),
            }),
            ssn: Some("234567890".into()),
            address: Some(Address {
                street: vec!["123 MAIN ST".into(), "APT 4".into()],
                city: "SPRINGFIELD".into(),
                state: "IL".into(),
                zip: "62701".into(),
            }),
            dob: Some((2012, 7, 4)),
            ..Default::default()
        }
    }

    fn assert_fixture_people(people: &[Person]) {
        assert_eq!(people, &[jane(), tommy()]);
        let all = format!("{people:?}");
        for absent in [
            "GRP-7734",
            "EMPLOYER",
            "HEALTH PLAN",
            "000000000",
            "000000001",
        ] {
            assert!(!all.contains(absent), "{absent} reported");
        }
    }

    #[test]
    fn x12_fixture_834_two_members() {
        let (people, o) = run(FIXTURE.as_bytes());
        assert_fixture_people(&people);
        assert_eq!(
            o,
            ParseOutcome {
                format: Format::X12_834,
                records: 2,
                status: ScanStatus::Complete
            }
        );
        use crate::model::Element as E;
        let e = people[1].elements();
        assert!(!e.contains(E::MemberId) && !e.contains(E::Phone) && !e.contains(E::Email));
    }

    #[test]
    fn x12_fixture_any_chunking() {
        let (people, o) = run_chunks(FIXTURE.as_bytes(), |_| 1);
        assert_fixture_people(&people);
        assert_eq!(o.status, ScanStatus::Complete);
        for seed in 1..50u64 {
            let mut r = Rng(seed);
            let sizes: Vec<usize> = (0..4000).map(|_| 1 + (r.next() % 120) as usize).collect();
            let (people, o) = run_chunks(FIXTURE.as_bytes(), |k| sizes[k % sizes.len()]);
            assert_fixture_people(&people);
            assert_eq!(o.status, ScanStatus::Complete);
        }
    }

    /// Rewrites the fixture with other delimiters (segments split on `~`, elements on `*`).
    fn redelimit(src: &str, elem: u8, rep: u8, comp: u8, term: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for seg in src.split('~').map(str::trim).filter(|s| !s.is_empty()) {
            let mut b: Vec<u8> = seg
                .bytes()
                .map(|c| if c == b'*' { elem } else { c })
                .collect();
            if seg.starts_with("ISA") {
                assert_eq!(b.len(), 105);
                b[82] = rep;
                b[104] = comp;
            } else {
                for c in b.iter_mut() {
                    if *c == b':' {
                        *c = comp;
                    }
                }
            }
            out.extend_from_slice(&b);
            out.extend_from_slice(term);
        }
        out
    }

    #[test]
    fn x12_other_delimiters() {
        for (elem, rep, comp, term) in [
            (b'|', b'{', b'>', &b"\n"[..]),
            (b'|', b'^', b'\\', &b"\r\n"[..]),
            (b'!', b'U', b'^', &b"'"[..]),
            (0x1D, 0x1F, 0x1C, &b"\x1E\r\n"[..]),
            (b'*', b'^', b':', &b"~"[..]),
        ] {
            let data = redelimit(FIXTURE, elem, rep, comp, term);
            for chunk in [usize::MAX, 1, 7] {
                let (people, o) = run_chunks(&data, |_| chunk);
                assert_fixture_people(&people);
                assert_eq!(
                    o.status,
                    ScanStatus::Complete,
                    "{:?}",
                    String::from_utf8_lossy(&data)
                );
            }
            let mut p = X12Parser::new(TODAY);
            p.feed(&data, &mut |_| {});
            let d = p.delimiters().unwrap();
            assert_eq!((d.element, d.component), (elem, comp));
            assert_eq!(d.repetition, (rep != b'U').then_some(rep));
        }
    }

    #[test]
    fn x12_truncated_anywhere() {
        let data = FIXTURE.as_bytes();
        let end = data.len()
            - data
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_whitespace())
                .count();
        for cut in 0..data.len() {
            let (people, o) = run(&data[..cut]);
            assert!(people.len() <= 2);
            if cut < end - 1 {
                assert!(
                    matches!(o.status, ScanStatus::Partial(_)),
                    "cut {cut}: {o:?}"
                );
            } else {
                assert_eq!(o.status, ScanStatus::Complete, "cut {cut}");
            }
        }
        // Cut inside Tommy's loop: Jane is reported, and the reason says why.
        let cut = FIXTURE.find("N4*SPRINGFIELD*IL*62701~").unwrap();
        let (people, o) = run(&data[..cut]);
        assert_eq!(people.first(), Some(&jane()));
        let reason = o.status.reason().unwrap();
        assert!(reason.contains("truncated"), "{reason}");
        assert!(reason.contains("interchange not closed"), "{reason}");
    }

    #[test]
    fn x12_wrong_se01() {
        let data = FIXTURE.replace("SE*27*0001", "SE*25*0001");
        let (people, o) = run(data.as_bytes());
        assert_fixture_people(&people);
        assert_eq!(
            o.status,
            ScanStatus::Partial("SE01 says 25 segments, found 27".into())
        );
    }

    #[test]
    fn x12_missing_or_garbled_isa() {
        for data in [
            &b""[..],
            b"hello world, not x12",
            b"ISA",
            b"ISA*00*garbled~ST*834*1~NM1*IL*1*DOE*JOHN~",
            b"\x00\xff\x10",
        ] {
            let (people, o) = run(data);
            assert!(people.is_empty());
            assert!(
                matches!(o.status, ScanStatus::Partial(ref r) if r.contains("missing ISA header") || r.contains("garbled")),
                "{o:?}"
            );
        }
        let (_, o) = run(b"hello");
        assert_eq!(o.status, ScanStatus::Partial("missing ISA header".into()));
    }

    #[test]
    fn x12_two_interchanges_and_leading_noise() {
        let data = format!("\u{feff}\r\n{FIXTURE}\r\n{}", FIXTURE.replace("~\n", "~"));
        let (people, o) = run(data.as_bytes());
        assert_eq!(people.len(), 4);
        assert_fixture_people(&people[..2]);
        assert_fixture_people(&people[2..]);
        assert_eq!(o.records, 4);
        assert_eq!(o.status, ScanStatus::Complete);
    }

    #[test]
    fn x12_overlong_segment_skipped() {
        let long = format!("NTE*ADD*{}~\n", "X".repeat(MAX_SEGMENT + 10));
        let data = FIXTURE.replace(
            "HD*021**HLT**FAM~\nDTP*348*D8*20260201~\nINS*N",
            &format!("HD*021**HLT**FAM~\n{long}DTP*348*D8*20260201~\nINS*N"),
        );
        let data = data.replace("SE*27*", "SE*28*");
        for chunk in [usize::MAX, 1000] {
            let (people, o) = run_chunks(data.as_bytes(), |_| chunk);
            assert_fixture_people(&people);
            assert_eq!(
                o.status,
                ScanStatus::Partial(format!("segment longer than {MAX_SEGMENT} bytes skipped"))
            );
        }
    }

    const ISA: &str = "ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *260115*1200*^*00501*000000202*0*T*:~\n";

    fn envelope(version: &str, st01: &str, body: &[&str]) -> String {
        let mut s = format!("{ISA}GS*HC*SUBMITTER*RECEIVER*20260115*1200*202*X*{version}~\nST*{st01}*0001*{version}~\n");
        for seg in body {
            s.push_str(seg);
            s.push_str("~\n");
        }
        s.push_str(&format!(
            "SE*{}*0001~\nGE*1*202~\nIEA*1*000000202~\n",
            body.len() + 2
        ));
        s
    }

    #[test]
    fn x12_837p_subscriber_is_patient() {
        let data = envelope(
            "005010X222A1",
            "837",
            &[
                "BHT*0019*00*0123*20260115*1200*CH",
                "NM1*41*2*BILLING SERVICE*****46*TGJ23",
                "PER*IC*JERRY*TE*3055552222",
                "NM1*40*2*PAYER CLEARINGHOUSE*****46*66783JJT",
                "HL*1**20*1",
                "PRV*BI*PXC*203BF0100Y",
                "NM1*85*2*SPRINGFIELD CLINIC*****XX*1234567893",
                "N3*900 CLINIC WAY",
                "N4*CHICAGO*IL*606010000",
                "REF*EI*000000000",
                "HL*2*1*22*0",
                "SBR*P*18*GRP-7734******CI",
                "NM1*IL*1*SAMPLE*JANE*Q***MI*SUB1000001",
                "N3*123 MAIN ST*APT 4",
                "N4*SPRINGFIELD*IL*627011234",
                "DMG*D8*19800515*F",
                "REF*SY*123456789",
                "NM1*PR*2*EXAMPLE HEALTH PLAN*****PI*000000001",
                "N3*1 PAYER PLAZA",
                "N4*PEORIA*IL*61602",
                "CLM*123456789*100***11:B:1*Y*A*Y*Y",
                "REF*EA*MRN0012345",
                "HI*ABK:E119*ABF:I10*BP:99213",
                "NM1*82*1*DOCTOR*DAN****XX*1234567893",
                "LX*1",
                "SV1*HC:99213*100*UN*1***1",
                "DTP*472*D8*20260110",
            ],
        );
        let (people, o) = run(data.as_bytes());
        assert_eq!(
            o,
            ParseOutcome {
                format: Format::X12_837,
                records: 1,
                status: ScanStatus::Complete
            }
        );
        let expected = Person {
            name: Some(Name {
                last: "SAMPLE".into(),
                first: "JANE".into(),
                middle: "Q".into(),
            }),
            ssn: Some("123456789".into()),
            member_id: Some("SUB1000001".into()),
            medical_record_number: Some("MRN0012345".into()),
            address: Some(Address {
                street: vec!["123 MAIN ST".into(), "APT 4".into()],
                city: "SPRINGFIELD".into(),
                state: "IL".into(),
                zip: "627011234".into(),
            }),
            dob: Some((1980, 5, 15)),
            diagnoses: vec!["E119".into(), "I10".into()],
            ..Default::default()
        };
        assert_eq!(people, vec![expected]);
        // CLM01 is 123456789 too; make sure the SSN came from REF*SY by dropping it.
        let (people, _) = run(data
            .replace("REF*SY*123456789~\n", "")
            .replace("SE*29*", "SE*28*")
            .as_bytes());
        assert_eq!(people.len(), 1);
        assert_eq!(people[0].ssn, None);
        let all = format!("{people:?}");
        for absent in [
            "1234567893",
            "CLINIC",
            "CHICAGO",
            "PEORIA",
            "PAYER",
            "99213",
            "DOCTOR",
        ] {
            assert!(!all.contains(absent), "{absent}");
        }
    }

    #[test]
    fn x12_837p_patient_under_subscriber() {
        let data = envelope(
            "005010X222A1",
            "837",
            &[
                "HL*1**20*1",
                "NM1*85*2*SPRINGFIELD CLINIC*****XX*1234567893",
                "N3*900 CLINIC WAY",
                "N4*CHICAGO*IL*606010000",
                "HL*2*1*22*1",
                "SBR*P*01*GRP-7734******CI",
                "NM1*IL*1*SAMPLE*JANE****MI*1EG4TE5MK73",
                "N3*123 MAIN ST",
                "N4*SPRINGFIELD*IL*62701",
                "DMG*D8*19800515*F",
                "NM1*PR*2*MEDICARE*****PI*00001",
                "HL*3*2*23*0",
                "PAT*19",
                "NM1*QC*1*SAMPLE*TOMMY",
                "N3*55 ELM ST",
                "N4*URBANA*IL*61801",
                "DMG*D8*20120704*M",
                "CLM*PCN0001*100***11:B:1*Y*A*Y*Y",
                "REF*EA*MRN777",
                "HI*ABK:J069*BK:4659",
                "SBR*S*18*******MC",
                "NM1*IL*1*SAMPLE*JOHN****MI*OTHER0001",
                "N3*9 OAK ST",
                "N4*URBANA*IL*61801",
                "REF*SY*345678901",
                "NM1*PR*2*OTHER PLAN*****PI*99999",
                "LX*1",
            ],
        );
        let (people, o) = run(data.as_bytes());
        assert_eq!(o.status, ScanStatus::Complete);
        assert_eq!(people.len(), 3, "{people:#?}");
        let jane = &people[0];
        assert_eq!(jane.name.as_ref().unwrap().first, "JANE");
        assert_eq!(jane.mbi.as_deref(), Some("1EG4TE5MK73"));
        assert_eq!(jane.member_id.as_deref(), Some("1EG4TE5MK73"));
        assert!(jane.diagnoses.is_empty() && jane.medical_record_number.is_none());
        let tommy = &people[1];
        assert_eq!(tommy.name.as_ref().unwrap().first, "TOMMY");
        assert_eq!(tommy.dob, Some((2012, 7, 4)));
        assert_eq!(tommy.medical_record_number.as_deref(), Some("MRN777"));
        assert_eq!(
            tommy.diagnoses,
            vec!["J069".to_string(), "4659".to_string()]
        );
        assert_eq!(tommy.address.as_ref().unwrap().city, "URBANA");
        assert_eq!(tommy.member_id, None);
        let john = &people[2];
        assert_eq!(john.name.as_ref().unwrap().first, "JOHN");
        assert_eq!(john.ssn.as_deref(), Some("345678901"));
        assert_eq!(john.member_id.as_deref(), Some("OTHER0001"));
        assert!(john.diagnoses.is_empty());
    }

    #[test]
    fn x12_834_mailing_other_entities_death_medicaid() {
        let data = envelope(
            "005010X220A1",
            "834",
            &[
                "BGN*00*SYNTH-0002*20260115*1200****2",
                "N1*P5*EXAMPLE EMPLOYER INC*FI*000000000",
                "N3*1 SPONSOR RD",
                "N4*CHICAGO*IL*60601",
                "PER*IC*HR DEPT*TE*3125550100",
                "INS*Y*18*024*07*A***FT**N*D8*20250101",
                "REF*0F*SUB2000002",
                "REF*23*MCD-445566",
                "REF*F6*123456789A",
                "NM1*IL*1*ELDER*ROSE****34*345678901",
                "PER*IP**TE*3125550111*CP*3125550112*FX*3125550113",
                "N3*10 RIVER RD",
                "N4*CHICAGO*IL*60602",
                "DMG*D8*19400101*F",
                "NM1*31*1",
                "N3*PO BOX 99",
                "N4*EVANSTON*IL*60201",
                "NM1*36*2*ACME CORP",
                "PER*EP**WP*3125550199",
                "N3*500 FACTORY ST",
                "N4*GARY*IN*46401",
                "NM1*S3*1*PARENT*PAT",
                "N3*77 OTHER ST",
                "HD*030**HLT",
                "LX*1",
                "NM1*P3*1*DOCTOR*DAN****XX*1234567893",
                "N3*1 DOCTOR LN",
                "INS*N*01*024*07*A",
                "REF*0F*SUB2000002",
                "NM1*IL*1*ELDER*JOE",
                "DMG*D8*19391332*M",
            ],
        );
        let (people, o) = run(data.as_bytes());
        assert_eq!(
            o,
            ParseOutcome {
                format: Format::X12_834,
                records: 2,
                status: ScanStatus::Complete
            }
        );
        assert_eq!(people.len(), 2);
        let rose = &people[0];
        assert_eq!(rose.death_date, Some((2025, 1, 1)));
        assert_eq!(rose.member_id.as_deref(), Some("SUB2000002"));
        assert_eq!(rose.medicaid_id.as_deref(), Some("MCD-445566"));
        assert_eq!(rose.hicn.as_deref(), Some("123456789A"));
        assert_eq!(rose.mbi, None);
        assert_eq!(
            rose.phones,
            vec!["3125550111".to_string(), "3125550112".to_string()]
        );
        assert_eq!(
            rose.address.as_ref().unwrap().street,
            vec!["10 RIVER RD".to_string()]
        );
        let mail = rose.mailing_address.as_ref().unwrap();
        assert_eq!(
            (mail.street.clone(), mail.city.as_str(), mail.zip.as_str()),
            (vec!["PO BOX 99".to_string()], "EVANSTON", "60201")
        );
        assert_eq!(rose.state(), Some("IL"));
        let all = format!("{people:?}");
        for absent in [
            "SPONSOR",
            "3125550100",
            "3125550199",
            "FACTORY",
            "GARY",
            "PARENT",
            "77 OTHER",
            "DOCTOR",
            "1234567893",
            "3125550113",
        ] {
            assert!(!all.contains(absent), "{absent}");
        }
        let joe = &people[1];
        assert_eq!(joe.name.as_ref().unwrap().first, "JOE");
        assert_eq!(
            (joe.member_id.as_ref(), joe.dob),
            (None, None),
            "impossible date skipped"
        );
    }

    #[test]
    fn x12_other_transaction_generic() {
        let data = envelope(
            "005010X279A1",
            "271",
            &[
                "BHT*0022*11*1*20260115*1200",
                "HL*1**20*1",
                "NM1*PR*2*EXAMPLE HEALTH PLAN*****PI*000000001",
                "HL*2*1*21*1",
                "NM1*1P*1*DOCTOR*DAN****XX*1234567893",
                "HL*3*2*22*0",
                "NM1*IL*1*SAMPLE*JANE****MI*SUB1000001",
                "REF*SY*123456789",
                "N3*123 MAIN ST",
                "N4*SPRINGFIELD*IL*62701",
                "DMG*D8*19800515",
                "EB*1**30",
            ],
        );
        let (people, o) = run(data.as_bytes());
        assert_eq!(
            o,
            ParseOutcome {
                format: Format::X12Other,
                records: 1,
                status: ScanStatus::Complete
            }
        );
        assert_eq!(people.len(), 1);
        let p = &people[0];
        assert_eq!(
            (p.ssn.as_deref(), p.member_id.as_deref(), p.dob),
            (Some("123456789"), Some("SUB1000001"), Some((1980, 5, 15)))
        );
    }

    #[test]
    fn x12_envelope_errors() {
        let data = FIXTURE
            .replace("GE*1*101", "GE*2*101")
            .replace("IEA*1*000000101", "IEA*1*000000999");
        let (people, o) = run(data.as_bytes());
        assert_fixture_people(&people);
        let r = o.status.reason().unwrap();
        assert!(r.contains("GE01 says 2") && r.contains("IEA02"), "{r}");
        // Missing SE: people still reported.
        let data = FIXTURE.replace("SE*27*0001~\n", "");
        let (people, o) = run(data.as_bytes());
        assert_fixture_people(&people);
        assert!(o.status.reason().unwrap().contains("SE missing"));
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn x12_fuzz_never_panics() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let base = FIXTURE.as_bytes();
        let alphabet = b"*~:^|\n\rISAGSTSEINSNM1REFHLCLMHI0123456789 ";
        for i in 0..20_000 {
            let data: Vec<u8> = match i % 3 {
                0 => (0..(r.next() % 600)).map(|_| r.next() as u8).collect(),
                1 => {
                    let mut d = base.to_vec();
                    for _ in 0..(1 + r.next() % 8) {
                        let at = (r.next() as usize) % d.len();
                        match r.next() % 3 {
                            0 => d[at] = alphabet[(r.next() as usize) % alphabet.len()],
                            1 => {
                                d.remove(at);
                            }
                            _ => d.insert(at, r.next() as u8),
                        }
                    }
                    d
                }
                _ => {
                    let mut d = base[..106].to_vec();
                    for _ in 0..(r.next() % 200) {
                        d.push(alphabet[(r.next() as usize) % alphabet.len()]);
                    }
                    d
                }
            };
            let chunk = 1 + (r.next() % 64) as usize;
            let (people, _) = run_chunks(&data, |_| chunk);
            assert!(people.len() < 64);
        }
    }

    /// `cargo test --release -p lockbox-inventory x12_throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn x12_throughput() {
        let start = FIXTURE.find("INS*Y").unwrap();
        let end = FIXTURE.find("SE*27").unwrap();
        let member = &FIXTURE[start..end];
        let mut data = String::with_capacity(52 << 20);
        data.push_str(&FIXTURE[..start]);
        let mut segs = 0u64;
        while data.len() < 50 << 20 {
            data.push_str(member);
            segs += member.matches('~').count() as u64;
        }
        data.push_str(&format!(
            "SE*{}*0001~\nGE*1*101~\nIEA*1*000000101~\n",
            segs + 5
        ));
        let bytes = data.as_bytes();
        let t = std::time::Instant::now();
        let mut n = 0u64;
        let mut p = X12Parser::new(TODAY);
        for c in bytes.chunks(64 * 1024) {
            p.feed(c, &mut |_| n += 1);
        }
        let o = p.finish(&mut |_| n += 1);
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(o.status, ScanStatus::Complete);
        println!(
            "x12 834: {:.1} MB in {secs:.3}s = {:.0} MB/s, {n} people",
            bytes.len() as f64 / 1e6,
            bytes.len() as f64 / 1e6 / secs
        );
    }
}
