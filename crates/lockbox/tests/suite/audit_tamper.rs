//! The audit log is evidence: `lockbox audit verify` passes on an intact log and names the record where the chain
//! breaks after an edit, a deletion, an inserted forgery, or a reorder; `audit export --format jsonl` prints
//! valid JSON lines covering logins (success and failure) and uploads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use common::*;
use rusqlite::types::Value;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// Parses `error: audit log broken at record SEQ: REASON` from verify's stderr.
fn broken_seq(out: &std::process::Output) -> Option<i64> {
    let err = stderr_of(out);
    let pos = err.find("broken at record ")?;
    let rest = &err[pos + "broken at record ".len()..];
    rest.chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()
}

fn seqs(conn: &Connection) -> Vec<i64> {
    let mut st = conn
        .prepare("SELECT seq FROM audit_log ORDER BY seq")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn row(conn: &Connection, cols: &[String], seq: i64) -> Vec<Value> {
    let list = cols
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    conn.query_row(
        &format!("SELECT {list} FROM audit_log WHERE seq = ?1"),
        [seq],
        |r| {
            (0..cols.len())
                .map(|i| r.get::<_, Value>(i))
                .collect::<Result<Vec<_>, _>>()
        },
    )
    .unwrap()
}

fn set_row(conn: &Connection, cols: &[String], seq: i64, vals: &[Value]) {
    for (c, v) in cols.iter().zip(vals) {
        if c == "seq" {
            continue;
        }
        conn.execute(
            &format!("UPDATE audit_log SET \"{c}\" = ?1 WHERE seq = ?2"),
            rusqlite::params![v, seq],
        )
        .unwrap();
    }
}

/// A text column that is plain content (not the sequence number or a chain hash).
fn content_column(cols: &[(String, String)]) -> String {
    for pref in [
        "detail", "target", "action", "actor", "outcome", "source", "ts",
    ] {
        if cols.iter().any(|(c, _)| c == pref) {
            return pref.to_string();
        }
    }
    cols.iter()
        .find(|(c, t)| {
            let c = c.to_lowercase();
            c != "seq"
                && !c.contains("hash")
                && !c.contains("mac")
                && !c.contains("prev")
                && !c.contains("sig")
                && t.to_uppercase().contains("TEXT")
        })
        .map(|(c, _)| c.clone())
        .expect("no content column in audit_log")
}

struct Tamper<'a> {
    s: &'a TestServer,
    n: usize,
}

impl Tamper<'_> {
    /// Copies the (stopped) data dir, applies `f` to the copy's DB, runs `audit verify` on the copy.
    fn run(&mut self, name: &str, f: impl FnOnce(&Connection, &[String])) -> std::process::Output {
        self.n += 1;
        let copy: PathBuf = self.s.dir.path().join(format!("copy-{}-{name}", self.n));
        copy_dir(&self.s.data_dir, &copy);
        {
            let conn = Connection::open(db_path(&copy)).unwrap();
            let cols: Vec<String> = table_columns(&conn, "audit_log")
                .into_iter()
                .map(|(c, _)| c)
                .collect();
            assert!(
                cols.iter().any(|c| c == "seq"),
                "audit_log has no seq column; schema:\n{}",
                schema_dump(&conn)
            );
            f(&conn, &cols);
        }
        self.s.cli_on(&copy, &["audit", "verify"])
    }
}

fn activity(s: &TestServer, key: &Path) {
    let f = s.dir.path().join("audited.bin");
    write_random_file(&f, 200_000);
    s.sftp_ok(
        "alice",
        Auth::Key(key),
        &format!("put {} /home/audited.bin\n", f.display()),
    );
    s.sftp_ok(
        "alice",
        Auth::Password(PASSWORD),
        &format!("get /home/audited.bin {}.back\n", f.display()),
    );
    let o = s.sftp("alice", Auth::Password("not-the-right-password-1"), "pwd\n");
    assert!(!o.status.success());
    s.sftp_ok(
        "alice",
        Auth::Key(key),
        &format!(
            "put {} /home/second.bin\nrename /home/second.bin /home/third.bin\nrm /home/third.bin\n",
            f.display()
        ),
    );
}

