//! The plain-HTTP admin server: `/healthz`, `/readyz`, `/metrics`.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::health::Health;
use super::metrics::Metrics;
use crate::webhook::json_error;

#[derive(Clone)]
struct AdminState {
    health: Health,
    metrics: Metrics,
}

pub fn router(health: Health, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "no such endpoint: /healthz, /readyz or /metrics") })
        .method_not_allowed_fallback(|| async { json_error(StatusCode::METHOD_NOT_ALLOWED, "use GET") })
        .with_state(AdminState { health, metrics })
}

async fn healthz(State(state): State<AdminState>) -> Response {
    let report = state.health.report();
    let status = if report.live {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let report = state.health.report();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

async fn metrics_text(State(state): State<AdminState>) -> Response {
    match state.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot render metrics: {e}"),
        ),
    }
}
