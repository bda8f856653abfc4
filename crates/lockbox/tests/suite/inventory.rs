//! The PHI inventory through the real doors: a file uploaded with OpenSSH `sftp` is inventoried as it
//! arrives (format, people, elements, state), nothing identifying is stored in readable form, a file
//! the classifier cannot read never blocks its upload, and `lockbox inventory rescan` covers files
//! stored without an inventory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use common::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../inventory/tests/fixtures");

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(FIXTURES).join(name)
}

fn show(s: &TestServer, path: &str) -> serde_json::Value {
    let out = s.cli_ok(&["--json", "inventory", "show", path]);
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("inventory show is not JSON ({e}): {out}"))
}

/// Every identifying value of the shared fixtures, in the shapes they appear in the files.
const FIXTURE_IDENTIFIERS: [&str; 8] = [
    "123456789",
    "123-45-6789",
    "234567890",
    "1EG4TE5MK73",
    "SUB1000001",
    "jane.sample@example.com",
    "2175550101",
    "MRN0012345",
];

#[test]
fn uploads_are_inventoried_without_storing_identifiers() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let x12 = fixture("enrollment-834-two-members.x12");
    let hl7 = fixture("adt-a04-one-patient.hl7");
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!(
            "put {} enroll.x12\nput {} adt.hl7\n",
            x12.display(),
            hl7.display()
        ),
    );

    let v = show(&s, "acme/home.alice/enroll.x12");
    assert_eq!(v["format"], "x12-834", "{v}");
    assert_eq!(v["status"], "complete", "{v}");
    assert_eq!(v["persons"], 2, "{v}");
    assert_eq!(v["element_counts"]["ssn"], 2, "{v}");
    assert_eq!(v["element_counts"]["mbi"], 1, "{v}");
    assert_eq!(
        v["element_counts"]["member_id"], 1,
        "the dependent's REF*0F is not his own: {v}"
    );
    assert_eq!(v["persons_by_state"]["IL"], 2, "{v}");

    let v = show(&s, "acme/home.alice/adt.hl7");
    assert_eq!(v["format"], "hl7v2", "{v}");
    assert_eq!(v["persons"], 1, "{v}");
    assert_eq!(v["element_counts"]["diagnosis"], 1, "{v}");
    assert_eq!(v["element_counts"]["medical_record_number"], 1, "{v}");

    // The upload's audit record carries the inventory summary.
    let audit = s.cli_ok(&["audit", "export", "--format", "jsonl"]);
    let commit = audit
        .lines()
        .find(|l| l.contains("upload_committed") && l.contains("enroll.x12"))
        .expect("an upload_committed record for enroll.x12");
    assert!(commit.contains("\"persons\":2"), "{commit}");

    // No identifier of the fixtures exists in readable form anywhere in the data directory.
    s.sftp_ok("alice", Auth::Key(&key), "ls\n");
    for id in FIXTURE_IDENTIFIERS {
        for f in s.data_files() {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !contains_bytes(&bytes, id.as_bytes()),
                "{id} found in {}",
                f.display()
            );
        }
    }
}

#[test]
fn unreadable_content_never_blocks_an_upload_and_is_opaque() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let armored = s.dir.path().join("msg.asc");
    std::fs::write(
        &armored,
        "-----BEGIN PGP MESSAGE-----\n\nhQEMA5xQ0Tn6lQyQAQf/abcdefghijklmnopqrstuvwxyz0123456789\n=abcd\n-----END PGP MESSAGE-----\n",
    )
    .unwrap();
    let garbage = s.dir.path().join("garbage.bin");
    let mut g = Vec::new();
    for i in 0..200_000u32 {
        g.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
    }
    std::fs::write(&garbage, &g).unwrap();
    let truncated = s.dir.path().join("cut.x12");
    let full = std::fs::read_to_string(fixture("enrollment-834-two-members.x12")).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!(
            "put {} msg.asc\nput {} garbage.bin\nput {} cut.x12\nget cut.x12 {}\n",
            armored.display(),
            garbage.display(),
            truncated.display(),
            s.dir.path().join("cut.back").display()
        ),
    );
    assert_eq!(
        std::fs::read(s.dir.path().join("cut.back")).unwrap(),
        &full.as_bytes()[..full.len() / 2]
    );
    assert_eq!(show(&s, "acme/home.alice/msg.asc")["status"], "opaque");
    assert_eq!(show(&s, "acme/home.alice/garbage.bin")["status"], "opaque");
    let cut = show(&s, "acme/home.alice/cut.x12");
    assert_eq!(cut["status"], "partial", "{cut}");
    assert!(
        cut["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{cut}"
    );
}

#[test]
fn rescan_inventories_files_that_have_none() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    let x12 = fixture("enrollment-834-two-members.x12");
    s.sftp_ok(
        "alice",
        Auth::Key(&key),
        &format!("put {} enroll.x12\n", x12.display()),
    );
    // Forget the inventory, as for a file stored before the classifier existed.
    {
        let db = rusqlite::Connection::open(s.data_dir.join("lockbox.db")).unwrap();
        db.execute_batch("DELETE FROM file_persons; DELETE FROM file_inventory;")
            .unwrap();
    }
    let missing = s.cli(&["inventory", "show", "acme/home.alice/enroll.x12"]);
    assert!(!missing.status.success());
    assert!(
        stderr_of(&missing).contains("rescan"),
        "{}",
        describe(&missing)
    );
    let out = s.cli_ok(&["--json", "inventory", "rescan"]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["scanned"], 1, "{r}");
    assert_eq!(show(&s, "acme/home.alice/enroll.x12")["persons"], 2);
}

#[test]
fn offline_scan_reports_people_per_file() {
    let s = TestServer::start();
    let out = s.cli_ok(&[
        "--json",
        "scan",
        fixture("enrollment-834-two-members.x12").to_str().unwrap(),
        fixture("adt-a04-one-patient.hl7").to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v[0]["persons"], 2, "{v}");
    assert_eq!(v[1]["persons"], 1, "{v}");
    // The offline report lists elements, never values.
    assert!(
        !out.contains("123456789") && !out.contains("SAMPLE"),
        "{out}"
    );
}
