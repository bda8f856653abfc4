//! JSON / NDJSON: a small push tokenizer (any chunking, bounded depth and string length, no document
//! is ever held in memory) that walks objects and maps keys with the CSV vocabulary.
//!
//! People: every top-level object, every object in an array (members[], dependents[]) and every object
//! under a key naming another person (subscriber, spouse, guarantor, ...) is a person candidate, emitted
//! when it closes if it identifies someone. Sub-objects such as "address", "name", "contact",
//! "identifiers", "phones"[] belong to the enclosing person; objects under other parties' keys (provider,
//! payer, employer, plan, ...) are ignored; claims/encounters contribute only diagnoses.

use crate::csv::{key_info, normalize, Builder, KeyInfo, Role};
use crate::model::{Format, Person, ScanStatus};
use crate::{validate, ParseOutcome, RecordParser};

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// Longest string kept (longer ones are read through and ignored).
pub const MAX_STRING: usize = 64 * 1024;
/// Longest number / literal token.
const MAX_TOKEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (top level, after ':' or after ',' in an array).
    Value,
    /// After '[': a value or ']'.
    ValueOrClose,
    /// After '{': a key or '}'.
    KeyOrClose,
    /// After ',' in an object.
    Key,
    Colon,
    CommaOrClose,
    /// Top level: a complete value was read.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Ws,
    Str,
    Esc,
    Uni,
    Num,
    Lit,
    /// NDJSON: skipping the rest of a broken line.
    SkipLine,
    /// JSON: the document is broken; ignore the rest.
    Failed,
}

/// Whose data lives in a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Normal,
    /// Another party (provider, payer, employer, plan ...): nothing inside is personal.
    Opaque,
    /// Claims, encounters: only diagnoses count (for the enclosing person).
    Clinical,
}

/// How keys inside a component object are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Plain,
    Address {
        mailing: bool,
    },
    Name,
    Phone,
    Email,
    Diag,
    /// FHIR-like contact points: `{"system": "phone", "value": ...}`.
    Telecom,
    /// `{"type": "SSN", "value": ...}`.
    Ident,
}

/// What a key says about the container under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cls {
    Component(Ctx),
    OtherPerson,
    Opaque,
    Clinical,
    Unknown,
}

fn classify(norm: &str, ki: KeyInfo) -> Cls {
    const OPAQUE: &[&str] = &[
        "provider",
        "payer",
        "payor",
        "employer",
        "physician",
        "prescriber",
        "facility",
        "pharmacy",
        "organization",
        "insurer",
        "carrier",
        "practitioner",
        "doctor",
        "clinic",
        "hospital",
        "pcp",
        "broker",
        "agent",
        "sponsor",
        "vendor",
        "submitter",
        "receiver",
        "sender",
        "company",
        "plan",
        "coverage",
        "group",
        "meta",
        "audit",
        "npi",
        "source",
        "system",
    ];
    const OTHER: &[&str] = &[
        "subscriber",
        "dependent",
        "spouse",
        "child",
        "children",
        "guarantor",
        "guardian",
        "parent",
        "emergency",
        "responsibleparty",
        "insured",
        "policyholder",
        "mother",
        "father",
        "nextofkin",
        "relative",
        "caregiver",
        "household",
        "family",
        "contacts",
        "people",
        "persons",
        "members",
        "patients",
        "beneficiaries",
        "enrollees",
    ];
    const CLINICAL: &[&str] = &[
        "claim",
        "encounter",
        "visit",
        "episode",
        "admission",
        "clinical",
        "service",
        "procedure",
    ];
    const SELF: &[&str] = &[
        "demographics",
        "demographic",
        "contact",
        "contactinfo",
        "contactinformation",
        "personal",
        "personalinfo",
        "details",
        "profile",
        "info",
        "attributes",
        "patient",
        "member",
        "beneficiary",
        "enrollee",
        "person",
        "individual",
        "participant",
        "client",
        "self",
        "primary",
        "data",
        "record",
    ];
    if OPAQUE.iter().any(|o| norm.contains(o)) {
        return Cls::Opaque;
    }
    match ki.role {
        Role::Street | Role::Street2 => {
            return Cls::Component(Ctx::Address {
                mailing: ki.mailing,
            })
        }
        Role::FullName | Role::First | Role::Last => return Cls::Component(Ctx::Name),
        Role::Phone => return Cls::Component(Ctx::Phone),
        Role::Email => return Cls::Component(Ctx::Email),
        Role::Diagnosis => return Cls::Component(Ctx::Diag),
        _ => {}
    }
    if norm.contains("address") || norm.contains("residence") {
        return Cls::Component(Ctx::Address {
            mailing: ki.mailing,
        });
    }
    if matches!(norm, "names" | "fullname" | "legalname")
        || norm.ends_with("name") && !norm.contains("user")
    {
        return Cls::Component(Ctx::Name);
    }
    if norm.contains("phone") || norm.contains("telephone") {
        return Cls::Component(Ctx::Phone);
    }
    if norm.contains("email") {
        return Cls::Component(Ctx::Email);
    }
    if norm.contains("diag")
        || norm.contains("condition")
        || norm.contains("problem")
        || norm.contains("icd")
    {
        return Cls::Component(Ctx::Diag);
    }
    if norm.contains("telecom") || norm == "contactpoints" {
        return Cls::Component(Ctx::Telecom);
    }
    if norm.starts_with("identifier")
        || norm == "ids"
        || norm.ends_with("ids")
        || norm.contains("identification")
    {
        return Cls::Component(Ctx::Ident);
    }
    if OTHER.iter().any(|o| norm.contains(o)) {
        return Cls::OtherPerson;
    }
    if CLINICAL.iter().any(|o| norm.contains(o)) {
        return Cls::Clinical;
    }
    if SELF.contains(&norm) {
        return Cls::Component(Ctx::Plain);
    }
    Cls::Unknown
}

