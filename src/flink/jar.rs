//! Fetching a FlinkSessionJob's jar (`spec.job.jarURI`) so the operator can upload it to the session cluster:
//! `file://` from the operator's file system, `http://` and `https://` (the system's CA certificates plus an
//! optional extra CA file), or none at all (an empty jar: the entry class is already on the cluster's classpath).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::client::error_chain;

/// Largest jar fetched (Flink's own upload limit, `rest.server.max-content-length`, defaults to 100 MiB).
pub const MAX_JAR_BYTES: usize = 512 * 1024 * 1024;

/// An empty jar: running it with an entry class runs a class already on the cluster's classpath.
const EMPTY_JAR: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

#[derive(Debug, thiserror::Error)]
pub enum JarError {
    #[error("cannot read the CA file {path}: {reason}")]
    ReadCaFile { path: String, reason: String },
    #[error("cannot build the TLS client: {0}")]
    BuildTls(String),
}

/// A jar as fetched: the file name Flink is given, and its bytes.
#[derive(Debug)]
pub struct Jar {
    pub file_name: String,
    pub content: Bytes,
}

/// Fetches jars; one client (and connection pool) for the whole operator.
#[derive(Clone)]
pub struct JarFetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl JarFetcher {
    /// Trusts the system's CA certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured), plus those in
    /// `extra_ca_file` (PEM) when given.
    pub fn new(extra_ca_file: Option<&Path>, timeout: Duration) -> Result<JarFetcher, JarError> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are not fatal: an extra CA file (or plain HTTP) may be all that is used.
        let system = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(system.certs);
        if let Some(path) = extra_ca_file {
            let read_error = |reason: String| JarError::ReadCaFile {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
            let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<_, _>>()
                .map_err(|e| read_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(read_error("no PEM certificate in it".into()));
            }
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(read_error("no usable CA certificate in it".into()));
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
            .with_safe_default_protocol_versions()
            .map_err(|e| JarError::BuildTls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(JarFetcher {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        })
    }

    /// The jar of `uri`; `None` gives the empty jar. Errors are messages for the resource's status.
    pub async fn fetch(&self, uri: Option<&str>) -> Result<Jar, String> {
        let Some(uri) = uri else {
            return Ok(Jar {
                file_name: "classpath-entry.jar".into(),
                content: Bytes::from_static(EMPTY_JAR),
            });
        };
        let file_name = file_name(uri);
        match Scheme::of(uri) {
            Scheme::File(path) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| e.to_string())?;
                Ok(Jar {
                    file_name,
                    content: Bytes::from(bytes),
                })
            }
            Scheme::Http => Ok(Jar {
                file_name,
                content: self.get(uri).await?,
            }),
            Scheme::Unsupported => Err(
                "the operator uploads session job jars itself: use file:// (the operator's \
                 file system), http:// or https://, or leave jarURI out to run an entry class on the cluster's \
                 classpath"
                    .into(),
            ),
        }
    }

    async fn get(&self, uri: &str) -> Result<Bytes, String> {
        let parsed: hyper::Uri = uri.parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
        let download = async {
            let response = self.client.get(parsed).await.map_err(|e| error_chain(&e))?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_JAR_BYTES)
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(self.timeout, download)
            .await
            .map_err(|_| format!("timed out after {} s", self.timeout.as_secs()))?
    }
}

/// How a jarURI is fetched.
#[derive(Debug, PartialEq)]
enum Scheme<'a> {
    File(&'a str),
    Http,
    Unsupported,
}

impl Scheme<'_> {
    fn of(uri: &str) -> Scheme<'_> {
        if let Some(path) = uri.strip_prefix("file://") {
            Scheme::File(path)
        } else if uri.starts_with("http://") || uri.starts_with("https://") {
            Scheme::Http
        } else {
            Scheme::Unsupported
        }
    }
}

/// The last path segment (without query), or `job.jar`.
fn file_name(uri: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or(uri);
    path.rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && !n.contains(':'))
        .unwrap_or("job.jar")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(Scheme::of("file:///opt/job.jar"), Scheme::File("/opt/job.jar"));
        assert_eq!(Scheme::of("http://host/job.jar"), Scheme::Http);
        assert_eq!(Scheme::of("https://host:8443/a/job.jar"), Scheme::Http);
        assert_eq!(Scheme::of("local:///opt/flink/usrlib/job.jar"), Scheme::Unsupported);
        assert_eq!(Scheme::of("s3://bucket/job.jar"), Scheme::Unsupported);
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name("https://host/a/b/job-1.0.jar"), "job-1.0.jar");
        assert_eq!(file_name("https://host/a/job.jar?token=x#frag"), "job.jar");
        assert_eq!(file_name("https://host/"), "job.jar");
        assert_eq!(file_name("https://host"), "host");
        assert_eq!(file_name("file:///tmp/x.jar"), "x.jar");
    }

    #[tokio::test]
    async fn empty_and_file_and_unsupported() {
        let fetcher = JarFetcher::new(None, Duration::from_secs(5)).unwrap();
        let empty = fetcher.fetch(None).await.unwrap();
        assert_eq!(empty.file_name, "classpath-entry.jar");
        assert_eq!(&empty.content[..4], b"PK\x05\x06", "an empty zip archive");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.jar");
        std::fs::write(&path, b"jar bytes").unwrap();
        let jar = fetcher
            .fetch(Some(&format!("file://{}", path.display())))
            .await
            .unwrap();
        assert_eq!(
            (jar.file_name.as_str(), jar.content.as_ref()),
            ("job.jar", &b"jar bytes"[..])
        );
        let missing = fetcher.fetch(Some("file:///nonexistent/job.jar")).await.unwrap_err();
        assert!(missing.contains("No such file"), "{missing}");
        let unsupported = fetcher.fetch(Some("s3://bucket/job.jar")).await.unwrap_err();
        assert!(unsupported.contains("https://"), "{unsupported}");
    }

    #[test]
    fn extra_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, "not a certificate").unwrap();
        let Err(e) = JarFetcher::new(Some(&path), Duration::from_secs(5)) else {
            panic!("accepted a CA file without certificates");
        };
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let Err(e) = JarFetcher::new(Some(&dir.path().join("missing.crt")), Duration::from_secs(5)) else {
            panic!("accepted a missing CA file");
        };
        assert!(e.to_string().contains("missing.crt"), "{e}");
        let ca = crate::certs::generate(&["localhost".into()], &[], 1).unwrap();
        std::fs::write(&path, &ca.ca_pem).unwrap();
        JarFetcher::new(Some(&path), Duration::from_secs(5)).unwrap();
    }
}
