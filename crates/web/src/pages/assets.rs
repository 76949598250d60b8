//! Static assets compiled into the binary, so the UI works offline and from no CDN.
//!
//! `uPlot.iife.min.js` and `uPlot.min.css` are uPlot 1.6.32 (MIT, © Leon Sorokin; licence in
//! `assets/uPlot.LICENSE`), copied unmodified from the npm package's `dist/`.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error_page;
use crate::error::ApiError;

/// (name, content type, bytes).
const ASSETS: &[(&str, &str, &str)] = &[
    ("uPlot.iife.min.js", "text/javascript; charset=utf-8", include_str!("../../assets/uPlot.iife.min.js")),
    ("uPlot.min.css", "text/css; charset=utf-8", include_str!("../../assets/uPlot.min.css")),
    ("uPlot.LICENSE.txt", "text/plain; charset=utf-8", include_str!("../../assets/uPlot.LICENSE")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../assets/app.js")),
    ("chart.js", "text/javascript; charset=utf-8", include_str!("../../assets/chart.js")),
    ("band_chart.js", "text/javascript; charset=utf-8", include_str!("../../assets/band_chart.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("../../assets/app.css")),
];

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=3600")],
            *body,
        )
            .into_response(),
        None => error_page(&ApiError::not_found("asset")),
    }
}
