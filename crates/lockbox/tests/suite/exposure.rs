//! The breach exposure report through the real doors, as a privacy officer would run it: people uploaded
//! with OpenSSH `sftp` by two covered entities, `lockbox exposure report` over a window, and the package it
//! writes (private modes, summary.json, individuals.csv, report.html). Covers counting one person once
//! across files and across organizations, the encryption safe harbor, the window edges (before the uploads,
//! after a deletion), the accessed basis driven by real downloads and its refusal of a tampered audit log,
//! and the report run being audited itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../inventory/tests/fixtures");
const X12: &str = "enrollment-834-two-members.x12";
const HL7: &str = "adt-a04-one-patient.hl7";

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

fn ymd(d: Date) -> String {
    d.format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap()
}

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}
fn yesterday() -> String {
    ymd(today().previous_day().unwrap())
}
fn tomorrow() -> String {
    ymd(today().next_day().unwrap())
}

/// `t` truncated to whole seconds, RFC 3339 UTC.
fn rfc3339_secs(t: OffsetDateTime) -> String {
    OffsetDateTime::from_unix_timestamp(t.unix_timestamp())
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// `lockbox --json exposure report --from F --to T --discovered TODAY --keys-exposed K --basis B [--scope S] --out DIR`.
fn report(
    s: &TestServer,
    from: &str,
    to: &str,
    keys: &str,
    basis: &str,
    scope: Option<&str>,
    out: &Path,
) -> Output {
    let discovered = ymd(today());
    let mut args = vec![
        "--json",
        "exposure",
        "report",
        "--from",
        from,
        "--to",
        to,
        "--discovered",
        &discovered,
        "--keys-exposed",
        keys,
        "--basis",
        basis,
    ];
    if let Some(sc) = scope {
        args.extend(["--scope", sc]);
    }
    let out_s = out.to_str().unwrap();
    args.extend(["--out", out_s]);
    s.cli(&args)
}

/// Runs a report that must succeed; checks the package is private and readable; returns summary.json.
fn report_ok(
    s: &TestServer,
    from: &str,
    to: &str,
    keys: &str,
    basis: &str,
    scope: Option<&str>,
    out: &Path,
) -> Value {
    let o = report(s, from, to, keys, basis, scope, out);
    assert!(
        o.status.success(),
        "exposure report ({basis}, keys {keys}, scope {scope:?}, {from}..{to}) failed:\n{}\n--- server log ---\n{}",
        describe(&o),
        s.log()
    );
    let summary = read_summary(out);
    // --json prints the same report on stdout.
    let printed: Value = serde_json::from_str(stdout_of(&o).trim())
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{}", describe(&o)));
    assert_eq!(
        printed["totals"], summary["totals"],
        "stdout vs summary.json"
    );
    assert_eq!(summary["format_version"], 1, "{summary}");
    assert_private_package(out);
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html exists");
    assert!(
        !html.to_ascii_lowercase().contains("<script"),
        "report.html contains a script tag"
    );
    summary
}

fn read_summary(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("summary.json"))
        .unwrap_or_else(|e| panic!("summary.json in {}: {e}", out.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("summary.json is not JSON ({e}): {text}"))
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The package directory (and every directory inside) is 0700, every file 0600, and nothing else exists.
fn assert_private_package(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "package dir {} mode", dir.display());
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
            if ft.is_dir() {
                assert_eq!(mode(&p), 0o700, "directory {} mode", p.display());
                stack.push(p);
            } else {
                assert!(
                    ft.is_file(),
                    "{} is neither file nor directory",
                    p.display()
                );
                assert_eq!(mode(&p), 0o600, "file {} mode", p.display());
                files += 1;
            }
        }
    }
    assert!(files >= 2, "summary.json and report.html at least");
}

fn org<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["organizations"]
        .as_array()
        .expect("organizations array")
        .iter()
        .find(|o| o["org_name"] == name)
        .unwrap_or_else(|| panic!("no organization {name} in {summary:#}"))
}

