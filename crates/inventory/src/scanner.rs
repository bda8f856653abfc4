//! The entry point: detects the format from the first bytes, runs the matching streaming parser
//! (looking inside gzip/zip containers within limits), and reports people and the file's status.
//!
//! Flow: the scanner buffers the first [`SNIFF_LEN`](crate::detect::SNIFF_LEN) bytes (or the whole
//! file if shorter), calls [`detect::sniff`](crate::detect::sniff), then streams the prefix and
//! everything after it into the chosen engine: a format parser, a container (gzip/zip, whose content
//! goes through a nested scanner of the same kind, one per zip entry), or nothing (text without
//! structure, encrypted or unknown binary: the status says why). The scanner itself never holds more
//! than the prefix; parsers and containers bound their own buffers.
//!
//! What parsers receive: a leading UTF-8 BOM is removed for every text format, and leading whitespace
//! too for X12 and HL7 (so the parser sees `ISA`/`MSH`, or the MLLP start byte, first).
//!
//! Statuses: parsers report their own. Text without a recognized structure is
//! `Partial("unstructured text: ...")` (it was not scanned for people, so it must not count as clean);
//! encrypted data and unknown binaries are `Opaque`. A container's status is the worst of its own
//! (truncation, decompression limits) and its entries' (`Opaque` > `Partial` > `Complete`), with the
//! reasons joined: a zip holding one encrypted entry is `Opaque` even if its other entries were read.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::container::Container;
use crate::detect::{self, Detected, SNIFF_LEN};
use crate::model::{Format, Person, ScanResult, ScanStatus};
use crate::{validate, RecordParser};

/// Bounds against hostile input (decompression bombs, endless lines).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most bytes a container may expand to, in total.
    pub max_expanded: u64,
    /// Largest expansion ratio (expanded / compressed) before a container is abandoned.
    pub max_ratio: u64,
    /// Containers inside containers.
    pub max_depth: u32,
    /// Longest line, segment or field the text parsers buffer.
    pub max_record: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_expanded: 16 << 30,
            max_ratio: 200,
            max_depth: 3,
            max_record: 1 << 20,
        }
    }
}

/// Scans one file as it streams by. Never fails: problems become `Partial` or `Opaque`.
///
/// People are handed to `out` as soon as their record is complete; only identifiable people
/// ([`Person::is_identifiable`]) are passed on and counted.
pub struct Scanner {
    inner: Inner,
    ctx: Ctx,
    persons: u64,
    /// People per element, indexed by `Element as usize` (an array: this runs for every person).
    element_counts: [u64; crate::Element::ALL.len()],
}

impl Scanner {
    pub fn new(limits: Limits) -> Self {
        Self::with_today(limits, validate::today())
    }

    /// As `new`, with a fixed "today" for date-of-birth plausibility (tests, re-scans).
    pub fn with_today(limits: Limits, today: (u16, u8, u8)) -> Self {
        Scanner {
            inner: Inner::new(0),
            ctx: Ctx {
                limits,
                expanded: 0,
                today,
            },
            persons: 0,
            element_counts: [0; crate::Element::ALL.len()],
        }
    }

    pub fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Person)) {
        let Scanner {
            inner,
            ctx,
            persons,
            element_counts,
        } = self;
        let mut counted = |p: Person| count(persons, element_counts, p, out);
        inner.feed(data, &mut counted, ctx);
    }

    pub fn finish(self, out: &mut dyn FnMut(Person)) -> ScanResult {
        let Scanner {
            inner,
            mut ctx,
            mut persons,
            mut element_counts,
        } = self;
        let mut counted = |p: Person| count(&mut persons, &mut element_counts, p, out);
        let mut result = inner.finish(&mut counted, &mut ctx);
        result.persons = persons;
        result.element_counts = crate::Element::ALL
            .iter()
            .zip(element_counts)
            .filter(|(_, n)| *n > 0)
            .map(|(e, n)| (*e, n))
            .collect();
        result
    }
}

fn count(
    persons: &mut u64,
    counts: &mut [u64; crate::Element::ALL.len()],
    p: Person,
    out: &mut dyn FnMut(Person),
) {
    if !p.is_identifiable() {
        return;
    }
    *persons += 1;
    let bits = p.elements().0;
    for (i, c) in counts.iter_mut().enumerate() {
        *c += u64::from(bits >> i & 1);
    }
    out(p);
}

/// State shared by a scan and all its nested scans.
pub(crate) struct Ctx {
    pub limits: Limits,
    /// Bytes produced by all decompressors so far (checked against `limits.max_expanded`).
    pub expanded: u64,
    pub today: (u16, u8, u8),
}

/// One scan of a byte stream at some container depth (the file itself is depth 0). Containers own the
/// nested `Inner`s for their content.
pub(crate) struct Inner {
    depth: u32,
    bytes: u64,
    state: State,
}

enum State {
    /// Collecting the first bytes for detection.
    Prefix(Vec<u8>),
    Parse {
        parser: Box<dyn RecordParser>,
        detected: Detected,
    },
    Container(Box<Container>),
    /// Only whitespace so far (a prefix of whitespace longer than the sniff window).
    Blank {
        saw_text: bool,
    },
    /// Nothing to look at; the result is known.
    Skip {
        format: Format,
        status: ScanStatus,
    },
}

