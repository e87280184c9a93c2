//! A fresh CA and a serving certificate signed by it (for local runs, tests, and self-managed webhooks).

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// PEM texts of a CA certificate and a serving certificate with its key.
pub struct ServingCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// Generates a CA and a serving certificate for `dns` names and `ips`, valid for `days`.
/// Without names it is issued for `localhost` and `127.0.0.1`.
pub fn generate(dns: &[String], ips: &[IpAddr], days: i64) -> Result<ServingCerts, CertsError> {
    let now = OffsetDateTime::now_utc();
    // Tolerate clocks that are slightly behind ours.
    let not_before = now - Duration::hours(1);

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = name("flink-operator webhook CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = not_before;
    ca_params.not_after = now + Duration::days(days.saturating_mul(2));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut sans: Vec<String> = dns.to_vec();
    sans.extend(ips.iter().map(IpAddr::to_string));
    if sans.is_empty() {
        sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    }
    let common_name = sans[0].clone();
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name = name(&common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = not_before;
    params.not_after = now + Duration::days(days);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    Ok(ServingCerts {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

impl ServingCerts {
    /// Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600) into `dir`, each replaced atomically.
    pub fn write_to(&self, dir: &Path) -> Result<(), CertsError> {
        std::fs::create_dir_all(dir).map_err(|source| CertsError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        write_atomic(&dir.join("ca.crt"), &self.ca_pem, 0o644)?;
        write_atomic(&dir.join("tls.key"), &self.key_pem, 0o600)?;
        write_atomic(&dir.join("tls.crt"), &self.cert_pem, 0o644)?;
        Ok(())
    }
}

fn write_atomic(path: &Path, text: &str, mode: u32) -> Result<(), CertsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| CertsError::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::tls::{CertPaths, certified_key};

    #[test]
    fn generated_pair_loads_and_matches() {
        let certs = generate(&["webhook.test".into()], &["127.0.0.1".parse().unwrap()], 30).unwrap();
        assert!(certs.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let paths = CertPaths {
            cert: "tls.crt".into(),
            key: "tls.key".into(),
        };
        certified_key(&paths, certs.cert_pem.as_bytes(), certs.key_pem.as_bytes()).unwrap();
        // A key from another pair is refused.
        let other = generate(&[], &[], 30).unwrap();
        assert!(certified_key(&paths, certs.cert_pem.as_bytes(), other.key_pem.as_bytes()).is_err());
    }
}