fn org_names(summary: &Value) -> Vec<String> {
    summary["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["org_name"].as_str().unwrap().to_owned())
        .collect()
}

fn file_paths(org: &Value) -> Vec<String> {
    org["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

/// RFC 4180 reader (quotes, doubled quotes, CRLF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        if quoted {
            if c == '"' {
                if it.peek() == Some(&'"') {
                    it.next();
                    cell.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cell.push(c);
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut cell)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            _ => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

/// individuals.csv of one organization, as (header, data rows as maps).
fn individuals_csv(
    out: &Path,
    summary: &Value,
    org_name: &str,
) -> Vec<std::collections::BTreeMap<String, String>> {
    let o = org(summary, org_name);
    let path = out
        .join(o["package_dir"].as_str().unwrap())
        .join("individuals.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rows = parse_csv(&text);
    let header = rows.first().expect("a header row").clone();
    rows[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "row width in {text}");
            header.iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect()
}

/// acme/alice (uploads the 834 and the HL7 file), globex/bob (uploads the same HL7 file).
fn two_orgs() -> (TestServer, PathBuf, PathBuf) {
    let s = TestServer::start();
    let alice = s.setup_acme_alice();
    s.create_org("globex");
    let bob = s.user_with_key("globex", "bob");
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!(
            "put {} enroll.x12\nput {} adt.hl7\n",
            fixture(X12).display(),
            fixture(HL7).display()
        ),
    );
    s.sftp_ok(
        "bob",
        Auth::Key(&bob),
        &format!("put {} adt.hl7\n", fixture(HL7).display()),
    );
    (s, alice, bob)
}

#[test]
fn present_basis_counts_each_person_once_and_writes_a_private_package() {
    let before_uploads = OffsetDateTime::now_utc() - Duration::from_secs(2);
    let (s, _alice, _bob) = two_orgs();
    let (from, to) = (yesterday(), tomorrow());

    // ---- 1. keys exposed: reportable ----
    let out = s.dir.path().join("report-yes");
    let r = report_ok(&s, &from, &to, "yes", "present", None, &out);
    assert_eq!(r["basis"], "present", "{r:#}");
    assert_eq!(r["keys_exposed"], "yes", "{r:#}");
    assert_eq!(r["totals"]["organizations"], 2, "{r:#}");
    assert_eq!(r["totals"]["files"], 3, "{r:#}");
    assert_eq!(
        r["totals"]["individuals"], 2,
        "Jane (834 + HL7 at acme, HL7 at globex) and Tommy: {r:#}"
    );
    assert_eq!(r["totals"]["individuals_unsecured"], 2, "{r:#}");
    assert_eq!(r["totals"]["individuals_secured"], 0, "{r:#}");
    assert_eq!(r["totals"]["files_opaque_or_unscanned"], 0, "{r:#}");
    assert!(
        r["audit"].is_null(),
        "present basis does not use the log: {r:#}"
    );
    assert_eq!(org_names(&r), ["acme", "globex"]);

    let acme = org(&r, "acme");
    assert_eq!(
        acme["individuals"], 2,
        "Jane linked across 834 and HL7: {acme:#}"
    );
    assert_eq!(acme["by_state"]["IL"]["individuals"], 2, "{acme:#}");
    assert_eq!(
        acme["by_state"]["IL"]["media_notice_required"], false,
        "{acme:#}"
    );
    assert_eq!(acme["state_unknown"], 0, "{acme:#}");
    assert_eq!(acme["minors"], 1, "Tommy (born 2012): {acme:#}");
    assert_eq!(acme["by_element"]["ssn"], 2, "{acme:#}");
    assert_eq!(
        acme["by_element"]["diagnosis"], 1,
        "only Jane's HL7 has one: {acme:#}"
    );
    assert_eq!(acme["without_valid_address"], 0, "{acme:#}");
    assert_eq!(acme["files"].as_array().unwrap().len(), 2, "{acme:#}");
    let mut paths = file_paths(acme);
    paths.sort();
    assert!(
        paths[0].ends_with("adt.hl7") && paths[1].ends_with("enroll.x12"),
        "{paths:?}"
    );
    for f in acme["files"].as_array().unwrap() {
        assert_eq!(f["encrypted_at_rest"], true, "{f}");
        assert_eq!(f["secured"], false, "keys exposed: {f}");
        assert_eq!(f["key_destroyed"], false, "{f}");
        assert_eq!(f["inventory_status"], "complete", "{f}");
    }
    let a0 = &acme["assessments"][0];
    assert_eq!(acme["assessments"].as_array().unwrap().len(), 1, "{acme:#}");
    assert_eq!(a0["keys_exposed"], true, "{a0}");
    assert_eq!(a0["reportable"], true, "{a0}");
    assert_eq!(a0["reportable_individuals"], 2, "{a0}");
    assert_eq!(a0["hhs_route"], "annual_log", "fewer than 500: {a0}");
    assert_eq!(a0["hhs_portal"]["individuals_affected"], 2, "{a0}");

    let globex = org(&r, "globex");
    assert_eq!(globex["individuals"], 1, "{globex:#}");
    assert_eq!(globex["by_state"]["IL"]["individuals"], 1, "{globex:#}");
    assert_eq!(globex["minors"], 0, "{globex:#}");
    assert_eq!(
        globex["assessments"][0]["reportable_individuals"], 1,
        "{globex:#}"
    );

    // individuals.csv (acme): Jane and Tommy, names and address in plaintext, Tommy flagged as a minor.
    let rows = individuals_csv(&out, &r, "acme");
    assert_eq!(rows.len(), 2, "exactly two data rows: {rows:#?}");
    let by_first = |first: &str| {
        rows.iter()
            .find(|r| r["first_name"] == first)
            .unwrap_or_else(|| panic!("no {first} in {rows:#?}"))
            .clone()
    };
    let jane = by_first("JANE");
    let tommy = by_first("TOMMY");
    for p in [&jane, &tommy] {
        assert_eq!(p["last_name"], "SAMPLE", "{p:?}");
        assert!(p["zip"].starts_with("62701"), "{p:?}");
        assert_eq!(p["state"], "IL", "{p:?}");
        assert_eq!(p["city"], "SPRINGFIELD", "{p:?}");
        assert_eq!(p["street_1"], "123 MAIN ST", "{p:?}");
        assert_eq!(p["state_of_residence"], "IL", "{p:?}");
        assert_eq!(p["no_valid_address"], "no", "{p:?}");
        assert_eq!(p["deceased"], "no", "{p:?}");
    }
    assert_eq!(tommy["minor"], "yes", "{tommy:?}");
    assert_eq!(tommy["date_of_birth"], "2012-07-04", "{tommy:?}");
    assert_eq!(jane["minor"], "no", "{jane:?}");
    assert_eq!(jane["date_of_birth"], "1980-05-15", "{jane:?}");
    assert!(jane["elements_exposed"].contains("ssn"), "{jane:?}");
    assert_ne!(jane["person_ref"], tommy["person_ref"]);
    let grows = individuals_csv(&out, &r, "globex");
    assert_eq!(grows.len(), 1, "{grows:#?}");
    assert_eq!(grows[0]["first_name"], "JANE", "{grows:#?}");
    assert_eq!(
        grows[0]["person_ref"], jane["person_ref"],
        "the same person in both organizations"
    );

    // ---- 5. the report run is itself audited ----
    let audit = s.cli_ok(&["audit", "export", "--format", "jsonl"]);
    let recs: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad jsonl line ({e}): {l}")))
        .filter(|v: &Value| v["action"] == "exposure_report")
        .collect();
    assert_eq!(recs.len(), 1, "one exposure_report record so far:\n{audit}");
    let rec = &recs[0];
    assert_eq!(rec["outcome"], "ok", "{rec}");
    assert_eq!(rec["door"], "cli", "{rec}");
    assert_eq!(rec["detail"]["individuals"], 2, "{rec}");
    assert_eq!(rec["detail"]["files"], 3, "{rec}");
    assert_eq!(rec["detail"]["basis"], "present", "{rec}");
    assert_eq!(rec["detail"]["keys_exposed"], "yes", "{rec}");
    assert!(
        rec["target"].as_str().unwrap_or("").contains("report-yes"),
        "{rec}"
    );
    // The audit record holds counts, never the people themselves.
    assert!(
        !audit.contains("123456789") && !audit.contains("TOMMY"),
        "identifiers in the audit log"
    );
    let verify = s.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", describe(&verify));

    // ---- 2. keys not exposed: secured under the encryption safe harbor ----
    let out_no = s.dir.path().join("report-no");
    let r = report_ok(&s, &from, &to, "no", "present", None, &out_no);
    assert_eq!(r["keys_exposed"], "no", "{r:#}");
    assert_eq!(r["totals"]["individuals"], 2, "{r:#}");
    assert_eq!(r["totals"]["individuals_secured"], 2, "{r:#}");
    assert_eq!(r["totals"]["individuals_unsecured"], 0, "{r:#}");
    assert_eq!(
        r["safe_harbor"]["all_files_encrypted_at_rest"], true,
        "{r:#}"
    );
    assert_eq!(
        r["safe_harbor"]["views"],
        serde_json::json!([false]),
        "{r:#}"
    );
    assert!(
        r["safe_harbor"]["explanation"]
            .as_str()
            .unwrap()
            .contains("secured"),
        "{r:#}"
    );
    for name in ["acme", "globex"] {
        let o = org(&r, name);
        let n = o["individuals"].as_u64().unwrap();
        assert_eq!(o["assessments"].as_array().unwrap().len(), 1, "{o:#}");
        let a = &o["assessments"][0];
        assert_eq!(a["keys_exposed"], false, "{a}");
        assert_eq!(a["reportable"], false, "{a}");
        assert_eq!(a["reportable_individuals"], 0, "{a}");
        assert_eq!(a["secured_individuals"], n, "{a}");
        assert_eq!(a["hhs_route"], "not_required", "{a}");
        assert!(a["deadlines"]["individual_notice"].is_null(), "{a}");
        assert_eq!(a["hhs_portal"]["individuals_affected"], 0, "{a}");
        for f in o["files"].as_array().unwrap() {
            assert_eq!(f["secured"], true, "{f}");
            assert_eq!(f["key_exposed"], "no", "{f}");
        }
    }

    // ---- 3. a window that ends before the uploads: nobody, but still a valid package ----
    let out_early = s.dir.path().join("report-early");
    let r = report_ok(
        &s,
        &from,
        &rfc3339_secs(before_uploads),
        "yes",
        "present",
        None,
        &out_early,
    );
    assert_eq!(r["totals"]["individuals"], 0, "{r:#}");
    assert_eq!(r["totals"]["files"], 0, "{r:#}");
    assert_eq!(r["totals"]["organizations"], 0, "{r:#}");
    assert!(r["organizations"].as_array().unwrap().is_empty(), "{r:#}");

    // An existing non-empty output directory is refused (no earlier report mixed in).
    let again = report(&s, &from, &to, "yes", "present", None, &out);
    assert!(!again.status.success(), "{}", describe(&again));
}

#[test]
fn accessed_basis_follows_downloads_and_refuses_a_tampered_audit_log() {
    let (mut s, _alice, bob) = two_orgs();
    let (from, to) = (yesterday(), tomorrow());
    // Bob downloads his file; alice reads nothing.
    let back = s.dir.path().join("bob-adt.back");
    s.sftp_ok(
        "bob",
        Auth::Key(&bob),
        &format!("get adt.hl7 {}\n", back.display()),
    );
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(fixture(HL7)).unwrap()
    );

    let out = s.dir.path().join("accessed-ip");
    let r = report_ok(
        &s,
        &from,
        &to,
        "yes",
        "accessed",
        Some("ip:127.0.0.1/32"),
        &out,
    );
    assert_eq!(r["basis"], "accessed", "{r:#}");
    assert_eq!(r["scope"], "ip:127.0.0.1/32", "{r:#}");
    assert_eq!(r["audit"]["verified"], true, "{r:#}");
    assert_eq!(r["audit"]["file_reads_in_window"], 1, "{r:#}");
    assert_eq!(r["audit"]["file_reads_matching_scope"], 1, "{r:#}");
    assert_eq!(org_names(&r), ["globex"], "only bob read a file: {r:#}");
    assert_eq!(r["totals"]["files"], 1, "{r:#}");
    assert_eq!(r["totals"]["individuals"], 1, "{r:#}");
    let g = org(&r, "globex");
    assert_eq!(g["individuals"], 1, "{g:#}");
    assert_eq!(g["by_state"]["IL"]["individuals"], 1, "{g:#}");
    assert_eq!(g["files"][0]["reads"], 1, "{g:#}");
    assert!(file_paths(g)[0].ends_with("adt.hl7"), "{g:#}");
    let rows = individuals_csv(&out, &r, "globex");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["first_name"], "JANE", "{rows:#?}");

    let r = report_ok(
        &s,
        &from,
        &to,
        "yes",
        "accessed",
        Some("user:bob"),
        &s.dir.path().join("accessed-bob"),
    );
    assert_eq!(r["totals"]["individuals"], 1, "{r:#}");
    assert_eq!(org_names(&r), ["globex"], "{r:#}");

    let r = report_ok(
        &s,
        &from,
        &to,
        "yes",
        "accessed",
        Some("user:alice"),
        &s.dir.path().join("accessed-alice"),
    );
    assert_eq!(r["totals"]["individuals"], 0, "alice read nothing: {r:#}");
    assert_eq!(r["totals"]["files"], 0, "{r:#}");
    assert_eq!(r["audit"]["file_reads_in_window"], 1, "{r:#}");
    assert_eq!(r["audit"]["file_reads_matching_scope"], 0, "{r:#}");

    // A window that ends before the download sees no read.
    let r = report_ok(
        &s,
        &from,
        &yesterday(),
        "yes",
        "accessed",
        None,
        &s.dir.path().join("accessed-early"),
    );
    assert_eq!(r["totals"]["individuals"], 0, "{r:#}");
    assert_eq!(r["audit"]["file_reads_in_window"], 0, "{r:#}");

    // Session scopes need the accessed basis.
    let o = report(
        &s,
        &from,
        &to,
        "yes",
        "present",
        Some("user:bob"),
        &s.dir.path().join("present-user"),
    );
    assert!(!o.status.success(), "{}", describe(&o));

    // ---- tamper with the audit log ----
    s.stop();
    {
        let db = rusqlite::Connection::open(db_path(&s.data_dir)).unwrap();
        let n = db
            .execute("UPDATE audit_log SET actor = 'x' WHERE seq = 3", [])
            .unwrap();
        assert_eq!(n, 1, "record 3 exists");
    }
    let bad_out = s.dir.path().join("accessed-tampered");
    let o = report(&s, &from, &to, "yes", "accessed", None, &bad_out);
    assert!(
        !o.status.success(),
        "accessed basis must refuse a broken audit log:\n{}",
        describe(&o)
    );
    let err = stderr_of(&o);
    assert!(
        err.contains("record 3"),
        "names record 3:\n{}",
        describe(&o)
    );
    assert!(err.contains("audit"), "{}", describe(&o));
    assert!(
        !bad_out.join("summary.json").exists(),
        "no package from an unverifiable log"
    );
    // The refused run is recorded (outcome failed).
    {
        let db = rusqlite::Connection::open(db_path(&s.data_dir)).unwrap();
        let failed: i64 = db
            .query_row(
                "SELECT count(*) FROM audit_log WHERE action = 'exposure_report' AND outcome = 'failed' \
                 AND target LIKE '%accessed-tampered' AND detail LIKE '%record 3%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(failed, 1, "the refused report is audited, with its reason");
    }

    // The present basis does not depend on the audit log and still works.
    let r = report_ok(
        &s,
        &from,
        &to,
        "yes",
        "present",
        None,
        &s.dir.path().join("present-after-tamper"),
    );
    assert_eq!(r["totals"]["individuals"], 2, "{r:#}");
    assert_eq!(r["totals"]["files"], 3, "{r:#}");
    assert!(r["audit"].is_null(), "{r:#}");
}

#[test]
fn a_file_deleted_before_the_window_is_not_exposed() {
    let s = TestServer::start();
    let alice = s.setup_acme_alice();
    s.sftp_ok(
        "alice",
        Auth::Key(&alice),
        &format!(
            "put {} enroll.x12\nput {} adt.hl7\nrm enroll.x12\n",
            fixture(X12).display(),
            fixture(HL7).display()
        ),
    );
    std::thread::sleep(Duration::from_secs(2));
    let from = rfc3339_secs(OffsetDateTime::now_utc() - Duration::from_secs(1));
    let to = tomorrow();

    let r = report_ok(
        &s,
        &from,
        &to,
        "yes",
        "present",
        None,
        &s.dir.path().join("after-delete"),
    );
    let acme = org(&r, "acme");
    let paths = file_paths(acme);
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].ends_with("adt.hl7"), "{paths:?}");
    assert_eq!(r["totals"]["files"], 1, "{r:#}");
    assert_eq!(r["totals"]["individuals"], 1, "only Jane (HL7): {r:#}");
    assert_eq!(
        acme["minors"], 0,
        "Tommy was only in the deleted file: {acme:#}"
    );

    // Control: a window covering the time the 834 was on the server includes it (deleted, key destroyed).
    let out = s.dir.path().join("covering-delete");
    let r = report_ok(&s, &yesterday(), &to, "yes", "present", None, &out);
    assert_eq!(r["totals"]["files"], 2, "{r:#}");
    assert_eq!(r["totals"]["individuals"], 2, "{r:#}");
    let acme = org(&r, "acme");
    let deleted = acme["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("enroll.x12"))
        .unwrap_or_else(|| panic!("deleted version listed: {acme:#}"));
    assert!(deleted["deleted_at"].is_string(), "{deleted}");
    assert_eq!(deleted["key_destroyed"], true, "{deleted}");
    assert_eq!(
        acme["address_unrecoverable"], 1,
        "Tommy appears only in the deleted version: {acme:#}"
    );
    let rows = individuals_csv(&out, &r, "acme");
    assert_eq!(rows.len(), 2, "{rows:#?}");
}

/// With `--encrypt-to`, every file of the package is age-encrypted to the recipient: no plaintext
/// name or address touches the disk, and the recipient's identity decrypts the mailing list.
#[test]
fn package_encrypted_to_an_age_recipient() {
    let (s, _alice, _bob) = two_orgs();
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let out = s.dir.path().join("sealed");
    let o = s.cli(&[
        "exposure",
        "report",
        "--from",
        &yesterday(),
        "--to",
        &tomorrow(),
        "--discovered",
        &ymd(today()),
        "--keys-exposed",
        "yes",
        "--encrypt-to",
        &recipient,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", describe(&o));
    let files = walk_files(&out);
    assert!(files.len() >= 5, "{files:?}");
    let mut csv = None;
    for f in &files {
        assert!(
            f.to_string_lossy().ends_with(".age"),
            "{} is not encrypted",
            f.display()
        );
        assert_eq!(mode(f) & 0o777, 0o600, "{}", f.display());
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !contains_bytes(&bytes, b"SAMPLE") && !contains_bytes(&bytes, b"MAIN ST"),
            "{}",
            f.display()
        );
        if f.to_string_lossy().contains("acme")
            && f.to_string_lossy().ends_with("individuals.csv.age")
        {
            csv = Some(bytes);
        }
    }
    let sealed = csv.expect("acme's individuals.csv.age");
    let decryptor = age::Decryptor::new(&sealed[..]).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap();
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut reader, &mut plain).unwrap();
    assert!(
        plain.contains("SAMPLE") && plain.contains("JANE") && plain.contains("TOMMY"),
        "{plain}"
    );
    // A malformed recipient is refused before anything is written.
    let bad = s.cli(&[
        "exposure",
        "report",
        "--from",
        &yesterday(),
        "--to",
        &tomorrow(),
        "--discovered",
        &ymd(today()),
        "--keys-exposed",
        "yes",
        "--encrypt-to",
        "age1notakey",
        "--out",
        s.dir.path().join("bad").to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr_of(&bad).contains("age recipient"),
        "{}",
        describe(&bad)
    );
}

/// The same report from the admin web UI: an administrator signs in with TOTP, builds a package
/// (which the form always encrypts to the age key it is given), sees it listed, and downloads a file
/// that only the matching identity decrypts; the run and the download are audited, and paths that try
/// to leave the package are refused.
#[test]
fn web_admin_builds_an_encrypted_package_and_downloads_it() {
    use common::web::{Person, Web};
    let (s, _alice, _bob) = two_orgs();
    s.create_user("acme", "privacy", "admin", PASSWORD);
    let web = Web::new(&s);
    let officer = Person::new("privacy", PASSWORD);
    let b = web.sign_in(&officer);
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let today_s = ymd(today());
    let (from, to) = (yesterday(), tomorrow());
    let mut fields = vec![
        ("csrf", b.csrf.as_str()),
        ("from", from.as_str()),
        ("to", to.as_str()),
        ("discovered", today_s.as_str()),
        ("keys_exposed", "yes"),
        ("basis", "present"),
        ("scope", "all"),
        ("ba_deadline_days", "60"),
        ("mailing_list", "on"),
        ("encrypt_to", "not-an-age-key"),
    ];
    let r = web.post("/admin/exposure").browser(&b).form(&fields).send();
    assert_eq!(
        r.status,
        400,
        "a missing age recipient must be refused:\n{}",
        r.describe()
    );
    fields.pop();
    fields.push(("encrypt_to", recipient.as_str()));
    let r = web.post("/admin/exposure").browser(&b).form(&fields).send();
    assert_eq!(r.status, 201, "report:\n{}", r.describe());
    let html = r.text();
    assert!(
        html.contains("distinct individuals in 2 organizations"),
        "{html}"
    );
    // The package is listed with download links; every file on disk is age ciphertext.
    let page = web.get("/admin/exposure").browser(&b).send();
    assert_eq!(page.status, 200);
    let html = page.text();
    let hrefs: Vec<String> = html
        .split("href=\"/admin/exposure/download?")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|h| {
            format!(
                "/admin/exposure/download?{}",
                h.replace("&#38;", "&").replace("&amp;", "&")
            )
        })
        .collect();
    let decoded = |h: &str| {
        let mut out = Vec::new();
        let b = h.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(u8::from_str_radix(&h[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    assert!(hrefs.len() >= 5, "{html}");
    let csv = hrefs
        .iter()
        .find(|h| decoded(h).contains("acme/individuals.csv.age"))
        .unwrap_or_else(|| panic!("no acme individuals.csv.age link in {hrefs:?}"));
    let dl = web.get(csv).browser(&b).send();
    assert_eq!(dl.status, 200, "{}", dl.describe());
    assert!(dl
        .header("content-disposition")
        .unwrap_or_default()
        .starts_with("attachment"));
    assert!(
        !contains_bytes(&dl.body, b"JANE"),
        "package file served in plaintext"
    );
    let decryptor = age::Decryptor::new(&dl.body[..]).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap();
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut reader, &mut plain).unwrap();
    assert!(plain.contains("JANE") && plain.contains("TOMMY"), "{plain}");
    for f in walk_files(&s.data_dir.join("exposure-packages")) {
        assert!(
            f.to_string_lossy().ends_with(".age"),
            "{} is not encrypted",
            f.display()
        );
    }
    // Escapes are refused like missing files.
    let id = decoded(csv.split("id=").nth(1).unwrap().split('&').next().unwrap());
    for bad in [
        format!("/admin/exposure/download?id={id}&file=..%2F..%2Flockbox.db"),
        "/admin/exposure/download?id=..&file=lockbox.db".to_owned(),
        format!("/admin/exposure/download?id={id}&file=%2Fetc%2Fpasswd"),
    ] {
        let r = web.get(&bad).browser(&b).send();
        assert_eq!(r.status, 404, "{bad}: {}", r.describe());
    }
    let audit = s.cli_ok(&["audit", "export", "--format", "jsonl"]);
    assert!(audit.contains("\"exposure_report\"") && audit.contains("\"exposure_package_read\""));
}

#[test]
fn a_download_cut_by_a_server_crash_still_counts_as_accessed() {
    let (mut s, _alice, bob) = two_orgs();
    let (from, to) = (yesterday(), tomorrow());
    // Bob opens his file and gets its bytes, then the server dies before the handle is closed
    // (no `file_read` record at close can be written).
    let mut raw = RawSftp::connect(s.port, "bob", &bob);
    raw.init();
    let h = match raw.request(
        &common::fxp::open(1, b"/home/adt.hl7", common::fxp::READ_FLAG),
        Duration::from_secs(60),
    ) {
        Ok((common::fxp::HANDLE, body)) => common::fxp::parse_handle(&body).unwrap().1,
        other => panic!("OPEN: {other:?}"),
    };
    let mut req = Vec::new();
    common::fxp::put_u32(&mut req, 2);
    common::fxp::put_str(&mut req, &h);
    req.extend_from_slice(&0u64.to_be_bytes());
    common::fxp::put_u32(&mut req, 32768);
    match raw.request(
        &common::fxp::packet(common::fxp::READ, &req),
        Duration::from_secs(60),
    ) {
        Ok((common::fxp::DATA, _)) => {}
        other => panic!("READ: {other:?}"),
    }
    s.signal_and_wait("-KILL", Duration::from_secs(30));
    drop(raw);
    s.restart();
    let r = report_ok(
        &s,
        &from,
        &to,
        "yes",
        "accessed",
        Some("user:bob"),
        &s.dir.path().join("accessed-crash"),
    );
    assert_eq!(
        r["totals"]["files"], 1,
        "the cut download is not counted: {r:#}"
    );
    assert_eq!(r["totals"]["individuals"], 1, "{r:#}");
    assert_eq!(r["audit"]["file_reads_matching_scope"], 1, "{r:#}");
}
