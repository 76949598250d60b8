//! YouTube Reporting API (bulk reports) for a channel owner: report types, reporting jobs (found
//! or created once per report type), the reports a job has produced, and the download of one
//! report, with the strict parser of the reach report `channel_reach_basic_a1` (daily thumbnail
//! impressions and their click-through rate per video, in US Pacific days).
//!
//! Every call carries the owner's OAuth access token, granted
//! [`SCOPE_YT_ANALYTICS_READONLY`](crate::SCOPE_YT_ANALYTICS_READONLY). A report's `downloadUrl`
//! comes from the server, so only its path is used, on the configured reporting host: the bearer
//! token never goes to a host the response chose.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use reqwest::header;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tubewatch_core::{ChannelId, VideoId};
use url::Url;

use crate::YoutubeError;
use crate::client::{RequestSpec, YoutubeClient, endpoint};
use crate::data_api::json_error;
use crate::google_error::ok_or_google_error;

/// The reach report: `date,channel_id,video_id,video_thumbnail_impressions,video_thumbnail_impressions_ctr`.
pub const REACH_REPORT_TYPE: &str = "channel_reach_basic_a1";

/// The columns of [`REACH_REPORT_TYPE`], each exactly once, in any order.
pub const REACH_COLUMNS: [&str; 5] =
    ["date", "channel_id", "video_id", "video_thumbnail_impressions", "video_thumbnail_impressions_ctr"];

/// A guard against a server that keeps answering with a next page.
const MAX_PAGES: usize = 100;

/// A report type (`reportTypes.list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportType {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub deprecate_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub system_managed: bool,
}

/// A reporting job: YouTube makes one report a day for its report type while it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportingJob {
    pub id: String,
    pub report_type_id: String,
    #[serde(default)]
    pub name: String,
    pub create_time: DateTime<Utc>,
    /// Set when the report type is deprecated: no reports after this time.
    #[serde(default)]
    pub expire_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub system_managed: bool,
}

/// One report of a job: the data of `[start_time, end_time)` (one Pacific day for daily
/// reports). A later report with the same `start_time` (a backfill) replaces an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub id: String,
    pub job_id: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub create_time: DateTime<Utc>,
    #[serde(default)]
    pub job_expire_time: Option<DateTime<Utc>>,
    pub download_url: String,
}

/// Which reports `jobs.reports.list` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    /// Only reports created after this instant (backfills included): what is new since the last poll.
    pub created_after: Option<DateTime<Utc>>,
    /// Only reports whose data starts at or after this instant.
    pub start_time_at_or_after: Option<DateTime<Utc>>,
    /// Only reports whose data starts before this instant.
    pub start_time_before: Option<DateTime<Utc>>,
}

/// One row of a reach report: a video's thumbnail impressions on one Pacific day, and the share
/// of them that became views (clicks ÷ impressions, in [0, 1]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReachRow {
    pub date: NaiveDate,
    pub channel_id: ChannelId,
    pub video_id: VideoId,
    pub impressions: u64,
    pub ctr: f64,
}

/// Why a reach report's CSV was refused. Line numbers count from 1 (the header).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReachCsvError {
    #[error("the report is empty: not even a header line")]
    Empty,
    /// The body does not end with a line break: the download stopped early.
    #[error("the report is cut off in line {line}")]
    Truncated { line: u64 },
    #[error("the header has no {0} column")]
    MissingColumn(&'static str),
    #[error("the header has an unknown column {0:?}")]
    UnknownColumn(String),
    #[error("the header has the column {0} twice")]
    DuplicateColumn(&'static str),
    #[error("line {line} has {got} fields where the header has {expected}")]
    FieldCount { line: u64, expected: u64, got: u64 },
    #[error("line {line}: {column} {value:?} is not valid")]
    BadValue { line: u64, column: &'static str, value: String },
    #[error("line {line}: click-through rate {value} is outside [0, 1]")]
    CtrOutOfRange { line: u64, value: f64 },
    #[error("line {line} repeats video {video_id} on {date}")]
    DuplicateRow { line: u64, date: NaiveDate, video_id: VideoId },
    #[error("line {line} is not valid CSV: {detail}")]
    Syntax { line: u64, detail: String },
}

impl From<ReachCsvError> for YoutubeError {
    fn from(e: ReachCsvError) -> Self {
        match e {
            ReachCsvError::Truncated { .. } => YoutubeError::truncated(format!("reach report: {e}")),
            _ => YoutubeError::malformed(format!("reach report: {e}")),
        }
    }
}

fn csv_error(e: &csv::Error) -> ReachCsvError {
    let line = e.position().map_or(0, csv::Position::line);
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            ReachCsvError::FieldCount { line, expected: *expected_len, got: *len }
        }
        _ => ReachCsvError::Syntax { line, detail: e.to_string() },
    }
}

