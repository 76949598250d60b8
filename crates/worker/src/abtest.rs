//! A/B tests as users start and steer them: connecting a YouTube account (OAuth with PKCE, the
//! tokens sealed at rest), access tokens refreshed on expiry (a refused refresh marks the grant
//! revoked and pauses the user's tests), disconnecting (revoke at Google), creating a test
//! (variants validated and normalised, ownership checked, the balanced schedule and the power
//! estimate fixed up front) and stopping one early. The swaps and the wrap-up are the job's
//! (`abtest_job.rs`); this module is what the API and the CLI call.

use std::io::Cursor;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};
use tubewatch_core::abtest::{
    AbError, AbPeriod, AnalysisConfig, ExpectedTraffic, IMPRESSION_SHARE_OF_VIEWS, MAX_VARIANTS, MIN_VARIANTS,
    PowerEstimate, ScheduleRequest, balanced_schedule, ctr_standard_error, detection_probability, naive_daily_schedule,
    pacific_day_schedule, power_estimate,
};
use tubewatch_core::reach::{ReachPlan, ReachPrecision, planned_precision};
use tubewatch_core::{ChannelId, Clock, Slot, UserId, VideoId};
use tubewatch_store::{
    AbDesign, AbTestDetail, AbTestId, AbTestKind, AbTestPeriod, AbTestState, AbVariant, ConnectionState, FinalAction,
    NewAbTest, NewYoutubeConnection, Store, StoreError, TargetKind, ViewsRecord, YoutubeConnection,
};
use tubewatch_youtube::{
    AuthorizationRequest, ErrorKind, OAuthClient, PerceptualHash, ThumbnailSize, YoutubeClient, YoutubeError,
};

use crate::blobs::Blobs;
use crate::token_crypto::{TokenCryptoError, TokenKeyring, TokenPurpose};

/// Data API units of a write (`thumbnails.set`, `videos.update`) and of a read (`videos.list`).
pub const WRITE_UNITS: i64 = 50;
pub const READ_UNITS: i64 = 1;
/// YouTube's limit on titles, in characters.
pub const MAX_TITLE_CHARS: usize = 100;
/// YouTube's thumbnail size, and the upload limit we encode under.
pub const THUMB_WIDTH: u32 = 1280;
pub const THUMB_HEIGHT: u32 = 720;
pub const THUMB_MAX_BYTES: usize = 2 * 1024 * 1024;

/// Limits on uploaded images, checked before anything is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Largest accepted upload in bytes.
    pub max_bytes: usize,
    /// Largest accepted width or height.
    pub max_side: u32,
    /// Largest accepted width × height: a small file declaring a huge canvas is a
    /// decompression bomb.
    pub max_pixels: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self { max_bytes: 10 * 1024 * 1024, max_side: 8192, max_pixels: 40_000_000 }
    }
}

/// What A/B tests need beyond the tracking pipeline: the OAuth app, the token keys and the
/// analysis settings. Result emails go through the pipeline's mailer (the digests' mail path).
#[derive(Debug, Clone)]
pub struct AbTestServices {
    pub oauth: OAuthClient,
    pub keyring: Arc<TokenKeyring>,
    pub analysis: AnalysisConfig,
    pub upload_limits: UploadLimits,
    /// A swap made later than this after its period began leaves the period out of the analysis.
    pub swap_tolerance: Duration,
    /// Link to the product in result emails (e.g. `https://tubewatch.example`).
    pub public_url: Option<String>,
}

