//! The x12 parser on its own: arbitrary bytes in arbitrary chunks must not panic, and chunking
//! must not change the people or the outcome. Input: byte 0 = seed (chunking and options), rest = data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockbox_inventory::x12::X12Parser;
use lockbox_inventory::{ParseOutcome, Person, RecordParser};

const TODAY: (u16, u8, u8) = (2026, 3, 1);

fn run(seed: u8, data: &[u8], chunk: usize) -> (ParseOutcome, Vec<Person>) {
    let _ = seed;
    let mut parser = X12Parser::new(TODAY);
    let mut people = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        parser.feed(c, &mut |p| people.push(p));
    }
    let outcome = parser.finish(&mut |p| people.push(p));
    (outcome, people)
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else {
        return;
    };
    let chunk = 1 + (seed >> 2) as usize % 97;
    let split = run(seed, data, chunk);
    let whole = run(seed, data, data.len());
    assert_eq!(split, whole);
});