/// Where each of [`REACH_COLUMNS`] is in the header.
fn column_positions(header: &csv::ByteRecord) -> Result<[usize; 5], ReachCsvError> {
    let mut positions = [None; 5];
    for (i, name) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(name);
        let Some(k) = REACH_COLUMNS.iter().position(|c| *c == name) else {
            return Err(ReachCsvError::UnknownColumn(name.into_owned()));
        };
        if positions[k].replace(i).is_some() {
            return Err(ReachCsvError::DuplicateColumn(REACH_COLUMNS[k]));
        }
    }
    let mut out = [0; 5];
    for (k, position) in positions.iter().enumerate() {
        out[k] = position.ok_or(ReachCsvError::MissingColumn(REACH_COLUMNS[k]))?;
    }
    Ok(out)
}

/// `YYYYMMDD`, as the Reporting API writes the `date` dimension.
fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, d) = (s[..4].parse().ok()?, s[4..6].parse().ok()?, s[6..].parse().ok()?);
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Parses a `channel_reach_basic_a1` report. Strict: the header must name exactly the five
/// columns, every value must be valid, each (date, video) appears once, and the body must end
/// with a line break (a body cut mid-line could otherwise pass for a shorter number). A header
/// alone is a valid report without rows.
pub fn parse_reach_csv(body: &[u8]) -> Result<Vec<ReachRow>, ReachCsvError> {
    if body.is_empty() {
        return Err(ReachCsvError::Empty);
    }
    if !body.ends_with(b"\n") {
        let line = body.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        return Err(ReachCsvError::Truncated { line });
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(body);
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => return Err(ReachCsvError::Empty),
        Some(record) => record.map_err(|e| csv_error(&e))?,
    };
    let [date_at, channel_at, video_at, impressions_at, ctr_at] = column_positions(&header)?;
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|e| csv_error(&e))?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |at: usize, column: &'static str| -> Result<&str, ReachCsvError> {
            let raw = record.get(at).unwrap_or_default();
            std::str::from_utf8(raw).map_err(|_| ReachCsvError::BadValue {
                line,
                column,
                value: String::from_utf8_lossy(raw).into_owned(),
            })
        };
        let bad = |column: &'static str, value: &str| ReachCsvError::BadValue { line, column, value: value.to_owned() };
        let date_text = field(date_at, "date")?;
        let date = parse_date(date_text).ok_or_else(|| bad("date", date_text))?;
        let channel_text = field(channel_at, "channel_id")?;
        let channel_id = ChannelId::parse(channel_text).map_err(|_| bad("channel_id", channel_text))?;
        let video_text = field(video_at, "video_id")?;
        let video_id = VideoId::parse(video_text).map_err(|_| bad("video_id", video_text))?;
        let impressions_text = field(impressions_at, "video_thumbnail_impressions")?;
        let impressions = Some(impressions_text)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("video_thumbnail_impressions", impressions_text))?;
        let ctr_text = field(ctr_at, "video_thumbnail_impressions_ctr")?;
        let ctr = ctr_text
            .parse::<f64>()
            .ok()
            .filter(|c| c.is_finite())
            .ok_or_else(|| bad("video_thumbnail_impressions_ctr", ctr_text))?;
        if !(0.0..=1.0).contains(&ctr) {
            return Err(ReachCsvError::CtrOutOfRange { line, value: ctr });
        }
        if !seen.insert((date, video_id.clone())) {
            return Err(ReachCsvError::DuplicateRow { line, date, video_id });
        }
        rows.push(ReachRow { date, channel_id, video_id, impressions, ctr });
    }
    Ok(rows)
}

