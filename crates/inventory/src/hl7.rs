//! Streaming parser (placeholder: being written).

use crate::model::{Format, Person, ScanStatus};
use crate::{ParseOutcome, RecordParser};

pub struct Hl7Parser {
    today: (u16, u8, u8),
}

impl Hl7Parser {
    pub fn new(today: (u16, u8, u8)) -> Self {
        Hl7Parser { today }
    }
}

impl RecordParser for Hl7Parser {
    fn feed(&mut self, _data: &[u8], _out: &mut dyn FnMut(Person)) {}
    fn finish(&mut self, _out: &mut dyn FnMut(Person)) -> ParseOutcome {
        let _ = self.today;
        ParseOutcome { format: Format::Text, records: 0, status: ScanStatus::Partial("parser not written yet".into()) }
    }
}