impl AbTestServices {
    pub fn new(oauth: OAuthClient, keyring: TokenKeyring) -> Self {
        Self {
            oauth,
            keyring: Arc::new(keyring),
            analysis: AnalysisConfig::default(),
            upload_limits: UploadLimits::default(),
            swap_tolerance: Duration::minutes(10),
            public_url: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AbTestError {
    #[error("{0}")]
    BadInput(String),
    #[error("upload {index}: {reason}")]
    BadImage { index: usize, reason: String },
    #[error("no YouTube account is connected")]
    NotConnected,
    #[error("the YouTube connection was revoked or has expired ({0}); connect the account again")]
    Revoked(String),
    #[error("video {0} is not on the connected channel {1}")]
    NotOwner(VideoId, ChannelId),
    #[error("video {0} was not found on YouTube")]
    NoSuchVideo(VideoId),
    #[error("no such A/B test: {0}")]
    NoSuchTest(AbTestId),
    #[error("the test has already ended")]
    AlreadyEnded,
    #[error("the Data API quota is spent for today; try again after midnight Pacific time")]
    QuotaExceeded,
    #[error("YouTube could not be reached just now ({0}); try again")]
    Youtube(YoutubeError),
    #[error("stored token cannot be opened: {0}")]
    Crypto(#[from] TokenCryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl AbTestError {
    /// A stable machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput(_) => "bad_input",
            Self::BadImage { .. } => "bad_image",
            Self::NotConnected => "not_connected",
            Self::Revoked(_) => "connection_revoked",
            Self::NotOwner(..) => "not_owner",
            Self::NoSuchVideo(_) => "no_such_video",
            Self::NoSuchTest(_) => "no_such_test",
            Self::AlreadyEnded => "already_ended",
            Self::QuotaExceeded => "quota_exceeded",
            Self::Youtube(_) => "youtube_unavailable",
            Self::Crypto(_) | Self::Store(_) | Self::Other(_) => "internal",
        }
    }

    fn from_youtube(e: YoutubeError, video: &VideoId) -> Self {
        match e.kind() {
            ErrorKind::QuotaExceeded => Self::QuotaExceeded,
            ErrorKind::NotFound | ErrorKind::Unavailable => Self::NoSuchVideo(video.clone()),
            _ => Self::Youtube(e),
        }
    }
}

/// A new test as the user asks for it.
#[derive(Debug, Clone)]
pub struct CreateAbTest {
    pub video: VideoId,
    /// Uploaded images (JPEG or PNG): none, or 2–4.
    pub thumbnails: Vec<Vec<u8>>,
    /// Titles: none, or 2–4 (as many as thumbnails when both are given).
    pub titles: Vec<String>,
    pub duration: Duration,
    pub rotation: Duration,
    pub final_action: FinalAction,
    /// Seed of the schedule's randomisation; `None`: random.
    pub seed: Option<u64>,
    pub design: AbDesign,
    /// Stop as soon as the always-valid verdict is decided (looked at every hour).
    pub sequential: bool,
}

impl CreateAbTest {
    /// The defaults: 14 days, a swap every 12 hours, apply the winner.
    pub fn new(video: VideoId) -> Self {
        Self {
            video,
            thumbnails: Vec::new(),
            titles: Vec::new(),
            duration: Duration::days(14),
            rotation: Duration::hours(12),
            final_action: FinalAction::ApplyWinner,
            seed: None,
            design: AbDesign::Balanced,
            sequential: false,
        }
    }
}

/// The power estimate stored with a test (and shown in the preview), with the traffic it
/// assumed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPower {
    pub traffic: ExpectedTraffic,
    pub estimate: PowerEstimate,
    /// Where the traffic figure came from.
    pub basis: String,
}

/// A thumbnail ready to upload: a JPEG at 1280×720 under 2 MB, and its perceptual hash (to
/// recognise it live, whatever size YouTube serves).
#[derive(Debug, Clone)]
pub struct PreparedThumbnail {
    pub jpeg: Vec<u8>,
    pub phash: PerceptualHash,
}

/// Runs image work (decoding, scaling, encoding) on the blocking pool, at most one job per core
/// at a time whatever the number of requests: each decode may take up to `max_pixels` × 4 bytes,
/// so their number is bounded as well as their size.
async fn image_work<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
    });
    let _slot = slots.acquire().await?;
    tokio::task::spawn_blocking(work).await.map_err(|e| anyhow::anyhow!("image task failed: {e}"))
}

/// Validates an upload and normalises it. The format is sniffed and the declared dimensions
/// read from the header before anything is decoded, so a decompression bomb is refused without
/// allocating its canvas; decoding itself runs under `image::Limits` as a second guard.
pub fn prepare_thumbnail(bytes: &[u8], limits: &UploadLimits) -> Result<PreparedThumbnail, String> {
    if bytes.len() > limits.max_bytes {
        return Err(format!("{} bytes is over the {} byte limit", bytes.len(), limits.max_bytes));
    }
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    match reader.format() {
        Some(ImageFormat::Jpeg | ImageFormat::Png) => {}
        _ => return Err("not a JPEG or PNG image".into()),
    }
    let (w, h) = reader.into_dimensions().map_err(|e| format!("unreadable image header: {e}"))?;
    if w == 0 || h == 0 || w > limits.max_side || h > limits.max_side || u64::from(w) * u64::from(h) > limits.max_pixels
    {
        return Err(format!(
            "{w}×{h} pixels is over the limit ({} per side, {} in all)",
            limits.max_side, limits.max_pixels
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let mut decode_limits = Limits::default();
    decode_limits.max_image_width = Some(limits.max_side);
    decode_limits.max_image_height = Some(limits.max_side);
    decode_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4));
    reader.limits(decode_limits);
    let img = reader.decode().map_err(|e| format!("cannot decode the image: {e}"))?;
    Ok(normalise(&img))
}

/// Crops to 16:9 around the centre and scales to 1280×720 (a 4:3 picture with letterbox bars
/// loses exactly its bars), then encodes as JPEG at the best quality under 2 MB.
fn normalise(img: &DynamicImage) -> PreparedThumbnail {
    let fitted = img.resize_to_fill(THUMB_WIDTH, THUMB_HEIGHT, image::imageops::FilterType::Triangle).to_rgb8();
    let phash = PerceptualHash::of_image(&DynamicImage::ImageRgb8(fitted.clone()));
    let mut jpeg = Vec::new();
    for quality in [90u8, 80, 70, 60, 50, 40] {
        jpeg.clear();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality);
        if fitted.write_with_encoder(encoder).is_ok() && jpeg.len() <= THUMB_MAX_BYTES {
            break;
        }
    }
    PreparedThumbnail { jpeg, phash }
}

fn validate_title(index: usize, title: &str) -> Result<String, AbTestError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(AbTestError::BadInput(format!("title {} is empty", index + 1)));
    }
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        return Err(AbTestError::BadInput(format!(
            "title {} has {chars} characters; YouTube allows {MAX_TITLE_CHARS}",
            index + 1
        )));
    }
    if title.contains(['<', '>']) {
        return Err(AbTestError::BadInput(format!("title {} contains '<' or '>', which YouTube refuses", index + 1)));
    }
    Ok(title.to_owned())
}

