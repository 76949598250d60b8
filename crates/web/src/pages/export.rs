//! A video's series as downloads: CSV (one row per measurement, then nothing else, so any
//! spreadsheet opens it) and JSON (the API's series document, with the change marks).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use tubewatch_core::VideoId;

use super::{PageUser, error_page, series_of};
use crate::AppState;
use crate::api::tracking::Series;
use crate::path_ids::video_param;

fn attachment(video_id: &VideoId, extension: &str) -> String {
    // Video ids are `[A-Za-z0-9_-]{11}`, safe inside the quotes.
    format!("attachment; filename=\"tubewatch-{video_id}-series.{extension}\"")
}

/// `slot,measured_at,views`, times in RFC 3339 UTC.
pub fn to_csv(series: &Series) -> String {
    let mut out = String::from("slot,measured_at,views\n");
    for p in &series.points {
        out.push_str(&format!(
            "{},{},{}\n",
            p.slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            p.measured_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            p.views
        ));
    }
    out
}

#[tracing::instrument(skip_all, fields(video_id = %video_id))]
pub async fn series_csv(State(state): State<AppState>, user: PageUser, Path(video_id): Path<String>) -> Response {
    let id = match video_param(&video_id) {
        Ok(id) => id,
        Err(e) => return error_page(&e),
    };
    match series_of(&state, &user.caller, &id).await {
        Ok(series) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, attachment(&id, "csv")),
            ],
            to_csv(&series),
        )
            .into_response(),
        Err(e) => error_page(&e),
    }
}

#[tracing::instrument(skip_all, fields(video_id = %video_id))]
pub async fn series_json(State(state): State<AppState>, user: PageUser, Path(video_id): Path<String>) -> Response {
    let id = match video_param(&video_id) {
        Ok(id) => id,
        Err(e) => return error_page(&e),
    };
    match series_of(&state, &user.caller, &id).await {
        Ok(series) => {
            let disposition = attachment(&id, "json");
            ([(header::CONTENT_DISPOSITION, disposition)], axum::Json(series)).into_response()
        }
        Err(e) => error_page(&e),
    }
}
