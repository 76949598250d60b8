//! The weekly outliers over the API: `GET /api/v1/outliers[?week=2026-W10]` lists what the weekly
//! runs found in the channels and videos the caller tracks (the same findings as their digest),
//! for the latest week with findings unless a week is asked for, with the weeks available.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tubewatch_store::Outlier;
use utoipa::{IntoParams, ToSchema};

use super::tracking::thumbnail_url;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ErrorBody};
use crate::{ApiQuery, AppState};

/// How many past weeks the list of available weeks goes back.
const WEEKS_LISTED: u32 = 52;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WeekQuery {
    /// ISO week, e.g. `2026-W10` (default: the latest week with findings).
    pub week: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutlierView {
    pub video_id: String,
    pub video_title: String,
    pub channel_id: String,
    /// `channel`, `thumbnail` or `title`.
    pub kind: String,
    pub week: String,
    /// Channel outliers: views ÷ the channel's typical views at the same age. Change outliers:
    /// 1 + lift.
    pub score: f64,
    /// Change outliers: the estimated lift of the view rate (0.25 = +25 %) and its interval.
    pub lift: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Channel outliers: the age (hours) the video was judged at.
    pub age_hours: Option<f64>,
    pub views: i64,
    pub changed_at: Option<DateTime<Utc>>,
    /// Why it was flagged, e.g. "4.2× this channel's typical views at 3 days".
    pub explanation: String,
    pub found_at: DateTime<Utc>,
    /// The archived thumbnail (an authorised URL of this API).
    pub thumbnail_url: Option<String>,
}

impl From<Outlier> for OutlierView {
    fn from(o: Outlier) -> Self {
        let n = o.outlier;
        Self {
            video_id: n.video_id.to_string(),
            video_title: o.video_title,
            channel_id: n.channel_id.to_string(),
            kind: n.kind.as_str().to_owned(),
            week: n.week,
            score: n.score,
            lift: n.lift,
            ci_low: n.ci_low,
            ci_high: n.ci_high,
            age_hours: n.age_hours,
            views: n.views,
            changed_at: n.changed_at,
            explanation: n.explanation,
            found_at: n.found_at,
            thumbnail_url: n.thumb_key.as_deref().and_then(thumbnail_url),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutlierList {
    /// The week listed (`null` when there are no findings yet).
    pub week: Option<String>,
    /// Weeks with findings for the caller, newest first (at most a year).
    pub weeks: Vec<String>,
    pub items: Vec<OutlierView>,
}

/// `2026-W10`: four digits, `-W`, a week 01–53.
pub fn valid_week(week: &str) -> bool {
    let b = week.as_bytes();
    b.len() == 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && &b[4..6] == b"-W"
        && b[6..].iter().all(u8::is_ascii_digit)
        && matches!(week[6..].parse::<u8>(), Ok(1..=53))
}

/// The weekly outliers of what the caller tracks.
#[utoipa::path(get, path = "/api/v1/outliers", tag = "outliers", params(WeekQuery),
    security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = OutlierList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_outliers(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiQuery(query): ApiQuery<WeekQuery>,
) -> Result<Json<OutlierList>, ApiError> {
    if let Some(w) = query.week.as_ref().filter(|w| !valid_week(w)) {
        return Err(ApiError::bad_request("bad_input", format!("week must look like 2026-W10, not {w:?}")));
    }
    let found = state.service().weekly_outliers(caller.user.id, query.week, WEEKS_LISTED).await?;
    let items = found.outliers.into_iter().map(OutlierView::from).collect();
    Ok(Json(OutlierList { week: found.week, weeks: found.weeks, items }))
}

#[cfg(test)]
mod tests {
    use super::valid_week;

    #[test]
    fn weeks_are_validated() {
        for ok in ["2026-W01", "2026-W10", "2020-W53"] {
            assert!(valid_week(ok), "{ok}");
        }
        for bad in ["", "2026-W00", "2026-W54", "2026-10", "2026W10", "2026-w10", "2026-W1", "２０２６-W10", "2026-W1x"]
        {
            assert!(!valid_week(bad), "{bad}");
        }
    }
}
