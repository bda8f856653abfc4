//! TLS for the HTTPS door: rustls with the ring provider, TLS 1.3 and 1.2 with AEAD suites only
//! (rustls implements no CBC, RC4 or static-RSA suites). The certificate is the operator's, or a
//! self-signed one generated on first run and kept in the data directory so browsers' exceptions and
//! pinned fingerprints survive restarts.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use sha2::{Digest, Sha256};

use crate::error::WebError;

/// Where the certificate came from, for the startup banner.
#[derive(Debug, Clone)]
pub struct CertificateReport {
    pub cert_file: PathBuf,
    pub generated: bool,
    /// SHA-256 of the leaf certificate (DER), colon-separated hex, as browsers display it.
    pub sha256_fingerprint: String,
}

/// Validity of the generated certificate. Browsers cap publicly trusted certificates at 398 days;
/// keeping under that avoids a second warning on top of "self-signed".
const SELF_SIGNED_DAYS: i64 = 397;

fn write_private(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WebError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(WebError::io(format!("cannot create {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(WebError::io(format!("cannot write {}", path.display())))
}

fn generate_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), WebError> {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(|e| WebError::Tls(format!("certificate parameters: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Lockbox self-signed");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(SELF_SIGNED_DAYS);
    let key =
        rcgen::KeyPair::generate().map_err(|e| WebError::Tls(format!("key generation: {e}")))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| WebError::Tls(format!("self-signing: {e}")))?;
    if let Some(dir) = cert_path.parent() {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(WebError::io(format!("cannot create {}", dir.display())))?;
    }
    write_private(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_private(cert_path, cert.pem().as_bytes(), 0o644)
}

/// Loads the configured certificate, or the generated one (creating it on first run).
pub fn load(
    data_dir: &Path,
    configured: Option<(&Path, &Path)>,
) -> Result<(Arc<ServerConfig>, CertificateReport), WebError> {
    let (cert_path, key_path, generated) = match configured {
        Some((c, k)) => (c.to_path_buf(), k.to_path_buf(), false),
        None => {
            let dir = data_dir.join("https");
            let cert = dir.join("cert.pem");
            let key = dir.join("key.pem");
            let generated = !cert.exists();
            if generated {
                generate_self_signed(&cert, &key)?;
            }
            (cert, key, generated)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            WebError::Tls(format!(
                "cannot read certificate {}: {e}",
                cert_path.display()
            ))
        })?;
    let Some(leaf) = certs.first() else {
        return Err(WebError::Tls(format!(
            "no certificate found in {}",
            cert_path.display()
        )));
    };
    let sha256_fingerprint = Sha256::digest(leaf.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        WebError::Tls(format!(
            "cannot read private key {}: {e}",
            key_path.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| WebError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            WebError::Tls(format!(
                "certificate and key do not form a usable pair: {e}"
            ))
        })?;
    // HTTP/1.1 only: curl 7.88 (Debian 12, common on partners' servers) reports an HTTP/2 stream error
    // instead of the status when a server answers an upload early (a 409 for a wrong offset, a 413),
    // and h2's extra machinery buys nothing for large sequential transfers.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((
        Arc::new(config),
        CertificateReport {
            cert_file: cert_path,
            generated,
            sha256_fingerprint,
        },
    ))
}
