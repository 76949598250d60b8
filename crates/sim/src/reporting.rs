//! The YouTube Reporting API for the simulated channel owner: `reportTypes.list`, `jobs.create`
//! / `jobs.list`, `jobs.reports.list` / `jobs.reports.get` and the report download, serving the
//! reach report `channel_reach_basic_a1` from the world's truth ([`World::reach_day`]).
//!
//! Jobs live in the simulator's state, one per (owner channel, report type), stamped with the
//! virtual time they were created. The report for Pacific day D becomes available at
//! `max(job created + 48 h, end of D + 24 h)`, for every D from 30 days before the job's creation
//! day on; a report stays listed 60 days after it was made (30 days for the backfilled days
//! before the job existed), as YouTube documents. Requests need an access token with an
//! analytics scope; the Reporting API costs no Data API quota.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use tubewatch_core::ChannelId;

use crate::api::{ApiError, Caller, caller};
use crate::books::{Job, ReportingBook};
use crate::respond::json_response;
use crate::rng::{self, tag};
use crate::sim::{Shared, SimInner};
use crate::world::{Channel, pacific_date, pacific_day, pacific_midnight};

/// The one report type served.
pub const REACH_REPORT_TYPE: &str = "channel_reach_basic_a1";
const REACH_HEADER: &str = "date,channel_id,video_id,video_thumbnail_impressions,video_thumbnail_impressions_ctr\n";
/// Scopes that may read the reach report.
const ANALYTICS_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/yt-analytics.readonly",
    "https://www.googleapis.com/auth/yt-analytics-monetary.readonly",
];
/// Days before a new job's creation day that its first reports cover.
const BACKFILL_DAYS: i64 = 30;
/// Delay from a job's creation to its first reports.
const FIRST_REPORTS_AFTER_HOURS: i64 = 48;
/// Delay from the end of a day to its report, once the job is running.
const DAILY_REPORT_LAG_HOURS: i64 = 24;
const KEEP_DAYS: i64 = 60;
const KEEP_BACKFILL_DAYS: i64 = 30;
const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

/// One report a job has made by now: the data of Pacific day `day`.
#[derive(Debug, Clone, Copy)]
struct DayReport {
    day: i64,
    created: DateTime<Utc>,
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Job {
    /// The reports available at `now`, oldest data first. The availability of day D is
    /// `max(created + 48 h, end of D + 24 h)`, which never decreases with D.
    fn reports(&self, now: DateTime<Utc>) -> Vec<DayReport> {
        let creation_day = pacific_day(self.created.timestamp());
        let first_reports = self.created + Duration::hours(FIRST_REPORTS_AFTER_HOURS);
        let mut out = Vec::new();
        for day in creation_day - BACKFILL_DAYS.. {
            let created = first_reports.max(at(pacific_midnight(day + 1)) + Duration::hours(DAILY_REPORT_LAG_HOURS));
            if created > now {
                break;
            }
            let keep = if day < creation_day { KEEP_BACKFILL_DAYS } else { KEEP_DAYS };
            if now < created + Duration::days(keep) {
                out.push(DayReport { day, created });
            }
        }
        out
    }

    fn resource(&self) -> Value {
        json!({
            "id": self.id,
            "reportTypeId": self.report_type_id,
            "name": self.name,
            "createTime": timestamp(self.created),
        })
    }
}

/// A numeric report id, stable for (job, day), like YouTube's (`4317112913`).
fn report_id(seed: u64, job: &Job, day: i64) -> String {
    let h = rng::hash(seed, &[tag("report"), rng::hash(seed, &[tag(&job.id)]), day as u64]);
    (1_000_000_000 + h % 9_000_000_000).to_string()
}

fn report_resource(sim: &SimInner, job: &Job, report: DayReport) -> Value {
    let id = report_id(sim.world.seed(), job, report.day);
    let channel = job.owner.as_str().strip_prefix("UC").unwrap_or(job.owner.as_str());
    json!({
        "id": id,
        "jobId": job.id,
        "startTime": timestamp(at(pacific_midnight(report.day))),
        "endTime": timestamp(at(pacific_midnight(report.day + 1))),
        "createTime": timestamp(report.created),
        "downloadUrl": format!("{}/v1/media/CHANNEL/{channel}/jobs/{}/reports/{id}?alt=media", sim.base(), job.id),
    })
}

/// Google's error body as the newer APIs write it: `status` and an `ErrorInfo` detail.
fn rpc_error(code: u16, status: &str, reason: Option<&str>, message: &str) -> ApiError {
    let mut error = json!({"code": code, "message": message, "status": status});
    if let Some(reason) = reason {
        error["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": "youtubereporting.googleapis.com"}
        }]);
    }
    ApiError(StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST), json!({ "error": error }))
}

fn invalid_argument(message: &str) -> ApiError {
    rpc_error(400, "INVALID_ARGUMENT", None, message)
}

fn not_found(message: &str) -> ApiError {
    rpc_error(404, "NOT_FOUND", None, message)
}

