//! Helpers shared by the vault's integration tests: a fresh vault with users, and verdict unpacking.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use lockbox_types::Role;
use lockbox_vault::{AdminActor, PendingLogin, Principal, Refusal, Vault, VaultConfig, Verdict};

pub const PASSWORD: &str = "correct-horse-battery-staple";

/// A vault in a temporary directory with the given organizations and (org, user, role) accounts,
/// all with `PASSWORD`.
pub fn vault_with(orgs: &[&str], users: &[(&str, &str, Role)]) -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let (vault, _) = Vault::open(VaultConfig {
        data_dir: dir.path().join("data"),
        key_file: dir.path().join("master.key"),
        auth: Default::default(),
        storage: Default::default(),
    })
    .unwrap();
    let cli = AdminActor::cli();
    for org in orgs {
        vault.create_org(&cli, org).unwrap();
    }
    for (org, user, role) in users {
        vault
            .create_user(&cli, org, user, *role, Some(PASSWORD))
            .unwrap();
    }
    (dir, vault)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn accepted(v: Verdict) -> Principal {
    match v {
        Verdict::Accepted(p) => p,
        Verdict::Refused(r) => panic!("refused: {r:?}"),
        Verdict::SecondFactorRequired(_) => panic!("second factor still required"),
    }
}

pub fn pending(v: Verdict) -> PendingLogin {
    match v {
        Verdict::SecondFactorRequired(p) => p,
        Verdict::Accepted(_) => panic!("accepted without the second factor"),
        Verdict::Refused(r) => panic!("refused: {r:?}"),
    }
}

pub fn refusal(v: Verdict) -> Refusal {
    match v {
        Verdict::Refused(r) => r,
        _ => panic!("expected a refusal"),
    }
}
