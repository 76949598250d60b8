//! `tubewatch demo`: the simulator and the full service in one process on an accelerated clock,
//! tracking a handful of simulated channels, with live counts and a summary checked against the
//! simulator's truth. Also the harness `eval` builds on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tubewatch_core::{AcceleratedClock, ChannelId, Clock, Email, SchedulePolicy, Slot, UserId, VideoId};
use tubewatch_sim::world::{Channel, Mutations, Video, World};
use tubewatch_sim::{
    ChangeSource, RunningSim, SimClock, SimConfig, Simulator, VariantKind, WorldParams, thumbnail_variant_id,
    title_variant_id,
};
use tubewatch_store::{AbTestId, ChangeKind, NewUser, Plan, Store, TargetKind, TargetState};
use tubewatch_worker::OutliersConfig;
use tubewatch_worker::abtest::{AbTests, CreateAbTest};

use crate::app::App;
use crate::settings::{Secret, Settings};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Virtual days to run.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Simulated channels to track.
    #[arg(long, default_value_t = 6)]
    pub channels: u32,
    /// Virtual seconds per real second (21600: a day in 4 seconds).
    #[arg(long, default_value_t = 21_600.0)]
    pub speed: f64,
    /// Seed of the simulated world (5: one whose week holds a standout upload and three clear
    /// creator changes to flag).
    #[arg(long, default_value_t = 5)]
    pub seed: u64,
    /// Keep serving after the run (Ctrl-C to stop).
    #[arg(long)]
    pub keep_running: bool,
    /// Folder for the demo's database and thumbnails (recreated on every run).
    #[arg(long, default_value = "tubewatch-demo")]
    pub data_dir: PathBuf,
    /// Size of the simulator's watch pages in bytes.
    #[arg(long, default_value_t = 200_000)]
    pub page_bytes: usize,
}

const MARKER: &str = ".tubewatch-demo";
const DEMO_EMAIL: &str = "demo@tubewatch.local";

/// Empties a folder this command made before; refuses any other non-empty folder.
fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!("{} exists and was not made by `tubewatch demo`; pass another --data-dir", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(MARKER), "made by tubewatch demo; deleted on the next run\n")?;
    Ok(())
}

/// A simulator and the service's parts sharing one accelerated clock.
pub struct Harness {
    pub sim: RunningSim,
    pub clock: AcceleratedClock,
    pub settings: Settings,
    pub app: App,
    pub start: DateTime<Utc>,
}

pub struct HarnessOptions {
    /// The simulated world (its seed, its number of channels, …).
    pub world: WorldParams,
    pub speed: f64,
    pub page_bytes: usize,
    pub faults: tubewatch_sim::FaultConfig,
    pub data_dir: PathBuf,
}

impl Harness {
    pub async fn start(base: Settings, opts: HarnessOptions) -> anyhow::Result<Self> {
        let start = opts.world.epoch;
        let clock = AcceleratedClock::starting_now(start, opts.speed)?;
        let mut config = SimConfig::new(opts.world.seed, opts.world.channels, SimClock::Shared(Arc::new(clock)));
        config.world = opts.world;
        // Google's access tokens last an hour of real time, not of an accelerated clock (where an
        // hour may pass in a few milliseconds and a token would expire in flight).
        config.oauth.access_token_secs = (3600.0 * opts.speed.max(1.0)) as i64;
        config.page_bytes = opts.page_bytes;
        config.faults = opts.faults;
        let sim = Simulator::start(config, "127.0.0.1:0".parse()?).await?;
        let mut settings = base;
        // A fresh SQLite file unless a database was named explicitly (e.g. PostgreSQL).
        if settings.database_url == Settings::default().database_url {
            settings.database_url = format!("sqlite://{}", opts.data_dir.join("tubewatch.db").display());
        }
        settings.blob_dir = opts.data_dir.join("blobs");
        settings.youtube.base_url = Some(sim.base_url.clone());
        settings.clock = clock.to_string();
        settings.validate()?;
        let app = App::open(&settings).await?;
        Ok(Self { sim, clock, settings, app, start })
    }
}

/// What tracking recorded, compared with the simulator's truth.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrackingReport {
    pub channels: usize,
    pub videos_tracked: usize,
    pub slots_expected: usize,
    pub slots_recorded: usize,
    pub slots_missing: usize,
    pub duplicate_records: usize,
    pub thumbnail_changes_true: usize,
    pub thumbnail_changes_detected: usize,
    pub title_changes_true: usize,
    pub title_changes_detected: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub p95_lag_seconds: f64,
    pub max_lag_seconds: f64,
    /// Up to ten missing `video@slot`, for a look at why.
    pub missing_examples: Vec<String>,
}