/// What a request tests (thumbnails, titles or both) and how many variants, once its counts
/// and its rotation period are valid.
fn variant_shape(request: &CreateAbTest) -> Result<(AbTestKind, usize), AbTestError> {
    let (kind, variants_n) = match (request.thumbnails.len(), request.titles.len()) {
        (0, 0) => return Err(AbTestError::BadInput("give 2–4 thumbnails and/or 2–4 titles".into())),
        (t, 0) => (AbTestKind::Thumbnail, t),
        (0, n) => (AbTestKind::Title, n),
        (t, n) if t == n => (AbTestKind::Both, t),
        (t, n) => {
            return Err(AbTestError::BadInput(format!("{t} thumbnails and {n} titles: give as many of each")));
        }
    };
    if !(MIN_VARIANTS..=MAX_VARIANTS).contains(&variants_n) {
        return Err(AbTestError::BadInput(format!("{variants_n} variants: a test compares 2 to 4")));
    }
    let rotation_minutes = request.rotation.num_minutes();
    if rotation_minutes < 60 || rotation_minutes % 60 != 0 || request.rotation != Duration::minutes(rotation_minutes) {
        return Err(AbTestError::BadInput("the rotation period must be a whole number of hours".into()));
    }
    Ok((kind, variants_n))
}

/// The rotation schedule the request's design makes from `start` (the next whole hour).
fn planned_schedule(
    request: &CreateAbTest,
    variants_n: usize,
    start: DateTime<Utc>,
) -> Result<Vec<AbPeriod>, AbTestError> {
    let schedule = ScheduleRequest {
        variants: variants_n,
        start,
        duration: request.duration,
        rotation: request.rotation,
        seed: request.seed.unwrap_or_else(rand::random),
    };
    if request.design == AbDesign::PacificDays && request.duration != Duration::days(request.duration.num_days()) {
        return Err(AbTestError::BadInput("a test of whole Pacific days lasts a whole number of days".into()));
    }
    match request.design {
        AbDesign::Balanced => balanced_schedule(&schedule),
        AbDesign::PacificDays => pacific_day_schedule(variants_n, start, request.duration.num_days(), schedule.seed),
        AbDesign::DailyAlternation => naive_daily_schedule(variants_n, start, request.duration),
    }
    .map_err(|e| AbTestError::BadInput(e.to_string()))
}

/// What the owner's snippet says of a video a test is created on.
struct OwnedVideo {
    published: DateTime<Utc>,
    /// The title to restore (`None` when the snippet has none).
    title: Option<String>,
}

/// The original thumbnail as archived for restoring.
struct ArchivedThumbnail {
    key: String,
    phash: String,
}

/// The A/B test operations. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AbTests {
    pub store: Arc<dyn Store>,
    pub youtube: YoutubeClient,
    pub blobs: Blobs,
    pub clock: Arc<dyn Clock>,
    pub services: AbTestServices,
}

impl AbTests {
    /// Where to send the user to connect their account. Keep `state` and `pkce_verifier` in
    /// their session; the callback must present the same `state`.
    pub fn start_connect(&self) -> AuthorizationRequest {
        self.services.oauth.authorize_url()
    }

