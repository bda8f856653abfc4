//! Decode then dispatch: the SFTP engine serves the fuzzer's bytes (after a valid INIT) as one
//! session of a real vault (SQLite and blobs in a temporary directory, made once), exactly as the
//! door serves a channel. Nothing may panic or hang, whatever the requests, their order or their
//! handles; every session must end when its input does.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use lockbox_types::{Door, Role, VirtualPath};
use lockbox_vault::{AdminActor, Credential, LoginAttempt, OpenMode, Vault, VaultConfig, Verdict};

const PASSWORD: &str = "correct-horse-battery-staple";

struct World {
    _dir: tempfile::TempDir,
    vault: Vault,
    runtime: tokio::runtime::Runtime,
    principal: lockbox_vault::Principal,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (vault, _) = Vault::open(VaultConfig {
            data_dir: dir.path().join("data"),
            key_file: dir.path().join("master.key"),
            auth: Default::default(),
            storage: Default::default(),
        })
        .expect("vault");
        let cli = AdminActor::cli();
        vault.create_org(&cli, "acme").expect("org");
        vault
            .create_user(&cli, "acme", "alice", Role::Transfer, Some(PASSWORD))
            .expect("user");
        let principal = match vault.authenticate(&LoginAttempt {
            user: "alice",
            credential: Credential::Password(PASSWORD),
            door: Door::Sftp,
            source: "127.0.0.1".parse().expect("ip"),
        }) {
            Verdict::Accepted(p) => p,
            _ => panic!("login refused"),
        };
        // Something to read, list and rename: /home/a.txt and /home/d/.
        let s = vault.open_session(principal.clone()).expect("session");
        let home = s.home();
        let mut w = s
            .open_write(
                &VirtualPath::parse(&home, "a.txt").expect("path"),
                OpenMode {
                    truncate: true,
                    exclusive: false,
                    must_exist: false,
                },
            )
            .expect("open");
        w.write_at(0, bytes::Bytes::from_static(b"MSH|^~\\&|fuzz\r"))
            .expect("write");
        w.commit().expect("commit");
        s.mkdir(&VirtualPath::parse(&home, "d").expect("path"))
            .expect("mkdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .enable_all()
            .build()
            .expect("runtime");
        World {
            _dir: dir,
            vault,
            runtime,
            principal,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Ok(session) = w.vault.open_session(w.principal.clone()) else {
        return;
    };
    let mut input = vec![0, 0, 0, 5, 1, 0, 0, 0, 3];
    input.extend_from_slice(data);
    let ended = w.runtime.block_on(async move {
        tokio::time::timeout(
            Duration::from_secs(60),
            lockbox_sftp::engine::serve(
                Arc::new(session),
                lockbox_sftp::engine::DoorControl::new(16, tokio::sync::watch::channel(false).1),
                &input[..],
                |_reply| async { true },
            ),
        )
        .await
    });
    assert!(
        ended.is_ok(),
        "session did not end within 60 s of its input ending"
    );
});
