//! The HTTP endpoints of the recording server: `/healthz`, `/readyz`,
//! `/metrics` (Prometheus text) and `GET /api/v1/calls` (live calls).
//!
//! Other routers (the API crate's) are merged in by the binary. This module
//! never blocks the media path: it only reads atomics and a short-held lock.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::{AppState, LiveCall};

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/v1/calls", get(calls))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .with_state(state)
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let spooled = std::fs::read_dir(state.config.spool_dir())
        .map(|d| d.count())
        .unwrap_or(0);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(spooled),
    )
        .into_response()
}

async fn calls(State(state): State<Arc<AppState>>) -> Json<Vec<LiveCall>> {
    let mut calls: Vec<LiveCall> = state
        .live
        .lock()
        .expect("live lock")
        .values()
        .cloned()
        .collect();
    calls.sort_by_key(|c| c.started_at);
    Json(calls)
}

async fn require_token(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.config.http.api_token {
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t == token.expose());
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                "send Authorization: Bearer <http.api_token>\n",
            )
                .into_response();
        }
    }
    next.run(req).await
}