    /// Completes the connection: exchanges the code (with the PKCE verifier), seals both
    /// tokens and stores them for `channel`, the channel the user connects (every test checks
    /// its video against it, and YouTube refuses edits to channels the grant does not cover).
    #[tracing::instrument(skip_all, fields(user_id = user.get(), channel_id = %channel))]
    pub async fn finish_connect(
        &self,
        user: UserId,
        channel: &ChannelId,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<YoutubeConnection, AbTestError> {
        let tokens = self.services.oauth.exchange_code(code, pkce_verifier).await.map_err(|e| match e.kind() {
            ErrorKind::Unauthorized => AbTestError::BadInput(format!("Google refused the authorization: {e}")),
            _ => AbTestError::Youtube(e),
        })?;
        let refresh = tokens.refresh_token.as_deref().ok_or_else(|| {
            AbTestError::BadInput("Google issued no refresh token (offline access was not granted)".into())
        })?;
        let now = self.clock.now();
        let keyring = &self.services.keyring;
        let expires = now + tokens.expires_in.and_then(|d| Duration::from_std(d).ok()).unwrap_or(Duration::minutes(59));
        let connection = NewYoutubeConnection {
            user_id: user,
            channel_id: channel.clone(),
            scopes: tokens.scopes.join(" "),
            refresh: keyring.seal(user, TokenPurpose::Refresh, refresh)?,
            access: Some(keyring.seal(user, TokenPurpose::Access, &tokens.access_token)?),
            access_expires_at: Some(expires),
        };
        self.store.upsert_youtube_connection(&connection, now).await?;
        tracing::info!(user_id = user.get(), channel_id = %channel, "YouTube account connected for user {}", user.get());
        self.resume_reach(user).await?;
        self.store.youtube_connection(user).await?.ok_or(AbTestError::NotConnected)
    }

    /// Revokes the grant at Google and forgets it; running tests pause (a test cannot swap
    /// without it). Returns whether there was a connection.
    #[tracing::instrument(skip_all, fields(user_id = user.get()))]
    pub async fn disconnect(&self, user: UserId) -> Result<bool, AbTestError> {
        let Some(conn) = self.store.youtube_connection(user).await? else { return Ok(false) };
        if conn.state == ConnectionState::Active {
            let refresh = self.services.keyring.open(user, TokenPurpose::Refresh, &conn.refresh)?;
            self.services.oauth.revoke(&refresh).await.map_err(AbTestError::Youtube)?;
            self.store.revoke_youtube_connection(user, "disconnected by the user", self.clock.now()).await?;
        }
        Ok(self.store.remove_youtube_connection(user).await?)
    }

    /// A usable access token, refreshed when it expires within two minutes (or when `force`d
    /// after the API refused it). A refresh Google refuses (revoked, expired) marks the
    /// connection revoked and pauses the user's tests, with the reason.
    pub async fn access_token(&self, user: UserId, force_refresh: bool) -> Result<String, AbTestError> {
        let conn = self.store.youtube_connection(user).await?.ok_or(AbTestError::NotConnected)?;
        if conn.state == ConnectionState::Revoked {
            return Err(AbTestError::Revoked(conn.state_reason.unwrap_or_else(|| "revoked".into())));
        }
        let now = self.clock.now();
        let keyring = &self.services.keyring;
        if !force_refresh
            && let (Some(access), Some(expires)) = (&conn.access, conn.access_expires_at)
            && expires > now + Duration::minutes(2)
        {
            return Ok(keyring.open(user, TokenPurpose::Access, access)?);
        }
        let refresh = keyring.open(user, TokenPurpose::Refresh, &conn.refresh)?;
        let tokens = match self.services.oauth.refresh(&refresh).await {
            Ok(tokens) => tokens,
            Err(e) if e.kind() == ErrorKind::Unauthorized => {
                let reason = format!("Google refused to refresh the access token: {e}");
                let paused = self.store.revoke_youtube_connection(user, &reason, now).await?;
                tracing::warn!(user_id = user.get(), paused, "YouTube grant of user {} revoked or expired", user.get());
                return Err(AbTestError::Revoked(reason));
            }
            Err(e) => return Err(AbTestError::Youtube(e)),
        };
        let expires = now + tokens.expires_in.and_then(|d| Duration::from_std(d).ok()).unwrap_or(Duration::minutes(59));
        let access = keyring.seal(user, TokenPurpose::Access, &tokens.access_token)?;
        // Rotation: a refresh token sealed under a retired key is sealed again under the current one.
        let resealed = if keyring.needs_reseal(&conn.refresh) {
            Some(keyring.seal(user, TokenPurpose::Refresh, &refresh)?)
        } else {
            None
        };
        self.store.update_youtube_tokens(user, resealed.as_ref(), Some((&access, expires)), now).await?;
        Ok(tokens.access_token)
    }

    /// Runs a call to Google with the user's access token; a token the API refuses is refreshed
    /// once (a refresh Google refuses marks the grant revoked and pauses the user's tests).
    pub(crate) async fn with_token<T, F, Fut>(&self, user: UserId, call: F) -> Result<T, AbTestError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, YoutubeError>>,
    {
        let token = self.access_token(user, false).await?;
        let result = match call(token).await {
            Err(e) if e.kind() == ErrorKind::Unauthorized => call(self.access_token(user, true).await?).await,
            other => other,
        };
        result.map_err(|e| match e.kind() {
            ErrorKind::QuotaExceeded => AbTestError::QuotaExceeded,
            _ => AbTestError::Youtube(e),
        })
    }

    /// Creates a test: validates the variants, checks that the connected channel owns the
    /// video (its snippet's channel, and an unchanged `videos.update` that YouTube refuses for
    /// a video the grant may not edit), keeps the original title and thumbnail for restoring,
    /// fixes the balanced schedule from the next whole hour and the power estimate, and
    /// schedules the test's job.
    #[tracing::instrument(skip_all, fields(user_id = user.get(), video_id = %request.video))]
    pub async fn create(&self, user: UserId, request: CreateAbTest) -> Result<AbTestDetail, AbTestError> {
        let video = request.video.clone();
        let (kind, variants_n) = variant_shape(&request)?;
        let titles =
            request.titles.iter().enumerate().map(|(i, t)| validate_title(i, t)).collect::<Result<Vec<_>, _>>()?;
        let prepared = self.prepare_uploads(request.thumbnails.clone()).await?;
        let conn = self.store.youtube_connection(user).await?.ok_or(AbTestError::NotConnected)?;
        let owned = self.owned_video(user, &video, &conn).await?;
        let now = self.clock.now();
        let (variants, original) = self.store_variants(&video, variants_n, &prepared, titles).await?;
        let start = Slot::hour_of(now).start() + Duration::hours(1);
        let periods = planned_schedule(&request, variants_n, start)?;
        let start = periods.first().map_or(start, |p| p.start);
        let power = self.power(&video, owned.published, now, &periods, variants_n).await?;
        let new = NewAbTest {
            user_id: user,
            video_id: video.clone(),
            video_published_at: owned.published,
            kind,
            starts_at: start,
            ends_at: periods.last().map_or(start, |p| p.end),
            rotation_minutes: match request.design {
                AbDesign::PacificDays => 24 * 60,
                _ => i32::try_from(request.rotation.num_minutes()).unwrap_or(i32::MAX),
            },
            design: request.design,
            sequential: request.sequential,
            final_action: request.final_action,
            original_title: owned.title,
            original_thumb_key: original.as_ref().map(|o| o.key.clone()),
            original_thumb_phash: original.map(|o| o.phash),
            power_json: serde_json::to_string(&power).map_err(anyhow::Error::from)?,
            variants,
            periods: periods
                .iter()
                .enumerate()
                .map(|(i, p)| AbTestPeriod {
                    index: i32::try_from(i).unwrap_or(i32::MAX),
                    start: p.start,
                    end: p.end,
                    variant: i32::try_from(p.variant).unwrap_or(0),
                    swapped_at: None,
                    outcome: None,
                    excluded: false,
                })
                .collect(),
        };
        self.start_test(&new, &conn, now).await
    }

    /// Validates and normalises the uploads off the async threads (decoding and encoding are
    /// CPU work), under the image bound.
    async fn prepare_uploads(&self, uploads: Vec<Vec<u8>>) -> Result<Vec<PreparedThumbnail>, AbTestError> {
        let limits = self.services.upload_limits;
        image_work(move || {
            uploads
                .iter()
                .enumerate()
                .map(|(i, b)| prepare_thumbnail(b, &limits).map_err(|r| (i, r)))
                .collect::<Vec<_>>()
        })
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(index, reason)| AbTestError::BadImage { index, reason })
    }