/// The slots of a video a clean run has recorded by `horizon`: from its first slot (its publish
/// slot, or the slot its channel's tracking began in when it was already out), every slot due by
/// then. A slot is due at its start, and the video's slots not before the video was found
/// (`found_at`: a video published late in an hour is found by the next channel check, whose
/// first measurement then fills its publish slot); a slot due after `horizon` is not yet missing.
pub fn due_slots(
    policy: &SchedulePolicy,
    published: DateTime<Utc>,
    tracked_at: DateTime<Utc>,
    found_at: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Vec<Slot> {
    let Some(first) = policy.slot_at(published, published.max(tracked_at)) else { return Vec::new() };
    policy.all_slots(published).into_iter().filter(|s| *s >= first && s.start().max(found_at) <= horizon).collect()
}

/// Active channel and video checks due at or before `horizon`, leased or not: a run is compared
/// with the truth once these are done.
pub async fn pending_before(store: &dyn Store, horizon: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut pending = 0;
    for kind in [TargetKind::Channel, TargetKind::Video] {
        let mut offset = 0;
        loop {
            let page = store.list_targets(kind, offset, 1000).await?;
            pending += page.iter().filter(|t| t.state == TargetState::Active && t.next_due_at <= horizon).count();
            if page.len() < 1000 {
                break;
            }
            offset += 1000;
        }
    }
    Ok(pending)
}

/// Compares the store with the truth for the tracked channels over `[start, end]`: the slots due
/// until an hour before `end` (see [`due_slots`]). Lag is measured on every record but a video's
/// first.
pub async fn tracking_report(
    store: &dyn Store,
    sim: &Simulator,
    policy: &SchedulePolicy,
    channels: &[ChannelId],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> anyhow::Result<TrackingReport> {
    let mut report = TrackingReport { channels: channels.len(), ..TrackingReport::default() };
    let mut lags = Vec::new();
    let mut detected: BTreeMap<(String, ChangeKind), usize> = BTreeMap::new();
    let mut truth: BTreeMap<(String, ChangeKind), usize> = BTreeMap::new();
    let horizon = end - Duration::hours(1);
    for channel in channels {
        let true_changes = sim.changes(start, end, Some(channel.as_str()))?;
        // Channels are tracked one after another: each from its own start.
        let tracked_at = store.channel(channel).await?.map_or(start, |c| c.created_at.max(start));
        for video in store.channel_videos(channel).await? {
            // Videos of the channel's history, seen once when tracking began, are not tracked.
            if store.target(TargetKind::Video, video.id.as_str()).await?.is_none() {
                continue;
            }
            report.videos_tracked += 1;
            let records = store.views(&video.id).await?;
            // Videos already out when their channel was tracked start at that slot; later ones
            // at the slot of their publish time.
            let expected = due_slots(policy, video.published_at, tracked_at, video.created_at, horizon);
            let recorded: std::collections::HashSet<Slot> = records.iter().map(|r| r.slot).collect();
            report.duplicate_records += records.len() - recorded.len();
            report.slots_expected += expected.len();
            let hits = expected.iter().filter(|s| recorded.contains(s)).count();
            for slot in
                expected.iter().filter(|s| !recorded.contains(s)).take(10 - report.missing_examples.len().min(10))
            {
                report.missing_examples.push(format!("{}@{slot}", video.id));
            }
            report.slots_recorded += hits;
            report.slots_missing += expected.len() - hits;
            // A video's first measurement is due when the video is found, not at its slot's start.
            lags.extend(
                records.iter().skip(1).map(|r| (r.measured_at - r.slot.start()).num_milliseconds() as f64 / 1000.0),
            );
            for change in store.changes(&video.id).await? {
                *detected.entry((video.id.to_string(), change.change.kind)).or_default() += 1;
            }
            let (Some(first_seen), Some(last_seen)) = (records.first(), records.last()) else { continue };
            for change in true_changes.iter().filter(|c| c.video_id == video.id) {
                if change.at > first_seen.measured_at && change.at <= last_seen.measured_at {
                    let kind = match change.kind {
                        VariantKind::Thumbnail => ChangeKind::Thumbnail,
                        VariantKind::Title => ChangeKind::Title,
                    };
                    *truth.entry((video.id.to_string(), kind)).or_default() += 1;
                }
            }
        }
    }
    let count =
        |m: &BTreeMap<(String, ChangeKind), usize>, kind| m.iter().filter(|(k, _)| k.1 == kind).map(|(_, n)| n).sum();
    report.thumbnail_changes_true = count(&truth, ChangeKind::Thumbnail);
    report.title_changes_true = count(&truth, ChangeKind::Title);
    report.thumbnail_changes_detected = count(&detected, ChangeKind::Thumbnail);
    report.title_changes_detected = count(&detected, ChangeKind::Title);
    for key in truth.keys().chain(detected.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (t, d) = (truth.get(key).copied().unwrap_or(0), detected.get(key).copied().unwrap_or(0));
        report.false_positives += d.saturating_sub(t);
        report.false_negatives += t.saturating_sub(d);
    }
    lags.sort_by(f64::total_cmp);
    report.p95_lag_seconds =
        lags.get((lags.len() * 95 / 100).min(lags.len().saturating_sub(1))).copied().unwrap_or(0.0);
    report.max_lag_seconds = lags.last().copied().unwrap_or(0.0);
    Ok(report)
}

/// What the demo's world holds for each feature, picked from the seeded world before its clock
/// starts (the same seed picks the same every time).
#[derive(Debug)]
struct DemoPlan {
    /// Tracked for the demo user, the two below first.
    tracked: Vec<ChannelId>,
    /// A long-form upload far above its channel's typical views at the same age, and by how much.
    standout: Option<(ChannelId, VideoId, f64)>,
    /// Creators' thumbnail or title changes with a clear lift on the video's view rate, the
    /// clearest first (the rule flags a lift of +35 % about two times in three: a few of them
    /// make a finding all but certain).
    changed: Vec<(ChannelId, VideoId, VariantKind, f64)>,
    /// A creator's change whose new variant the demo makes strong, so that one change outlier
    /// shows whatever the seed.
    scripted: Option<ScriptedChange>,
    /// The demo user's own channel (connected through OAuth, not tracked) and the two recent
    /// uploads its A/B tests run on.
    owned: ChannelId,
    owned_videos: [VideoId; 2],
}

#[derive(Debug)]
struct ScriptedChange {
    channel: ChannelId,
    video: VideoId,
    kind: VariantKind,
    /// The creator's new variant, and its effect on the video's click-through rate.
    variant: String,
    ctr_multiplier: f64,
}

/// The channel's feed at `at`: its newest uploads.
fn feed_at(world: &World, channel: &Channel, at: DateTime<Utc>) -> Vec<Video> {
    world.newest_videos(channel, at, FEED_ENTRIES)
}

const FEED_ENTRIES: usize = 15;

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The upload that a weekly run at `run` will judge far above its channel's typical views at the
/// same age: long-form, published after tracking starts and old enough to be judged at `run`, on a
/// channel whose feed holds enough long-form videos for a typical band.
fn pick_standout(
    world: &World,
    start: DateTime<Utc>,
    run: DateTime<Utc>,
    judge_at: Duration,
) -> Option<(ChannelId, VideoId, f64)> {
    let muts = Mutations::default();
    let views = |v: &Video, at: DateTime<Utc>| world.live_state(v, &muts, at).views as f64;
    let mut best: Option<(ChannelId, VideoId, f64)> = None;
    for channel in world.channels() {
        let history: Vec<Video> = feed_at(world, channel, start).into_iter().filter(|v| !v.is_short).collect();
        if history.len() < 8 {
            continue;
        }
        for video in world.videos_between(channel, start + Duration::hours(6), run - judge_at) {
            if video.is_short {
                continue;
            }
            let age = run - video.published;
            let Some(typical) = median(history.iter().map(|o| views(o, o.published + age)).collect()) else {
                continue;
            };
            let (now, ratio) = (views(&video, run), views(&video, run) / typical.max(1.0));
            if now >= 1_000.0 && best.as_ref().is_none_or(|b| ratio > b.2) {
                best = Some((channel.id.clone(), video.id.clone(), ratio));
            }
        }
    }
    best
}

/// A creator's change the demo can show judged: on a busy long-form video that tracking sees
/// from before the change, alone on its video up to `run`, early enough for the run at `run` to
/// judge three days after it within the video's hourly week.
struct ChangeInView {
    channel: ChannelId,
    video: Video,
    kind: VariantKind,
    variant: String,
    views_lift: f64,
}

fn changes_in_view(
    world: &World,
    start: DateTime<Utc>,
    run: DateTime<Utc>,
    hours_after: Duration,
) -> Vec<ChangeInView> {
    let muts = Mutations::default();
    let mut found = Vec::new();
    for channel in world.channels() {
        let feed = feed_at(world, channel, start);
        for video in world.videos_between(channel, start - Duration::days(7), run - hours_after) {
            let seen = video.published > start || feed.iter().any(|v| v.id == video.id);
            if video.is_short || !seen {
                continue;
            }
            let changes = world.changes_of(&video, &muts, run);
            let [change] = changes.as_slice() else { continue };
            let in_window = change.at >= start + Duration::hours(6) && change.at + hours_after < run;
            let hourly = change.at + hours_after < video.published + Duration::days(7);
            if change.source != ChangeSource::Creator || !in_window || !hourly {
                continue;
            }
            let views = |at| world.live_state(&video, &muts, at).views;
            if views(change.at + Duration::hours(24)).saturating_sub(views(change.at)) >= 24 * 20 {
                let (kind, variant, views_lift) = (change.kind, change.variant.clone(), change.views_lift);
                found.push(ChangeInView { channel: channel.id.clone(), video, kind, variant, views_lift });
            }
        }
    }
    found
}

/// Creators' changes with a clear true lift (+30 % or more), the clearest on each channel, the
/// clearest `n` channels first.
fn pick_changes(candidates: &[ChangeInView], n: usize) -> Vec<(ChannelId, VideoId, VariantKind, f64)> {
    let mut found: Vec<(ChannelId, VideoId, VariantKind, f64)> = Vec::new();
    for c in candidates.iter().filter(|c| c.views_lift >= 1.3) {
        if found.iter().all(|f| f.0 != c.channel || f.3 < c.views_lift) {
            found.retain(|f| f.0 != c.channel);
            found.push((c.channel.clone(), c.video.id.clone(), c.kind, c.views_lift));
        }
    }
    found.sort_by(|a, b| b.3.total_cmp(&a.3));
    found.truncate(n);
    found
}

/// The views lift the demo gives one creator's change: the views of a video whose new thumbnail
/// or title the audience takes to at once, tripled (a "this change tripled my views" story, as
/// far above the calibrated world's effects as the demo A/B test's variant B).
const SCRIPTED_VIEWS_LIFT: f64 = 3.0;

/// The creator's change the demo makes strong: on a video already published when the demo
/// starts (the simulator sets a variant's effect on a published video), the busiest one's.
fn pick_scripted(world: &World, candidates: &[ChangeInView], start: DateTime<Utc>) -> Option<ScriptedChange> {
    let muts = Mutations::default();
    let c = candidates
        .iter()
        .filter(|c| c.video.published < start)
        .max_by_key(|c| world.live_state(&c.video, &muts, start).views)?;
    let share = c.video.impression_share;
    Some(ScriptedChange {
        channel: c.channel.clone(),
        video: c.video.id.clone(),
        kind: c.kind,
        variant: c.variant.clone(),
        // The click-through multiplier whose impression-driven share of views gives the lift.
        ctr_multiplier: (SCRIPTED_VIEWS_LIFT - (1.0 - share)) / share,
    })
}

/// Picks the demo's world: the channels with a standout upload and a clear change, the busiest
/// others up to `channels`, and an untracked busy channel with two recent uploads as the user's own.
fn plan(
    world: &World,
    args: &DemoArgs,
    start: DateTime<Utc>,
    run: DateTime<Utc>,
    outliers: &OutliersConfig,
) -> anyhow::Result<DemoPlan> {
    let standout = pick_standout(world, start, run, Duration::hours(outliers.judge_at_hours));
    let hours_after = Duration::seconds((outliers.change.hours_after * 3600.0) as i64);
    let candidates = changes_in_view(world, start, run, hours_after);
    let scripted = pick_scripted(world, &candidates, start);
    let changed = pick_changes(&candidates, 3);
    let mut tracked: Vec<ChannelId> = Vec::new();
    let picked = scripted.iter().map(|s| &s.channel).chain(changed.iter().map(|c| &c.0));
    for id in standout.iter().map(|s| &s.0).chain(picked) {
        if !tracked.contains(id) {
            tracked.push(id.clone());
        }
    }
    for id in busiest_channels(world, start, args.channels, args.days) {
        if tracked.len() >= args.channels.max(2) as usize {
            break;
        }
        if !tracked.contains(&id) {
            tracked.push(id);
        }
    }
    let mut by_views: Vec<&Channel> = world.channels().iter().filter(|c| !tracked.contains(&c.id)).collect();
    by_views.sort_by(|a, b| b.typical_long_views.total_cmp(&a.typical_long_views));
    for channel in by_views {
        let mut recent: Vec<Video> = world
            .videos_between(channel, start - Duration::days(10), start - Duration::days(1))
            .into_iter()
            .filter(|v| !v.is_short)
            .collect();
        // The thumbnail test on the upload whose views come most from impressions (where a
        // thumbnail moves views most); the title test on another.
        recent.sort_by(|a, b| b.impression_share.total_cmp(&a.impression_share));
        if let [a, b, ..] = recent.as_slice()
            && a.impression_share >= 0.6
        {
            return Ok(DemoPlan {
                tracked,
                standout,
                changed,
                scripted,
                owned: channel.id.clone(),
                owned_videos: [a.id.clone(), b.id.clone()],
            });
        }
    }
    bail!("no busy channel of this world has two long-form uploads in the ten days before the demo; try another --seed")
}

/// The `n` channels with the most uploads in the first `days`, among the first 100.
fn busiest_channels(world: &World, start: DateTime<Utc>, n: u32, days: u32) -> Vec<ChannelId> {
    let until = start + Duration::days(i64::from(days));
    let mut by_uploads: Vec<(usize, ChannelId)> = world
        .channels()
        .iter()
        .take(100)
        .map(|c| (world.videos_between(c, start, until).len(), c.id.clone()))
        .collect();
    by_uploads.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    by_uploads.into_iter().take(n as usize).map(|(_, id)| id).collect()
}

/// A demo thumbnail: a bold diagonal pattern in one of two colour schemes (uploads are scaled to
/// 1280×720; only their identity matters to the simulator).
fn thumbnail(scheme: u8) -> anyhow::Result<Vec<u8>> {
    let [a, b] = if scheme == 0 { [[230, 57, 70], [29, 53, 87]] } else { [[255, 209, 102], [6, 214, 160]] };
    let img = image::RgbImage::from_fn(640, 360, |x, y| image::Rgb(if (x + y) / 60 % 2 == 0 { a } else { b }));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// Connects `user`'s YouTube account as the web UI does: the consent page (where the simulated
/// user picks `channel`), its redirect with the code, then the code exchanged with PKCE.
async fn connect_youtube(ab: &AbTests, user: UserId, channel: &ChannelId) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let request = ab.start_connect();
    let mut url = url::Url::parse(&request.url)?;
    url.query_pairs_mut().append_pair("channel", channel.as_str());
    let consent = http.get(url).send().await?;
    let location = consent.headers().get("location").context("the consent page did not redirect")?.to_str()?;
    let location = url::Url::parse(location)?;
    let pairs: std::collections::HashMap<String, String> = location.query_pairs().into_owned().collect();
    anyhow::ensure!(pairs.get("state") == Some(&request.state), "OAuth state mismatch");
    let code = pairs.get("code").context("no code in the OAuth redirect")?;
    ab.finish_connect(user, channel, code, &request.pkce_verifier).await?;
    Ok(())
}

/// The two A/B tests on the user's own channel: a short thumbnail test whose second variant is
/// truly much better (it finishes with a verdict during the demo), and a title test that runs on.
async fn start_abtests(
    h: &Harness,
    ab: &AbTests,
    user: UserId,
    plan: &DemoPlan,
    days: u32,
) -> anyhow::Result<[AbTestId; 2]> {
    connect_youtube(ab, user, &plan.owned).await?;
    let [first, second] = &plan.owned_videos;
    let mut request = CreateAbTest::new(first.clone());
    request.thumbnails = vec![thumbnail(0)?, thumbnail(1)?];
    request.duration = Duration::days(i64::from(days.saturating_sub(2).clamp(2, 4)));
    request.seed = Some(1);
    let finished = ab.create(user, request).await.context("creating the thumbnail A/B test")?;
    for (v, variant) in finished.variants.iter().enumerate() {
        let key = variant.thumb_blob_key.as_deref().context("a thumbnail variant without its image")?;
        let bytes = ab.blobs.get(key).await?.context("the variant's image")?;
        // The simulated audience clicks variant B five times as often: a difference four days of
        // twice-daily swaps pin down.
        let multiplier = if v == 1 { 5.0 } else { 1.0 };
        h.sim.sim.set_multiplier(first.as_str(), VariantKind::Thumbnail, &thumbnail_variant_id(&bytes), multiplier)?;
    }
    let titles = ["How I built it in a weekend", "I built this in 48 hours (it worked)"];
    let mut request = CreateAbTest::new(second.clone());
    request.titles = titles.iter().map(|t| (*t).to_owned()).collect();
    request.duration = Duration::days(14);
    request.seed = Some(2);
    let running = ab.create(user, request).await.context("creating the title A/B test")?;
    for (v, title) in titles.iter().enumerate() {
        let multiplier = if v == 1 { 1.3 } else { 1.0 };
        h.sim.sim.set_multiplier(second.as_str(), VariantKind::Title, &title_variant_id(title), multiplier)?;
    }
    Ok([finished.test.id, running.test.id])
}

/// The demo's settings on top of the user's: its own folder for blobs and mail, the weekly
/// outlier run half a day before the end (digests three hours later), and A/B tests through the
/// simulator's OAuth with a fresh token key.
fn demo_settings(mut settings: Settings, args: &DemoArgs, url: &str, run: DateTime<Utc>) -> Settings {
    use chrono::{Datelike, Timelike};
    settings.mail.outbox_dir = args.data_dir.join("outbox");
    settings.mail.public_url = url.to_owned();
    settings.outliers.weekday = run.weekday().to_string();
    settings.outliers.hour = run.hour();
    settings.outliers.digest_delay_hours = 3;
    let a = &mut settings.abtests;
    a.google_client_id = Some("tubewatch-demo".into());
    a.redirect_url = Some(format!("{url}/oauth/google/callback"));
    a.current_key_id = Some("demo".into());
    a.token_keys.insert("demo".into(), Secret::new(tubewatch_web::auth::random_secret()));
    settings
}

pub async fn run(args: DemoArgs, settings: Settings) -> anyhow::Result<()> {
    anyhow::ensure!(args.days >= 5, "--days must be at least 5: the A/B test and the weekly outlier run need them");
    fresh_dir(&args.data_dir)?;
    let listener = match tokio::net::TcpListener::bind(settings.listen).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let url = format!("http://{}", listener.local_addr()?);
    let start = WorldParams::default().epoch;
    let end = start + Duration::days(i64::from(args.days));
    let run_at = end - Duration::hours(12);
    let settings = demo_settings(settings, &args, &url, run_at);
    let prepared = prepare(&args, &settings, start, run_at).await?;
    let demo = DemoRun::start(&args, settings, listener, &prepared).await?;
    let plan = &prepared.plan;

    print_intro(&demo.h, &args, plan, &url, run_at);
    let wall = Instant::now();
    let horizon = wait_for_the_end(&demo.h, plan, end).await?;
    print_summary(&demo, &args, plan, run_at, horizon, wall).await?;
    print_where_to_look(&*demo.h.app.store, &args, plan, &url, &prepared.password).await?;
    if args.keep_running {
        println!("\nserving at {url}; Ctrl-C to stop");
        crate::app::shutdown_signal().await;
    }
    demo.stop().await
}

/// What is decided before the accelerated clock starts (everything slow): the world and the
/// demo's picks in it, and the demo user's password with its hash.
struct Prepared {
    world: WorldParams,
    plan: DemoPlan,
    password: String,
    password_hash: String,
}

async fn prepare(
    args: &DemoArgs,
    settings: &Settings,
    start: DateTime<Utc>,
    run_at: DateTime<Utc>,
) -> anyhow::Result<Prepared> {
    let outliers = settings.outliers_config();
    let picking = crate::progress::Progress::spinner("picking the demo's world");
    let world = demo_world(args.seed);
    let plan = plan(&World::new(world.clone()), args, start, run_at, &outliers)?;
    let password = easy_password();
    let password_hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || tubewatch_web::auth::hash_password_blocking(&password))
            .await?
            .map_err(|e| anyhow::anyhow!("hashing the demo password: {e}"))?
    };
    picking.finish();
    Ok(Prepared { world, plan, password, password_hash })
}

