//! Classifier throughput per core on X12 834 and CSV, with and without the vault's per-person work,
//! against plain SHA-256 over the same bytes (the digest the server computes on every upload anyway).
//!
//!   cargo bench -p lockbox-inventory --bench throughput
//!
//! Environment: BENCH_MB (input size per format, default 256), BENCH_RUNS (default 3),
//! BENCH_PEOPLE (synthetic population, default 50000), BENCH_ONLY (`834` or `csv`: one input only).
//!
//! Single thread, so MB/s is per core (wall time ~ CPU time). Each measurement feeds the input to a
//! fresh `Scanner` in 1 MiB chunks; "fingerprint" adds what `lockbox-vault`'s content analysis does for
//! every person (`Fingerprinter::record`, two HMAC-SHA256, then a merge into a HashMap by identity).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use lockbox_inventory::fingerprint::FingerprintHashBuilder;
use lockbox_inventory::{Fingerprinter, Format, Limits, PersonRecord, ScanResult, Scanner};
use sha2::{Digest, Sha256};

const CHUNK: usize = 1 << 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Repeats a whole 834 file (several ISA interchanges in one file are valid X12) up to `target` bytes.
fn build_834(file: &[u8], target: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(target + file.len());
    while out.len() < target {
        out.extend_from_slice(file);
        if !file.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

/// Keeps the header line once and repeats the data rows up to `target` bytes.
fn build_csv(file: &[u8], target: usize) -> Vec<u8> {
    let nl = file
        .iter()
        .position(|b| *b == b'\n')
        .expect("CSV has a header line")
        + 1;
    let (header, rows) = file.split_at(nl);
    let mut out = Vec::with_capacity(target + file.len());
    out.extend_from_slice(header);
    while out.len() < target {
        out.extend_from_slice(rows);
        if !rows.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

type Key = (Option<[u8; 32]>, Option<[u8; 32]>, Option<[u8; 32]>);
/// As `lockbox_vault::content::People`.
type People = HashMap<Key, PersonRecord, FingerprintHashBuilder>;

/// As `lockbox_vault::content::merge`.
fn merge(people: &mut People, r: PersonRecord) {
    let key = (r.fp_ssn, r.fp_name_dob, r.fp_other);
    match people.get_mut(&key) {
        Some(existing) => {
            existing.elements = existing.elements.union(r.elements);
            if r.state.is_some() {
                existing.state = r.state;
            }
        }
        None => {
            people.insert(key, r);
        }
    }
}

fn scan_noop(data: &[u8]) -> (ScanResult, usize) {
    let mut s = Scanner::new(Limits::default());
    let mut seen = 0usize;
    for c in data.chunks(CHUNK) {
        s.feed(c, &mut |p| {
            seen += 1;
            black_box(p);
        });
    }
    let r = s.finish(&mut |p| {
        seen += 1;
        black_box(p);
    });
    (r, seen)
}

fn scan_fingerprint(data: &[u8]) -> (ScanResult, usize) {
    let fp = Fingerprinter::new([0x5a; 32]);
    let mut people = People::default();
    let mut s = Scanner::new(Limits::default());
    for c in data.chunks(CHUNK) {
        s.feed(c, &mut |p| merge(&mut people, fp.record(&p)));
    }
    let r = s.finish(&mut |p| merge(&mut people, fp.record(&p)));
    (r, people.len())
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for c in data.chunks(CHUNK) {
        h.update(c);
    }
    h.finalize().into()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median MB/s (10^6 bytes per second) of `runs` runs of `f` over `data`.
fn measure<T>(data: &[u8], runs: usize, mut f: impl FnMut(&[u8]) -> T) -> (f64, T) {
    let mut rates = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f(black_box(data));
        let secs = t.elapsed().as_secs_f64();
        rates.push(data.len() as f64 / 1e6 / secs);
        last = Some(r);
    }
    (median(rates), last.expect("at least one run"))
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore libtest-style arguments.
    let mb = env_usize("BENCH_MB", 256);
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let people = env_usize("BENCH_PEOPLE", 50_000);
    let target = mb << 20;

    let t = Instant::now();
    let spec = lockbox_synth::Spec {
        people,
        files_per_format: 1,
        orgs: 1,
        formats: vec![Format::X12_834, Format::Csv],
        ..Default::default()
    };
    let corpus = lockbox_synth::generate(1, &spec);
    let file = |f: Format| {
        &corpus
            .files
            .iter()
            .find(|g| g.format == f)
            .expect("generated")
            .bytes
    };
    let inputs = [
        (
            "834",
            Format::X12_834,
            build_834(file(Format::X12_834), target),
        ),
        ("csv", Format::Csv, build_csv(file(Format::Csv), target)),
    ];
    eprintln!(
        "[throughput] generated {} people, inputs {} in {:.1}s",
        people,
        inputs
            .iter()
            .map(|(n, _, d)| format!("{n}={:.0} MB", d.len() as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(", "),
        t.elapsed().as_secs_f64()
    );

    println!("PHI classifier throughput, single thread (MB/s = 10^6 bytes/s per core), median of {runs} runs, 1 MiB chunks");
    println!(
        "{:<5} {:>8} {:<12} {:>15} {:>12} {:>7} {:>10} {:>10}",
        "input", "MB", "mode", "classifier MB/s", "sha256 MB/s", "ratio", "persons", "bytes/pers"
    );
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for (name, format, data) in &inputs {
        if !only.is_empty() && only != *name {
            continue;
        }
        let (sha_rate, digest) = measure(data, runs, sha256);
        black_box(digest);
        let (noop_rate, (res, seen)) = measure(data, runs, scan_noop);
        assert_eq!(res.format, *format, "{name}: detected format");
        assert!(
            res.persons > 0 && seen as u64 == res.persons,
            "{name}: persons {} seen {seen}",
            res.persons
        );
        let (fp_rate, (res_fp, distinct)) = measure(data, runs, scan_fingerprint);
        assert_eq!(
            res_fp.persons, res.persons,
            "{name}: same persons with fingerprinting"
        );
        let per = data.len() as f64 / res.persons as f64;
        for (mode, rate) in [("no-op", noop_rate), ("fingerprint", fp_rate)] {
            println!(
                "{:<5} {:>8.0} {:<12} {:>15.0} {:>12.0} {:>7.2} {:>10} {:>10.0}",
                name,
                data.len() as f64 / 1e6,
                mode,
                rate,
                sha_rate,
                rate / sha_rate,
                res.persons,
                per
            );
        }
        eprintln!("[throughput] {name}: status {:?}, records {}, distinct fingerprinted people {distinct}", res.status.as_str(), res.records);
    }
}