#[test]
fn audit_verify_detects_edit_delete_insert_reorder() {
    let mut s = TestServer::start();
    let key = s.setup_acme_alice();
    activity(&s, &key);

    let o = s.cli(&["audit", "verify"]);
    assert!(
        o.status.success(),
        "audit verify on an intact log failed:\n{}",
        describe(&o)
    );
    assert!(
        (stdout_of(&o) + &stderr_of(&o)).contains("audit log OK"),
        "verify output lacks 'audit log OK':\n{}",
        describe(&o)
    );

    s.stop();
    let conn = Connection::open(db_path(&s.data_dir)).unwrap();
    let all = seqs(&conn);
    let cols_typed = table_columns(&conn, "audit_log");
    drop(conn);
    assert!(
        all.len() >= 6,
        "expected at least 6 audit records after logins and uploads, got {}",
        all.len()
    );
    let k = all[all.len() / 2];
    let prev = all[all.len() / 2 - 1];
    let next = all[all.len() / 2 + 1];
    let content = content_column(&cols_typed);

    let mut t = Tamper { s: &s, n: 0 };

    // Control: an untouched copy verifies.
    let o = t.run("control", |_, _| {});
    assert!(
        o.status.success(),
        "untampered copy does not verify (copy method broken?):\n{}",
        describe(&o)
    );

    let check = |name: &str, o: &std::process::Output, allowed: &[i64]| {
        assert!(
            !o.status.success(),
            "{name}: audit verify did not detect the tampering:\n{}",
            describe(o)
        );
        let err = stderr_of(o);
        assert!(
            err.lines()
                .any(|l| l.starts_with("error: audit log broken at record ")),
            "{name}: expected 'error: audit log broken at record SEQ: ...':\n{}",
            describe(o)
        );
        let got = broken_seq(o);
        assert!(
            got.is_some_and(|g| allowed.contains(&g)),
            "{name}: verify named record {got:?}, expected one of {allowed:?}:\n{}",
            describe(o)
        );
    };

    // 1. Edit a field of record k.
    let o = t.run("edit", |c, _| {
        let n = c
            .execute(
                &format!(
                    "UPDATE audit_log SET \"{content}\" = \"{content}\" || 'X' WHERE seq = ?1"
                ),
                [k],
            )
            .unwrap();
        assert_eq!(n, 1);
    });
    check("edit", &o, &[k]);

    // 1b. Edit the outcome of a failed login into a success (the realistic cover-up), if there is such a column.
    if cols_typed.iter().any(|(c, _)| c == "outcome") {
        let o = t.run("edit-outcome", |c, _| {
            c.execute(
                "UPDATE audit_log SET outcome = outcome || '-edited' WHERE seq = ?1",
                [k],
            )
            .unwrap();
        });
        check("edit-outcome", &o, &[k]);
    }

    // 2. Delete record k.
    let o = t.run("delete", |c, _| {
        assert_eq!(
            c.execute("DELETE FROM audit_log WHERE seq = ?1", [k])
                .unwrap(),
            1
        );
    });
    check("delete", &o, &[k, next]);

    // 2b. Delete the last record (truncation is only detectable with an anchor; accept either outcome but
    // the verifier must not crash).
    let last = *all.last().unwrap();
    let o = t.run("delete-last", |c, _| {
        c.execute("DELETE FROM audit_log WHERE seq = ?1", [last])
            .unwrap();
    });
    assert!(
        o.status.code().is_some(),
        "verify crashed on a truncated log:\n{}",
        describe(&o)
    );

    // 3. Insert a forged record at position k (later records shifted by one).
    let o = t.run("insert", |c, cols| {
        let forged_src = row(c, cols, prev);
        c.execute("UPDATE audit_log SET seq = -seq WHERE seq >= ?1", [k])
            .unwrap();
        c.execute("UPDATE audit_log SET seq = -seq + 1 WHERE seq < 0", [])
            .unwrap();
        let mut forged = forged_src;
        for (i, name) in cols.iter().enumerate() {
            if name == "seq" {
                forged[i] = Value::Integer(k);
            } else if name == "prev_hash" {
                // Chain it to the real predecessor, as a forger would.
                if let Some(j) = cols.iter().position(|c| c == "hash") {
                    forged[i] = row(c, cols, prev)[j].clone();
                }
            } else if *name == content {
                if let Value::Text(t) = &forged[i] {
                    forged[i] = Value::Text(format!("{t} forged"));
                }
            }
        }
        let list = cols
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let qs = (1..=cols.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        c.execute(
            &format!("INSERT INTO audit_log ({list}) VALUES ({qs})"),
            rusqlite::params_from_iter(forged.iter()),
        )
        .unwrap();
    });
    check("insert", &o, &[k, k + 1]);

    // 4. Swap records k and next (reorder).
    let o = t.run("swap", |c, cols| {
        let a = row(c, cols, k);
        let b = row(c, cols, next);
        set_row(c, cols, k, &b);
        set_row(c, cols, next, &a);
    });
    check("swap", &o, &[k]);
}

#[test]
fn audit_export_jsonl_covers_logins_and_uploads() {
    let s = TestServer::start();
    let key = s.setup_acme_alice();
    activity(&s, &key);
    let o = s.cli(&["audit", "export", "--format", "jsonl"]);
    assert!(o.status.success(), "{}", describe(&o));
    let out = stdout_of(&o);
    let mut lines = Vec::new();
    for (i, l) in out.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l}", i + 1));
        assert!(v.is_object(), "line {} is not a JSON object: {l}", i + 1);
        lines.push(l.to_lowercase());
    }
    assert!(lines.len() >= 6, "too few records:\n{out}");
    let any = |pred: &dyn Fn(&str) -> bool| lines.iter().any(|l| pred(l));
    let is_login = |l: &str| l.contains("login") || l.contains("auth");
    let failed = |l: &str| {
        ["fail", "refus", "denied", "reject", "invalid", "wrong"]
            .iter()
            .any(|w| l.contains(w))
    };
    assert!(
        any(&|l| is_login(l) && l.contains("alice") && !failed(l)),
        "no successful login of alice in the export:\n{out}"
    );
    assert!(
        any(&|l| is_login(l) && l.contains("alice") && failed(l)),
        "no failed login of alice in the export:\n{out}"
    );
    assert!(
        any(&|l| l.contains("audited.bin")
            && (l.contains("upload") || l.contains("write") || l.contains("put"))),
        "no upload record for audited.bin in the export:\n{out}"
    );
    assert!(
        any(&|l| l.contains("audited.bin")
            && (l.contains("read") || l.contains("download") || l.contains("get"))),
        "no download record for audited.bin in the export:\n{out}"
    );
    assert!(any(&|l| l.contains("rename")), "no rename record:\n{out}");
    assert!(
        any(&|l| l.contains("delete") || l.contains("remove")),
        "no delete record:\n{out}"
    );
}
