//! A fresh CA and a serving certificate signed by it (for local runs, tests, and self-managed webhooks).

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// PEM texts of a CA certificate and a serving certificate with its key.
pub struct ServingCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA that can sign serving certificates: its certificate and private key (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot parse a PEM certificate")]
    Parse,
}

/// Generates a CA and a serving certificate for `dns` names and `ips`, valid for `days`.
/// Without names it is issued for `localhost` and `127.0.0.1`.
pub fn generate(dns: &[String], ips: &[IpAddr], days: i64) -> Result<ServingCerts, CertsError> {
    let ca = new_ca(days.saturating_mul(2))?;
    let (cert_pem, key_pem) = issue_serving(&ca, dns, ips, days)?;
    Ok(ServingCerts {
        ca_pem: ca.cert_pem,
        cert_pem,
        key_pem,
    })
}

/// A fresh self-signed CA valid for `days`.
pub fn new_ca(days: i64) -> Result<Ca, CertsError> {
    let now = OffsetDateTime::now_utc();
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = name("flink-operator webhook CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Tolerate clocks that are slightly behind ours.
    ca_params.not_before = now - Duration::hours(1);
    ca_params.not_after = now + Duration::days(days);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    Ok(Ca {
        cert_pem: ca.pem(),
        key_pem: ca.key().serialize_pem(),
    })
}

/// A serving certificate for `dns` names and `ips` signed by `ca`, valid for `days`; returns (certificate, key).
/// Without names it is issued for `localhost` and `127.0.0.1`.
pub fn issue_serving(ca: &Ca, dns: &[String], ips: &[IpAddr], days: i64) -> Result<(String, String), CertsError> {
    let now = OffsetDateTime::now_utc();
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, KeyPair::from_pem(&ca.key_pem)?)?;
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
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// When the first certificate in `pem` expires.
pub fn not_after(pem: &str) -> Result<OffsetDateTime, CertsError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| CertsError::Parse)?;
    let cert = block.parse_x509().map_err(|_| CertsError::Parse)?;
    Ok(cert.validity().not_after.to_datetime())
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
