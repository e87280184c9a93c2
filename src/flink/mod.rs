//! Flink REST client (first cut: the cluster's configuration endpoint, used as the readiness check).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Debug, thiserror::Error)]
pub enum FlinkError {
    #[error("invalid REST URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("GET {url} failed: {reason}")]
    Request { url: String, reason: String },
    #[error("GET {url} timed out after {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("GET {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url} returned an unreadable body: {reason}")]
    Body { url: String, reason: String },
}

/// A small HTTP client for Flink's REST API; every call has a timeout.
#[derive(Clone)]
pub struct RestClient {
    http: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl RestClient {
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        RestClient {
            http: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }

    /// `GET /config`: answers once the JobManager's REST endpoint is up; gives version and revision.
    pub async fn cluster_info(&self, base: &str) -> Result<BTreeMap<String, String>, FlinkError> {
        let url = format!("{}/config", base.trim_end_matches('/'));
        let uri: hyper::Uri = url.parse().map_err(|e: http::uri::InvalidUri| FlinkError::InvalidUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let call = async {
            let response = self.http.get(uri).await.map_err(|e| FlinkError::Request {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(FlinkError::Status {
                    url: url.clone(),
                    status,
                });
            }
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| FlinkError::Body {
                    url: url.clone(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            let config: serde_json::Value = serde_json::from_slice(&body).map_err(|e| FlinkError::Body {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            Ok(cluster_info_of(&config))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| FlinkError::Timeout {
                url: url.clone(),
                timeout: self.timeout,
            })?
    }
}

/// The `clusterInfo` status entries from Flink's `/config` answer.
pub fn cluster_info_of(config: &serde_json::Value) -> BTreeMap<String, String> {
    ["flink-version", "flink-revision"]
        .into_iter()
        .filter_map(|key| {
            config
                .get(key)
                .and_then(|v| v.as_str())
                .map(|v| (key.to_string(), v.to_string()))
        })
        .collect()
}

/// The REST base URL of a cluster from a template with `{name}`, `{namespace}` and `{port}`.
pub fn rest_url(template: &str, name: &str, namespace: &str, port: i32) -> String {
    template
        .replace("{name}", name)
        .replace("{namespace}", namespace)
        .replace("{port}", &port.to_string())
}

/// In-cluster address of a cluster's REST Service.
pub const DEFAULT_REST_URL_TEMPLATE: &str = "http://{name}-rest.{namespace}.svc:{port}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_template_and_cluster_info() {
        assert_eq!(
            rest_url(DEFAULT_REST_URL_TEMPLATE, "job", "ns", 8081),
            "http://job-rest.ns.svc:8081"
        );
        assert_eq!(
            rest_url("http://127.0.0.1:9000", "job", "ns", 8081),
            "http://127.0.0.1:9000"
        );
        let info = cluster_info_of(&serde_json::json!({"flink-version": "1.20.5", "flink-revision": "abc", "x": 1}));
        assert_eq!(info.get("flink-version").map(String::as_str), Some("1.20.5"));
        assert_eq!(info.len(), 2);
    }

    #[tokio::test]
    async fn unreachable_endpoint_fails_within_the_timeout() {
        // A port nobody listens on: connection refused, well inside the timeout.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = RestClient::new(Duration::from_secs(2));
        let err = client
            .cluster_info(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, FlinkError::Request { .. } | FlinkError::Timeout { .. }),
            "{err}"
        );
        assert!(client.cluster_info("not a url").await.is_err());
    }
}
