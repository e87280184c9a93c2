//! The webhook's floor: the least an admission webhook over TLS can do. It terminates TLS with the
//! operator's rustls settings (ring provider, TLS 1.3 and 1.2, ALPN http/1.1), serves HTTP/1.1 with
//! keep-alive through axum, parses the AdmissionReview JSON and answers a fixed "allowed" review.
//! Whatever the operator costs beyond this is its own (routing layers, limits, decoding into typed
//! reviews, validation, patches, metrics).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The operator's TLS settings (see `src/webhook/tls.rs`) with a fixed certificate.
pub fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let cert_pem = std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let key_pem = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let chain = rustls_pemfile::certs(&mut &cert_pem[..]).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut &key_pem[..])?.context("no private key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `POST /validate` and `POST /mutate`, both answering the same fixed review.
pub fn router() -> Router {
    Router::new()
        .route("/validate", post(answer))
        .route("/mutate", post(answer))
}

async fn answer(body: Bytes) -> Response {
    // Parse the whole review, as any webhook must, and echo its uid as the API server requires.
    let Ok(review) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    axum::Json(allowed(&review)).into_response()
}

/// The fixed "allowed" answer to `review`.
fn allowed(review: &Value) -> Value {
    let uid = review.pointer("/request/uid").cloned().unwrap_or(Value::Null);
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": true}
    })
}

/// What `answer` computes, as bytes (for the in-process instruction count).
pub fn answer_bytes(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(review) => serde_json::to_vec(&allowed(&review)).unwrap_or_default(),
        Err(_) => b"not JSON".to_vec(),
    }
}

/// Accepts TLS connections on `listener` and serves `router()` on each, with keep-alive, until the process ends.
pub async fn serve(listener: TcpListener, config: Arc<ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let service = TowerToHyperService::new(router());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, service) = (acceptor.clone(), service.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