/// The demo running: the simulator and the service (web and worker) on the accelerated clock,
/// the demo user tracking the picked channels, and their two A/B tests.
struct DemoRun {
    h: Harness,
    tests: [AbTestId; 2],
    shutdown: CancellationToken,
    worker: tokio::task::JoinHandle<anyhow::Result<()>>,
    web: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl DemoRun {
    async fn start(
        args: &DemoArgs,
        settings: Settings,
        listener: tokio::net::TcpListener,
        prepared: &Prepared,
    ) -> anyhow::Result<Self> {
        let plan = &prepared.plan;
        let opts = HarnessOptions {
            world: prepared.world.clone(),
            speed: args.speed,
            page_bytes: args.page_bytes,
            faults: tubewatch_sim::FaultConfig::default(),
            data_dir: args.data_dir.clone(),
        };
        let h = Harness::start(settings, opts).await?;
        if let Some(c) = &plan.scripted {
            h.sim.sim.set_multiplier(c.video.as_str(), c.kind, &c.variant, c.ctr_multiplier)?;
        }
        let app = &h.app;
        let user = NewUser {
            email: Email::parse(DEMO_EMAIL)?,
            password_hash: prepared.password_hash.clone(),
            plan: Plan::Premium,
            is_admin: false,
            email_verified: true,
        };
        let user = app.store.create_user(&user, app.clock.now()).await?;
        let tracker = app.tracker()?;
        for id in &plan.tracked {
            tracker.track_channel(Some(user.id), id.as_str()).await?;
        }
        let shutdown = CancellationToken::new();
        let web_token = shutdown.clone();
        let web = app.web_state()?;
        let web = tokio::spawn(crate::app::serve_web(web, listener, async move { web_token.cancelled().await }));
        let worker_app = app.clone();
        let worker_token = shutdown.clone();
        let worker = tokio::spawn(async move { worker_app.run_worker(worker_token).await });
        // The tests' images are prepared while the worker already tracks (they start on the hour).
        let services = app.abtest_services()?.context("the demo configures A/B tests")?;
        let ab = AbTests {
            store: app.store.clone(),
            youtube: app.youtube.clone(),
            blobs: app.blobs.clone(),
            clock: app.clock.clone(),
            services,
        };
        let tests = start_abtests(&h, &ab, user.id, plan, args.days).await?;
        Ok(Self { h, tests, shutdown, worker, web })
    }

    /// Stops the worker and the web server and waits for both.
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.worker.await??;
        self.web.await??;
        Ok(())
    }
}

