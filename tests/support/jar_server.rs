//! A file server on loopback for jarURIs: plain HTTP, or HTTPS with a certificate of a test CA. Serves one body
//! at every path and counts the requests; stops when dropped.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct JarServer {
    /// `http://127.0.0.1:PORT` or `https://localhost:PORT`.
    pub base: String,
    requests: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl JarServer {
    /// Serves `body`; with `tls_dir` (tls.crt and tls.key, e.g. from `write_certs`), over TLS.
    pub async fn start(body: Vec<u8>, tls_dir: Option<&Path>) -> JarServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tls_dir.map(|dir| {
            let certs: Vec<_> = rustls_pemfile::certs(&mut std::fs::read(dir.join("tls.crt")).unwrap().as_slice())
                .collect::<Result<_, _>>()
                .unwrap();
            let key = rustls_pemfile::private_key(&mut std::fs::read(dir.join("tls.key")).unwrap().as_slice())
                .unwrap()
                .unwrap();
            let config = rustls::ServerConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let base = match acceptor {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let (requests, stop) = (Arc::new(AtomicUsize::new(0)), CancellationToken::new());
        let body = Bytes::from(body);
        let (counter, stopped) = (requests.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stopped.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let (body, counter, acceptor) = (body.clone(), counter.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |_request| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let body = body.clone();
                        async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(body))) }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            // A client that rejects the certificate ends the handshake: nothing to serve.
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        JarServer { base, requests, stop }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for JarServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
