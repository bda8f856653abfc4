//! Renders a representative exposure report to HTML, checks that hostile values are escaped and that
//! the page is self-contained, then screenshots it with headless Chromium and keeps the PNG under
//! `target/test-artifacts/exposure-report.png` for a human to look at.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lockbox_exposure::html::render_html;
use lockbox_exposure::*;

const HOSTILE_FILE: &str = "<script>alert(1)</script>.csv";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Fails the test (never skips, CI or not) unless `path` is an executable, naming the tool and how to
/// install it. A small copy of `require` in crates/lockbox/tests/common (there is no shared test crate).
fn require_tool(path: &str, what: &str, install: &str) {
    use std::os::unix::fs::PermissionsExt;
    let ok =
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    assert!(
        ok,
        "\n\nMISSING TOOL: this test needs {what} ({path}), which is not installed on this machine.\n\
         Run `./.ci/run` (it installs everything the tests need, then runs the suite), or install it by hand: \
         `{install}`.\n"
    );
}

fn file(id: i64, folder: &str, path: &str, status: &str, reason: Option<&str>) -> FileEntry {
    FileEntry {
        file_id: id,
        folder: folder.into(),
        path: path.into(),
        size: 48_213 * (id as u64 + 1),
        sha256: format!("{id:064x}"),
        committed_at: "2026-10-02T14:11:09Z".into(),
        deleted_at: None,
        encrypted_at_rest: true,
        key_exposed: KeysExposed::Unknown,
        secured: None,
        key_destroyed: id == 3,
        inventory_status: status.into(),
        inventory_reason: reason.map(str::to_string),
        format: Some(
            if path.ends_with(".csv") {
                "csv"
            } else {
                "x12-834"
            }
            .into(),
        ),
        persons: 0,
        reads: 0,
    }
}

/// State obligations as `rules::StateObligation` serializes them (kept literal here so this test
/// exercises the renderer alone; the rules table has its own unit tests).
fn obligations_for(state: &str, residents: u64) -> Vec<serde_json::Value> {
    let ob = |authority: &str,
              threshold: &str,
              deadline: Option<[u32; 3]>,
              note: &str,
              exempt: bool| {
        serde_json::json!({
            "state": state, "authority": authority, "threshold": threshold, "residents": residents,
            "deadline": deadline, "deadline_days": null, "note": note,
            "rule_notes": format!("{state}: placeholder rule text, to be confirmed by counsel."),
            "hipaa_exempt": exempt, "verified": false,
        })
    };
    let within = "Within the table's days of discovery.";
    let none = "No fixed state deadline in the table: without unreasonable delay.";
    match state {
        "CA" => vec![
            ob(
                "Affected residents",
                "any affected resident",
                None,
                none,
                false,
            ),
            ob(
                "Attorney General",
                "more than 500 residents",
                None,
                none,
                false,
            ),
        ],
        "TX" if residents >= 250 => vec![
            ob(
                "Affected residents",
                "any affected resident",
                Some([2027, 1, 14]),
                within,
                false,
            ),
            ob(
                "Attorney General",
                "250 or more residents",
                Some([2026, 12, 15]),
                within,
                false,
            ),
        ],
        "FL" => vec![
            ob(
                "Affected residents",
                "any affected resident",
                Some([2026, 12, 15]),
                within,
                false,
            ),
            ob(
                "Department of Legal Affairs (Attorney General)",
                "500 or more residents",
                Some([2026, 12, 15]),
                within,
                false,
            ),
        ],
        "AZ" => vec![
            ob(
                "Affected residents",
                "any affected resident",
                Some([2026, 12, 30]),
                within,
                true,
            ),
            ob(
                "Attorney General",
                "more than 1,000 residents",
                Some([2026, 12, 30]),
                within,
                true,
            ),
            ob(
                "Consumer reporting agencies",
                "more than 1,000 residents",
                None,
                none,
                true,
            ),
        ],
        "OK" => vec![ob(
            "State law (not in rules table)",
            "unknown",
            None,
            "No entry for OK in state rules table version 2026-11-01; consult counsel.",
            false,
        )],
        _ => vec![ob(
            "Affected residents",
            "any affected resident",
            None,
            none,
            false,
        )],
    }
}

fn deadlines(hhs: Option<&str>, media: bool) -> Deadlines {
    Deadlines {
        notify_covered_entity: Some("2026-12-15".into()),
        individual_notice: Some("2027-01-14".into()),
        media_notice: media.then(|| "2027-01-14".into()),
        hhs_notice: hhs.map(str::to_string),
    }
}