/// Where everything is, and what the world holds that the service should find.
fn print_intro(h: &Harness, args: &DemoArgs, plan: &DemoPlan, url: &str, run_at: DateTime<Utc>) {
    println!("tubewatch demo: simulator at {}, service at {url}", h.sim.base_url);
    println!("clock: {} (one virtual day every {:.1} s)", h.clock, 86_400.0 / args.speed);
    println!(
        "tracking {} simulated channels for {} virtual days; two A/B tests on the demo user's own channel;",
        plan.tracked.len(),
        args.days
    );
    println!("the weekly outlier run at {run_at} and the digest three hours later");
    if let Some((channel, video, ratio)) = &plan.standout {
        println!("  in the world: video {video} of channel {channel} draws {ratio:.0}× its channel's typical views");
    }
    let kind_name = |kind: VariantKind| if kind == VariantKind::Thumbnail { "thumbnail" } else { "title" };
    if let Some(c) = &plan.scripted {
        println!(
            "  in the world: video {} gets a new {} that triples its views (set by the demo: clicked {:.1}× as often)",
            c.video,
            kind_name(c.kind),
            c.ctr_multiplier
        );
    }
    for (_, video, kind, lift) in plan.changed.iter().filter(|c| plan.scripted.as_ref().is_none_or(|s| s.video != c.1))
    {
        println!(
            "  in the world: video {video} gets a new {} that lifts its views {:+.0} %",
            kind_name(*kind),
            (lift - 1.0) * 100.0
        );
    }
    println!();
}