/// The owner's channel: the caller must hold a live access token with an analytics scope. It is
/// the channel the grant was made for, else the simulated user's first of `oauth.user_channels`
/// (the world's first channel when that list is empty).
fn owner(sim: &SimInner, headers: &HeaderMap) -> Result<ChannelId, ApiError> {
    let (scope, granted) = match caller(sim, headers, None, true)? {
        Caller::User { scope, channel, .. } => (scope, channel),
        Caller::Key(_) => return Err(rpc_error(401, "UNAUTHENTICATED", None, "Login Required.")),
    };
    if !scope.split(' ').any(|s| ANALYTICS_SCOPES.contains(&s)) {
        return Err(rpc_error(
            403,
            "PERMISSION_DENIED",
            Some("ACCESS_TOKEN_SCOPE_INSUFFICIENT"),
            "Request had insufficient authentication scopes.",
        ));
    }
    let channels = sim.world.channels();
    granted
        .or_else(|| sim.config.oauth.user_channels.first().cloned())
        .or_else(|| channels.first().map(|c| c.id.clone()))
        .ok_or_else(|| rpc_error(403, "PERMISSION_DENIED", None, "The caller does not have permission"))
}

fn book(sim: &SimInner) -> std::sync::MutexGuard<'_, ReportingBook> {
    sim.reporting.lock().unwrap_or_else(|e| e.into_inner())
}

fn owned_job(sim: &SimInner, owner: &ChannelId, job_id: &str) -> Result<Job, ApiError> {
    book(sim)
        .jobs
        .iter()
        .find(|j| j.id == job_id && &j.owner == owner)
        .cloned()
        .ok_or_else(|| not_found("Requested entity was not found."))
}

/// One page of `items` under `field`, with `pageSize` / `pageToken` (an offset); no field at
/// all when there is nothing, as Google answers an empty list with `{}`.
fn page(q: &HashMap<String, String>, field: &str, items: Vec<Value>) -> Result<Value, ApiError> {
    let size = match q.get("pageSize") {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => s.parse::<usize>().map_err(|_| invalid_argument("Invalid pageSize."))?.clamp(1, MAX_PAGE_SIZE),
    };
    let offset = match q.get("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|o| *o < items.len())
            .ok_or_else(|| invalid_argument("Invalid pageToken."))?,
    };
    let mut out = serde_json::Map::new();
    let end = (offset + size).min(items.len());
    if end > offset {
        out.insert(field.to_owned(), Value::Array(items[offset..end].to_vec()));
    }
    if end < items.len() {
        out.insert("nextPageToken".to_owned(), Value::String(end.to_string()));
    }
    Ok(Value::Object(out))
}