/// Role of a key inside a component object.
fn role_in_ctx(ctx: Ctx, norm: &str, ki: KeyInfo) -> Option<KeyInfo> {
    let with = |role: Role| Some(KeyInfo { role, ..ki });
    match ctx {
        Ctx::Plain => Some(ki),
        Ctx::Address { mailing } => {
            let role = match norm {
                "line" | "line1" | "address" | "address1" | "streetline1" => Role::Street,
                "line2" | "address2" | "streetline2" => Role::Street2,
                _ => ki.role,
            };
            matches!(
                role,
                Role::Street | Role::Street2 | Role::City | Role::State | Role::Zip
            )
            .then_some(KeyInfo {
                role,
                mailing: mailing || ki.mailing,
                icd9: false,
                weak: false,
            })
        }
        Ctx::Name => match norm {
            "first" | "given" | "firstname" | "givenname" | "givennames" => with(Role::First),
            "last" | "family" | "lastname" | "familyname" | "surname" => with(Role::Last),
            "middle" | "middlename" | "middleinitial" => with(Role::Middle),
            "full" | "fullname" | "text" | "display" | "formatted" => with(Role::FullName),
            _ => None,
        },
        Ctx::Phone => (ki.role == Role::Phone
            || matches!(norm, "number" | "value" | "num" | "digits"))
        .then(|| KeyInfo::of(Role::Phone)),
        Ctx::Email => (ki.role == Role::Email || matches!(norm, "address" | "value"))
            .then(|| KeyInfo::of(Role::Email)),
        Ctx::Diag => (ki.role == Role::Diagnosis || matches!(norm, "code" | "value" | "id"))
            .then_some(KeyInfo {
                role: Role::Diagnosis,
                icd9: ki.icd9,
                mailing: false,
                weak: false,
            }),
        // Telecom values are resolved by shape; identifiers at close.
        Ctx::Telecom | Ctx::Ident => None,
    }
}

/// Identifier type codes (HL7 CX.5 style and plain words).
fn ident_role(t: &str) -> Option<Role> {
    let n = normalize(t);
    let r = match n.as_str() {
        "ss" | "ssn" | "sb" => Role::Ssn,
        "mr" | "mrn" | "pi" => Role::Mrn,
        "mc" | "mbi" | "medicare" => Role::Mbi,
        "ma" | "medicaid" => Role::Medicaid,
        "mb" | "sn" | "mi" | "member" | "subscriber" => Role::MemberId,
        "an" | "account" => Role::Account,
        _ => {
            // URIs such as http://hl7.org/fhir/sid/us-ssn, us-mbi.
            let tail = n
                .trim_start_matches("httphl7orgfhirsid")
                .trim_start_matches("us");
            match key_info(tail).role {
                r @ (Role::Ssn
                | Role::Mbi
                | Role::Medicaid
                | Role::MemberId
                | Role::Mrn
                | Role::Account) => r,
                _ => return None,
            }
        }
    };
    Some(r)
}

#[derive(Debug)]
struct Frame {
    obj: bool,
    expect: Expect,
    /// Normalized current key (objects) or the key the array sits under (arrays).
    key: String,
    key_info: KeyInfo,
    scope: Scope,
    ctx: Ctx,
    /// Frame holding the person this container's values belong to.
    owner: Option<usize>,
    /// This object is a person candidate.
    own: Option<Box<Builder>>,
    /// Count element values as records (top-level array, arrays directly under a top-level object).
    count_elems: bool,
    ident_type: String,
    ident_value: String,
}

