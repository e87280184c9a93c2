//! The admission webhook: `POST /validate` and `POST /mutate` over TLS.

pub mod admission;
pub mod configuration;
pub mod mutation;
pub mod self_managed;
pub mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::crd::FlinkConfiguration;
use crate::telemetry::metrics::Metrics;
use admission::Endpoint;

/// Largest AdmissionReview accepted; Kubernetes objects are at most ~1.5 MiB, a review holds two.
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// What the handlers share.
pub struct WebhookState {
    /// The operator's default Flink configuration, which specs override.
    pub defaults: FlinkConfiguration,
    pub metrics: Metrics,
}

/// The webhook's routes: exact paths and methods, a body limit, a request timeout, JSON errors.
pub fn router(state: Arc<WebhookState>, body_limit: usize, request_timeout: Duration) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .fallback(|| async {
            json_error(
                StatusCode::NOT_FOUND,
                "no such endpoint: use POST /validate or POST /mutate",
            )
        })
        .method_not_allowed_fallback(|| async { json_error(StatusCode::METHOD_NOT_ALLOWED, "use POST") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(Guard { request_timeout }, guard))
        .with_state(state)
}

/// Limits checked around every request.
#[derive(Clone, Copy)]
struct Guard {
    request_timeout: Duration,
}

/// Bounds the whole request in time (reading the body included), answering with a JSON error like every other
/// failure. A body larger than the limit is refused by `DefaultBodyLimit` once the limit is read, not by its
/// declared length: answering before the body is read makes the server close a connection the client is
/// still writing to, and the client then sees a reset instead of the 413.
async fn guard(State(limits): State<Guard>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => json_error(
            StatusCode::REQUEST_TIMEOUT,
            &format!("request not completed within {:?}", limits.request_timeout),
        ),
    }
}

async fn validate(
    state: State<Arc<WebhookState>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    answer(Endpoint::Validate, &state, body)
}

async fn mutate(
    state: State<Arc<WebhookState>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    answer(Endpoint::Mutate, &state, body)
}

fn answer(
    endpoint: Endpoint,
    state: &WebhookState,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            state
                .metrics
                .webhook_malformed
                .with_label_values(&[endpoint.as_str()])
                .inc();
            return json_error(rejection.status(), &rejection.body_text());
        }
    };
    match admission::decide(endpoint, &body, &state.defaults) {
        Ok(decision) => {
            let allowed = if decision.allowed { "true" } else { "false" };
            state
                .metrics
                .webhook_requests
                .with_label_values(&[endpoint.as_str(), decision.operation, decision.kind, allowed])
                .inc();
            state
                .metrics
                .webhook_duration
                .with_label_values(&[endpoint.as_str(), decision.kind])
                .observe(started.elapsed().as_secs_f64());
            axum::Json(&decision.review).into_response()
        }
        Err(malformed) => {
            state
                .metrics
                .webhook_malformed
                .with_label_values(&[endpoint.as_str()])
                .inc();
            json_error(StatusCode::BAD_REQUEST, &malformed.0)
        }
    }
}

/// An error answer that a client (or a person with curl) can read.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message, "code": status.as_u16()}))).into_response()
}