fn respond(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/reportTypes`
pub(crate) async fn report_types(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    respond(
        owner(&sim, &headers)
            .and_then(|_| page(&q, "reportTypes", vec![json!({"id": REACH_REPORT_TYPE, "name": "Reach basic"})])),
    )
}

/// `GET /v1/jobs`
pub(crate) async fn jobs_list(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    respond(owner(&sim, &headers).and_then(|owner| {
        let jobs = book(&sim).jobs.iter().filter(|j| j.owner == owner).map(Job::resource).collect();
        page(&q, "jobs", jobs)
    }))
}

/// `POST /v1/jobs` with `{"reportTypeId": …, "name": …}`; a second job for the same report
/// type is refused with 409, as YouTube does.
pub(crate) async fn jobs_create(State(sim): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let run = || -> Result<Value, ApiError> {
        let owner = owner(&sim, &headers)?;
        let request: Value =
            serde_json::from_slice(&body).map_err(|_| invalid_argument("Invalid JSON payload received."))?;
        let text = |k: &str| request.get(k).and_then(Value::as_str).map(str::trim).unwrap_or_default().to_owned();
        let (report_type_id, name) = (text("reportTypeId"), text("name"));
        if name.is_empty() || name.chars().count() > 100 {
            return Err(invalid_argument("The job needs a name of at most 100 characters."));
        }
        if report_type_id != REACH_REPORT_TYPE {
            return Err(invalid_argument(&format!("Report type {report_type_id:?} not found.")));
        }
        let now = sim.now();
        let mut book = book(&sim);
        if book.jobs.iter().any(|j| j.owner == owner && j.report_type_id == report_type_id) {
            return Err(rpc_error(409, "ALREADY_EXISTS", None, "Job for this report type already exists."));
        }
        let h = rng::hash(sim.world.seed(), &[tag("reporting-job"), book.jobs.len() as u64]);
        let g = rng::mix64(h);
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            0x8000 | (g >> 48) & 0x3fff,
            g & 0xffff_ffff_ffff
        );
        let job = Job { id, owner, report_type_id, name, created: now };
        tracing::info!(job_id = %job.id, owner = %job.owner, "reporting job {} created", job.id);
        let resource = job.resource();
        book.jobs.push(job);
        Ok(resource)
    };
    respond(run())
}

fn time_filter(q: &HashMap<String, String>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    q.get(name)
        .map(|s| DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()))
        .transpose()
        .map_err(|_| invalid_argument(&format!("Invalid value at '{name}': not an RFC 3339 timestamp.")))
}

/// `GET /v1/jobs/{jobId}/reports?createdAfter=&startTimeAtOrAfter=&startTimeBefore=`: newest first.
pub(crate) async fn reports_list(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let run = || -> Result<Value, ApiError> {
        let owner = owner(&sim, &headers)?;
        let job = owned_job(&sim, &owner, &job_id)?;
        let created_after = time_filter(&q, "createdAfter")?;
        let start_from = time_filter(&q, "startTimeAtOrAfter")?;
        let start_before = time_filter(&q, "startTimeBefore")?;
        let mut reports: Vec<DayReport> = job
            .reports(sim.now())
            .into_iter()
            .filter(|r| {
                let start = at(pacific_midnight(r.day));
                created_after.is_none_or(|t| r.created > t)
                    && start_from.is_none_or(|t| start >= t)
                    && start_before.is_none_or(|t| start < t)
            })
            .collect();
        reports.sort_by(|a, b| b.created.cmp(&a.created).then(b.day.cmp(&a.day)));
        page(&q, "reports", reports.into_iter().map(|r| report_resource(&sim, &job, r)).collect())
    };
    respond(run())
}

fn find_report(sim: &SimInner, job: &Job, report_id: &str) -> Result<DayReport, ApiError> {
    job.reports(sim.now())
        .into_iter()
        .find(|r| self::report_id(sim.world.seed(), job, r.day) == report_id)
        .ok_or_else(|| not_found("Requested entity was not found."))
}

/// `GET /v1/jobs/{jobId}/reports/{reportId}`
pub(crate) async fn report_get(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Path((job_id, report_id)): Path<(String, String)>,
) -> Response {
    let run = || -> Result<Value, ApiError> {
        let owner = owner(&sim, &headers)?;
        let job = owned_job(&sim, &owner, &job_id)?;
        Ok(report_resource(&sim, &job, find_report(&sim, &job, &report_id)?))
    };
    respond(run())
}

/// The reach report of Pacific day `day`: one row per video of the channel with impressions
/// that day (videos without any are left out, as YouTube leaves out all-zero rows).
fn reach_csv(sim: &SimInner, channel: &Channel, day: i64) -> String {
    let now = sim.now();
    let date = pacific_date(day).format("%Y%m%d").to_string();
    let videos = sim.world.videos_between(channel, DateTime::<Utc>::MIN_UTC, at(pacific_midnight(day + 1)));
    let muts = sim.read_muts();
    let mut csv = String::from(REACH_HEADER);
    for video in videos {
        if let Some(reach) = sim.world.reach_day(&video, &muts, day, now).filter(|r| r.impressions > 0) {
            csv.push_str(&format!("{date},{},{},{},{}\n", channel.id, video.id, reach.impressions, reach.ctr));
        }
    }
    csv
}

/// `GET /v1/media/CHANNEL/{channel without UC}/jobs/{jobId}/reports/{reportId}?alt=media`: the CSV.
pub(crate) async fn media(State(sim): State<Shared>, headers: HeaderMap, Path(resource): Path<String>) -> Response {
    let run = || -> Result<String, ApiError> {
        let owner = owner(&sim, &headers)?;
        let parts: Vec<&str> = resource.split('/').collect();
        let ["CHANNEL", channel, "jobs", job_id, "reports", report_id] = parts[..] else {
            return Err(not_found("Requested entity was not found."));
        };
        if owner.as_str().strip_prefix("UC") != Some(channel) {
            return Err(not_found("Requested entity was not found."));
        }
        let job = owned_job(&sim, &owner, job_id)?;
        let report = find_report(&sim, &job, report_id)?;
        let channel = sim.world.channel_by_id(owner.as_str()).ok_or_else(|| not_found("No such channel."))?;
        Ok(reach_csv(&sim, channel, report.day))
    };
    match run() {
        Ok(csv) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reports_start_48_hours_after_the_job_with_30_days_of_backfill_then_one_a_day() {
        let created: DateTime<Utc> = "2026-03-02T18:30:00Z".parse().unwrap();
        let job = Job {
            id: "j".into(),
            owner: ChannelId::parse("UCabcdefghijklmnopqrstuv").unwrap(),
            report_type_id: REACH_REPORT_TYPE.into(),
            name: "n".into(),
            created,
        };
        assert!(job.reports(created + Duration::hours(47)).is_empty());
        let first = job.reports(created + Duration::hours(48));
        let creation_day = pacific_day(created.timestamp());
        // The 30 days before, the creation day (ended 24 h before), and nothing later.
        assert_eq!(first.first().unwrap().day, creation_day - 30);
        assert_eq!(first.last().unwrap().day, creation_day);
        assert!(first.iter().all(|r| r.created == created + Duration::hours(48)));
        let day_after = at(pacific_midnight(creation_day + 2)) + Duration::hours(24);
        let later = job.reports(day_after);
        assert_eq!(later.last().unwrap().day, creation_day + 1);
        assert_eq!(later.last().unwrap().created, day_after);
        // Backfilled days go after 30 days, the others after 60.
        let after_40_days = job.reports(created + Duration::days(40));
        assert_eq!(after_40_days.first().unwrap().day, creation_day);
        assert_eq!(pacific_date(creation_day), chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
    }
}
