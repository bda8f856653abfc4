//! `lockbox backup` while the server is under load, `lockbox restore` into an empty data
//! directory, and `lockbox verify-storage`: every restored file byte-identical to what was
//! uploaded, the audit chain intact, the key never in the backup, and damage (a flipped byte, a
//! missing blob, a stray one) reported by the storage check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn cli_with(data_dir: &Path, key_file: &Path, args: &[&str]) -> std::process::Output {
    run_with_timeout(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--key-file")
            .arg(key_file)
            .args(args)
            .env_remove("LOCKBOX_DATA_DIR")
            .env_remove("LOCKBOX_KEY_FILE"),
        None,
        BIG_TIMEOUT,
    )
}

#[test]
fn a_backup_under_load_restores_byte_identical_and_the_storage_check_finds_damage() {
    let _heavy = heavy_lock();
    let mut s = TestServer::start();
    let alice = s.setup_acme_alice();
    let src = s.dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut want: HashMap<String, String> = HashMap::new();
    let mut batch = String::new();
    for i in 0..40 {
        let name = format!("f{i:02}.bin");
        let size = (i * 97_331) % (3 * MIB) + 1;
        want.insert(name.clone(), write_random_file(&src.join(&name), size));
        batch.push_str(&format!("put {} /home/{name}\n", src.join(&name).display()));
    }
    s.sftp_ok("alice", Auth::Key(&alice), &batch);

    // Load while the backup runs: more uploads, overwrites and deletes.
    let mut load = String::new();
    for i in 0..30 {
        let name = format!("load{i:02}.bin");
        want.insert(
            name.clone(),
            write_random_file(&src.join(&name), 512 * 1024 + i),
        );
        load.push_str(&format!("put {} /home/{name}\n", src.join(&name).display()));
        if i % 3 == 0 {
            load.push_str(&format!("rm /home/f{:02}.bin\n", i));
        }
    }
    let bg = BackgroundSftp::spawn(s.port, "alice", Auth::Key(&alice), &load, &[]);
    let backup_dir = s.dir.path().join("backup");
    let o = s.cli(&["backup", "--out", &backup_dir.display().to_string()]);
    assert!(o.status.success(), "backup: {}", describe(&o));
    let said = stdout_of(&o);
    assert!(said.contains("NOT in the backup"), "{said}");
    let (st, out, err) = bg.wait(Duration::from_secs(300));
    assert!(st.is_some_and(|s| s.success()), "load: {out}\n{err}");
    // No key material in the backup.
    let key_hex = std::fs::read_to_string(&s.key_file).unwrap();
    let key_hex = key_hex.lines().nth(1).unwrap().trim().to_owned();
    for f in walk_files(&backup_dir) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains_bytes(&bytes, key_hex.as_bytes()),
            "the key is in the backup: {f:?}"
        );
    }
    let o = s.cli(&["verify-storage"]);
    assert!(
        o.status.success(),
        "verify-storage on the live server: {}",
        describe(&o)
    );
    s.stop();

    // Restore: refused with another key or into a non-empty directory; then done.
    let restored = s.dir.path().join("restored");
    let other_key = s.dir.path().join("other.key");
    std::fs::write(&other_key, format!("lockbox-kek-v1\n{}\n", "cd".repeat(32))).unwrap();
    std::fs::set_permissions(
        &other_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let bd = backup_dir.display().to_string();
    let o = cli_with(&restored, &other_key, &["restore", &bd]);
    assert!(!o.status.success(), "restored with another key");
    assert!(
        stderr_of(&o).contains("not the key of this backup"),
        "{}",
        describe(&o)
    );
    assert!(
        !restored.exists(),
        "a refused restore wrote the data directory"
    );
    let o = cli_with(&s.data_dir, &s.key_file, &["restore", &bd]);
    assert!(!o.status.success(), "restored over a data directory in use");
    let o = cli_with(&restored, &s.key_file, &["restore", &bd]);
    assert!(o.status.success(), "restore: {}", describe(&o));
    assert!(stdout_of(&o).contains("audit log OK"), "{}", describe(&o));
    // The same SSH host key, so partners' known_hosts still match.
    assert_eq!(
        std::fs::read(s.data_dir.join("ssh_host_ed25519_key")).unwrap(),
        std::fs::read(restored.join("ssh_host_ed25519_key")).unwrap(),
        "the restored server has another SSH host key"
    );

    // The restored server: every file it lists is byte-identical to what was uploaded, and
    // every original the load did not delete is there.
    let r = TestServer::start_on(restored.clone(), &s.key_file);
    let ls = r.sftp_ok("alice", Auth::Key(&alice), "ls -ln /home\n");
    let listed: Vec<(u64, String)> = parse_ls_ln(&ls)
        .into_iter()
        .map(|(size, n)| (size, n.rsplit('/').next().unwrap_or_default().to_owned()))
        .collect();
    assert!(!listed.is_empty(), "{ls}");
    let back = r.dir.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let mut get = String::new();
    for (_, name) in &listed {
        get.push_str(&format!("get /home/{name} {}\n", back.join(name).display()));
    }
    r.sftp_ok("alice", Auth::Key(&alice), &get);
    for (size, name) in &listed {
        let got = sha256_file(&back.join(name));
        assert_eq!(
            Some(&got),
            want.get(name),
            "{name} ({size} bytes) differs after restore"
        );
    }
    for i in 0..40 {
        let name = format!("f{i:02}.bin");
        let deleted_by_load = i % 3 == 0 && i < 30;
        if !deleted_by_load {
            assert!(
                listed.iter().any(|(_, n)| *n == name),
                "{name} is missing after restore:\n{ls}"
            );
        }
    }
    let v = r.cli(&["audit", "verify"]);
    assert!(
        v.status.success(),
        "audit verify after restore: {}",
        describe(&v)
    );
    let o = r.cli(&["verify-storage"]);
    assert!(
        o.status.success(),
        "verify-storage after restore: {}",
        describe(&o)
    );

    // Damage: a flipped byte, a missing blob, a stray blob from long ago.
    let blobs = walk_files(&restored.join("blobs"));
    assert!(blobs.len() >= 3, "{blobs:?}");
    let mut b0 = std::fs::read(&blobs[0]).unwrap();
    b0[20] ^= 1;
    std::fs::write(&blobs[0], &b0).unwrap();
    std::fs::remove_file(&blobs[1]).unwrap();
    let stray = restored.join("blobs/ab").join("ab".repeat(16));
    std::fs::write(&stray, b"stray").unwrap();
    let _ = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&stray)
        .status();
    let o = r.cli(&["verify-storage"]);
    assert!(!o.status.success(), "verify-storage missed the damage");
    let err = stderr_of(&o);
    for kind in ["failed_authentication", "missing", "orphaned"] {
        assert!(err.contains(kind), "no {kind} reported:\n{err}");
    }
}