impl Frame {
    fn new(obj: bool) -> Frame {
        Frame {
            obj,
            expect: if obj {
                Expect::KeyOrClose
            } else {
                Expect::ValueOrClose
            },
            key: String::new(),
            key_info: KeyInfo::of(Role::Unknown),
            scope: Scope::Normal,
            ctx: Ctx::Plain,
            owner: None,
            own: None,
            count_elems: false,
            ident_type: String::new(),
            ident_value: String::new(),
        }
    }
}

/// Streaming JSON (`ndjson == false`: one document, usually an array of objects or an object holding
/// arrays) or NDJSON (one document per line; a broken line is skipped and reported).
pub struct JsonParser {
    ndjson: bool,
    today: (u16, u8, u8),
    lex: Lex,
    buf: Vec<u8>,
    buf_over: bool,
    in_key: bool,
    uni_n: u8,
    uni_acc: u32,
    high: Option<u32>,
    stack: Vec<Frame>,
    top: Expect,
    offset: u64,
    line: u64,
    line_has_doc: bool,
    bom_checked: u8,
    records: u64,
    /// Records counted inside the current top-level value.
    top_counted: u64,
    error: Option<String>,
    bad_lines: u64,
    first_bad: Option<String>,
    long_strings: u64,
}

impl JsonParser {
    pub fn new(ndjson: bool, today: (u16, u8, u8)) -> Self {
        JsonParser {
            ndjson,
            today,
            lex: Lex::Ws,
            buf: Vec::new(),
            buf_over: false,
            in_key: false,
            uni_n: 0,
            uni_acc: 0,
            high: None,
            stack: Vec::new(),
            top: Expect::Value,
            offset: 0,
            line: 1,
            line_has_doc: false,
            bom_checked: 0,
            records: 0,
            top_counted: 0,
            error: None,
            bad_lines: 0,
            first_bad: None,
            long_strings: 0,
        }
    }

    // ----- errors -------------------------------------------------------------------------------

    fn fail(&mut self, msg: &str) {
        self.stack.clear();
        self.buf.clear();
        self.high = None;
        if self.ndjson {
            self.bad_lines += 1;
            if self.first_bad.is_none() {
                self.first_bad = Some(format!("line {}: {msg}", self.line));
            }
            self.lex = Lex::SkipLine;
        } else {
            if self.error.is_none() {
                self.error = Some(format!("malformed JSON at byte {}: {msg}", self.offset));
            }
            self.lex = Lex::Failed;
        }
    }

    // ----- grammar ------------------------------------------------------------------------------

