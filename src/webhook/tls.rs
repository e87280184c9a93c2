//! Serving certificate for the webhook, reloaded from disk when the files change.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("no PEM certificate in {0}")]
    NoCertificate(PathBuf),
    #[error("no PEM private key in {0}")]
    NoPrivateKey(PathBuf),
    #[error("cannot parse PEM in {path}: {source}")]
    ParsePem { path: PathBuf, source: std::io::Error },
    #[error("unusable private key in {path}: {source}")]
    UnusableKey { path: PathBuf, source: rustls::Error },
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot build the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Where the serving certificate and key live.
#[derive(Clone, Debug)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The current serving certificate; swapped in place on reload, so open listeners pick it up
/// at the next handshake.
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertStore")
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

impl CertStore {
    pub fn new(key: CertifiedKey) -> Self {
        CertStore {
            current: RwLock::new(Arc::new(key)),
        }
    }

    fn replace(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

/// Parses a certificate chain and private key (PEM) into a checked rustls key.
pub fn certified_key(paths: &CertPaths, cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::ParsePem {
            path: paths.cert.clone(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(paths.cert.clone()));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|source| TlsError::ParsePem {
            path: paths.key.clone(),
            source,
        })?
        .ok_or_else(|| TlsError::NoPrivateKey(paths.key.clone()))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|source| TlsError::UnusableKey {
        path: paths.key.clone(),
        source,
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|_| TlsError::KeyMismatch {
        cert: paths.cert.clone(),
        key: paths.key.clone(),
    })?;
    Ok(certified)
}

/// Fingerprint of the files' contents, to notice any change (including a Secret volume's symlink swap).
fn fingerprint(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(cert_pem);
    hasher.update([0]);
    hasher.update(key_pem);
    hasher.finalize().into()
}

/// A loaded certificate: the store that serves it, the rustls configuration using the store, and the
/// fingerprint of the files it came from.
pub struct Loaded {
    pub store: Arc<CertStore>,
    pub config: Arc<ServerConfig>,
    pub fingerprint: [u8; 32],
}

/// Loads the certificate and key from disk.
pub fn load(paths: &CertPaths) -> Result<Loaded, TlsError> {
    let cert_pem = read(&paths.cert)?;
    let key_pem = read(&paths.key)?;
    let store = Arc::new(CertStore::new(certified_key(paths, &cert_pem, &key_pem)?));
    let config = server_config(store.clone())?;
    Ok(Loaded {
        store,
        config,
        fingerprint: fingerprint(&cert_pem, &key_pem),
    })
}

/// TLS 1.2 and 1.3 only, HTTP/1.1, certificate from `store`.
pub fn server_config(store: Arc<CertStore>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Polls the files every `interval` and swaps in a changed certificate. A half-written or mismatched
/// pair is skipped (the old certificate keeps serving) and retried at the next poll.
pub async fn reload_on_change(
    store: Arc<CertStore>,
    paths: CertPaths,
    mut loaded: [u8; 32],
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let (Ok(cert_pem), Ok(key_pem)) = (read(&paths.cert), read(&paths.key)) else {
            warn!(cert = %paths.cert.display(), "cannot read the serving certificate; keeping the current one");
            continue;
        };
        let seen = fingerprint(&cert_pem, &key_pem);
        if seen == loaded {
            continue;
        }
        match certified_key(&paths, &cert_pem, &key_pem) {
            Ok(key) => {
                store.replace(key);
                loaded = seen;
                info!(cert = %paths.cert.display(), "serving certificate reloaded");
            }
            Err(e) => warn!(error = %e, "new serving certificate not usable yet; keeping the current one"),
        }
    }
}