    /// The video as YouTube describes it to its owner, once the connected channel is shown to
    /// own it and the grant to be allowed to edit it.
    async fn owned_video(
        &self,
        user: UserId,
        video: &VideoId,
        conn: &YoutubeConnection,
    ) -> Result<OwnedVideo, AbTestError> {
        let token = self.access_token(user, false).await?;
        let snippet =
            self.youtube.video_snippet(&token, video).await.map_err(|e| AbTestError::from_youtube(e, video))?;
        let owner = snippet.get("channelId").and_then(|v| v.as_str()).and_then(|s| ChannelId::parse(s).ok());
        if owner.as_ref() != Some(&conn.channel_id) {
            return Err(AbTestError::NotOwner(video.clone(), conn.channel_id.clone()));
        }
        // Proof of edit rights before anything is stored: the snippet written back unchanged.
        match self.youtube.update_video_snippet(&token, video, |_| {}).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Forbidden => {
                return Err(AbTestError::NotOwner(video.clone(), conn.channel_id.clone()));
            }
            // YouTube refuses to take back a snippet it once accepted (an old title with '<',
            // say): the probe says nothing about ownership then; the channel check stands and
            // the first swap would fail for good if the grant could not edit the video.
            Err(YoutubeError::Http { status: Some(400), message }) => {
                tracing::warn!(video_id = %video, %message, "ownership probe inconclusive for video {video}");
            }
            Err(e) => return Err(AbTestError::from_youtube(e, video)),
        }
        let published = snippet
            .get("publishedAt")
            .and_then(|v| v.as_str())
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                AbTestError::Youtube(YoutubeError::Http { status: None, message: "snippet without publishedAt".into() })
            })?;
        let title = snippet.get("title").and_then(|v| v.as_str()).map(str::to_owned);
        Ok(OwnedVideo { published, title })
    }

    /// The variants with their thumbnails archived (in a folder of the test's own) and their
    /// titles, and, for a thumbnail test, the original thumbnail archived for restoring.
    async fn store_variants(
        &self,
        video: &VideoId,
        variants_n: usize,
        prepared: &[PreparedThumbnail],
        titles: Vec<String>,
    ) -> Result<(Vec<AbVariant>, Option<ArchivedThumbnail>), AbTestError> {
        let folder = format!("abtests/{video}/{:016x}", rand::random::<u64>());
        let mut variants: Vec<AbVariant> =
            (0..variants_n).map(|_| AbVariant { thumb_blob_key: None, thumb_phash: None, title: None }).collect();
        let mut original = None;
        if !prepared.is_empty() {
            for (i, p) in prepared.iter().enumerate() {
                let key = format!("{folder}/variant-{i}.jpg");
                self.blobs.put(&key, p.jpeg.clone()).await?;
                variants[i].thumb_blob_key = Some(key);
                variants[i].thumb_phash = Some(p.phash.to_hex());
            }
            let thumbnail = self.original_thumbnail(video).await?;
            let key = format!("{folder}/original.jpg");
            self.blobs.put(&key, thumbnail.jpeg).await?;
            original = Some(ArchivedThumbnail { key, phash: thumbnail.phash.to_hex() });
        }
        for (i, t) in titles.into_iter().enumerate() {
            variants[i].title = Some(t);
        }
        Ok((variants, original))
    }

    /// Stores the new test, counts the quota its creation spent, and schedules its job and its
    /// reach.
    async fn start_test(
        &self,
        new: &NewAbTest,
        conn: &YoutubeConnection,
        now: DateTime<Utc>,
    ) -> Result<AbTestDetail, AbTestError> {
        let test = self.store.create_abtest(new, now).await?;
        // The snippet read and the ownership probe.
        self.store.add_abtest_quota(test.id, READ_UNITS * 2 + WRITE_UNITS).await?;
        self.store.ensure_target(TargetKind::AbTest, &test.id.to_string(), new.starts_at, now).await?;
        self.start_reach(test.id, conn, now).await?;
        let (video, variants, start) = (&new.video_id, new.variants.len(), new.starts_at);
        tracing::info!(test_id = test.id.get(), video_id = %video, variants, %start, "A/B test {} created", test.id);
        self.store.abtest(test.id).await?.ok_or(AbTestError::NoSuchTest(test.id))
    }

    /// The video's current thumbnail at the largest size it has, normalised like an upload.
    async fn original_thumbnail(&self, video: &VideoId) -> Result<PreparedThumbnail, AbTestError> {
        let mut last = None;
        for size in [ThumbnailSize::MaxRes, ThumbnailSize::Standard, ThumbnailSize::High] {
            match self.youtube.thumbnail(video, size).await {
                Ok(t) => {
                    let limits = self.services.upload_limits;
                    return image_work(move || prepare_thumbnail(&t.bytes, &limits))
                        .await?
                        .map_err(|reason| AbTestError::Other(anyhow::anyhow!("original thumbnail: {reason}")));
                }
                Err(e) if e.kind() == ErrorKind::NotFound => last = Some(e),
                Err(e) => return Err(AbTestError::Youtube(e)),
            }
        }
        Err(AbTestError::from_youtube(
            last.unwrap_or_else(|| YoutubeError::NotFound { what: video.to_string() }),
            video,
        ))
    }

    /// The power estimate from the video's recent view rate: the tracked hourly series when
    /// there is one (see [`expected_traffic`]); for a video tracked once, the average since its
    /// last measurement (views now from the watch page); otherwise the lifetime average (which
    /// overstates an old video's current rate).
    async fn power(
        &self,
        video: &VideoId,
        published: DateTime<Utc>,
        now: DateTime<Utc>,
        periods: &[AbPeriod],
        variants: usize,
    ) -> Result<StoredPower, AbTestError> {
        let series = self.store.views(video).await?;
        let (traffic, basis) = match expected_traffic(&series, now) {
            Some(traffic) => (traffic, TRACKED_BASIS.to_owned()),
            None => {
                let info = self.youtube.watch_page(video).await.map_err(|e| AbTestError::from_youtube(e, video))?;
                // A video tracked once (past its tracking window now, say): the average since its
                // last measurement is far nearer its current rate than the lifetime average.
                let last = series.iter().max_by_key(|r| r.measured_at).filter(|r| r.measured_at > published);
                let since_last = last.and_then(|r| {
                    let hours = (now - r.measured_at).num_seconds() as f64 / 3600.0;
                    (hours >= 6.0).then(|| ((info.views as f64 - r.views as f64).max(0.0) / hours, r.measured_at))
                });
                let (rate, basis) = match since_last {
                    Some((rate, at)) => (
                        rate,
                        format!(
                            "average views per hour since its last tracked measurement ({})",
                            at.format("%Y-%m-%d")
                        ),
                    ),
                    None => {
                        let age_hours = ((now - published).num_seconds() as f64 / 3600.0).max(1.0);
                        let basis = "lifetime average views per hour, usually above its current rate";
                        (info.views as f64 / age_hours, basis.to_owned())
                    }
                };
                (ExpectedTraffic::steady(rate.max(0.1)), basis)
            }
        };
        let estimate = power_estimate(periods, variants, published, &traffic, &self.services.analysis)
            .map_err(|e: AbError| AbTestError::BadInput(e.to_string()))?;
        Ok(StoredPower { traffic, estimate, basis })
    }

    /// A power estimate that was not read from tracked views (a lifetime average, say) is made
    /// again from the test's own hourly views once it has a day of them, and stored in its
    /// place. Returns whether it was.
    pub async fn reestimate_power(&self, detail: &AbTestDetail, now: DateTime<Utc>) -> Result<bool, AbTestError> {
        let test = &detail.test;
        let stored: serde_json::Value = serde_json::from_str(&test.power_json).unwrap_or_default();
        let basis = stored["basis"].as_str().unwrap_or_default();
        if basis.starts_with(TRACKED_BASIS) || basis.starts_with(OWN_VIEWS_BASIS) {
            return Ok(false);
        }
        let records: Vec<ViewsRecord> = self
            .store
            .abtest_views(test.id)
            .await?
            .into_iter()
            .filter(|v| v.measured_at >= test.starts_at)
            .map(|v| ViewsRecord {
                video_id: test.video_id.clone(),
                slot: Slot::hour_of(v.slot),
                measured_at: v.measured_at,
                views: v.views,
            })
            .collect();
        if records.first().is_none_or(|first| now - first.measured_at < Duration::hours(24)) {
            return Ok(false);
        }
        let Some(traffic) = expected_traffic(&records, now) else { return Ok(false) };
        let planned: Vec<AbPeriod> = detail
            .periods
            .iter()
            .map(|p| AbPeriod {
                start: p.start,
                end: p.end,
                variant: usize::try_from(p.variant).unwrap_or(0),
                excluded: false,
            })
            .collect();
        let estimate =
            power_estimate(&planned, detail.variants.len(), test.video_published_at, &traffic, &self.services.analysis)
                .map_err(|e: AbError| AbTestError::BadInput(e.to_string()))?;
        let basis = format!("{OWN_VIEWS_BASIS} (at creation: {basis})");
        let power = StoredPower { traffic, estimate, basis };
        self.store.set_abtest_power(test.id, &serde_json::to_string(&power).map_err(anyhow::Error::from)?).await?;
        Ok(true)
    }

    /// Stops a test early: the job's next run (within the hour) wraps it up on the data so far.
    pub async fn stop(&self, user: UserId, id: AbTestId) -> Result<(), AbTestError> {
        let detail =
            self.store.abtest(id).await?.filter(|d| d.test.user_id == user).ok_or(AbTestError::NoSuchTest(id))?;
        if !matches!(detail.test.state, AbTestState::Running | AbTestState::Paused) {
            return Err(AbTestError::AlreadyEnded);
        }
        let now = self.clock.now();
        self.store.set_abtest_state(id, AbTestState::Stopped, Some("stopped early by the user"), now).await?;
        Ok(())
    }

    /// A user's test, or `NoSuchTest` for someone else's.
    pub async fn get(&self, user: UserId, id: AbTestId) -> Result<AbTestDetail, AbTestError> {
        self.store.abtest(id).await?.filter(|d| d.test.user_id == user).ok_or(AbTestError::NoSuchTest(id))
    }
}

