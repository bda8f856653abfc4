//! Benchmark setup for the exposure report (see `bench/exposure_scale.sh`). Not product code.
//!
//! Two modes, both producing a real Lockbox data directory and key file (`Vault::open`, organizations
//! and users through the admin API):
//!
//! * `--mode synthetic` (default): bulk-inserts `--files` file versions and their inventory with
//!   `--individuals` distinct people directly with SQLite (one transaction, prepared statements, the
//!   inventory indexes rebuilt afterwards). Each person has random but stable fingerprints; 50% appear in
//!   one file, 30% in two and 20% in three (mostly different organizations). Per row, 75% carry SSN and
//!   name+DOB, 17% only name+DOB, 5% only SSN, 3% only an "other" identifier; 8% also carry an other
//!   identifier. 4% of people move (a later file has another state), 1% of rows have no state. 5% of the
//!   versions are deleted (key destroyed) inside the window; 1% are opaque, 2% partial. All versions
//!   are present during the window 2025-12-10..2026-01-05.
//! * `--mode real`: uploads `lockbox_synth` files through the vault (encrypted, inventoried on commit),
//!   for timing the mailing list, which decrypts and re-scans them.
//!
//! cargo run --release -p lockbox-exposure --example scale_inventory -- \
//!     --individuals 10000000 --files 10000 --orgs 20 --data DIR --key-file KEY
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::time::Instant;

use lockbox_types::{Door, Role, VirtualPath};
use lockbox_vault::admin::AdminActor;
use lockbox_vault::{Credential, LoginAttempt, OpenMode, Vault, VaultConfig, Verdict};
use rusqlite::params;

const PASSWORD: &str = "correct-horse-battery-staple";
/// 2025-01-01T00:00:00Z: first commit.
const T0: i64 = 1_735_689_600;
/// 2025-12-12T00:00:00Z: deletions happen after the window starts (2025-12-10).
const T_DELETE: i64 = 1_765_497_600;
const STATES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
];

struct Args {
    mode: String,
    individuals: u64,
    files: u64,
    orgs: u64,
    people: usize,
    files_per_format: usize,
    data: PathBuf,
    key_file: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        mode: "synthetic".into(),
        individuals: 10_000_000,
        files: 10_000,
        orgs: 20,
        people: 110_000,
        files_per_format: 3,
        data: PathBuf::new(),
        key_file: PathBuf::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--mode" => a.mode = v,
            "--individuals" => a.individuals = v.parse().unwrap(),
            "--files" => a.files = v.parse().unwrap(),
            "--orgs" => a.orgs = v.parse().unwrap(),
            "--people" => a.people = v.parse().unwrap(),
            "--files-per-format" => a.files_per_format = v.parse().unwrap(),
            "--data" => a.data = v.into(),
            "--key-file" => a.key_file = v.into(),
            _ => panic!("unknown argument {k}"),
        }
    }
    assert!(
        !a.data.as_os_str().is_empty() && !a.key_file.as_os_str().is_empty(),
        "--data and --key-file are required"
    );
    a
}

/// splitmix64: fast, deterministic, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable random 32-byte fingerprint of (person, kind).
fn fingerprint(person: u64, kind: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    let seed = person.wrapping_mul(4).wrapping_add(kind) ^ 0x05ee_d0ff_1e1d;
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(
            &mix(seed.wrapping_mul(0x1000_0000_01b3) ^ (i as u64 + 1) << 56).to_le_bytes(),
        );
    }
    out
}

fn main() {
    let a = args();
    let t = Instant::now();
    let (vault, _) = Vault::open(VaultConfig {
        data_dir: a.data.clone(),
        key_file: a.key_file.clone(),
        auth: Default::default(),
        storage: Default::default(),
    })
    .expect("open the vault");
    match a.mode.as_str() {
        "synthetic" => synthetic(&a, vault),
        "real" => real(&a, &vault),
        m => panic!("unknown mode {m}"),
    }
    println!("setup_seconds {:.1}", t.elapsed().as_secs_f64());
}

