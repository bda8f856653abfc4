//! The PHI inventory: finds which people a file holds and which of their data elements, as the file
//! streams through (no second read), without ever storing any of that data in readable form.
//!
//! Layout: `model` (people, elements, results), `validate` (identifier rules: SSN, MBI, NPI, phone,
//! dates, ...), `detect` (format sniffing), one streaming parser per format (`x12`, `hl7`, `csv`,
//! `json`), `container` (gzip/zip, with bomb limits), `scanner` (the entry point that ties them
//! together), and `fingerprint` (keyed HMAC identities, the only thing about a person that is stored).
//!
//! Architecture invariants:
//! - Parsers never fail an upload: every error becomes `ScanStatus::Partial` or `Opaque` with a reason.
//! - Memory is bounded whatever the input: parsers hold at most one record (plus fixed-size buffers);
//!   a line, segment or field longer than its limit is skipped and reported.
//! - Plaintext identifiers leave this crate only as `Person` values handed to a caller's callback
//!   (the vault fingerprints them at once; the exposure report uses them to build mailing lists).
#![forbid(unsafe_code)]

pub mod container;
pub mod csv;
pub mod detect;
pub mod fingerprint;
pub mod hl7;
pub mod json;
pub mod model;
pub mod validate;
pub mod x12;

pub use fingerprint::{Fingerprinter, PersonRecord};
pub use model::{Address, Element, ElementSet, Format, Name, Person, ScanResult, ScanStatus};

pub mod scanner;
pub use scanner::{Limits, Scanner};

/// One format's streaming parser. The scanner feeds consecutive chunks of the file (or of a container
/// entry) and receives each person as soon as their record is complete.
pub trait RecordParser: Send {
    /// Consumes the next chunk. Must never panic and must keep memory bounded whatever the input.
    fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Person));
    /// End of input: flushes the last record and reports how the parse went.
    fn finish(&mut self, out: &mut dyn FnMut(Person)) -> ParseOutcome;
}

/// How one parser's run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOutcome {
    /// The precise format once known (an X12 parser reports 834 or 837 from its GS08/ST01).
    pub format: Format,
    pub records: u64,
    pub status: ScanStatus,
}

/// Version of the classifier rules. Raise it when parsers change what they find; `lockbox inventory
/// rescan` then rescans files inventoried by an older version.
pub const CLASSIFIER_VERSION: i64 = 2;

/// Test support shared by the parsers' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::{ParseOutcome, Person, RecordParser};

    /// Feeds `data` to `parser` in chunks of `chunk` bytes and collects everyone it reports.
    pub(crate) fn run_chunks(
        mut parser: impl RecordParser,
        data: &[u8],
        chunk: usize,
    ) -> (Vec<Person>, ParseOutcome) {
        let mut people = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            parser.feed(c, &mut |x| people.push(x));
        }
        let o = parser.finish(&mut |x| people.push(x));
        (people, o)
    }
}
