//! Settings: built-in defaults, then an optional TOML file, then `LOCKBOX_*` environment variables and
//! command-line flags (clap reads both). Nothing needs configuring for the embedded default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use lockbox_sftp::SftpConfig;
use lockbox_vault::{AuthPolicy, StoragePolicy, VaultConfig};
use lockbox_web::WebConfig;
use serde::Deserialize;

pub const DEFAULT_DATA_DIR: &str = "./lockbox-data";
/// Beside the data directory, not inside it: a copy of the data directory alone stays ciphertext.
pub const DEFAULT_KEY_FILE: &str = "./lockbox-master.key";
pub const DEFAULT_SFTP_LISTEN: &str = "127.0.0.1:2222";

/// The TOML file's shape. Unknown keys are an error, so a typo cannot silently keep a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub sftp: SftpSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub https: HttpsSection,
    #[serde(default)]
    pub storage: StorageSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsSection {
    pub listen: Option<String>,
    /// PEM certificate chain and private key; both or neither (a self-signed pair is generated).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub idle_timeout_minutes: Option<u64>,
    pub absolute_timeout_hours: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftpSection {
    pub listen: Option<String>,
    pub max_connections: Option<usize>,
    pub max_unauthenticated_per_ip: Option<usize>,
    pub login_grace_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
}

/// Free-space rules (`[storage]`; also `LOCKBOX_MIN_FREE_MIB`, `LOCKBOX_AUDIT_RESERVE_MIB`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Uploads are refused while less than this many MiB are free (default 512; 0 turns it off).
    pub min_free_mib: Option<u64>,
    /// MiB set aside for the audit log, used only when the disk fills up (default 16).
    pub audit_reserve_mib: Option<u64>,
}

/// A numeric `LOCKBOX_*` variable; an unparsable value is ignored with a warning on stderr.
fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            eprintln!("lockbox: ignoring {name}={v:?}: not a whole number");
            None
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub lockout_threshold: Option<i64>,
    pub lockout_minutes: Option<u64>,
    pub source_failure_limit: Option<u32>,
    pub source_block_minutes: Option<u64>,
    pub min_password_len: Option<usize>,
}

pub struct Settings {
    pub data_dir: PathBuf,
    pub key_file: PathBuf,
    pub file: FileConfig,
}

impl Settings {
    pub fn load(
        config: Option<&Path>,
        data_dir: Option<PathBuf>,
        key_file: Option<PathBuf>,
    ) -> Result<Self> {
        let file: FileConfig = match config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        Ok(Settings {
            data_dir: data_dir
                .or_else(|| file.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            key_file: key_file
                .or_else(|| file.key_file.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_FILE)),
            file,
        })
    }

    pub fn vault_config(&self) -> VaultConfig {
        let mut auth = AuthPolicy::default();
        let a = &self.file.auth;
        if let Some(v) = a.lockout_threshold {
            auth.lockout_threshold = v.max(1);
        }
        if let Some(v) = a.lockout_minutes {
            auth.lockout_duration = Duration::from_secs(v * 60);
        }
        if let Some(v) = a.source_failure_limit {
            auth.source_failure_limit = v.max(1);
        }
        if let Some(v) = a.source_block_minutes {
            auth.source_block = Duration::from_secs(v * 60);
        }
        if let Some(v) = a.min_password_len {
            auth.min_password_len = v.max(8);
        }
        let mut storage = StoragePolicy::default();
        let st = &self.file.storage;
        if let Some(v) = env_u64("LOCKBOX_MIN_FREE_MIB").or(st.min_free_mib) {
            storage.min_free_bytes = v.saturating_mul(1024 * 1024);
        }
        if let Some(v) = env_u64("LOCKBOX_AUDIT_RESERVE_MIB").or(st.audit_reserve_mib) {
            storage.audit_reserve_bytes = v.saturating_mul(1024 * 1024);
        }
        VaultConfig {
            data_dir: self.data_dir.clone(),
            key_file: self.key_file.clone(),
            auth,
            storage,
        }
    }

    pub fn web_config(&self, listen_flag: Option<String>) -> Result<WebConfig> {
        let mut c = WebConfig::default();
        let h = &self.file.https;
        if let Some(l) = listen_flag.or_else(|| h.listen.clone()) {
            c.listen = l;
        }
        c.cert = match (&h.cert_file, &h.key_file) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            _ => anyhow::bail!("[https] needs both cert_file and key_file, or neither for a self-signed certificate"),
        };
        if let Some(v) = h.idle_timeout_minutes {
            c.idle_timeout = Duration::from_secs(v.clamp(1, 24 * 60) * 60);
        }
        if let Some(v) = h.absolute_timeout_hours {
            c.absolute_timeout = Duration::from_secs(v.clamp(1, 7 * 24) * 3600);
        }
        Ok(c)
    }

    pub fn sftp_config(&self) -> SftpConfig {
        let mut c = SftpConfig::default();
        let s = &self.file.sftp;
        if let Some(v) = s.max_connections {
            c.max_connections = v.max(1);
        }
        if let Some(v) = s.max_unauthenticated_per_ip {
            c.max_unauthenticated_per_ip = v.max(1);
        }
        if let Some(v) = s.login_grace_secs {
            c.login_grace = Duration::from_secs(v.max(1));
        }
        if let Some(v) = s.idle_timeout_secs {
            c.idle_timeout = Duration::from_secs(v.max(1));
        }
        c
    }
}