/// The next whole hour after `now`: when a test's (and its reach's) next hourly run is due.
pub(crate) fn next_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    Slot::hour_of(now).start() + Duration::hours(1)
}

/// The power estimate's basis when read from the video's tracked views.
const TRACKED_BASIS: &str = "tracked views over the last day";
/// … and when re-estimated from the test's own first day.
const OWN_VIEWS_BASIS: &str = "hourly views over the test's first day";

/// The click-through-rate lift the form's forecasts are for: a clear but ordinary thumbnail win.
pub const FORECAST_CTR_LIFT: f64 = 0.10;

/// What one schedule is predicted to find: the chance of naming the better variant when its
/// click-through rate is [`FORECAST_CTR_LIFT`] higher, from the hourly views alone and with the
/// owner's daily reach (when it is expected).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesignForecast {
    pub design: AbDesign,
    pub views_only: f64,
    pub with_reach: Option<f64>,
}

impl DesignForecast {
    /// The chance that counts: with reach when reach is expected.
    pub fn power(&self) -> f64 {
        self.with_reach.unwrap_or(self.views_only)
    }
}

/// The forecast of a planned schedule (see [`DesignForecast`]).
pub fn forecast(
    design: AbDesign,
    periods: &[AbPeriod],
    variants: usize,
    published: DateTime<Utc>,
    traffic: &ExpectedTraffic,
    reach: Option<&ReachPlan>,
    config: &AnalysisConfig,
) -> Result<DesignForecast, AbError> {
    let views_se = power_estimate(periods, variants, published, traffic, config)?.standard_error;
    let reach_precision = reach.and_then(|plan| reach_precision_over(periods, variants, plan, traffic, config.alpha));
    let chance = |se: f64| detection_probability(FORECAST_CTR_LIFT, se);
    Ok(DesignForecast {
        design,
        views_only: chance(ctr_standard_error(views_se, None)),
        with_reach: reach.map(|_| chance(ctr_standard_error(views_se, reach_precision))),
    })
}

