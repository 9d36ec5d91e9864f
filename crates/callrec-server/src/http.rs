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
    let mut text = state.metrics.render(spooled);
    if let Some(p) = &state.pipeline {
        text.push_str(&delivery_metrics(&state, p).await);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
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

/// `http.api_token`, when set, required as `Authorization: Bearer`.
pub(crate) async fn require_token(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
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

/// The catalog's recordings by status and the delivery worker's counters.
async fn delivery_metrics(state: &AppState, p: &crate::pipeline::Pipeline) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    match p.catalog.count_by_status().await {
        Ok(counts) => {
            let _ = writeln!(
                s,
                "# HELP callrec_catalog_recordings Recordings in the catalog, by status.\n# TYPE callrec_catalog_recordings gauge"
            );
            for (status, n) in counts {
                let _ = writeln!(s, "callrec_catalog_recordings{{status=\"{status}\"}} {n}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count recordings in the catalog"),
    }
    let d = p.delivery.stats();
    let dropped = state
        .catalog_events_dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(
        s,
        "# HELP callrec_deliveries_total Recordings delivered and verified in storage.\n# TYPE callrec_deliveries_total counter\ncallrec_deliveries_total {}",
        d.delivered
    );
    let _ = writeln!(
        s,
        "# HELP callrec_delivery_failures_total Upload attempts that failed (each is retried with backoff).\n# TYPE callrec_delivery_failures_total counter\ncallrec_delivery_failures_total {}",
        d.failed_attempts
    );
    // Prometheus histogram: cumulative buckets in seconds.
    let _ = writeln!(
        s,
        "# HELP callrec_upload_duration_seconds Time to upload a recording and its metadata and verify them in storage (successful uploads).\n# TYPE callrec_upload_duration_seconds histogram"
    );
    let mut cumulative = 0;
    for (k, n) in d.upload_buckets.iter().enumerate() {
        cumulative += n;
        let le = callrec_storage::delivery::UPLOAD_BUCKETS_MS
            .get(k)
            .map(|ms| format!("{}", *ms as f64 / 1000.0))
            .unwrap_or_else(|| "+Inf".into());
        let _ = writeln!(
            s,
            "callrec_upload_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        s,
        "callrec_upload_duration_seconds_sum {}\ncallrec_upload_duration_seconds_count {cumulative}",
        d.upload_ms_sum as f64 / 1000.0
    );
    let _ = writeln!(
        s,
        "# HELP callrec_delivery_notifications_dropped_total Notifications dropped by a full delivery queue (found by the next scan).\n# TYPE callrec_delivery_notifications_dropped_total counter\ncallrec_delivery_notifications_dropped_total {}",
        d.dropped_notifications
    );
    let _ = writeln!(
        s,
        "# HELP callrec_catalog_events_dropped_total In-call catalog events dropped by a full catalog queue (kept in the metadata JSON).\n# TYPE callrec_catalog_events_dropped_total counter\ncallrec_catalog_events_dropped_total {dropped}"
    );
    s
}
