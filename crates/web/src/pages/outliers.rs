//! The outliers page: the caller's outliers of one ISO week (the latest week that has any, or the
//! one picked in the week selector), each with its thumbnail, its figure and the stored sentence
//! saying why it was flagged. Only outliers of channels the caller monitors and videos they track
//! are listed (the store's `user_week_outliers`).

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tubewatch_core::ChannelId;
use tubewatch_store::{Outlier, OutlierKind};

use super::views::{compact_number, exact_number};
use super::{PageUser, error_page, render};
use crate::ApiQuery;
use crate::AppState;
use crate::api::outliers::valid_week;
use crate::api::tracking::thumbnail_url;
use crate::error::ApiError;

/// Weeks offered in the selector.
const WEEKS_LISTED: u32 = 26;

#[derive(Debug, Deserialize)]
pub struct WeekQuery {
    week: Option<String>,
}

pub struct OutlierView {
    pub kind: &'static str,
    pub kind_class: &'static str,
    pub video_id: String,
    pub video_title: String,
    pub channel_id: String,
    pub channel_title: String,
    pub thumbnail_url: Option<String>,
    /// The headline figure: `4.2×` or `+35 %`.
    pub figure: String,
    /// What the figure means, in words.
    pub figure_note: String,
    pub explanation: String,
    pub views: (String, String),
}

impl OutlierView {
    fn of(o: &Outlier, channel_title: &str) -> Self {
        let n = &o.outlier;
        let (kind, kind_class) = match n.kind {
            OutlierKind::Channel => ("Above the channel's typical views", "channel"),
            OutlierKind::Thumbnail => ("Jump after a thumbnail change", "thumbnail"),
            OutlierKind::Title => ("Jump after a title change", "title"),
        };
        let (figure, figure_note) = match (n.kind, n.lift) {
            (OutlierKind::Channel, _) | (_, None) => {
                (format!("{:.1}×", n.score), "views ÷ the channel's median at the same age".to_owned())
            }
            (_, Some(lift)) => {
                let interval = match (n.ci_low, n.ci_high) {
                    (Some(lo), Some(hi)) => format!(" (interval {} to {})", percent(lo), percent(hi)),
                    _ => String::new(),
                };
                (
                    percent(lift),
                    format!(
                        "views after the change vs. what the video's own trend and its channel's decay predicted{interval}"
                    ),
                )
            }
        };
        Self {
            kind,
            kind_class,
            video_id: n.video_id.to_string(),
            video_title: o.video_title.clone(),
            channel_id: n.channel_id.to_string(),
            channel_title: channel_title.to_owned(),
            thumbnail_url: n.thumb_key.as_deref().and_then(thumbnail_url),
            figure,
            figure_note,
            explanation: n.explanation.clone(),
            views: (compact_number(n.views), exact_number(n.views)),
        }
    }
}

/// `0.35` → `+35 %`.
fn percent(x: f64) -> String {
    let p = (x * 100.0).round();
    if p > 0.0 { format!("+{p:.0} %") } else { format!("{p:.0} %") }
}

#[derive(askama::Template)]
#[template(path = "outliers.html")]
struct OutliersTemplate {
    weeks: Vec<String>,
    week: Option<String>,
    outliers: Vec<OutlierView>,
    /// The selector asked for a week that is not a week.
    bad_week: bool,
    signed_in: bool,
    csrf: String,
}

#[tracing::instrument(skip_all, fields(user_id = %user.caller.user.id))]
pub async fn outliers_page(State(state): State<AppState>, user: PageUser, query: ApiQuery<WeekQuery>) -> Response {
    match outliers_template(&state, user, query.0).await {
        Ok(template) => render(&template),
        Err(e) => error_page(&e),
    }
}

async fn outliers_template(state: &AppState, user: PageUser, query: WeekQuery) -> Result<OutliersTemplate, ApiError> {
    let service = state.service();
    let asked = query.week.filter(|w| !w.is_empty());
    let bad_week = asked.as_deref().is_some_and(|w| !valid_week(w));
    let found = service.weekly_outliers(user.caller.user.id, asked.filter(|w| valid_week(w)), WEEKS_LISTED).await?;
    let mut outliers = Vec::new();
    let mut titles: HashMap<ChannelId, String> = HashMap::new();
    for o in &found.outliers {
        let channel = &o.outlier.channel_id;
        if !titles.contains_key(channel) {
            titles.insert(channel.clone(), service.channel_title(channel).await?);
        }
        outliers.push(OutlierView::of(o, &titles[channel]));
    }
    Ok(OutliersTemplate { weeks: found.weeks, week: found.week, outliers, bad_week, signed_in: true, csrf: user.csrf })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(percent(0.354), "+35 %");
        assert_eq!(percent(-0.1), "-10 %");
    }
}