/// Shows the run's progress until the virtual clock reaches `end`, then lets the worker catch up
/// (for at most 30 s) with the checks due by an hour before it; returns that hour, up to which the
/// run is compared with the truth (on a slow machine the worker is a little behind the clock).
async fn wait_for_the_end(h: &Harness, plan: &DemoPlan, end: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let store = &*h.app.store;
    let hours = u64::try_from((end - h.start).num_hours()).unwrap_or(0);
    let progress = crate::progress::Progress::new("demo", hours, "virtual hours");
    let mut counted = Instant::now() - StdDuration::from_secs(10);
    while h.clock.now() < end {
        progress.set(u64::try_from((h.clock.now() - h.start).num_hours()).unwrap_or(0));
        if counted.elapsed() >= StdDuration::from_secs(1) {
            let (videos, records, changes) = counts(store, &plan.tracked).await?;
            progress.message(format!("{videos} videos, {records} views records, {changes} changes"));
            counted = Instant::now();
        }
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    progress.set(hours);
    let horizon = h.clock.now() - Duration::hours(1);
    let catch_up = Instant::now() + StdDuration::from_secs(30);
    while Instant::now() < catch_up && pending_before(store, horizon).await? > 0 {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    progress.finish();
    Ok(horizon)
}

/// The run against the simulator's truth, the A/B tests' outcomes, the week's outliers and the
/// digest mailed.
async fn print_summary(
    demo: &DemoRun,
    args: &DemoArgs,
    plan: &DemoPlan,
    run_at: DateTime<Utc>,
    horizon: DateTime<Utc>,
    wall: Instant,
) -> anyhow::Result<()> {
    let (h, store) = (&demo.h, &*demo.h.app.store);
    let policy = h.app.pipeline_config()?;
    let report =
        tracking_report(store, &h.sim.sim, &policy.policy, &plan.tracked, h.start, horizon + Duration::hours(1))
            .await?;
    println!("after {} virtual days ({:.0} s):", args.days, wall.elapsed().as_secs_f64());
    println!("  videos tracked:        {}", report.videos_tracked);
    println!(
        "  views records:         {} of {} slots due ({} missing)",
        report.slots_recorded, report.slots_expected, report.slots_missing
    );
    println!(
        "  thumbnail changes:     {} detected, {} in the simulator's truth",
        report.thumbnail_changes_detected, report.thumbnail_changes_true
    );
    println!(
        "  title changes:         {} detected, {} in the truth",
        report.title_changes_detected, report.title_changes_true
    );
    println!("  slot lag p95:          {:.0} s (virtual)", report.p95_lag_seconds);
    print_abtests(store, &demo.tests).await?;
    print_outliers(store, &OutliersConfig::week_label(run_at)).await?;
    match digest_file(&args.data_dir.join("outbox")) {
        Some(path) => println!("  digest in the outbox:  {}", path.display()),
        None => println!("  digest in the outbox:  none yet"),
    }
    Ok(())
}

/// The pages worth opening, and how to log in.
async fn print_where_to_look(
    store: &dyn Store,
    args: &DemoArgs,
    plan: &DemoPlan,
    url: &str,
    password: &str,
) -> anyhow::Result<()> {
    let scripted = plan.scripted.as_ref().map(|c| &c.video);
    let changed = first_changed_video(store, scripted, &plan.tracked).await?;
    println!("\nLook at (log in first):");
    println!("  {url}/dashboard            tracked channels and their latest videos");
    println!("  {url}/outliers             this week's channel and thumbnail/title outliers, with their lift");
    println!("  {url}/abtests              the finished A/B test's verdict and the running one");
    if let Some(video) = changed {
        println!("  {url}/videos/{video}   hourly views with a detected change");
    }
    println!("  {url}/settings/digest      the weekly digest (the mail itself is the .eml above)");
    println!("  {url}/api/v1/openapi.json  the API");
    let browse = if args.keep_running { "" } else { " (run with --keep-running to browse it)" };
    println!("\nWeb UI: {url}/login   as {DEMO_EMAIL} with password {password}{browse}");
    println!("Data: {}   Health: {url}/healthz   Metrics: {url}/metrics", args.data_dir.display());
    Ok(())
}

/// The demo's world: 200 channels (enough for the picks, few enough to pick in a second) whose
/// creators change thumbnails and titles more often than the calibrated world's, with more of the
/// new ones strong (as `eval outliers` does, further), so that a week holds changes worth
/// flagging.
fn demo_world(seed: u64) -> WorldParams {
    WorldParams {
        seed,
        channels: 200,
        creator_thumbnail_change_rate: 0.3,
        creator_title_change_rate: 0.2,
        creator_strong_variant_share: 0.6,
        ..WorldParams::default()
    }
}

/// A password that is easy to type and still not the same on every machine: `demo-` and eight
/// digits (the demo serves on 127.0.0.1 unless told otherwise).
fn easy_password() -> String {
    let digits: String = tubewatch_web::auth::random_secret()
        .bytes()
        .filter(u8::is_ascii_digit)
        .chain(std::iter::repeat(b'7'))
        .take(8)
        .map(char::from)
        .collect();
    format!("demo-{}-{}", &digits[..4], &digits[4..])
}

async fn print_abtests(store: &dyn Store, tests: &[AbTestId]) -> anyhow::Result<()> {
    for id in tests {
        let Some(detail) = store.abtest(*id).await? else { continue };
        let t = &detail.test;
        let result: serde_json::Value =
            t.result_json.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
        let verdict = &result["analysis"]["verdict"];
        let outcome = match verdict["verdict"].as_str() {
            Some("winner") => format!(
                "variant {} won",
                verdict["variant"].as_u64().and_then(|v| char::from_u32(u32::try_from(v).ok()? + 65)).unwrap_or('?')
            ),
            Some(other) => other.replace('_', " "),
            None => format!("ends {}", t.ends_at.format("%Y-%m-%d %H:%M")),
        };
        println!("  A/B test {id} ({}, video {}): {:?}, {outcome}", t.kind.as_str(), t.video_id, t.state);
    }
    Ok(())
}

async fn print_outliers(store: &dyn Store, week: &str) -> anyhow::Result<()> {
    let found = store.week_outliers(week).await?;
    println!("  weekly outliers ({week}):{}", if found.is_empty() { " none" } else { "" });
    for o in &found {
        let o = &o.outlier;
        println!("    {} outlier, video {}: {}", o.kind.as_str(), o.video_id, o.explanation);
    }
    Ok(())
}

/// The digest mail the outbox holds, if any.
fn digest_file(outbox: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(outbox)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("digest") && n.ends_with(".eml"))
        })
        .collect();
    found.sort();
    found.pop()
}