    /// A value starts here: is one allowed? Counts records.
    fn begin_value(&mut self) -> Result<(), &'static str> {
        match self.stack.last_mut() {
            None => {
                if self.top == Expect::Done && self.ndjson {
                    return Err("more than one value on the line");
                }
                Ok(())
            }
            Some(f) => match f.expect {
                Expect::Value | Expect::ValueOrClose => {
                    if f.count_elems {
                        self.top_counted += 1;
                        self.records += 1;
                    }
                    Ok(())
                }
                _ => Err("unexpected value"),
            },
        }
    }

    /// A value ended: the container now expects ',' or its close.
    fn end_value(&mut self) {
        match self.stack.last_mut() {
            Some(f) => f.expect = Expect::CommaOrClose,
            None => self.top = Expect::Done,
        }
    }

    fn open(&mut self, obj: bool) -> Result<(), &'static str> {
        self.begin_value()?;
        if self.stack.len() >= MAX_DEPTH {
            return Err("nesting deeper than the limit");
        }
        let depth = self.stack.len();
        let mut f = Frame::new(obj);
        let Some(parent) = self.stack.last() else {
            // Top level: an object is a person candidate; an array's elements are the records.
            self.top_counted = 0;
            if obj {
                f.own = Some(Box::default());
                f.owner = Some(depth);
            } else if !self.ndjson {
                f.count_elems = true;
            }
            self.stack.push(f);
            return Ok(());
        };
        let in_array = !parent.obj;
        f.scope = parent.scope;
        f.owner = parent.owner;
        if !obj {
            // An array remembers the key it sits under: its scalars are read with it.
            f.key = parent.key.clone();
            f.key_info = parent.key_info;
            // Arrays directly under a top-level object hold the records ({"members": [...]}).
            f.count_elems = parent.obj && depth == 1 && !self.ndjson;
        }
        let mut new_person = false;
        if parent.scope != Scope::Opaque {
            let cls = classify(&parent.key, parent.key_info);
            if parent.ctx != Ctx::Plain {
                // Inside a component (address lines, given names, phones[] elements): same component.
                f.ctx = parent.ctx;
                if cls == Cls::Opaque {
                    f.scope = Scope::Opaque;
                }
            } else if in_array {
                // An object element of a plain array is a person of its own (members[], dependents[]),
                // except inside a claim/encounter, whose lines belong to its person.
                new_person = obj && parent.scope != Scope::Clinical;
            } else {
                match cls {
                    Cls::Opaque => f.scope = Scope::Opaque,
                    // Inside a claim, "patient": {...} is a person of its own, not the claim's owner.
                    Cls::Component(Ctx::Plain) if parent.scope == Scope::Clinical => {
                        new_person = obj
                    }
                    Cls::Component(ctx) => f.ctx = ctx,
                    Cls::Clinical => f.scope = Scope::Clinical,
                    Cls::OtherPerson => new_person = obj,
                    Cls::Unknown => {}
                }
            }
        }
        if obj && f.scope != Scope::Opaque && (new_person || f.owner.is_none()) {
            f.own = Some(Box::default());
            f.owner = Some(depth);
            f.scope = Scope::Normal;
            f.ctx = Ctx::Plain;
        }
        self.stack.push(f);
        Ok(())
    }

    fn close(&mut self, obj: bool, out: &mut dyn FnMut(Person)) -> Result<(), &'static str> {
        let ok = match self.stack.last() {
            Some(f) if f.obj == obj => {
                if obj {
                    matches!(f.expect, Expect::KeyOrClose | Expect::CommaOrClose)
                } else {
                    matches!(f.expect, Expect::ValueOrClose | Expect::CommaOrClose)
                }
            }
            _ => false,
        };
        if !ok {
            return Err(if obj {
                "unexpected '}'"
            } else {
                "unexpected ']'"
            });
        }
        let Some(f) = self.stack.pop() else {
            return Err("unbalanced");
        };
        if f.ctx == Ctx::Ident && f.obj && f.scope == Scope::Normal {
            if let Some(role) = ident_role(&f.ident_type) {
                let v = f.ident_value.clone();
                self.apply_to(f.owner, KeyInfo::of(role), &v);
            }
        }
        if let Some(b) = f.own {
            if !b.weak_name_only() {
                let p = b.finish();
                if p.is_identifiable() {
                    out(p);
                }
            }
        }
        if self.stack.is_empty() && obj && self.top_counted == 0 && !self.ndjson {
            // A top-level object without record arrays is one record.
            self.records += 1;
        }
        self.end_value();
        Ok(())
    }

    fn apply_to(&mut self, owner: Option<usize>, ki: KeyInfo, v: &str) {
        let today = self.today;
        if let Some(b) = owner
            .and_then(|o| self.stack.get_mut(o))
            .and_then(|f| f.own.as_deref_mut())
        {
            b.apply(ki, v, today);
        }
    }

    /// A string, number or literal value.
    fn scalar(&mut self, text: &str) {
        let target = match self.stack.last_mut() {
            None => None,
            Some(f) if f.scope == Scope::Opaque || f.key_info.role == Role::NotPersonal => None,
            Some(f) => {
                let (ki, scope, owner) = (f.key_info, f.scope, f.owner);
                let k = match f.ctx {
                    Ctx::Telecom => {
                        if validate::phone(text).is_some()
                            && matches!(f.key.as_str(), "value" | "number")
                        {
                            Some(KeyInfo::of(Role::Phone))
                        } else if validate::email(text).is_some() {
                            Some(KeyInfo::of(Role::Email))
                        } else {
                            None
                        }
                    }
                    Ctx::Ident => match f.key.as_str() {
                        "type" | "system" | "idtype" | "identifiertype" | "kind" | "code"
                        | "typecode" => {
                            f.ident_type = text.chars().take(200).collect();
                            None
                        }
                        "value" | "id" | "number" | "identifier" => {
                            f.ident_value = text.chars().take(200).collect();
                            None
                        }
                        // {"ssn": "..."} inside "identifiers": a plain key.
                        _ => Some(ki),
                    },
                    // In arrays the key is the array's ("phones": ["..."]); in component objects it is
                    // read in the component's context.
                    ctx => role_in_ctx(ctx, &f.key, ki),
                };
                let allowed = |k: &KeyInfo| match scope {
                    Scope::Normal => true,
                    Scope::Clinical => k.role == Role::Diagnosis,
                    Scope::Opaque => false,
                };
                k.filter(|k| k.role != Role::Unknown && allowed(k))
                    .map(|k| (owner, k))
            }
        };
        if let Some((owner, k)) = target {
            self.apply_to(owner, k, text);
        }
        self.end_value();
    }

    // ----- lexer --------------------------------------------------------------------------------

    fn push_str_byte(&mut self, b: u8) {
        if self.high.take().is_some() {
            self.push_char('\u{FFFD}');
        }
        if self.buf.len() < MAX_STRING {
            self.buf.push(b);
        } else {
            self.buf_over = true;
        }
    }

    fn push_char(&mut self, c: char) {
        let mut tmp = [0u8; 4];
        for &b in c.encode_utf8(&mut tmp).as_bytes() {
            if self.buf.len() < MAX_STRING {
                self.buf.push(b);
            } else {
                self.buf_over = true;
            }
        }
    }

    fn push_code_point(&mut self, cp: u32) {
        if (0xD800..0xDC00).contains(&cp) {
            if self.high.take().is_some() {
                self.push_char('\u{FFFD}');
            }
            self.high = Some(cp);
            return;
        }
        if (0xDC00..0xE000).contains(&cp) {
            match self.high.take() {
                Some(h) => {
                    let c = 0x10000 + ((h - 0xD800) << 10) + (cp - 0xDC00);
                    self.push_char(char::from_u32(c).unwrap_or('\u{FFFD}'));
                }
                None => self.push_char('\u{FFFD}'),
            }
            return;
        }
        if self.high.take().is_some() {
            self.push_char('\u{FFFD}');
        }
        self.push_char(char::from_u32(cp).unwrap_or('\u{FFFD}'));
    }

    fn end_string(&mut self) {
        if self.high.take().is_some() {
            self.push_char('\u{FFFD}');
        }
        let over = std::mem::take(&mut self.buf_over);
        if over {
            self.long_strings += 1;
        }
        let text = if over {
            String::new()
        } else {
            String::from_utf8_lossy(&self.buf).into_owned()
        };
        self.buf.clear();
        self.lex = Lex::Ws;
        if self.in_key {
            if let Some(f) = self.stack.last_mut() {
                f.key_info = key_info(&text);
                f.key = normalize(&text);
                f.expect = Expect::Colon;
            }
        } else if over {
            self.end_value();
        } else {
            self.scalar(&text);
        }
    }

    fn end_token(&mut self) -> Result<(), &'static str> {
        let tok = std::mem::take(&mut self.buf);
        let lex = self.lex;
        self.lex = Lex::Ws;
        if lex == Lex::Lit {
            if !matches!(tok.as_slice(), b"true" | b"false" | b"null") {
                return Err("bad literal");
            }
            self.end_value();
            return Ok(());
        }
        let valid = tok.iter().any(u8::is_ascii_digit)
            && std::str::from_utf8(&tok)
                .is_ok_and(|s| s.parse::<f64>().is_ok() && !s.starts_with('+'));
        if !valid {
            return Err("bad number");
        }
        let s = String::from_utf8_lossy(&tok).into_owned();
        self.scalar(&s);
        Ok(())
    }

    fn step(&mut self, b: u8, out: &mut dyn FnMut(Person)) {
        self.offset += 1;
        match self.lex {
            Lex::Failed => {}
            Lex::SkipLine => {
                if b == b'\n' {
                    self.new_line();
                }
            }
            Lex::Str => match b {
                b'"' => self.end_string(),
                b'\\' => self.lex = Lex::Esc,
                0..=0x1F => self.fail("control character in string (truncated line?)"),
                _ => self.push_str_byte(b),
            },
            Lex::Esc => {
                self.lex = Lex::Str;
                let c = match b {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b'f' => 12,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        self.lex = Lex::Uni;
                        self.uni_n = 0;
                        self.uni_acc = 0;
                        return;
                    }
                    _ => return self.fail("bad escape"),
                };
                self.push_str_byte(c);
            }
            Lex::Uni => {
                let Some(d) = (b as char).to_digit(16) else {
                    return self.fail("bad \\u escape");
                };
                self.uni_acc = self.uni_acc * 16 + d;
                self.uni_n += 1;
                if self.uni_n == 4 {
                    self.lex = Lex::Str;
                    let cp = self.uni_acc;
                    self.push_code_point(cp);
                }
            }
            Lex::Num | Lex::Lit => {
                let cont = if self.lex == Lex::Num {
                    matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                } else {
                    b.is_ascii_alphabetic()
                };
                if cont {
                    if self.buf.len() >= MAX_TOKEN {
                        return self.fail("token too long");
                    }
                    self.buf.push(b);
                } else {
                    if let Err(e) = self.end_token() {
                        return self.fail(e);
                    }
                    self.offset -= 1;
                    self.step(b, out);
                }
            }
            Lex::Ws => self.step_ws(b, out),
        }
    }

    fn step_ws(&mut self, b: u8, out: &mut dyn FnMut(Person)) {
        if self.ndjson && !self.line_has_doc && !matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            // NDJSON records are the non-blank lines, readable or not.
            self.records += 1;
            self.line_has_doc = true;
        }
        let r: Result<(), &'static str> = match b {
            b'\n' if self.ndjson => {
                if !self.stack.is_empty() {
                    self.fail("truncated document");
                    // fail() switched to SkipLine; this newline ends the line.
                }
                self.new_line();
                Ok(())
            }
            b' ' | b'\t' | b'\r' | b'\n' => Ok(()),
            b'{' => self.open(true),
            b'[' => self.open(false),
            b'}' => self.close(true, out),
            b']' => self.close(false, out),
            b',' => match self.stack.last_mut() {
                Some(f) if f.expect == Expect::CommaOrClose => {
                    f.expect = if f.obj { Expect::Key } else { Expect::Value };
                    Ok(())
                }
                _ => Err("unexpected ','"),
            },
            b':' => match self.stack.last_mut() {
                Some(f) if f.obj && f.expect == Expect::Colon => {
                    f.expect = Expect::Value;
                    Ok(())
                }
                _ => Err("unexpected ':'"),
            },
            b'"' => {
                let key = self
                    .stack
                    .last()
                    .is_some_and(|f| f.obj && matches!(f.expect, Expect::KeyOrClose | Expect::Key));
                if key {
                    self.in_key = true;
                    self.lex = Lex::Str;
                    Ok(())
                } else {
                    self.begin_value().map(|()| {
                        self.in_key = false;
                        self.lex = Lex::Str;
                    })
                }
            }
            b'-' | b'0'..=b'9' => self.begin_value().map(|()| {
                self.lex = Lex::Num;
                self.buf.push(b);
            }),
            b't' | b'f' | b'n' => self.begin_value().map(|()| {
                self.lex = Lex::Lit;
                self.buf.push(b);
            }),
            _ => Err("unexpected character"),
        };
        if let Err(e) = r {
            self.fail(e);
        }
    }

    /// NDJSON: a new line starts a new document.
    fn new_line(&mut self) {
        self.line += 1;
        self.lex = Lex::Ws;
        self.stack.clear();
        self.buf.clear();
        self.top = Expect::Value;
        self.line_has_doc = false;
    }
}

