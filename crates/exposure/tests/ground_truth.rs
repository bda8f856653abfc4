//! The exposure report against synthetic ground truth, through the real vault and store: synthetic files
//! are uploaded by each organization's user, their commit and deletion times are set to a controlled
//! history (SQLite, test only), an "attacker" session reads some files, and the report's counts are
//! compared with what the generator says each file holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use lockbox_exposure::{
    build_report, Basis, ExposureError, ExposureReport, ExposureRequest, KeysExposed,
    PlaintextSource, Scope,
};
use lockbox_inventory::fingerprint::normalize_name;
use lockbox_inventory::{Element, ElementSet, Fingerprinter};
use lockbox_synth::{generate, Corpus, Spec};
use lockbox_types::{Door, FileId, Role, VirtualPath};
use lockbox_vault::admin::AdminActor;
use lockbox_vault::{Credential, LoginAttempt, OpenMode, Vault, VaultConfig, Verdict};
use time::OffsetDateTime;

const T0: i64 = 1_750_000_000;
const STEP: i64 = 1_000;
const PASSWORD: &str = "correct-horse-battery-staple";

struct Plain<'a>(&'a Vault);

impl PlaintextSource for Plain<'_> {
    fn open(&self, file: FileId) -> Result<Box<dyn Read + '_>, String> {
        self.0
            .open_file_version(file)
            .map(|r| Box::new(r) as Box<dyn Read>)
            .map_err(|e| e.to_string())
    }
    fn fingerprinter(&self, org_name: &str) -> Fingerprinter {
        self.0.inventory_fingerprinter(org_name)
    }
}

struct World {
    dir: tempfile::TempDir,
    vault: Vault,
    corpus: Corpus,
    /// Stored file id → index into corpus.files.
    _by_id: BTreeMap<i64, usize>,
    /// Index into corpus.files → (file id, committed_at, deleted_at).
    life: Vec<(i64, i64, Option<i64>)>,
    user_of_org: HashMap<String, String>,
}

fn user_name(org_ix: usize) -> String {
    format!("feed{org_ix}")
}

fn login(vault: &Vault, user: &str, ip: &str) -> lockbox_vault::Session {
    let source: IpAddr = ip.parse().unwrap();
    let v = vault.authenticate(&LoginAttempt {
        user,
        credential: Credential::Password(PASSWORD),
        door: Door::Sftp,
        source,
    });
    let Verdict::Accepted(p) = v else {
        panic!("login of {user} refused")
    };
    vault.open_session(p).unwrap()
}

fn path(name: &str) -> VirtualPath {
    VirtualPath::parse(&VirtualPath::root(), &format!("/home/{name}")).unwrap()
}

fn db(w: &World) -> rusqlite::Connection {
    rusqlite::Connection::open(w.dir.path().join("data/lockbox.db")).unwrap()
}

/// Uploads every generated file (each org's files by its own user), then rewrites the history:
/// file i is committed at T0 + i*STEP; files 2 and 5 are deleted at T0 + 20*STEP + i.
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let cfg = VaultConfig {
        data_dir: dir.path().join("data"),
        key_file: dir.path().join("master.key"),
        auth: Default::default(),
        storage: Default::default(),
    };
    let (vault, _) = Vault::open(cfg).unwrap();
    let corpus = generate(
        20_260_115,
        &Spec {
            people: 500,
            files_per_format: 2,
            orgs: 3,
            ..Spec::default()
        },
    );
    let admin = AdminActor::cli();
    let orgs: BTreeSet<String> = corpus.files.iter().map(|f| f.org.clone()).collect();
    let mut user_of_org = HashMap::new();
    for (i, org) in orgs.iter().enumerate() {
        vault.create_org(&admin, org).unwrap();
        vault
            .create_user(&admin, org, &user_name(i), Role::Transfer, Some(PASSWORD))
            .unwrap();
        user_of_org.insert(org.clone(), user_name(i));
    }
    let mut by_id = BTreeMap::new();
    let mut ids = Vec::new();
    for (i, f) in corpus.files.iter().enumerate() {
        let s = login(&vault, &user_of_org[&f.org], "10.0.0.1");
        let mut w = s
            .open_write(
                &path(&f.name),
                OpenMode {
                    truncate: true,
                    ..Default::default()
                },
            )
            .unwrap();
        w.write_at(0, Bytes::from(f.bytes.clone())).unwrap();
        let row = w.commit().unwrap();
        by_id.insert(row.id.0, i);
        ids.push(row.id.0);
    }
    let mut w = World {
        dir,
        vault,
        corpus,
        _by_id: by_id,
        life: Vec::new(),
        user_of_org,
    };
    // Deletions through the vault (keys destroyed), then the controlled history.
    for &i in &[2usize, 5] {
        let f = &w.corpus.files[i];
        let s = login(&w.vault, &w.user_of_org[&f.org], "10.0.0.1");
        s.remove(&path(&f.name)).unwrap();
    }
    let c = db(&w);
    for (i, id) in ids.iter().enumerate() {
        let committed = T0 + i as i64 * STEP;
        let deleted = [2usize, 5].contains(&i).then(|| T0 + 20 * STEP + i as i64);
        c.execute(
            "UPDATE files SET committed_at = ?2, deleted_at = ?3 WHERE id = ?1",
            rusqlite::params![id, committed, deleted],
        )
        .unwrap();
        w.life.push((*id, committed, deleted));
    }
    w
}

fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap()
}

fn request(
    w: &World,
    from: i64,
    to: i64,
    scope: Scope,
    basis: Basis,
    out: &str,
) -> ExposureRequest {
    ExposureRequest {
        from: at(from),
        to: at(to),
        discovered: time::macros::date!(2026 - 01 - 15),
        scope,
        basis,
        keys_exposed: KeysExposed::Yes,
        ba_deadline_days: 30,
        mailing_list: false,
        out_dir: w.dir.path().join("reports").join(out),
        encrypt_to: None,
    }
}

fn run(w: &World, req: &ExposureRequest) -> Result<ExposureReport, ExposureError> {
    let store = w.vault.report_store();
    let audit = w.vault.audit_log();
    let plain = Plain(&w.vault);
    build_report(&store, &audit, Some(&plain), req)
}

/// What the report must say for a set of corpus files (indexes), from the generator's truth.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    individuals: u64,
    by_state: BTreeMap<String, u64>,
    by_element: BTreeMap<String, u64>,
    without_valid_address: u64,
    unrecoverable: u64,
    deceased: u64,
}

/// The identities a file reveals for a person, as the inventory fingerprints them: SSN, name + DOB, or
/// (only when neither exists) one other identifier. People are linked across files only through these.
/// An identity kind that only links within one organization (`kind@org`). Leaked: a test process
/// makes a few thousand of these at most.
fn scoped(kind: &str, org: &str) -> &'static str {
    Box::leak(format!("{kind}@{org}").into_boxed_str())
}