fn portal(name: &str, n: u64) -> HhsPortal {
    HhsPortal {
        covered_entity_name: name.into(),
        covered_entity_address: None,
        covered_entity_type: Some("health_plan".into()),
        covered_entity_contact: None,
        breach_at_business_associate: true,
        business_associate_name: Some("Example MFT Services LLC".into()),
        breach_start_date: "2026-10-01".into(),
        breach_end_date: "2026-11-14".into(),
        discovery_start_date: "2026-11-15".into(),
        discovery_end_date: "2026-11-15".into(),
        individuals_affected: n,
        type_of_breach: "Hacking/IT Incident".into(),
        location_of_breached_information: "Network Server".into(),
        type_of_phi: vec!["demographic".into(), "financial".into(), "clinical".into()],
        safeguards_in_place: vec!["encryption at rest".into(), "hash-chained audit log".into()],
        actions_taken: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn org(
    id: i64,
    name: &str,
    states: &[(&str, u64)],
    unknown: u64,
    elements: &[(&str, u64)],
    no_address: u64,
    files: Vec<FileEntry>,
    opaque: Vec<i64>,
) -> OrgReport {
    let individuals: u64 = states.iter().map(|(_, n)| n).sum::<u64>() + unknown;
    let by_state: BTreeMap<String, StateCount> = states
        .iter()
        .map(|(s, n)| {
            (
                s.to_string(),
                StateCount {
                    individuals: *n,
                    media_notice_required: *n > 500,
                },
            )
        })
        .collect();
    let media: Vec<String> = by_state
        .iter()
        .filter(|(_, c)| c.media_notice_required)
        .map(|(s, _)| s.clone())
        .collect();
    let obligations: Vec<serde_json::Value> = states
        .iter()
        .flat_map(|(s, n)| obligations_for(s, *n))
        .collect();
    let (route, hhs_date) = if individuals >= 500 {
        (HhsRoute::WithIndividualNotice, "2027-01-14")
    } else {
        (HhsRoute::AnnualLog, "2027-03-01")
    };
    let path = if no_address >= 10 {
        SubstitutePath::WebPostingOrMediaWithTollFree
    } else if no_address > 0 {
        SubstitutePath::AlternativeFormOrPhone
    } else {
        SubstitutePath::None
    };
    OrgReport {
        org_id: id,
        org_name: name.into(),
        package_dir: format!("org-{id}"),
        files,
        opaque_files: opaque,
        individuals,
        by_state,
        state_unknown: unknown,
        by_element: elements.iter().map(|(e, n)| (e.to_string(), *n)).collect(),
        without_valid_address: no_address,
        address_unrecoverable: 3,
        deceased: 2,
        minors: Some(41),
        substitute_notice: SubstituteNotice {
            individuals: no_address,
            path,
            description: String::new(),
        },
        assessments: vec![
            Assessment {
                keys_exposed: true,
                reportable: true,
                reportable_individuals: individuals,
                secured_individuals: 0,
                hhs_route: route,
                media_notice_states: media.clone(),
                deadlines: deadlines(Some(hhs_date), !media.is_empty()),
                state_obligations: obligations,
                hhs_portal: portal(name, individuals),
            },
            Assessment {
                keys_exposed: false,
                reportable: false,
                reportable_individuals: 0,
                secured_individuals: individuals,
                hhs_route: HhsRoute::NotRequired,
                media_notice_states: Vec::new(),
                deadlines: deadlines(None, false),
                state_obligations: Vec::new(),
                hhs_portal: portal(name, 0),
            },
        ],
    }
}

fn sample_report() -> ExposureReport {
    let plan = org(
        1,
        "Acme Health Plan",
        &[
            ("CA", 812),
            ("TX", 260),
            ("FL", 500),
            ("AZ", 1_204),
            ("NY", 42),
            ("WA", 9),
        ],
        7,
        &[
            ("name", 2_834),
            ("address", 2_801),
            ("date_of_birth", 2_834),
            ("ssn", 1_977),
            ("member_id", 2_834),
            ("medicare_id", 311),
            ("diagnosis", 96),
        ],
        23,
        vec![
            file(
                1,
                "/inbound",
                "enrollment/834_20261001.edi",
                "complete",
                None,
            ),
            file(
                2,
                "/inbound",
                HOSTILE_FILE,
                "opaque",
                Some("unrecognized delimiter"),
            ),
            file(
                3,
                "/archive",
                "claims-2026-09.zip",
                "unscanned",
                Some("password-protected archive"),
            ),
        ],
        vec![2, 3],
    );
    let hospital = org(
        2,
        "St. Mary's & <Children's> Hospital",
        &[("TX", 131), ("OK", 12)],
        0,
        &[
            ("name", 143),
            ("address", 143),
            ("date_of_birth", 140),
            ("diagnosis", 58),
        ],
        4,
        vec![file(4, "/results", "labs.csv", "complete", None)],
        Vec::new(),
    );
    ExposureReport {
        format_version: REPORT_FORMAT_VERSION,
        generated_at: "2026-11-15T09:30:00Z".into(),
        window: Window {
            from: "2026-10-01T00:00:00Z".into(),
            to: "2026-11-14T23:59:59Z".into(),
            from_unix: 1_790_812_800,
            to_unix: 1_794_700_799,
        },
        discovered: "2026-11-15".into(),
        basis: Basis::Accessed,
        scope: "ip:203.0.113.0/24".into(),
        keys_exposed: KeysExposed::Unknown,
        safe_harbor: SafeHarbor {
            all_files_encrypted_at_rest: true,
            explanation:
                "Key exposure is unknown: both views are reported. If the key provider was not \
                          compromised, the files are secured PHI and not reportable."
                    .into(),
            views: vec![true, false],
        },
        audit: Some(AuditCheck {
            verified: true,
            records: 184_220,
            head_hash: "9f2c1be0a4d7e3f5".into(),
            file_reads_in_window: 611,
            file_reads_matching_scope: 37,
        }),
        ba_deadline_days: 30,
        totals: Totals {
            organizations: 2,
            files: 4,
            files_opaque_or_unscanned: 2,
            individuals: 2_977,
            individuals_unsecured: 2_977,
            individuals_secured: 0,
        },
        organizations: vec![plan, hospital],
        mailing_list: MailingListInfo {
            built: true,
            files_decrypted: 2,
            files_unrecoverable: 1,
            files_failed: 0,
            individuals_with_contact: 2_951,
            individuals_without_plaintext: 26,
        },
        state_rules: obligations::RulesInfo {
            version: Some("2026-11-01".into()),
            applied: true,
            note: "unverified entries must be confirmed by counsel".into(),
        },
        notes: vec![
            "2 files could not be classified & may hold PHI of people not counted <here>.".into(),
        ],
    }
}

fn artifact_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn html_is_escaped_and_self_contained() {
    let html = render_html(&sample_report());
    assert!(html.starts_with("<!DOCTYPE html>"));
    // The hostile file name appears, escaped, and nothing script-like survives.
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.csv"),
        "hostile file name must appear escaped"
    );
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "no script element may appear");
    assert!(!lower.contains("javascript:"));
    for handler in ["onerror=", "onload=", "onclick="] {
        assert!(
            !lower.contains(handler),
            "event handler {handler} in the page"
        );
    }
    assert!(html.contains("St. Mary&#39;s &amp; &lt;Children&#39;s&gt; Hospital"));
    assert!(html.contains("may hold PHI of people not counted &lt;here&gt;."));
    // No external resources.
    for needle in ["http://", "https://", "<link", "@import", "url(", " src="] {
        assert!(
            !lower.contains(needle),
            "external resource marker {needle:?} in the page"
        );
    }
    // Content the privacy officer needs.
    for needle in [
        "2026-10-01T00:00:00Z",
        "2026-11-15",
        "2026-12-15",
        "2027-01-14",
        "Audit chain",
        "184,220 records",
        "safe harbor",
        "Acme Health Plan",
        "2,834",
        "&gt; 500",
        "Consumer reporting agencies",
        "unverified",
        "HIPAA-exempt?",
        "Substitute notice",
        "toll-free",
        "<svg",
        "@media print",
        "Hacking/IT Incident",
    ] {
        assert!(html.contains(needle), "page lacks {needle:?}");
    }
    std::fs::write(artifact_dir().join("exposure-report.html"), &html).unwrap();
}

#[test]
fn html_renders_in_headless_chromium() {
    require_tool(
        CHROMIUM,
        "headless Chromium (to screenshot the report)",
        "apt-get install --no-install-recommends chromium",
    );
    let dir = artifact_dir();
    let html_path = dir.join("exposure-report-render.html");
    let png = dir.join("exposure-report.png");
    std::fs::write(&html_path, render_html(&sample_report())).unwrap();
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    let html_abs = std::fs::canonicalize(&html_path).unwrap();
    let log = profile.path().join("chromium-stderr.log");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2400")
        .arg(format!("file://{}", html_abs.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}): {stderr}");
    let bytes = std::fs::read(&png)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}\n{stderr}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 10 * 1024,
        "screenshot is only {} bytes",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
}