impl RecordParser for JsonParser {
    fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Person)) {
        for &b in data {
            // Skip a UTF-8 BOM at the very start.
            if self.bom_checked < 3 {
                let bom = [0xEFu8, 0xBB, 0xBF];
                if bom.get(usize::from(self.bom_checked)) == Some(&b) {
                    self.bom_checked += 1;
                    self.offset += 1;
                    continue;
                }
                self.bom_checked = 3;
            }
            if self.lex == Lex::Failed {
                return;
            }
            self.step(b, out);
        }
    }

    fn finish(&mut self, _out: &mut dyn FnMut(Person)) -> ParseOutcome {
        // People are emitted when their object closes: nothing is pending at the end.
        if matches!(self.lex, Lex::Num | Lex::Lit) {
            if let Err(e) = self.end_token() {
                self.fail(e);
            }
        }
        let incomplete =
            matches!(self.lex, Lex::Str | Lex::Esc | Lex::Uni) || !self.stack.is_empty();
        if incomplete {
            self.fail("truncated document");
        }
        let mut reasons = Vec::new();
        if let Some(e) = &self.error {
            reasons.push(e.clone());
        }
        if self.bad_lines > 0 {
            reasons.push(format!(
                "{} malformed line(s) skipped (first: {})",
                self.bad_lines,
                self.first_bad.as_deref().unwrap_or("?")
            ));
        }
        if self.long_strings > 0 {
            reasons.push(format!(
                "{} string(s) over {} KiB ignored",
                self.long_strings,
                MAX_STRING / 1024
            ));
        }
        let status = if reasons.is_empty() {
            ScanStatus::Complete
        } else {
            ScanStatus::Partial(reasons.join("; "))
        };
        ParseOutcome {
            format: if self.ndjson {
                Format::Ndjson
            } else {
                Format::Json
            },
            records: self.records,
            status,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const TODAY: (u16, u8, u8) = (2026, 11, 25);

    fn run_chunks(ndjson: bool, data: &[u8], chunk: usize) -> (Vec<Person>, ParseOutcome) {
        crate::test_support::run_chunks(JsonParser::new(ndjson, TODAY), data, chunk)
    }

    fn run(ndjson: bool, data: &str) -> (Vec<Person>, ParseOutcome) {
        run_chunks(ndjson, data.as_bytes(), 1 << 16)
    }

    const ENROLLMENT: &str = r#"{
      "sender": {"name": "Acme Health Plan", "npi": "1234567893", "taxId": "123456789"},
      "plan": {"name": "Gold PPO", "groupNumber": "123456789"},
      "members": [
        {
          "memberId": "SUB1000001",
          "firstName": "Jane", "middleName": "Q", "last_name": "Sample",
          "dateOfBirth": "1980-05-15",
          "ssn": "123-45-6789",
          "mbi": "1EG4-TE5-MK73",
          "medicaidId": "MCD998877",
          "address": {"line1": "123 Main St", "line2": "Apt 4", "city": "Springfield", "state": "il", "zip": "62701-1234"},
          "phones": ["(217) 555-0101", {"type": "cell", "number": "217-555-0102"}],
          "email": "Jane.Sample@example.com",
          "diagnoses": ["E11.9", {"code": "I10"}],
          "claims": [{"claimNumber": "234567890", "serviceDate": "2024-01-15", "dx": ["J45.909"],
                      "renderingProvider": {"name": "Dr Who", "npi": "1234567893", "ssn": "345-67-8901"}}],
          "dependents": [
            {"firstName": "Tommy", "lastName": "Sample", "dob": "20120704", "ssn": "234567890",
             "relationship": "child", "subscriberId": "SUB1000001"},
            {"name": "Sample, Zoë", "birthDate": "07/04/2014", "identifiers": [{"type": "MR", "value": "MRN0099"}]}
          ]
        },
        {"name": {"given": ["José", "M"], "family": "O'Brien-Núñez"}, "mrn": "MRN0012345",
         "telecom": [{"system": "phone", "value": "2175550103"}, {"system": "email", "value": "jose@example.org"}],
         "emergencyContact": {"name": "Maria O'Brien", "phone": "2175550104"}}
      ]
    }"#;

    #[test]
    fn nested_document_with_dependents() {
        let (people, o) = run(false, ENROLLMENT);
        assert_eq!(o.status, ScanStatus::Complete, "{o:?}");
        assert_eq!(o.format, Format::Json);
        assert_eq!(o.records, 2);
        let names: Vec<String> = people
            .iter()
            .map(|p| {
                p.name
                    .as_ref()
                    .map(|n| format!("{}|{}|{}", n.first, n.middle, n.last))
                    .unwrap_or_default()
            })
            .collect();
        // Dependents close before their subscriber; the emergency contact is a person of its own.
        assert_eq!(
            names,
            vec![
                "Tommy||Sample",
                "Zoë||Sample",
                "Jane|Q|Sample",
                "Maria||O'Brien",
                "José|M|O'Brien-Núñez"
            ]
        );
        let jane = &people[2];
        assert_eq!(jane.ssn.as_deref(), Some("123456789"));
        assert_eq!(jane.mbi.as_deref(), Some("1EG4TE5MK73"));
        assert_eq!(jane.medicaid_id.as_deref(), Some("MCD998877"));
        assert_eq!(jane.member_id.as_deref(), Some("SUB1000001"));
        assert_eq!(jane.dob, Some((1980, 5, 15)));
        let a = jane.address.as_ref().unwrap();
        assert_eq!(a.street, vec!["123 Main St".to_owned(), "Apt 4".to_owned()]);
        assert_eq!(
            (a.city.as_str(), a.state.as_str(), a.zip.as_str()),
            ("Springfield", "IL", "627011234")
        );
        assert_eq!(
            jane.phones,
            vec!["2175550101".to_owned(), "2175550102".to_owned()]
        );
        assert_eq!(jane.emails, vec!["jane.sample@example.com".to_owned()]);
        assert_eq!(
            jane.diagnoses,
            vec!["E119".to_owned(), "I10".to_owned(), "J45909".to_owned()]
        );
        let tommy = &people[0];
        assert_eq!(tommy.ssn.as_deref(), Some("234567890"));
        assert_eq!(tommy.dob, Some((2012, 7, 4)));
        assert_eq!(people[1].dob, Some((2014, 7, 4)));
        assert_eq!(people[1].medical_record_number.as_deref(), Some("MRN0099"));
        let jose = &people[4];
        assert_eq!(jose.medical_record_number.as_deref(), Some("MRN0012345"));
        assert_eq!(jose.phones, vec!["2175550103".to_owned()]);
        assert_eq!(jose.emails, vec!["jose@example.org".to_owned()]);
        // Nothing from the sender, plan, claim numbers or the rendering provider.
        for p in &people {
            assert_ne!(p.ssn.as_deref(), Some("345678901"));
            assert_ne!(
                p.ssn.as_deref(),
                Some("234567890").filter(|_| p.name.as_ref().is_some_and(|n| n.first != "Tommy"))
            );
        }
        assert!(people.iter().all(|p| p
            .name
            .as_ref()
            .is_none_or(|n| n.last != "Who" && n.first != "Acme")));
    }

    #[test]
    fn byte_at_a_time_is_the_same() {
        let (a, oa) = run_chunks(false, ENROLLMENT.as_bytes(), 1 << 20);
        let (b, ob) = run_chunks(false, ENROLLMENT.as_bytes(), 1);
        let (c, oc) = run_chunks(false, ENROLLMENT.as_bytes(), 5);
        assert_eq!((&a, &oa), (&b, &ob));
        assert_eq!((&a, &oa), (&c, &oc));
        let nd = ndjson_sample();
        let (a, oa) = run_chunks(true, nd.as_bytes(), 1 << 20);
        let (b, ob) = run_chunks(true, nd.as_bytes(), 1);
        assert_eq!((&a, &oa), (&b, &ob));
    }

    fn ndjson_sample() -> String {
        [
            r#"{"first_name":"Jane","last_name":"Sample","dob":"05/15/1980","ssn":"123456789","zip":"62701"}"#,
            r#"{"first_name":"Broken","ssn":"234-56-7890","#,
            r#"{"first_name":"Tom","last_name":"O\u2019Neil","dob":"1990-01-31","memberId":12345678}"#,
            "",
            r#"{"claim_number":"345678901","service_date":"2024-02-02","npi":"1234567893","group_number":"456789012"}"#,
            r#"not json at all"#,
            "{\"name\":\"Ann Lee\",\"email\":\"ann@example.net\",\"ssn\":\"456-78-9012\"}\r",
        ]
        .join("\n")
    }

    #[test]
    fn ndjson_broken_line_in_the_middle() {
        let (people, o) = run(true, &ndjson_sample());
        assert_eq!(o.format, Format::Ndjson);
        assert_eq!(o.records, 6, "non-blank lines");
        let r = o.status.reason().unwrap();
        assert!(
            r.starts_with("2 malformed line(s) skipped (first: line 2"),
            "{r}"
        );
        let firsts: Vec<_> = people
            .iter()
            .map(|p| p.name.as_ref().unwrap().first.clone())
            .collect();
        assert_eq!(firsts, vec!["Jane", "Tom", "Ann"]);
        assert_eq!(people[1].name.as_ref().unwrap().last, "O\u{2019}Neil");
        assert_eq!(people[1].member_id.as_deref(), Some("12345678"));
        assert_eq!(people[2].ssn.as_deref(), Some("456789012"));
        assert!(people.iter().all(|p| p.ssn.as_deref() != Some("234567890")));
    }

    #[test]
    fn malformed_json_keeps_earlier_people() {
        let doc = r#"[{"ssn":"123-45-6789","lastName":"One"},{"ssn":"234-56-7890","lastName":"Two"},{"ssn":"345-67-8901","lastName":"Thr"#;
        let (people, o) = run(false, doc);
        assert_eq!(people.len(), 2);
        assert!(o.status.reason().unwrap().contains("truncated"), "{o:?}");
        let (people, o) = run(
            false,
            r#"[{"ssn":"123-45-6789","lastName":"One"} {"ssn":"234-56-7890"}]"#,
        );
        assert_eq!(people.len(), 1);
        assert!(
            o.status
                .reason()
                .unwrap()
                .contains("malformed JSON at byte"),
            "{o:?}"
        );
        let deep = "[".repeat(MAX_DEPTH + 5);
        let (_, o) = run(false, &deep);
        assert!(o.status.reason().unwrap().contains("nesting"), "{o:?}");
        let (_, o) = run(false, "{\"a\": tru }");
        assert!(o.status.reason().unwrap().contains("bad literal"), "{o:?}");
        let long = format!(
            "[{{\"ssn\":\"123-45-6789\",\"notes\":\"{}\",\"lastName\":\"Long\"}}]",
            "x".repeat(MAX_STRING + 1)
        );
        let (people, o) = run(false, &long);
        assert_eq!(people.len(), 1);
        assert!(
            o.status.reason().unwrap().contains("string(s) over"),
            "{o:?}"
        );
    }

    #[test]
    fn decoys_and_weak_names() {
        let doc = r#"{"name": "Acme Health", "claims": [
            {"claimNumber": "123456789", "npi": "1234567893", "serviceDate": "2024-01-15", "groupNumber": "234567890",
             "patient": {"firstName": "Ann", "lastName": "Lee", "zip": "62701-1234"}}]}"#;
        let (people, o) = run(false, doc);
        assert_eq!(o.records, 1);
        assert_eq!(people.len(), 1, "{people:?}");
        assert_eq!(people[0].ssn, None);
        assert_eq!(people[0].dob, None);
        assert_eq!(people[0].address.as_ref().unwrap().zip, "627011234");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed: u64 = 0xDEAD_BEEF_CAFE_F00D;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"{}[]:,\"\\u0123456789abcdefnrtul -.eE\n\r\t\xEF\xBB\xBF\xF0\x9F";
        let base = ENROLLMENT.as_bytes();
        for i in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut data: Vec<u8> = if i % 2 == 0 {
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            } else {
                (0..len).map(|_| next() as u8).collect()
            };
            if i % 3 == 0 {
                let start = (next() as usize) % base.len();
                data = base[start..(start + 600).min(base.len())].to_vec();
                for _ in 0..3 {
                    let k = (next() as usize) % data.len().max(1);
                    if let Some(b) = data.get_mut(k) {
                        *b = alphabet[(next() % alphabet.len() as u64) as usize];
                    }
                }
            }
            let chunk = 1 + (next() % 13) as usize;
            let _ = run_chunks(i % 4 == 1, &data, chunk);
        }
    }
}
