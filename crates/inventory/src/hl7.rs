//! Streaming HL7 v2 parser (ADT, ORU, ... in ER7 "pipe" encoding).
//!
//! Segments end with CR, LF or CRLF; MLLP framing bytes (0x0B start, 0x1C end), a UTF-8 BOM and batch
//! segments (FHS/BHS/BTS/FTS) are tolerated. Delimiters are read from each MSH (field separator = the
//! 4th character, MSH-2 = component, repetition, escape, subcomponent), never assumed.
//!
//! One person per PID segment (a merge message with two PIDs yields two people); DG1 diagnoses belong
//! to the message's current patient. Provider segments (PV1, ROL, ...) are never read, so NPIs are never
//! attributed to a patient. Each message ends at the next MSH or at end of input.
//!
//! Memory: only segments that are read (MSH, PID, DG1) are buffered, up to [`MAX_SEGMENT`] bytes;
//! others are classified from their first 4 bytes and skipped without copying. A kept segment
//! longer than the limit is skipped and reported in a `Partial` status.

use crate::model::{Address, Format, Name, Person, ScanStatus};
use crate::validate;
use crate::{ParseOutcome, RecordParser};

/// Longest MSH/PID/DG1 segment buffered; longer ones are skipped (status Partial).
pub const MAX_SEGMENT: usize = 256 * 1024;
/// Most diagnoses, phones or emails kept per person (a hostile message cannot grow a person forever).
const MAX_LIST: usize = 256;
/// Longest identifier (MRN, account, member id) accepted.
const MAX_ID: usize = 64;

/// The delimiters of one message, from its MSH.
#[derive(Debug, Clone, Copy)]
struct Delims {
    fs: u8,
    comp: Option<u8>,
    rep: Option<u8>,
    esc: Option<u8>,
    sub: Option<u8>,
}

/// Splits on an optional separator (none: the whole input is one piece).
struct Split<'a> {
    rest: Option<&'a [u8]>,
    sep: Option<u8>,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let r = self.rest?;
        match self.sep.and_then(|s| r.iter().position(|b| *b == s)) {
            Some(i) => {
                self.rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                self.rest = None;
                Some(r)
            }
        }
    }
}

fn split(s: &[u8], sep: Option<u8>) -> Split<'_> {
    Split { rest: Some(s), sep }
}

/// The `n`th (0-based) piece, or empty.
fn nth(s: &[u8], sep: Option<u8>, n: usize) -> &[u8] {
    split(s, sep).nth(n).unwrap_or_default()
}