/// The reach a planned test on `video` can expect per day at its start: the median of the
/// owner's last seven days received for it, or else impressions estimated from the expected
/// views (the impression-driven share of views at a typical 4.5 % click-through rate);
/// [`reach_precision_over`] lets it decay with the views over the test.
pub async fn reach_plan(
    store: &dyn Store,
    video: &VideoId,
    traffic: &ExpectedTraffic,
    now: DateTime<Utc>,
) -> Result<ReachPlan, StoreError> {
    let days = store.reach_days(video, now - Duration::days(8), now).await?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let impressions = median(days.iter().map(|d| d.impressions as f64).collect());
    let ctr = median(days.iter().map(|d| d.ctr).collect());
    Ok(match (impressions, ctr) {
        (Some(impressions_per_day), Some(ctr)) if impressions_per_day > 0.0 && ctr > 0.0 => {
            ReachPlan { impressions_per_day, ctr }
        }
        _ => reach_plan_from_views(traffic),
    })
}

/// Reach estimated from the expected views at the test's start: their impression-driven share
/// at a typical 4.5 % click-through rate.
pub fn reach_plan_from_views(traffic: &ExpectedTraffic) -> ReachPlan {
    const TYPICAL_CTR: f64 = 0.045;
    let views_per_day = traffic.rate_at(0.0) * 24.0;
    ReachPlan { impressions_per_day: views_per_day * IMPRESSION_SHARE_OF_VIEWS / TYPICAL_CTR, ctr: TYPICAL_CTR }
}

/// The precision the reach of a planned schedule is expected to have, its impressions at the
/// test's start (`plan`) decaying with the expected views over the test's days: a day's binomial
/// noise goes as one over its clicks, so a decaying video's precision is set by its quieter
/// later days, and the plan uses the day rate whose reciprocal is the days' average reciprocal.
pub fn reach_precision_over(
    periods: &[AbPeriod],
    variants: usize,
    plan: &ReachPlan,
    traffic: &ExpectedTraffic,
    alpha: f64,
) -> Option<ReachPrecision> {
    let (first, last) = (periods.first()?.start, periods.last()?.end);
    let days = ((last - first).num_hours() as f64 / 24.0).ceil().max(1.0) as usize;
    let reciprocal: f64 = (0..days).map(|d| 1.0 / traffic.rate_at(24.0 * d as f64 + 12.0).max(1e-9)).sum::<f64>();
    let scale = (days as f64 / reciprocal / traffic.rate_at(0.0).max(1e-9)).min(1.0);
    let over_test = ReachPlan { impressions_per_day: plan.impressions_per_day * scale, ..*plan };
    planned_precision(periods, variants, &over_test, alpha)
}

