//! Streaming parser (placeholder: being written).

use crate::model::{Format, Person, ScanStatus};
use crate::{ParseOutcome, RecordParser};

pub struct JsonParser {
    today: (u16, u8, u8),
}

impl JsonParser {
    pub fn new(today: (u16, u8, u8)) -> Self {
        JsonParser { today }
    }
}

impl RecordParser for JsonParser {
    fn feed(&mut self, _data: &[u8], _out: &mut dyn FnMut(Person)) {}
    fn finish(&mut self, _out: &mut dyn FnMut(Person)) -> ParseOutcome {
        let _ = self.today;
        ParseOutcome { format: Format::Text, records: 0, status: ScanStatus::Partial("parser not written yet".into()) }
    }
}
