//! The whole scanner (detection, containers, every parser) on arbitrary bytes in arbitrary chunks.
//! Input: byte 0 = chunking seed, the rest = the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockbox_inventory::{Limits, Person, Scanner};

/// Splits `data` into chunks whose sizes cycle through values derived from `seed` (1..=64, or larger).
fn chunks(seed: u8, data: &[u8]) -> Vec<&[u8]> {
    let sizes = [
        1 + (seed % 64) as usize,
        1 + (seed / 4) as usize * 37,
        4096,
        1,
    ];
    let mut out = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < data.len() {
        let n = sizes[i % sizes.len()].min(data.len() - at);
        out.push(&data[at..at + n]);
        at += n;
        i += 1;
    }
    out
}

fn run(seed: u8, file: &[u8], limits: Limits) -> (lockbox_inventory::ScanResult, Vec<Person>) {
    let mut people = Vec::new();
    let mut s = Scanner::with_today(limits, (2026, 3, 1));
    for c in chunks(seed, file) {
        s.feed(c, &mut |p| people.push(p));
    }
    let r = s.finish(&mut |p| people.push(p));
    (r, people)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, file)) = data.split_first() else {
        return;
    };
    // Small limits so bomb and depth paths are reached with small inputs.
    let limits = Limits {
        max_expanded: 8 << 20,
        max_ratio: 50,
        max_depth: 2,
        max_record: 64 << 10,
    };
    let (r, people) = run(seed, file, limits.clone());
    assert_eq!(r.bytes, file.len() as u64);
    assert_eq!(r.persons, people.len() as u64);
    assert!(people.iter().all(|p| p.is_identifiable()));
    // The scanner turns parser panics into a status so uploads never fail; here they are bugs.
    if let Some(reason) = r.status.reason() {
        assert!(
            !reason.contains("internal error"),
            "parser panicked: {reason}"
        );
    }
    // Chunking must not change anything.
    let (whole, whole_people) = run(255, file, limits);
    assert_eq!(r, whole);
    assert_eq!(people, whole_people);
});