impl Inner {
    pub(crate) fn new(depth: u32) -> Self {
        Inner {
            depth,
            bytes: 0,
            state: State::Prefix(Vec::new()),
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Person), ctx: &mut Ctx) {
        if data.is_empty() {
            return;
        }
        self.bytes = self.bytes.saturating_add(data.len() as u64);
        let mut data = data;
        if let State::Prefix(buf) = &mut self.state {
            let take = SNIFF_LEN.saturating_sub(buf.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            buf.extend_from_slice(head);
            data = rest;
            if buf.len() < SNIFF_LEN {
                return;
            }
            let prefix = std::mem::take(buf);
            self.start(&prefix, false, out, ctx);
        }
        self.feed_engine(data, out, ctx);
    }

    pub(crate) fn finish(mut self, out: &mut dyn FnMut(Person), ctx: &mut Ctx) -> ScanResult {
        if let State::Prefix(buf) = &mut self.state {
            let prefix = std::mem::take(buf);
            self.start(&prefix, true, out, ctx);
        }
        let (format, inner_formats, status, records) = match self.state {
            State::Prefix(_) => (Format::Empty, Vec::new(), ScanStatus::Complete, 0),
            State::Parse {
                mut parser,
                detected,
            } => match catch_unwind(AssertUnwindSafe(|| parser.finish(out))) {
                Ok(o) => (
                    refine_format(&detected, o.format),
                    Vec::new(),
                    o.status,
                    o.records,
                ),
                Err(_) => (detected.format(), Vec::new(), parser_panicked(&detected), 0),
            },
            State::Container(c) => {
                let s = c.finish(out, ctx);
                (s.format, s.inner_formats, s.status, s.records)
            }
            State::Blank { saw_text: false } => {
                (Format::Empty, Vec::new(), ScanStatus::Complete, 0)
            }
            State::Blank { saw_text: true } => (Format::Text, Vec::new(), unstructured(), 0),
            State::Skip { format, status } => (format, Vec::new(), status, 0),
        };
        ScanResult {
            format,
            inner_formats,
            status,
            records,
            persons: 0,
            element_counts: BTreeMap::new(),
            bytes: self.bytes,
        }
    }

    /// Detects the format from `prefix`, sets up the engine and feeds it the prefix.
    fn start(&mut self, prefix: &[u8], at_eof: bool, out: &mut dyn FnMut(Person), ctx: &mut Ctx) {
        let detected = detect::sniff(prefix);
        let today = ctx.today;
        let mut skip = detect::bom_len(prefix);
        let parser: Box<dyn RecordParser> = match &detected {
            Detected::Empty => {
                self.state = if at_eof {
                    State::Skip {
                        format: Format::Empty,
                        status: ScanStatus::Complete,
                    }
                } else {
                    State::Blank { saw_text: false }
                };
                return;
            }
            Detected::Gzip | Detected::Zip => {
                let format = detected.format();
                if self.depth >= ctx.limits.max_depth {
                    self.state = State::Skip {
                        format,
                        status: ScanStatus::Opaque("containers nested too deep".into()),
                    };
                    return;
                }
                let c = if format == Format::Gzip {
                    Container::gzip(self.depth + 1)
                } else {
                    Container::zip(self.depth + 1)
                };
                self.state = State::Container(Box::new(c));
                self.feed_engine(prefix, out, ctx);
                return;
            }
            Detected::Text => {
                self.state = State::Skip {
                    format: Format::Text,
                    status: unstructured(),
                };
                return;
            }
            Detected::Opaque { format, reason } => {
                self.state = State::Skip {
                    format: *format,
                    status: ScanStatus::Opaque((*reason).into()),
                };
                return;
            }
            Detected::X12 => {
                skip = detect::leading_space_len(prefix);
                Box::new(crate::x12::X12Parser::new(today))
            }
            Detected::Hl7 => {
                skip = detect::leading_space_len(prefix);
                Box::new(crate::hl7::Hl7Parser::new(today))
            }
            Detected::Json => Box::new(crate::json::JsonParser::new(false, today)),
            Detected::Ndjson => Box::new(crate::json::JsonParser::new(true, today)),
            Detected::Delimited(d) => Box::new(crate::csv::CsvParser::new(*d, today)),
        };
        self.state = State::Parse { parser, detected };
        self.feed_engine(prefix.get(skip..).unwrap_or_default(), out, ctx);
    }

    fn feed_engine(&mut self, data: &[u8], out: &mut dyn FnMut(Person), ctx: &mut Ctx) {
        if data.is_empty() {
            return;
        }
        match &mut self.state {
            State::Parse { parser, detected } => {
                if catch_unwind(AssertUnwindSafe(|| parser.feed(data, out))).is_err() {
                    let format = detected.format();
                    let status = parser_panicked(detected);
                    self.state = State::Skip { format, status };
                }
            }
            State::Container(c) => c.feed(data, out, ctx),
            State::Blank { saw_text } => {
                if !*saw_text && data.iter().any(|c| !c.is_ascii_whitespace()) {
                    *saw_text = true;
                }
            }
            State::Prefix(_) | State::Skip { .. } => {}
        }
    }
}

fn unstructured() -> ScanStatus {
    ScanStatus::Partial("unstructured text: not scanned for people".into())
}

/// A parser bug must not fail the upload; the status says the rest was not scanned. (The fuzz target
/// treats this reason as a crash.)
fn parser_panicked(detected: &Detected) -> ScanStatus {
    ScanStatus::Partial(format!(
        "internal error in the {} parser: rest not scanned",
        detected.format().as_str()
    ))
}

/// The detected format, refined by what the parser found (X12 834/837, JSON vs NDJSON).
fn refine_format(detected: &Detected, reported: Format) -> Format {
    match (detected, reported) {
        (Detected::X12, Format::X12_834 | Format::X12_837 | Format::X12Other) => reported,
        (Detected::Json | Detected::Ndjson, Format::Json | Format::Ndjson) => reported,
        (Detected::Delimited(_), Format::Csv | Format::Tsv) => reported,
        _ => detected.format(),
    }
}