/// The views per hour the test can expect, from the video's tracked series: the rate over the
/// last day (at least 6 hours of it), decaying with the half-life the day before suggests.
/// `None` without enough recent measurements.
pub fn expected_traffic(series: &[ViewsRecord], now: DateTime<Utc>) -> Option<ExpectedTraffic> {
    let rate_between = |from: DateTime<Utc>, to: DateTime<Utc>| {
        let inside: Vec<_> = series.iter().filter(|r| r.measured_at >= from && r.measured_at <= to).collect();
        let (first, last) = (inside.first()?, inside.last()?);
        let hours = (last.measured_at - first.measured_at).num_seconds() as f64 / 3600.0;
        (hours >= 6.0).then(|| (last.views - first.views).max(0) as f64 / hours)
    };
    let rate = rate_between(now - Duration::hours(24), now).filter(|r| *r > 0.0)?;
    let before = rate_between(now - Duration::hours(48), now - Duration::hours(24));
    let half_life = before.filter(|b| *b > rate).map(|b| 24.0 / (b / rate).log2());
    Some(match half_life {
        Some(h) => ExpectedTraffic {
            half_life_hours: Some(h),
            floor_views_per_hour: rate * 0.1,
            ..ExpectedTraffic::steady(rate)
        },
        None => ExpectedTraffic::steady(rate),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn uploads_are_normalised_to_youtube_size() {
        let p = prepare_thumbnail(&png(640, 480), &UploadLimits::default()).unwrap();
        let decoded = image::load_from_memory(&p.jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (THUMB_WIDTH, THUMB_HEIGHT));
        assert!(p.jpeg.len() <= THUMB_MAX_BYTES);
        assert_eq!(image::guess_format(&p.jpeg).unwrap(), ImageFormat::Jpeg);
        // The hash recognises the same picture served at a smaller size.
        let small = decoded.resize_exact(320, 180, image::imageops::FilterType::Triangle);
        assert!(PerceptualHash::of_image(&small).same_picture(&p.phash));
    }

    /// The CRC of a PNG chunk (ISO-HDLC), so a doctored header stays well-formed.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn crc_of_an_untouched_header_matches_the_encoder() {
        let p = png(8, 8);
        assert_eq!(crc32(&p[12..29]).to_be_bytes(), p[29..33]);
    }

    #[test]
    fn bad_uploads_are_refused() {
        let limits = UploadLimits::default();
        assert!(prepare_thumbnail(b"GIF89a not really", &limits).unwrap_err().contains("not a JPEG or PNG"));
        assert!(prepare_thumbnail(b"plain text", &limits).unwrap_err().contains("not a JPEG or PNG"));
        let small = UploadLimits { max_bytes: 100, ..limits };
        assert!(prepare_thumbnail(&png(64, 64), &small).unwrap_err().contains("byte limit"));
        // A PNG whose header declares 60000×60000 pixels: refused from the header alone.
        let mut bomb = png(8, 8);
        bomb[16..20].copy_from_slice(&60_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&60_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(prepare_thumbnail(&bomb, &limits).unwrap_err().contains("over the limit"));
        // A truncated PNG decodes to an error, not a panic.
        let whole = png(32, 32);
        assert!(prepare_thumbnail(&whole[..whole.len() / 2], &limits).unwrap_err().contains("decode"));
    }

    #[test]
    fn titles_follow_youtube_rules() {
        assert_eq!(validate_title(0, "  Hello  ").unwrap(), "Hello");
        assert!(validate_title(0, " ").is_err());
        assert!(validate_title(0, &"é".repeat(100)).is_ok());
        assert!(validate_title(0, &"é".repeat(101)).is_err());
        assert!(validate_title(0, "a <b>").is_err());
    }

    #[test]
    fn traffic_comes_from_the_last_day_of_measurements() {
        let now: DateTime<Utc> = "2026-03-10T12:00:00Z".parse().unwrap();
        let video = VideoId::parse("AAAAAAAAAAA").unwrap();
        let record = |hours_ago: i64, views: i64| ViewsRecord {
            video_id: video.clone(),
            slot: Slot::hour_of(now - Duration::hours(hours_ago)),
            measured_at: now - Duration::hours(hours_ago),
            views,
        };
        assert!(expected_traffic(&[record(3, 100), record(1, 200)], now).is_none(), "under 6 hours");
        // 2,400 views over the last 24 h, 4,800 the day before: 100 an hour, halving daily.
        let series = [record(48, 0), record(24, 4_800), record(0, 7_200)];
        let t = expected_traffic(&series, now).unwrap();
        assert!((t.views_per_hour - 100.0).abs() < 1e-9, "{t:?}");
        assert!((t.half_life_hours.unwrap() - 24.0).abs() < 1e-9, "{t:?}");
    }

    #[test]
    fn a_decaying_videos_reach_is_planned_from_its_quieter_days() {
        let start: DateTime<Utc> = "2026-03-10T12:00:00Z".parse().unwrap();
        let periods = pacific_day_schedule(2, start, 14, 1).unwrap();
        let steady = ExpectedTraffic::steady(100.0);
        let decaying = ExpectedTraffic {
            half_life_hours: Some(48.0),
            floor_views_per_hour: 10.0,
            ..ExpectedTraffic::steady(100.0)
        };
        let plan = reach_plan_from_views(&steady);
        assert_eq!(plan, reach_plan_from_views(&decaying), "both start at 100 views an hour");
        let se = |t: &ExpectedTraffic| reach_precision_over(&periods, 2, &plan, t, 0.05).unwrap().standard_error;
        let (flat, falling) = (se(&steady), se(&decaying));
        assert_eq!(flat, planned_precision(&periods, 2, &plan, 0.05).unwrap().standard_error);
        // 38,900 impressions a day at the start; 7,200 is the day rate that sets the precision.
        assert!(falling > flat * 1.05 && falling < flat * 1.6, "{flat} {falling}");
    }
}