fn synthetic(a: &Args, vault: Vault) {
    let admin = AdminActor::cli();
    let mut folder_of_org = Vec::new();
    let mut user_of_org = Vec::new();
    for o in 0..a.orgs {
        let org = format!("org{o:03}-partner");
        vault.create_org(&admin, &org).unwrap();
        let u = vault
            .create_user(&admin, &org, &format!("feed{o:03}"), Role::Transfer, None)
            .unwrap();
        let f = vault.create_folder(&admin, &org, "claims").unwrap();
        folder_of_org.push(f.id.0);
        user_of_org.push(u.id.0);
    }
    let db = vault.database_path();
    // The bulk load needs the database to itself.
    drop(vault);

    // Appearances: (file, person), generated per person then sorted by file so rows are written file by
    // file (as the inventory does).
    let t = Instant::now();
    let mut rng = Rng(20_260_115);
    let nfiles = a.files;
    let mut app: Vec<(u32, u32)> = Vec::with_capacity((a.individuals as usize) * 17 / 10 + 16);
    for p in 0..a.individuals {
        let r = rng.below(100);
        let k = if r < 50 {
            1
        } else if r < 80 {
            2
        } else {
            3
        };
        let mut used = [u32::MAX; 3];
        for j in 0..k {
            let mut f = rng.below(nfiles) as u32;
            while used.contains(&f) {
                f = rng.below(nfiles) as u32;
            }
            used[j] = f;
            app.push((f, p as u32));
        }
    }
    app.sort_unstable();
    println!(
        "appearances {} ({:.1}s)",
        app.len(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000; \
         PRAGMA temp_store = MEMORY; \
         DROP INDEX IF EXISTS file_persons_by_file; DROP INDEX IF EXISTS file_persons_by_ssn; \
         DROP INDEX IF EXISTS file_persons_by_name_dob;",
    )
    .unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut ins_file = tx
            .prepare(
                "INSERT INTO files (id, folder_id, parent, name, blob_id, wrapped_key, size, sha256, mtime, \
                 created_by, committed_at, deleted_at, deleted_by) \
                 VALUES (?1, ?2, '', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .unwrap();
        let mut ins_inv = tx
            .prepare(
                "INSERT INTO file_inventory (file_id, format, inner_formats, status, reason, records, persons, \
                 element_counts, classifier_version, scanned_at) VALUES (?1, ?2, '', ?3, ?4, ?5, ?6, '{}', ?7, ?8)",
            )
            .unwrap();
        let mut ins_person = tx
            .prepare(
                "INSERT INTO file_persons (file_id, fp_ssn, fp_name_dob, fp_other, state, elements) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .unwrap();
        // Id offset so file ids are not simply indexes.
        let base_id = 1000i64;
        let span = T_DELETE - 7 * 86_400 - T0;
        let mut pos = 0usize;
        for fi in 0..nfiles {
            let id = base_id + fi as i64;
            let org = (fi % a.orgs) as usize;
            // Commit order follows the file index so "later file" means a later version.
            let committed = T0 + span * fi as i64 / nfiles as i64;
            let deleted = rng.chance(5);
            let status = match rng.below(100) {
                0 => "opaque",
                1 | 2 => "partial",
                _ => "complete",
            };
            let start = pos;
            while pos < app.len() && app[pos].0 == fi as u32 {
                pos += 1;
            }
            let persons = if status == "opaque" { 0 } else { pos - start };
            let mut blob = [0u8; 16];
            blob[..8].copy_from_slice(&rng.next().to_le_bytes());
            blob[8..].copy_from_slice(&rng.next().to_le_bytes());
            let wrapped: Option<Vec<u8>> = (!deleted).then(|| {
                (0..6)
                    .flat_map(|_| rng.next().to_le_bytes())
                    .collect::<Vec<u8>>()
            });
            ins_file
                .execute(params![
                    id,
                    folder_of_org[org],
                    format!("batch-{fi:05}.csv"),
                    &blob[..],
                    wrapped,
                    (persons as i64) * 180 + 4096,
                    format!(
                        "{:016x}{:016x}{:016x}{:016x}",
                        rng.next(),
                        rng.next(),
                        rng.next(),
                        rng.next()
                    ),
                    committed,
                    user_of_org[org],
                    committed,
                    deleted.then_some(T_DELETE + fi as i64),
                    deleted.then_some(user_of_org[org]),
                ])
                .unwrap();
            ins_inv
                .execute(params![
                    id,
                    if status == "opaque" { "binary" } else { "csv" },
                    status,
                    (status != "complete").then_some("synthetic"),
                    persons as i64,
                    persons as i64,
                    lockbox_inventory::CLASSIFIER_VERSION,
                    committed + 5,
                ])
                .unwrap();
            if status == "opaque" {
                continue;
            }
            for &(_, p) in &app[start..pos] {
                let p = u64::from(p);
                let r = rng.below(100);
                let (ssn, name_dob, only_other) = match r {
                    0..=74 => (true, true, false),
                    75..=91 => (false, true, false),
                    92..=96 => (true, false, false),
                    _ => (false, false, true),
                };
                let other = only_other || rng.chance(8);
                let fs = ssn.then(|| fingerprint(p, 0));
                let fn_ = name_dob.then(|| fingerprint(p, 1));
                let fo = other.then(|| fingerprint(p, 2));
                // Home state from the person; 4% of people moved, so a later file may differ.
                let home = STATES[(mix(p ^ 0xa11ce) % STATES.len() as u64) as usize];
                let state = if rng.chance(1) {
                    None
                } else if mix(p ^ 0xb0b).is_multiple_of(25) && fi * 2 > nfiles {
                    Some(STATES[(mix(p ^ 0xc0de) % STATES.len() as u64) as usize])
                } else {
                    Some(home)
                };
                // Name, DOB, address, and a few others.
                let mut el: u32 = 0;
                if name_dob || only_other {
                    el |= 1 << 0;
                }
                if ssn {
                    el |= 1 << 1;
                }
                if name_dob {
                    el |= 1 << 6;
                }
                if other {
                    el |= 1 << (2 + rng.below(4));
                }
                if state.is_some() {
                    el |= 1 << 9;
                    if !rng.chance(6) {
                        el |= (1 << 7) | (1 << 8) | (1 << 10);
                    }
                }
                el |= (rng.next() as u32)
                    & ((1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15));
                if rng.chance(1) {
                    el |= 1 << 16;
                }
                ins_person
                    .execute(params![
                        id,
                        fs.as_ref().map(|f| &f[..]),
                        fn_.as_ref().map(|f| &f[..]),
                        fo.as_ref().map(|f| &f[..]),
                        state,
                        el,
                    ])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    println!("inserted ({:.1}s)", t.elapsed().as_secs_f64());
    let t = Instant::now();
    c.execute_batch(
        "CREATE INDEX file_persons_by_file ON file_persons (file_id); \
         CREATE INDEX file_persons_by_ssn ON file_persons (fp_ssn) WHERE fp_ssn IS NOT NULL; \
         CREATE INDEX file_persons_by_name_dob ON file_persons (fp_name_dob) WHERE fp_name_dob IS NOT NULL; \
         PRAGMA journal_mode = WAL;",
    )
    .unwrap();
    println!("indexed ({:.1}s)", t.elapsed().as_secs_f64());
    let rows: i64 = c
        .query_row("SELECT count(*) FROM file_persons", [], |r| r.get(0))
        .unwrap();
    println!("file_persons_rows {rows}");
}

fn real(a: &Args, vault: &Vault) {
    use lockbox_synth::{generate, Spec};
    let corpus = generate(
        20_260_115,
        &Spec {
            people: a.people,
            files_per_format: a.files_per_format,
            orgs: a.orgs as usize,
            ..Spec::default()
        },
    );
    let admin = AdminActor::cli();
    let mut user_of_org = std::collections::HashMap::new();
    let orgs: std::collections::BTreeSet<String> =
        corpus.files.iter().map(|f| f.org.clone()).collect();
    for (i, org) in orgs.iter().enumerate() {
        vault.create_org(&admin, org).unwrap();
        vault
            .create_user(
                &admin,
                org,
                &format!("feed{i}"),
                Role::Transfer,
                Some(PASSWORD),
            )
            .unwrap();
        user_of_org.insert(org.clone(), format!("feed{i}"));
    }
    let mut records = 0u64;
    let mut bytes = 0usize;
    for f in &corpus.files {
        let v = vault.authenticate(&LoginAttempt {
            user: &user_of_org[&f.org],
            credential: Credential::Password(PASSWORD),
            door: Door::Sftp,
            source: "10.0.0.1".parse().unwrap(),
        });
        let Verdict::Accepted(p) = v else {
            panic!("login refused")
        };
        let s = vault.open_session(p).unwrap();
        let path = VirtualPath::parse(&VirtualPath::root(), &format!("/home/{}", f.name)).unwrap();
        let mut w = s
            .open_write(
                &path,
                OpenMode {
                    truncate: true,
                    ..Default::default()
                },
            )
            .unwrap();
        w.write_at(0, bytes::Bytes::from(f.bytes.clone())).unwrap();
        w.commit().unwrap();
        records += f.truth.persons.len() as u64;
        bytes += f.bytes.len();
    }
    println!(
        "real_files {} person_records {records} bytes {bytes}",
        corpus.files.len()
    );
}