/// The fingerprints the inventory stores for a person record, as identity kinds (mirrors
/// `Fingerprinter::record`).
fn identities(els: ElementSet, org: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if els.contains(Element::Ssn) {
        out.push("ssn");
    }
    if els.contains(Element::Name) && els.contains(Element::Dob) {
        out.push("name-dob");
    }
    if els.contains(Element::MemberId) && els.contains(Element::Name) {
        out.push("member-name");
    } else if out.is_empty() {
        let other: [(Element, &'static str); 6] = [
            (Element::Mbi, "mbi"),
            (Element::Hicn, "hicn"),
            (Element::MedicaidId, "medicaid"),
            (Element::MemberId, scoped("member", org)),
            (Element::MedicalRecordNumber, scoped("mrn", org)),
            (Element::Name, "name"),
        ];
        if let Some((_, k)) = other.iter().find(|(e, _)| els.contains(*e)) {
            out.push(k);
        }
    }
    out
}

fn expected(w: &World, files: &[usize]) -> Expected {
    let mut ordered = files.to_vec();
    ordered.sort_by_key(|&i| (w.life[i].1, w.life[i].0));
    // Rows (person key, elements, live), in file order; identities linked per person by union-find.
    let mut rows: Vec<(usize, ElementSet, bool, Vec<&'static str>)> = Vec::new();
    for &i in &ordered {
        let live = w.life[i].2.is_none();
        for tp in &w.corpus.files[i].truth.persons {
            let els = tp.element_set();
            rows.push((tp.key, els, live, identities(els, &w.corpus.files[i].org)));
        }
    }
    // Identity is resolved over every stored file (as the engine does), not only the window's.
    let mut bridges: Vec<(usize, Vec<&'static str>)> = Vec::new();
    for i in (0..w.life.len()).filter(|i| !files.contains(i)) {
        for tp in &w.corpus.files[i].truth.persons {
            bridges.push((tp.key, identities(tp.element_set(), &w.corpus.files[i].org)));
        }
    }
    let mut parent: HashMap<(usize, &'static str), (usize, &'static str)> = HashMap::new();
    fn find(
        p: &mut HashMap<(usize, &'static str), (usize, &'static str)>,
        x: (usize, &'static str),
    ) -> (usize, &'static str) {
        let mut x = x;
        while let Some(&y) = p.get(&x) {
            if y == x {
                break;
            }
            x = y;
        }
        x
    }
    let linking = rows
        .iter()
        .map(|(key, _, _, ids)| (key, ids))
        .chain(bridges.iter().map(|(key, ids)| (key, ids)));
    for (key, ids) in linking {
        for id in ids {
            parent.entry((*key, id)).or_insert((*key, id));
        }
        for pair in ids.windows(2) {
            let (a, b) = (
                find(&mut parent, (*key, pair[0])),
                find(&mut parent, (*key, pair[1])),
            );
            if a != b {
                parent.insert(b, a);
            }
        }
    }
    // Per component: (elements union, latest address bits, seen in a live file), latest file wins.
    let mut people: BTreeMap<(usize, &'static str), (ElementSet, Option<ElementSet>, bool)> =
        BTreeMap::new();
    let addr = [Element::Street, Element::City, Element::State, Element::Zip];
    for (key, els, live, ids) in &rows {
        let Some(first) = ids.first() else { continue };
        let c = find(&mut parent, (*key, first));
        let e = people
            .entry(c)
            .or_insert((ElementSet::default(), None, false));
        e.0 = e.0.union(*els);
        if addr.iter().any(|a| els.contains(*a)) {
            e.1 = Some(*els);
        }
        e.2 |= *live;
    }
    let mut x = Expected {
        individuals: people.len() as u64,
        ..Default::default()
    };
    for ((key, _), (els, last_addr, live)) in &people {
        if els.contains(Element::State) {
            *x.by_state
                .entry(w.corpus.population[*key].state.clone())
                .or_default() += 1;
        }
        for e in els.iter() {
            *x.by_element.entry(e.as_str().to_owned()).or_default() += 1;
        }
        let valid = last_addr.is_some_and(|a| addr.iter().all(|e| a.contains(*e)));
        if !live {
            x.unrecoverable += 1;
        } else if !valid {
            x.without_valid_address += 1;
        }
        if els.contains(Element::DeathDate) {
            x.deceased += 1;
        }
    }
    x
}

/// Distinct people (perfect linkage) in these files.
fn truth_people(w: &World, files: &[usize]) -> u64 {
    files
        .iter()
        .flat_map(|&i| w.corpus.files[i].truth.persons.iter().map(|p| p.key))
        .collect::<BTreeSet<_>>()
        .len() as u64
}

fn actual(r: &lockbox_exposure::OrgReport) -> Expected {
    Expected {
        individuals: r.individuals,
        by_state: r
            .by_state
            .iter()
            .map(|(s, c)| (s.clone(), c.individuals))
            .collect(),
        by_element: r.by_element.clone(),
        without_valid_address: r.without_valid_address,
        unrecoverable: r.address_unrecoverable,
        deceased: r.deceased,
    }
}

/// Corpus files whose lifetime intersects [from, to].
fn present(w: &World, from: i64, to: i64) -> Vec<usize> {
    (0..w.life.len())
        .filter(|&i| w.life[i].1 <= to && w.life[i].2.is_none_or(|d| d >= from))
        .collect()
}

fn check(w: &World, r: &ExposureReport, files: &[usize]) {
    let got_files: BTreeSet<i64> = r
        .organizations
        .iter()
        .flat_map(|o| o.files.iter().map(|f| f.file_id))
        .collect();
    let want_files: BTreeSet<i64> = files.iter().map(|&i| w.life[i].0).collect();
    assert_eq!(got_files, want_files, "files");
    let mut all = BTreeSet::new();
    for o in &r.organizations {
        let mine: Vec<usize> = files
            .iter()
            .copied()
            .filter(|&i| w.corpus.files[i].org == o.org_name)
            .collect();
        let (got, want) = (actual(o), expected(w, &mine));
        // Every synthetic person is linkable (SSN, name + DOB, or member id + name within the
        // organization, resolved over all stored files), so the counts are exact: the model's
        // distinct people equal the ground truth's, and the report equals the model in every figure.
        assert_eq!(
            want.individuals,
            truth_people(w, &mine),
            "{}: the fingerprint model does not link every true person",
            o.org_name
        );
        assert_eq!(got, want, "organization {}", o.org_name);
        for &i in &mine {
            all.extend(w.corpus.files[i].truth.persons.iter().map(|p| p.key));
        }
    }
    // Overall: one person counted once across organizations, exactly.
    assert_eq!(
        r.totals.individuals,
        all.len() as u64,
        "distinct individuals overall"
    );
}

#[test]
fn present_basis_matches_ground_truth() {
    let w = world();
    let n = w.life.len() as i64;
    // Whole history.
    let (from, to) = (T0 - 10, T0 + 100 * STEP);
    let r = run(
        &w,
        &request(&w, from, to, Scope::All, Basis::Present, "all"),
    )
    .unwrap();
    check(&w, &r, &present(&w, from, to));
    assert!(r.totals.individuals > 100);
    assert!(r.organizations.len() == 3);

    // After the deletions: deleted versions drop out; the edge: one deleted 1 s before the window starts.
    let del5 = w.life[5].2.unwrap();
    let (from, to) = (del5 + 1, T0 + 100 * STEP);
    let r = run(
        &w,
        &request(&w, from, to, Scope::All, Basis::Present, "after"),
    )
    .unwrap();
    let files = present(&w, from, to);
    assert!(!files.contains(&5) && !files.contains(&2));
    check(&w, &r, &files);

    // Window ending 1 s after file 4's commit: file 4 included, file 5 not; deleted file 2 included
    // (its people are counted but unrecoverable).
    let (from, to) = (T0, w.life[4].1 + 1);
    let r = run(
        &w,
        &request(&w, from, to, Scope::All, Basis::Present, "early"),
    )
    .unwrap();
    let files = present(&w, from, to);
    assert_eq!(files, vec![0, 1, 2, 3, 4]);
    check(&w, &r, &files);
    assert!(
        r.organizations
            .iter()
            .map(|o| o.address_unrecoverable)
            .sum::<u64>()
            > 0
    );

    // One organization.
    let org = w.corpus.files[0].org.clone();
    let (from, to) = (T0 - 10, T0 + 100 * STEP);
    let r = run(
        &w,
        &request(&w, from, to, Scope::Org(org.clone()), Basis::Present, "org"),
    )
    .unwrap();
    let files: Vec<usize> = present(&w, from, to)
        .into_iter()
        .filter(|&i| w.corpus.files[i].org == org)
        .collect();
    check(&w, &r, &files);
    assert_eq!(r.organizations.len(), 1);

    // Empty window: a valid, empty package.
    let req = request(&w, T0 - 100, T0 - 50, Scope::All, Basis::Present, "empty");
    let r = run(&w, &req).unwrap();
    assert_eq!(r.totals.files, 0);
    assert_eq!(r.totals.individuals, 0);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(req.out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["totals"]["individuals"], 0);
    assert!(req.out_dir.join("report.html").exists());
    let _ = n;
}

#[test]
fn package_mailing_list_and_permissions() {
    let w = world();
    let (from, to) = (T0 - 10, T0 + 100 * STEP);
    let mut req = request(&w, from, to, Scope::All, Basis::Present, "mail");
    req.mailing_list = true;
    req.keys_exposed = KeysExposed::Unknown;
    let r = run(&w, &req).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&req.out_dir), 0o700);
    assert_eq!(mode(&req.out_dir.join("summary.json")), 0o600);
    let mut by_last: HashMap<String, usize> = HashMap::new();
    for p in &w.corpus.population {
        by_last.insert(
            format!("{}|{}", normalize_name(&p.last), normalize_name(&p.first)),
            p.key,
        );
    }
    for o in &r.organizations {
        let dir: PathBuf = req.out_dir.join(&o.package_dir);
        assert_eq!(mode(&dir), 0o700);
        let csv = dir.join("individuals.csv");
        assert_eq!(mode(&csv), 0o600);
        let text = std::fs::read_to_string(&csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len() as u64,
            o.individuals + 1,
            "one row per individual"
        );
        // Most rows carry a name that belongs to the synthetic population.
        let named = lines.iter().skip(1).filter(|l| {
            let c: Vec<&str> = l.split(',').collect();
            c.len() > 3
                && by_last.contains_key(&format!(
                    "{}|{}",
                    normalize_name(c[1]),
                    normalize_name(c[2])
                ))
        });
        let recoverable = o.individuals - o.address_unrecoverable;
        assert!(
            named.count() as u64 * 10 >= recoverable * 9,
            "{}: names re-extracted",
            o.org_name
        );
        assert_eq!(o.assessments.len(), 2, "unknown → both views");
        assert!(o.assessments[0].reportable && !o.assessments[1].reportable);
        assert!(o.minors.is_some());
    }
    assert!(r.mailing_list.files_decrypted > 0);
    assert_eq!(r.mailing_list.files_unrecoverable, 2);
}

#[test]
fn accessed_basis_uses_the_verified_audit_log() {
    let w = world();
    let start = OffsetDateTime::now_utc().unix_timestamp() - 1;
    // The attacker reads files 0, 3 and 7 (as their owners, from 203.0.113.66); a partner reads file 1.
    let read = |i: usize, ip: &str| {
        let f = &w.corpus.files[i];
        let s = login(&w.vault, &w.user_of_org[&f.org], ip);
        let h = s.open_read(&path(&f.name)).unwrap();
        let mut buf = vec![0u8; 4096];
        h.read_at(0, &mut buf).unwrap();
        h.close().unwrap();
    };
    for i in [0usize, 3, 7] {
        read(i, "203.0.113.66");
    }
    read(1, "10.0.0.9");
    let end = OffsetDateTime::now_utc().unix_timestamp() + 1;

    let r = run(
        &w,
        &request(
            &w,
            start,
            end,
            Scope::Ip(lockbox_exposure::Cidr::parse("203.0.113.0/24").unwrap()),
            Basis::Accessed,
            "ip",
        ),
    )
    .unwrap();
    assert!(r.audit.as_ref().unwrap().verified);
    assert_eq!(r.audit.as_ref().unwrap().file_reads_in_window, 4);
    check(&w, &r, &[0, 3, 7]);

    let r = run(
        &w,
        &request(&w, start, end, Scope::All, Basis::Accessed, "all"),
    )
    .unwrap();
    check(&w, &r, &[0, 1, 3, 7]);

    let user = w.user_of_org[&w.corpus.files[1].org].clone();
    let r = run(
        &w,
        &request(
            &w,
            start,
            end,
            Scope::User(user.clone()),
            Basis::Accessed,
            "user",
        ),
    )
    .unwrap();
    let mine: Vec<usize> = [0usize, 1, 3, 7]
        .into_iter()
        .filter(|&i| w.user_of_org[&w.corpus.files[i].org] == user)
        .collect();
    check(&w, &r, &mine);

    // A window before the reads: nothing accessed.
    let r = run(
        &w,
        &request(
            &w,
            start - 100,
            start - 50,
            Scope::All,
            Basis::Accessed,
            "before",
        ),
    )
    .unwrap();
    assert_eq!(r.totals.files, 0);

    // Tampering with the log: the accessed basis refuses and names the record.
    db(&w)
        .execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 5", [])
        .unwrap();
    let err = run(
        &w,
        &request(&w, start, end, Scope::All, Basis::Accessed, "tampered"),
    )
    .unwrap_err();
    assert!(matches!(err, ExposureError::AuditBroken(_)), "{err}");
    assert!(err.to_string().contains("record 5"), "{err}");
    // The present basis does not depend on the log.
    run(
        &w,
        &request(
            &w,
            T0,
            T0 + STEP,
            Scope::All,
            Basis::Present,
            "present-after-tamper",
        ),
    )
    .unwrap();
}