impl Delims {
    /// Component `n` (0-based) of a repetition, first subcomponent.
    fn comp<'a>(&self, rep: &'a [u8], n: usize) -> &'a [u8] {
        nth(nth(rep, self.comp, n), self.sub, 0)
    }

    /// First repetition, first component, first subcomponent of a field.
    fn first<'a>(&self, field: &'a [u8]) -> &'a [u8] {
        self.comp(nth(field, self.rep, 0), 0)
    }

    /// The value as text: unescaped, lossy UTF-8, trimmed; the HL7 null `""` is empty.
    fn text(&self, raw: &[u8]) -> String {
        let raw = raw.trim_ascii();
        if raw == b"\"\"" {
            return String::new();
        }
        match self.esc {
            Some(e) if raw.contains(&e) => {
                let v = self.unescape(raw, e);
                String::from_utf8_lossy(&v).trim().to_owned()
            }
            _ => String::from_utf8_lossy(raw).trim().to_owned(),
        }
    }

    /// Resolves \F\ \S\ \T\ \R\ \E\ and \Xhh..\; formatting and charset escapes (\.br\, \H\, \Cxxyy\, ...)
    /// become a space or nothing. An unterminated escape is kept literally.
    fn unescape(&self, raw: &[u8], e: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(raw.len());
        let mut rest = raw;
        while let Some((&b, tail)) = rest.split_first() {
            if b != e {
                out.push(b);
                rest = tail;
                continue;
            }
            let Some(end) = tail.iter().position(|c| *c == e) else {
                out.extend_from_slice(rest);
                break;
            };
            let seq = tail.get(..end).unwrap_or_default();
            rest = tail.get(end + 1..).unwrap_or_default();
            match seq {
                b"F" => out.push(self.fs),
                b"S" => out.push(self.comp.unwrap_or(b'^')),
                b"T" => out.push(self.sub.unwrap_or(b'&')),
                b"R" => out.push(self.rep.unwrap_or(b'~')),
                b"E" => out.push(e),
                b".br" | b".sp" => out.push(b' '),
                [b'X', hex @ ..] => {
                    for pair in hex.chunks(2) {
                        let s = std::str::from_utf8(pair).unwrap_or("");
                        if let Ok(v) = u8::from_str_radix(s, 16) {
                            if pair.len() == 2 {
                                out.push(v);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// Segment kinds the parser reads or skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Msh,
    Pid,
    Dg1,
    /// A well-formed segment we do not read (PV1, OBX, batch headers, ...).
    Skip,
    /// Not an HL7 segment.
    Garbage,
}

#[derive(Debug, Clone, Copy)]
enum Msg {
    /// Before the first MSH.
    None,
    Active(Delims),
    /// The MSH was malformed or too long: the message's segments are skipped.
    Broken,
}

/// Bytes skipped at the start of a segment: empty lines, MLLP framing, BOM bytes, blanks.
fn is_lead(b: u8) -> bool {
    matches!(
        b,
        b'\r' | b'\n' | 0x0B | 0x1C | b' ' | b'\t' | 0 | 0xEF | 0xBB | 0xBF
    )
}

/// Segment terminators (0x1C ends an MLLP block).
fn find_term(s: &[u8]) -> Option<usize> {
    s.iter().position(|b| matches!(*b, b'\r' | b'\n' | 0x1C))
}

/// Streaming HL7 v2 parser: see the module documentation.
pub struct Hl7Parser {
    today: (u16, u8, u8),
    /// The current segment when it is split across chunks (bounded by `MAX_SEGMENT + 1`).
    buf: Vec<u8>,
    /// Discarding the rest of the current segment.
    skipping: bool,
    msg: Msg,
    /// The current PID's person (emitted at the next PID, MSH or end of input).
    person: Option<Person>,
    /// Diagnoses seen in the message before any PID.
    pending_dx: Vec<String>,
    records: u64,
    seen_msh: bool,
    pre_msh: u64,
    garbage: u64,
    overlong: u64,
    bad_msh: u64,
}

impl Hl7Parser {
    pub fn new(today: (u16, u8, u8)) -> Self {
        Hl7Parser {
            today,
            buf: Vec::new(),
            skipping: false,
            msg: Msg::None,
            person: None,
            pending_dx: Vec::new(),
            records: 0,
            seen_msh: false,
            pre_msh: 0,
            garbage: 0,
            overlong: 0,
            bad_msh: 0,
        }
    }

    /// Classifies a segment from its first bytes; `None` when more bytes are needed.
    fn classify(&self, s: &[u8], complete: bool) -> Option<Class> {
        if s.len() < 4 && !complete {
            return None;
        }
        let Some(id) = s.get(..3) else {
            return Some(Class::Garbage);
        };
        if id == b"MSH" {
            return Some(Class::Msh);
        }
        let valid_id = id.first().is_some_and(u8::is_ascii_uppercase)
            && id
                .iter()
                .skip(1)
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !valid_id {
            return Some(Class::Garbage);
        }
        if matches!(id, b"FHS" | b"BHS" | b"BTS" | b"FTS") {
            return Some(Class::Skip);
        }
        match self.msg {
            Msg::None => Some(Class::Garbage),
            Msg::Broken => Some(Class::Skip),
            Msg::Active(d) => {
                if s.get(3).is_some_and(|c| *c != d.fs) {
                    return Some(Class::Garbage);
                }
                Some(match id {
                    b"PID" => Class::Pid,
                    b"DG1" => Class::Dg1,
                    _ => Class::Skip,
                })
            }
        }
    }

    fn count_garbage(&mut self) {
        if self.seen_msh {
            self.garbage += 1;
        } else {
            self.pre_msh += 1;
        }
    }

    fn emit(p: Person, out: &mut dyn FnMut(Person)) {
        if p.is_identifiable() {
            out(p);
        }
    }

    fn end_message(&mut self, out: &mut dyn FnMut(Person)) {
        if let Some(p) = self.person.take() {
            Self::emit(p, out);
        }
        self.pending_dx.clear();
        self.msg = Msg::None;
    }

    /// A kept segment longer than the limit.
    fn overflow(&mut self, k: Class, out: &mut dyn FnMut(Person)) {
        self.overlong += 1;
        match k {
            Class::Msh => {
                self.end_message(out);
                self.records += 1;
                self.seen_msh = true;
                self.msg = Msg::Broken;
            }
            Class::Pid => {
                // The lost PID's diagnoses must not be attributed to the previous patient.
                if let Some(p) = self.person.take() {
                    Self::emit(p, out);
                }
            }
            _ => {}
        }
    }

    /// A complete segment of any length (leading framing already stripped).
    fn segment(&mut self, seg: &[u8], out: &mut dyn FnMut(Person)) {
        match self.classify(seg, true) {
            Some(Class::Garbage) => self.count_garbage(),
            Some(Class::Skip) | None => {}
            Some(k) if seg.len() > MAX_SEGMENT => self.overflow(k, out),
            Some(Class::Msh) => self.on_msh(seg, out),
            Some(Class::Pid) => self.on_pid(seg, out),
            Some(Class::Dg1) => self.on_dg1(seg),
        }
    }

    /// A complete segment longer than the limit, known by its first bytes.
    fn long_segment(&mut self, head: &[u8], out: &mut dyn FnMut(Person)) {
        match self.classify(head, false) {
            Some(Class::Garbage) => self.count_garbage(),
            Some(Class::Skip) | None => {}
            Some(k) => self.overflow(k, out),
        }
    }

    fn on_msh(&mut self, seg: &[u8], out: &mut dyn FnMut(Person)) {
        self.end_message(out);
        self.records += 1;
        self.seen_msh = true;
        self.msg = match parse_delims(seg) {
            Some(d) => Msg::Active(d),
            None => {
                self.bad_msh += 1;
                Msg::Broken
            }
        };
    }

    fn on_pid(&mut self, seg: &[u8], out: &mut dyn FnMut(Person)) {
        let Msg::Active(d) = self.msg else { return };
        if let Some(p) = self.person.take() {
            Self::emit(p, out);
        }
        let mut p = parse_pid(seg, &d, self.today);
        for dx in self.pending_dx.drain(..) {
            push_unique(&mut p.diagnoses, dx);
        }
        self.person = Some(p);
    }

    fn on_dg1(&mut self, seg: &[u8]) {
        let Msg::Active(d) = self.msg else { return };
        let Some(dx) = parse_dg1(seg, &d) else { return };
        match self.person.as_mut() {
            Some(p) => push_unique(&mut p.diagnoses, dx),
            None => push_unique(&mut self.pending_dx, dx),
        }
    }

    fn status(&self) -> ScanStatus {
        if !self.seen_msh {
            return ScanStatus::Partial("no MSH segment".into());
        }
        let mut reasons = Vec::new();
        if self.pre_msh > 0 {
            reasons.push(format!(
                "{} non-HL7 line(s) before the first MSH skipped",
                self.pre_msh
            ));
        }
        if self.garbage > 0 {
            reasons.push(format!("{} garbage line(s) skipped", self.garbage));
        }
        if self.overlong > 0 {
            reasons.push(format!(
                "{} segment(s) longer than {} bytes skipped",
                self.overlong, MAX_SEGMENT
            ));
        }
        if self.bad_msh > 0 {
            reasons.push(format!(
                "{} message(s) with malformed MSH delimiters skipped",
                self.bad_msh
            ));
        }
        if reasons.is_empty() {
            ScanStatus::Complete
        } else {
            ScanStatus::Partial(reasons.join("; "))
        }
    }
}

impl RecordParser for Hl7Parser {
    fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Person)) {
        let mut rest = data;
        while !rest.is_empty() {
            if self.skipping {
                let Some(i) = find_term(rest) else { return };
                self.skipping = false;
                rest = rest.get(i + 1..).unwrap_or_default();
                continue;
            }
            if self.buf.is_empty() {
                let n = rest.iter().take_while(|b| is_lead(**b)).count();
                rest = rest.get(n..).unwrap_or_default();
                if rest.is_empty() {
                    return;
                }
            }
            match find_term(rest) {
                Some(i) => {
                    let seg = rest.get(..i).unwrap_or_default();
                    rest = rest.get(i + 1..).unwrap_or_default();
                    if self.buf.is_empty() {
                        // Whole segment inside this chunk: no copy.
                        self.segment(seg, out);
                    } else if self.buf.len() + seg.len() > MAX_SEGMENT {
                        let mut head = [0u8; 4];
                        let mut n = 0;
                        for (slot, b) in head.iter_mut().zip(self.buf.iter().chain(seg.iter())) {
                            *slot = *b;
                            n += 1;
                        }
                        self.buf.clear();
                        self.long_segment(head.get(..n).unwrap_or_default(), out);
                    } else {
                        let mut buf = std::mem::take(&mut self.buf);
                        buf.extend_from_slice(seg);
                        self.segment(&buf, out);
                        buf.clear();
                        self.buf = buf;
                    }
                }
                None => {
                    // The segment continues in the next chunk.
                    let room = (MAX_SEGMENT + 1).saturating_sub(self.buf.len());
                    self.buf
                        .extend_from_slice(rest.get(..room.min(rest.len())).unwrap_or_default());
                    match self.classify(&self.buf, false) {
                        None => {}
                        Some(Class::Garbage) => {
                            self.count_garbage();
                            self.buf.clear();
                            self.skipping = true;
                        }
                        Some(Class::Skip) => {
                            self.buf.clear();
                            self.skipping = true;
                        }
                        Some(k) if self.buf.len() > MAX_SEGMENT => {
                            self.buf.clear();
                            self.skipping = true;
                            self.overflow(k, out);
                        }
                        Some(_) => {}
                    }
                    return;
                }
            }
        }
    }

    fn finish(&mut self, out: &mut dyn FnMut(Person)) -> ParseOutcome {
        if !self.skipping && !self.buf.is_empty() {
            // The last segment had no terminator.
            let buf = std::mem::take(&mut self.buf);
            self.segment(&buf, out);
        }
        self.buf.clear();
        self.skipping = false;
        self.end_message(out);
        ParseOutcome {
            format: Format::Hl7v2,
            records: self.records,
            status: self.status(),
        }
    }
}

/// Delimiters from an MSH segment; `None` if they are unusable.
fn parse_delims(seg: &[u8]) -> Option<Delims> {
    let fs = *seg.get(3)?;
    let enc = nth(seg.get(4..)?, Some(fs), 0);
    let usable = |c: u8| c.is_ascii_graphic() && !c.is_ascii_alphanumeric();
    if !usable(fs) {
        return None;
    }
    let get = |i: usize| enc.get(i).copied().filter(|c| usable(*c) && *c != fs);
    let d = Delims {
        fs,
        comp: get(0),
        rep: get(1),
        esc: get(2),
        sub: get(3),
    };
    // Distinct delimiters (a duplicate would make splitting ambiguous).
    let set = [d.comp, d.rep, d.esc, d.sub];
    let dup = set
        .iter()
        .enumerate()
        .any(|(i, a)| a.is_some() && set.iter().skip(i + 1).any(|b| b == a));
    if d.comp.is_none() || dup {
        return None;
    }
    Some(d)
}

fn push_unique(list: &mut Vec<String>, v: String) {
    if list.len() < MAX_LIST && !list.contains(&v) {
        list.push(v);
    }
}

/// An identifier kept as-is: non-empty, short, no control characters.
fn ident(s: String) -> Option<String> {
    (!s.is_empty() && s.len() <= MAX_ID && !s.chars().any(char::is_control)).then_some(s)
}

/// Reads a repeating CX identifier list (PID-3, also PID-2/PID-4 of older versions) by CX.5 type.
fn identifiers(p: &mut Person, field: &[u8], d: &Delims) {
    for rep in split(field, d.rep) {
        let ty = d.text(d.comp(rep, 4)).to_ascii_uppercase();
        let slot_empty = match ty.as_str() {
            "MR" => p.medical_record_number.is_none(),
            "SS" => p.ssn.is_none(),
            "MC" => p.mbi.is_none() && p.hicn.is_none(),
            "MA" => p.medicaid_id.is_none(),
            "MB" | "SN" => p.member_id.is_none(),
            _ => false,
        };
        if !slot_empty {
            continue;
        }
        let id = d.text(d.comp(rep, 0));
        match ty.as_str() {
            "MR" => p.medical_record_number = ident(id),
            "SS" => p.ssn = validate::ssn(&id),
            "MC" => match validate::mbi(&id) {
                Some(m) => p.mbi = Some(m),
                None => p.hicn = validate::hicn(&id),
            },
            "MA" => p.medicaid_id = ident(id),
            _ => p.member_id = ident(id),
        }
    }
}

/// One XAD repetition as an address, if it holds anything.
fn address(rep: &[u8], d: &Delims) -> Option<Address> {
    let street: Vec<String> = [0, 1]
        .iter()
        .map(|n| d.text(d.comp(rep, *n)))
        .filter(|s| !s.is_empty())
        .collect();
    let a = Address {
        street,
        city: d.text(d.comp(rep, 2)),
        state: validate::state(&d.text(d.comp(rep, 3))).unwrap_or_default(),
        zip: validate::zip(&d.text(d.comp(rep, 4))).unwrap_or_default(),
    };
    (!a.street.is_empty() || !a.city.is_empty() || !a.state.is_empty() || !a.zip.is_empty())
        .then_some(a)
}

/// Phones and emails from a repeating XTN field (PID-13, PID-14).
fn telecoms(p: &mut Person, field: &[u8], d: &Delims) {
    for rep in split(field, d.rep) {
        let formatted = d.text(d.comp(rep, 0));
        let use_code = d.text(d.comp(rep, 1));
        let equip = d.text(d.comp(rep, 2));
        let is_email = use_code.eq_ignore_ascii_case("NET")
            || equip.eq_ignore_ascii_case("Internet")
            || equip.eq_ignore_ascii_case("X.400");
        if is_email || formatted.contains('@') {
            let e =
                validate::email(&d.text(d.comp(rep, 3))).or_else(|| validate::email(&formatted));
            if let Some(e) = e {
                push_unique(&mut p.emails, e);
            }
            continue;
        }
        let area = d.text(d.comp(rep, 5));
        let local = d.text(d.comp(rep, 6));
        let structured = (!local.is_empty())
            .then(|| validate::phone(&format!("{area}{local}")))
            .flatten();
        // Formatted text may carry an extension ("(217)555-0101X12"): keep what precedes it.
        let head = formatted
            .split(|c: char| c.is_ascii_alphabetic() || c == '#')
            .next()
            .unwrap_or_default();
        if let Some(ph) = structured.or_else(|| validate::phone(head)) {
            push_unique(&mut p.phones, ph);
        }
    }
}

/// The person of one PID segment.
fn parse_pid(seg: &[u8], d: &Delims, today: (u16, u8, u8)) -> Person {
    let fields: Vec<&[u8]> = split(seg, Some(d.fs)).collect();
    let field = |n: usize| fields.get(n).copied().unwrap_or_default();
    let mut p = Person::default();

    for n in [3, 2, 4] {
        identifiers(&mut p, field(n), d);
    }

    for rep in split(field(5), d.rep) {
        let last = d.text(d.comp(rep, 0));
        if !last.is_empty() {
            p.name = Some(Name {
                last,
                first: d.text(d.comp(rep, 1)),
                middle: d.text(d.comp(rep, 2)),
            });
            break;
        }
    }

    p.dob = validate::dob(&d.text(d.first(field(7))), today);

    // Residence: the first repetition that is not a mailing address (type M), else the first one;
    // a separate mailing address (type M) when there is one.
    let mut first_any = None;
    for rep in split(field(11), d.rep) {
        let Some(a) = address(rep, d) else { continue };
        let mailing = d.text(d.comp(rep, 6)).eq_ignore_ascii_case("M");
        if mailing {
            if p.mailing_address.is_none() {
                p.mailing_address = Some(a);
            }
        } else if p.address.is_none() {
            p.address = Some(a);
        }
        if first_any.is_none() {
            first_any = Some(mailing);
        }
    }
    if p.address.is_none() && first_any == Some(true) {
        p.address = p.mailing_address.take();
    }

    telecoms(&mut p, field(13), d);
    telecoms(&mut p, field(14), d);

    p.account_number = ident(d.text(d.first(field(18))));
    if p.ssn.is_none() {
        p.ssn = validate::ssn(&d.text(d.first(field(19))));
    }

    if !d.text(d.first(field(30))).eq_ignore_ascii_case("N") {
        p.death_date = validate::date(&d.text(d.first(field(29)))).filter(|x| *x <= today);
    }
    p
}

/// The diagnosis code of a DG1 segment (DG1-3, CE/CWE: code^text^system[^alt code^alt text^alt system]).
fn parse_dg1(seg: &[u8], d: &Delims) -> Option<String> {
    let f3 = nth(nth(seg, Some(d.fs), 3), d.rep, 0);
    for (code_at, primary) in [(0, true), (3, false)] {
        let code = d.text(d.comp(f3, code_at));
        if code.is_empty() {
            continue;
        }
        let system = d.text(d.comp(f3, code_at + 2)).to_ascii_uppercase();
        let dx = match system.as_str() {
            "I10" | "I10C" | "ICD10" | "ICD10CM" | "ICD-10-CM" => validate::diagnosis(&code, false),
            "" if primary => validate::diagnosis(&code, false),
            "I9" | "I9C" | "I9CDX" | "ICD9" | "ICD9CM" | "ICD-9-CM" => {
                validate::diagnosis(&code, true)
            }
            _ => None,
        };
        if dx.is_some() {
            return dx;
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/adt-a04-one-patient.hl7");
    const TODAY: (u16, u8, u8) = (2026, 11, 25);

    fn run_chunks(data: &[u8], chunk: usize) -> (Vec<Person>, ParseOutcome) {
        crate::test_support::run_chunks(Hl7Parser::new(TODAY), data, chunk)
    }

    fn run(data: &[u8]) -> (Vec<Person>, ParseOutcome) {
        run_chunks(data, data.len().max(1))
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
            medical_record_number: Some("MRN0012345".into()),
            account_number: Some("ACCT0001".into()),
            dob: Some((1980, 5, 15)),
            address: Some(Address {
                street: vec!["123 MAIN ST".into(), "APT 4".into()],
                city: "SPRINGFIELD".into(),
                state: "IL".into(),
                zip: "627011234".into(),
            }),
            phones: vec!["2175550101".into()],
            emails: vec!["jane.sample@example.com".into()],
            diagnoses: vec!["E119".into()],
            ..Person::default()
        }
    }

    fn assert_jane(data: &[u8]) {
        for chunk in [data.len().max(1), 1, 2, 3, 7, 64] {
            let (people, o) = run_chunks(data, chunk);
            assert_eq!(people, vec![jane()], "chunk {chunk}");
            assert_eq!(
                o,
                ParseOutcome {
                    format: Format::Hl7v2,
                    records: 1,
                    status: ScanStatus::Complete
                },
                "chunk {chunk}"
            );
        }
    }

    fn with_line_ends(s: &str, end: &str) -> String {
        s.split(['\r', '\n'])
            .filter(|l| !l.is_empty())
            .map(|l| format!("{l}{end}"))
            .collect()
    }

    #[test]
    fn hl7_fixture_one_patient() {
        assert!(FIXTURE.starts_with("MSH|"));
        let (people, o) = run(FIXTURE.as_bytes());
        assert_eq!(people.len(), 1);
        let p = &people[0];
        assert_eq!(*p, jane());
        let dump = format!("{p:?}");
        assert!(
            !dump.contains("1234567893"),
            "provider NPI attributed to the patient"
        );
        assert!(!dump.contains("WELBY"));
        assert_eq!(o.format, Format::Hl7v2);
        assert_eq!(o.records, 1);
        assert_eq!(o.status, ScanStatus::Complete);
    }

    #[test]
    fn hl7_chunking_and_line_ends() {
        assert_jane(FIXTURE.as_bytes());
        assert_jane(with_line_ends(FIXTURE, "\n").as_bytes());
        assert_jane(with_line_ends(FIXTURE, "\r\n").as_bytes());
        assert_jane(with_line_ends(FIXTURE, "\r").trim_end().as_bytes());
        // BOM and leading blank lines.
        assert_jane(format!("\u{feff}\r\n\r\n{}", with_line_ends(FIXTURE, "\r\n")).as_bytes());
    }

    #[test]
    fn hl7_mllp_framing() {
        let mut v = vec![0x0B];
        v.extend_from_slice(FIXTURE.as_bytes());
        v.extend_from_slice(&[0x1C, 0x0D]);
        assert_jane(&v);
    }

    #[test]
    fn hl7_batch_headers() {
        let s = format!(
            "FHS|^~\\&|X\rBHS|^~\\&|X\r{}BTS|1\rFTS|1\r",
            with_line_ends(FIXTURE, "\r")
        );
        assert_jane(s.as_bytes());
    }

    /// Rewrites the fixture with other delimiters, escaping data characters that collide with them.
    fn redelimit(s: &str, new: [u8; 5]) -> Vec<u8> {
        let [fs, comp, rep, esc, sub] = new;
        let mut out = Vec::new();
        for b in s.bytes() {
            match b {
                b'|' => out.push(fs),
                b'^' => out.push(comp),
                b'~' => out.push(rep),
                b'\\' => out.push(esc),
                b'&' => out.push(sub),
                _ => {
                    let code = [
                        (fs, b'F'),
                        (comp, b'S'),
                        (rep, b'R'),
                        (esc, b'E'),
                        (sub, b'T'),
                    ]
                    .iter()
                    .find(|(c, _)| *c == b)
                    .map(|(_, k)| *k);
                    match code {
                        Some(k) => out.extend_from_slice(&[esc, k, esc]),
                        None => out.push(b),
                    }
                }
            }
        }
        out
    }

    #[test]
    fn hl7_other_delimiters() {
        let v = redelimit(FIXTURE, *b"#$%!@");
        assert!(v.starts_with(b"MSH#$%!@#"));
        // The email's '@' is the subcomponent separator now: it must arrive escaped and be unescaped.
        assert!(v.windows(3).any(|w| w == b"!T!"));
        assert_jane(&v);
        assert_jane(&redelimit(FIXTURE, *b";:*/+"));
    }

    #[test]
    fn hl7_escapes_in_names_and_addresses() {
        let s = FIXTURE
            .replace("SAMPLE^JANE", "O\\T\\BRIEN\\S\\X^JANE")
            .replace("123 MAIN ST", "123 MAIN ST \\F\\ REAR\\E\\\\X41\\");
        let (people, _) = run(s.as_bytes());
        assert_eq!(people.len(), 1);
        assert_eq!(
            people[0].name.as_ref().map(|n| n.last.as_str()),
            Some("O&BRIEN^X")
        );
        assert_eq!(
            people[0]
                .address
                .as_ref()
                .and_then(|a| a.street.first())
                .map(String::as_str),
            Some("123 MAIN ST | REAR\\A")
        );
    }

    fn other_person(s: &str, n: u8) -> String {
        let ssn = format!("{n}23456789");
        s.replace("SAMPLE^JANE^Q", &format!("PERSON{n}^FIRST{n}^M"))
            .replace("MRN0012345", &format!("MRN00{n}"))
            .replace("123456789", &ssn)
            .replace(
                "123-45-6789",
                &format!("{}-{}-{}", &ssn[..3], &ssn[3..5], &ssn[5..]),
            )
            .replace("1EG4TE5MK73", &format!("{n}EG4TE5MK73"))
    }

    #[test]
    fn hl7_three_messages_three_people() {
        let s = format!(
            "{}\r{}\n{}",
            other_person(FIXTURE, 2).trim_end(),
            other_person(FIXTURE, 3).trim_end(),
            other_person(FIXTURE, 4)
        );
        for chunk in [s.len(), 1, 5, 100] {
            let (people, o) = run_chunks(s.as_bytes(), chunk);
            assert_eq!(o.records, 3);
            assert_eq!(o.status, ScanStatus::Complete);
            assert_eq!(people.len(), 3, "chunk {chunk}");
            for (p, n) in people.iter().zip(2u8..) {
                assert_eq!(
                    p.name.as_ref().map(|x| x.last.clone()),
                    Some(format!("PERSON{n}"))
                );
                assert_eq!(p.ssn, Some(format!("{n}23456789")));
                assert_eq!(p.mbi, Some(format!("{n}EG4TE5MK73")));
                assert_eq!(p.medical_record_number, Some(format!("MRN00{n}")));
                assert_eq!(p.diagnoses, vec!["E119".to_string()]);
            }
        }
    }

    #[test]
    fn hl7_two_pids_in_one_message() {
        let s = "MSH|^~\\&|A|B|C|D|20260101||ADT^A40|1|P|2.5\r\
                 EVN|A40|20260101\r\
                 PID|1||MRN1^^^H^MR||DOE^JOHN||19700101|M|||1 ELM ST^^SALEM^OR^97301||||||||||||||||||20250102|Y\r\
                 MRG|OLD1^^^H^MR\r\
                 PID|2||MRN2^^^H^MR~2EG4TE5MK73^^^CMS^MC~A12345^^^ST^MA~M999^^^PLAN^MB||ROE^ANN\r\
                 DG1|1||250.00^DM^I9\r";
        let (people, o) = run(s.as_bytes());
        assert_eq!(o.records, 1);
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].medical_record_number.as_deref(), Some("MRN1"));
        assert_eq!(people[0].death_date, Some((2025, 1, 2)));
        assert!(
            people[0].diagnoses.is_empty(),
            "DG1 after the second PID is not the first person's"
        );
        assert_eq!(
            people[0].address.as_ref().map(|a| a.state.as_str()),
            Some("OR")
        );
        assert_eq!(people[1].mbi.as_deref(), Some("2EG4TE5MK73"));
        assert_eq!(people[1].medicaid_id.as_deref(), Some("A12345"));
        assert_eq!(people[1].member_id.as_deref(), Some("M999"));
        assert_eq!(people[1].diagnoses, vec!["25000".to_string()]);
    }

    #[test]
    fn hl7_hicn_and_formatted_phone() {
        let s = "MSH|^~\\&|A\rPID|1||123456789A^^^CMS^MC||DOE^J||||||||(217)555-0101X12~jd@example.org^NET^Internet|^WPN^PH^^^312^5550199\r";
        let (people, _) = run(s.as_bytes());
        assert_eq!(people.len(), 1);
        assert_eq!(people[0].hicn.as_deref(), Some("123456789A"));
        assert_eq!(
            people[0].phones,
            vec!["2175550101".to_string(), "3125550199".to_string()]
        );
        assert_eq!(people[0].emails, vec!["jd@example.org".to_string()]);
    }

    #[test]
    fn hl7_not_starting_with_msh() {
        for s in [
            "hello\nworld\n",
            "",
            "PID|1||X^^^H^MR||DOE^J\r",
            "\x0B\x1C\r\n",
        ] {
            let (people, o) = run(s.as_bytes());
            assert!(people.is_empty());
            assert_eq!(o.format, Format::Hl7v2);
            assert_eq!(o.records, 0);
            assert_eq!(
                o.status,
                ScanStatus::Partial("no MSH segment".into()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn hl7_garbage_lines_are_counted() {
        let s = with_line_ends(FIXTURE, "\n")
            .replace("PV1|", "this is not hl7\n\u{1}\u{2}binary\nPV1|");
        for chunk in [s.len(), 1, 3] {
            let (people, o) = run_chunks(s.as_bytes(), chunk);
            assert_eq!(people, vec![jane()]);
            assert_eq!(
                o.status,
                ScanStatus::Partial("2 garbage line(s) skipped".into())
            );
        }
        // Invalid UTF-8 in a kept value: lossy, never an error.
        let mut v = FIXTURE.as_bytes().to_vec();
        let at = FIXTURE.find("JANE").unwrap_or(0);
        v.splice(at..at + 1, [0xFF, 0xFE]);
        let (people, _) = run(&v);
        assert_eq!(people.len(), 1);
        assert_eq!(
            people[0].name.as_ref().map(|n| n.first.as_str()),
            Some("\u{FFFD}\u{FFFD}ANE")
        );
    }

    #[test]
    fn hl7_long_segments() {
        let big = "A".repeat(MAX_SEGMENT + 10);
        // A long segment that is not read (e.g. an OBX with an embedded PDF) is skipped silently.
        let s =
            with_line_ends(FIXTURE, "\r").replace("PV1|", &format!("OBX|1|ED|PDF||{big}\rPV1|"));
        for chunk in [s.len(), 4096, 1000] {
            let (people, o) = run_chunks(s.as_bytes(), chunk);
            assert_eq!(people, vec![jane()]);
            assert_eq!(o.status, ScanStatus::Complete);
        }
        // A PID that is too long is skipped and reported.
        let s = FIXTURE.replace("|ACCT0001", &format!("|{big}"));
        for chunk in [s.len(), 4096, 1000] {
            let (people, o) = run_chunks(s.as_bytes(), chunk);
            assert!(people.is_empty());
            assert_eq!(o.records, 1);
            assert!(
                matches!(&o.status, ScanStatus::Partial(r) if r.contains("longer than")),
                "{o:?}"
            );
        }
        // A long garbage line without a terminator at the end.
        let s = format!("{FIXTURE}{big}");
        let (people, o) = run_chunks(s.as_bytes(), 777);
        assert_eq!(people.len(), 1);
        assert_eq!(
            o.status,
            ScanStatus::Partial("1 garbage line(s) skipped".into())
        );
    }

    #[test]
    fn hl7_malformed_msh() {
        for s in [
            "MSH",
            "MSH|",
            "MSHA^~\\&|",
            "MSH|^^\\&|\rPID|1||X^^^H^MR||DOE^J\r",
        ] {
            let (people, o) = run(s.as_bytes());
            assert!(people.is_empty(), "{s:?}");
            assert_eq!(o.records, 1);
            assert!(matches!(o.status, ScanStatus::Partial(_)), "{s:?}");
        }
    }

    #[test]
    fn hl7_truncated_never_panics() {
        let bytes = FIXTURE.as_bytes();
        for n in 0..=bytes.len() {
            let cut = bytes.get(..n).unwrap_or_default();
            let _ = run(cut);
            let _ = run_chunks(cut, 3);
        }
    }

    #[test]
    fn hl7_random_bytes_never_panic() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet: &[u8] = b"MSHPIDG1|^~\\&\r\n\x0B\x1CX0123456789#$%!@\"";
        let fixture = FIXTURE.as_bytes();
        for i in 0..20_000u32 {
            let len = (rnd() % 600) as usize;
            let mut v: Vec<u8> = match i % 3 {
                // Raw bytes.
                0 => (0..len).map(|_| rnd() as u8).collect(),
                // HL7-ish alphabet.
                1 => (0..len)
                    .map(|_| {
                        alphabet
                            .get(rnd() as usize % alphabet.len())
                            .copied()
                            .unwrap_or(b'|')
                    })
                    .collect(),
                // The fixture with random mutations.
                _ => {
                    let mut f = fixture.to_vec();
                    for _ in 0..(rnd() % 12) {
                        let at = rnd() as usize % f.len().max(1);
                        let b = if rnd() % 2 == 0 {
                            rnd() as u8
                        } else {
                            alphabet
                                .get(rnd() as usize % alphabet.len())
                                .copied()
                                .unwrap_or(b'|')
                        };
                        match rnd() % 3 {
                            0 => {
                                if let Some(x) = f.get_mut(at) {
                                    *x = b;
                                }
                            }
                            1 => f.insert(at.min(f.len()), b),
                            _ => {
                                if at < f.len() {
                                    f.remove(at);
                                }
                            }
                        }
                    }
                    f
                }
            };
            if i % 7 == 0 {
                v.truncate(len);
            }
            let chunk = 1 + (rnd() % 64) as usize;
            let (_, o) = run_chunks(&v, chunk);
            assert_eq!(o.format, Format::Hl7v2);
        }
    }
}