/// A list page: the items sit under `reportTypes`, `jobs` or `reports`, and the whole field is
/// left out when there are none (an empty list answers `{}`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: DeserializeOwned"))]
struct Page<T> {
    #[serde(default, alias = "reportTypes", alias = "jobs", alias = "reports")]
    items: Vec<T>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// Server-made ids (job ids are UUIDs, report ids numbers) that go into a URL path.
fn check_id(id: &str, what: &str) -> Result<(), YoutubeError> {
    let ok =
        !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(YoutubeError::malformed(format!("not a {what} id: {id:?}"))) }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl YoutubeClient {
    fn reporting_request(&self, method: reqwest::Method, url: Url, token: &str) -> Result<RequestSpec, YoutubeError> {
        RequestSpec::new(method, url).header(header::AUTHORIZATION, &format!("Bearer {token}"))
    }

    /// GETs `path` page after page (`pageToken` ← `nextPageToken`) and gathers the items.
    async fn reporting_list<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        query: &[(&str, String)],
        what: &str,
    ) -> Result<Vec<T>, YoutubeError> {
        let mut items = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = endpoint(&self.config.reporting_base, path);
            {
                let mut pairs = url.query_pairs_mut();
                for (k, v) in query {
                    pairs.append_pair(k, v);
                }
                if let Some(t) = &page_token {
                    pairs.append_pair("pageToken", t);
                }
            }
            let spec = self.reporting_request(reqwest::Method::GET, url, token)?;
            let page: Page<T> = self
                .execute(spec, |raw| {
                    ok_or_google_error(raw.status, &raw.body)?;
                    serde_json::from_slice(&raw.body).map_err(|e| json_error(what, &e))
                })
                .await?;
            items.extend(page.items);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => page_token = Some(t),
                None => return Ok(items),
            }
        }
        Err(YoutubeError::malformed(format!("{what}: more than {MAX_PAGES} pages")))
    }

    /// `reportTypes.list`: the report types a job can be created for.
    pub async fn report_types(&self, access_token: &str) -> Result<Vec<ReportType>, YoutubeError> {
        self.reporting_list(access_token, "/v1/reportTypes", &[], "reportTypes.list").await
    }

    /// `jobs.list`: the owner's reporting jobs.
    pub async fn reporting_jobs(&self, access_token: &str) -> Result<Vec<ReportingJob>, YoutubeError> {
        let jobs: Vec<ReportingJob> = self.reporting_list(access_token, "/v1/jobs", &[], "jobs.list").await?;
        for job in &jobs {
            check_id(&job.id, "reporting job")?;
        }
        Ok(jobs)
    }

    /// `jobs.create`. YouTube refuses a second job for the same report type (409): prefer
    /// [`Self::ensure_reporting_job`].
    pub async fn create_reporting_job(
        &self,
        access_token: &str,
        report_type_id: &str,
        name: &str,
    ) -> Result<ReportingJob, YoutubeError> {
        let url = endpoint(&self.config.reporting_base, "/v1/jobs");
        let body = serde_json::json!({"reportTypeId": report_type_id, "name": name});
        let spec = self.reporting_request(reqwest::Method::POST, url, access_token)?.json_body(&body);
        let job: ReportingJob = self
            .execute(spec, |raw| {
                ok_or_google_error(raw.status, &raw.body)?;
                serde_json::from_slice(&raw.body).map_err(|e| json_error("jobs.create", &e))
            })
            .await?;
        check_id(&job.id, "reporting job")?;
        Ok(job)
    }

    /// The owner's job for `report_type_id`, created (named `name`) only if there is none, so
    /// that reports keep coming from one job. A job that expires (its report type deprecated)
    /// is taken only when no other is left.
    #[tracing::instrument(skip_all, fields(report_type_id = %report_type_id))]
    pub async fn ensure_reporting_job(
        &self,
        access_token: &str,
        report_type_id: &str,
        name: &str,
    ) -> Result<ReportingJob, YoutubeError> {
        if let Some(job) = self.existing_job(access_token, report_type_id).await? {
            return Ok(job);
        }
        match self.create_reporting_job(access_token, report_type_id, name).await {
            // Another worker created it between our list and our create.
            Err(YoutubeError::Http { status: Some(409), .. }) => {
                self.existing_job(access_token, report_type_id).await?.ok_or_else(|| {
                    YoutubeError::malformed(format!(
                        "jobs.create said a {report_type_id} job exists; jobs.list has none"
                    ))
                })
            }
            created => {
                if let Ok(job) = &created {
                    tracing::info!(job_id = %job.id, "created reporting job {} for {report_type_id}", job.id);
                }
                created
            }
        }
    }

    async fn existing_job(
        &self,
        access_token: &str,
        report_type_id: &str,
    ) -> Result<Option<ReportingJob>, YoutubeError> {
        Ok(self
            .reporting_jobs(access_token)
            .await?
            .into_iter()
            .filter(|j| j.report_type_id == report_type_id && !j.system_managed)
            .max_by_key(|j| j.expire_time.unwrap_or(DateTime::<Utc>::MAX_UTC)))
    }

    /// `jobs.reports.list` for a job, every page, sorted by the start of their data and then by
    /// creation (so a backfill comes after the report it replaces).
    #[tracing::instrument(skip_all, fields(job_id = %job_id))]
    pub async fn reports(
        &self,
        access_token: &str,
        job_id: &str,
        filter: &ReportFilter,
    ) -> Result<Vec<Report>, YoutubeError> {
        check_id(job_id, "reporting job")?;
        let mut query = Vec::new();
        if let Some(t) = filter.created_after {
            query.push(("createdAfter", timestamp(t)));
        }
        if let Some(t) = filter.start_time_at_or_after {
            query.push(("startTimeAtOrAfter", timestamp(t)));
        }
        if let Some(t) = filter.start_time_before {
            query.push(("startTimeBefore", timestamp(t)));
        }
        let path = format!("/v1/jobs/{job_id}/reports");
        let mut reports: Vec<Report> = self.reporting_list(access_token, &path, &query, "jobs.reports.list").await?;
        reports.sort_by(|a, b| a.start_time.cmp(&b.start_time).then(a.create_time.cmp(&b.create_time)));
        Ok(reports)
    }

    /// The report's `downloadUrl` path and query on the configured reporting host.
    fn download_url(&self, report: &Report) -> Result<Url, YoutubeError> {
        let given = Url::parse(&report.download_url)
            .map_err(|e| YoutubeError::malformed(format!("report {} has no valid downloadUrl: {e}", report.id)))?;
        let base = &self.config.reporting_base;
        let path = given.path().strip_prefix(base.path().trim_end_matches('/')).unwrap_or(given.path());
        if !path.starts_with("/v1/media/") || path.split('/').any(|s| s == "..") {
            return Err(YoutubeError::malformed(format!("report {} downloadUrl is not a media URL", report.id)));
        }
        let mut url = endpoint(base, path);
        url.set_query(given.query());
        Ok(url)
    }

    /// GETs a report's download and reads the body with `read` (inside the retry loop, so a
    /// body that `read` finds cut short is fetched again).
    async fn fetch_report<T>(
        &self,
        access_token: &str,
        report: &Report,
        read: impl Fn(Vec<u8>) -> Result<T, YoutubeError>,
    ) -> Result<T, YoutubeError> {
        let spec = self.reporting_request(reqwest::Method::GET, self.download_url(report)?, access_token)?;
        self.execute(spec, |raw| {
            ok_or_google_error(raw.status, &raw.body)?;
            read(raw.body)
        })
        .await
    }

    /// Downloads a report's raw bytes (gzip is negotiated and undone by the HTTP client).
    pub async fn download_report(&self, access_token: &str, report: &Report) -> Result<Vec<u8>, YoutubeError> {
        self.fetch_report(access_token, report, Ok).await
    }

    /// Downloads a `channel_reach_basic_a1` report and parses it. A body cut short is retried
    /// like any transient failure.
    #[tracing::instrument(skip_all, fields(report_id = %report.id))]
    pub async fn reach_rows(&self, access_token: &str, report: &Report) -> Result<Vec<ReachRow>, YoutubeError> {
        self.fetch_report(access_token, report, |body| Ok(parse_reach_csv(&body)?)).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEADER: &str = "date,channel_id,video_id,video_thumbnail_impressions,video_thumbnail_impressions_ctr\n";

    #[test]
    fn dates_are_eight_digits_of_a_real_day() {
        assert_eq!(parse_date("20260105"), NaiveDate::from_ymd_opt(2026, 1, 5));
        for bad in ["2026015", "2026-01-05", "20260230", "2026010a", "+2026010", ""] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_alone_is_an_empty_report_and_columns_may_come_in_any_order() {
        assert_eq!(parse_reach_csv(HEADER.as_bytes()).unwrap(), vec![]);
        let body = "video_thumbnail_impressions_ctr,video_id,date,video_thumbnail_impressions,channel_id\n\
                    0.05,AAAAAAAAAA1,20260105,40,UCabcdefghijklmnopqrstuv\n";
        let rows = parse_reach_csv(body.as_bytes()).unwrap();
        assert_eq!((rows[0].impressions, rows[0].ctr, rows[0].video_id.as_str()), (40, 0.05, "AAAAAAAAAA1"));
    }

    #[test]
    fn ids_in_paths_are_checked() {
        assert!(check_id("1c20da45-0604-4d60-85db-925989df1db6", "job").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a b"] {
            assert!(check_id(bad, "job").is_err(), "{bad}");
        }
    }
}