async fn counts(store: &dyn Store, channels: &[ChannelId]) -> anyhow::Result<(usize, usize, usize)> {
    let (mut videos, mut records, mut changes) = (0, 0, 0);
    for channel in channels {
        for video in store.channel_videos(channel).await? {
            videos += 1;
            records += store.views(&video.id).await?.len();
            changes += store.changes(&video.id).await?.len();
        }
    }
    Ok((videos, records, changes))
}

/// The video whose chart to look at: the scripted change's when it was detected, else the first
/// tracked video with a detected change.
async fn first_changed_video(
    store: &dyn Store,
    scripted: Option<&VideoId>,
    channels: &[ChannelId],
) -> anyhow::Result<Option<String>> {
    if let Some(video) = scripted
        && !store.changes(video).await?.is_empty()
    {
        return Ok(Some(video.to_string()));
    }
    for channel in channels {
        for video in store.channel_videos(channel).await? {
            if !store.changes(&video.id).await?.is_empty() {
                return Ok(Some(video.id.to_string()));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn slots_not_yet_due_are_not_counted_as_missing() {
        let policy = SchedulePolicy::default();
        let tracked = t("2026-01-05T00:00:00Z");
        // The run ended a few seconds after midnight: slots are compared up to an hour before.
        let horizon = t("2026-01-12T00:00:20Z") - Duration::hours(1);

        // Out before tracking began: from the tracking slot to its last hourly slot (its daily
        // slot at midnight is after the horizon).
        let old = due_slots(&policy, t("2026-01-04T10:30:00Z"), tracked, tracked + Duration::minutes(3), horizon);
        assert_eq!(old.first().map(|s| s.start()), Some(tracked));
        assert_eq!(old.last().map(|s| s.start()), Some(t("2026-01-11T10:00:00Z")));
        assert_eq!(old.len(), 6 * 24 + 11);

        // Published at 22:40 and found by the channel check at 22:55: its publish slot and the
        // next, which began before the horizon (23:00:20), are due.
        let published = t("2026-01-11T22:40:00Z");
        let found = t("2026-01-11T22:55:00Z");
        let due: Vec<DateTime<Utc>> =
            due_slots(&policy, published, tracked, found, horizon).iter().map(|s| s.start()).collect();
        assert_eq!(due, [t("2026-01-11T22:00:00Z"), t("2026-01-11T23:00:00Z")]);
        // Found only at 23:55, after the horizon: its slot is not due yet, so not missing.
        let found_late = t("2026-01-11T23:55:00Z");
        assert!(due_slots(&policy, t("2026-01-11T22:58:00Z"), tracked, found_late, horizon).is_empty());
        // Published after the horizon: nothing.
        assert!(due_slots(&policy, t("2026-01-11T23:30:00Z"), tracked, found_late, horizon).is_empty());
    }

    #[test]
    fn the_scripted_change_triples_views_on_a_video_tracked_before_it() {
        let world = World::new(demo_world(5));
        let start = world.params.epoch;
        let run = start + Duration::days(6) + Duration::hours(12);
        let candidates = changes_in_view(&world, start, run, Duration::hours(72));
        let scripted = pick_scripted(&world, &candidates, start).unwrap();
        let pick = candidates.iter().find(|c| c.video.id == scripted.video).unwrap();
        assert!(pick.video.published < start && !pick.video.is_short);
        let share = pick.video.impression_share;
        assert!((share * scripted.ctr_multiplier + 1.0 - share - SCRIPTED_VIEWS_LIFT).abs() < 1e-9);

        // Set through the simulator's mutations, the truth reports the change's tripled views.
        let mut muts = Mutations::default();
        world.set_multiplier(&mut muts, &pick.video, scripted.kind, &scripted.variant, scripted.ctr_multiplier, start);
        let changes = world.changes_of(&pick.video, &muts, run);
        let [change] = changes.as_slice() else { panic!("{changes:?}") };
        assert!(change.at >= start + Duration::hours(6), "{change:?}");
        assert!((change.views_lift - SCRIPTED_VIEWS_LIFT).abs() < 1e-9, "{change:?}");
    }
}
