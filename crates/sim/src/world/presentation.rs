//! A video's presentation: its titles and thumbnails (the creator's own variants and those
//! set through the Data API), the change events between them, every variant's multiplier on
//! click-through rate (drawn, or overridden through the control API), and recording the
//! changes and overrides in [`Mutations`].

use chrono::{DateTime, Utc};

use super::catalog::make_title;
use super::model::VARIANT_STRONG_SHARE;
use super::model::variant_multiplier;
use super::{
    ApiChange, ChangeSource, ChangeTruth, Event, MultiplierOverride, Mutations, VariantKind, Video, VideoKey, World,
    thumbnail_variant_id, title_variant_id,
};
use crate::rng::{hash, tag};

impl World {
    /// The title of a creator variant (`c0` is the original).
    pub(super) fn creator_title(&self, key: &VideoKey, variant: &str) -> String {
        let n: u64 = variant.strip_prefix('c').and_then(|n| n.parse().ok()).unwrap_or(0);
        make_title(hash(
            self.params.seed,
            &[tag("title"), u64::from(key.channel), key.stream.bit(), u64::from(key.index), n],
        ))
    }

    /// A variant's multiplier when no override applies: the original is the reference (1.0);
    /// creator variants and uploaded ones draw theirs from the seed and, for uploads, the
    /// content hash, so the same image always has the same effect.
    pub fn default_multiplier(&self, key: &VideoKey, kind: VariantKind, variant: &str) -> f64 {
        let kind_tag = match kind {
            VariantKind::Thumbnail => tag("mult-thumb"),
            VariantKind::Title => tag("mult-title"),
        };
        match variant {
            "c0" => 1.0,
            v if v.starts_with('c') => variant_multiplier(
                hash(
                    self.params.seed,
                    &[kind_tag, u64::from(key.channel), key.stream.bit(), u64::from(key.index), tag(v)],
                ),
                self.params.creator_strong_variant_share,
            ),
            v => variant_multiplier(hash(self.params.seed, &[kind_tag, tag(v)]), VARIANT_STRONG_SHARE),
        }
    }

    /// Every presentation change of a video, creator-made and API-made, in time order (ties:
    /// creator first), each with the variant it replaced.
    pub(super) fn change_events(&self, video: &Video, muts: &Mutations) -> Vec<Event> {
        let mut events: Vec<_> = video
            .creator_changes
            .iter()
            .map(|c| {
                let title = (c.kind == VariantKind::Title).then(|| self.creator_title(&video.key, &c.variant));
                (c.at, c.kind, ChangeSource::Creator, c.variant.clone(), title)
            })
            .collect();
        if let Some(api) = muts.changes.get(&video.key) {
            events.extend(api.iter().map(|c| (c.at, c.kind, ChangeSource::Api, c.variant.clone(), c.title.clone())));
        }
        // Stable sort keeps creator changes before API changes at the same instant.
        events.sort_by_key(|e| e.0);
        events
    }

    pub(super) fn live_variant(events: &[Event], kind: VariantKind, t: DateTime<Utc>) -> (String, Option<String>) {
        events
            .iter()
            .rev()
            .find(|e| e.1 == kind && e.0 <= t)
            .map(|e| (e.3.clone(), e.4.clone()))
            .unwrap_or_else(|| ("c0".to_owned(), None))
    }

    pub(super) fn multiplier_at(
        &self,
        video: &Video,
        muts: &Mutations,
        kind: VariantKind,
        variant: &str,
        t: DateTime<Utc>,
    ) -> f64 {
        muts.overrides
            .get(&video.key)
            .and_then(|list| list.iter().rev().find(|o| o.kind == kind && o.variant == variant && o.at <= t))
            .map(|o| o.multiplier)
            .unwrap_or_else(|| self.default_multiplier(&video.key, kind, variant))
    }

    pub(super) fn combined_multiplier(
        &self,
        video: &Video,
        muts: &Mutations,
        events: &[Event],
        t: DateTime<Utc>,
    ) -> f64 {
        let (thumb, _) = Self::live_variant(events, VariantKind::Thumbnail, t);
        let (title, _) = Self::live_variant(events, VariantKind::Title, t);
        self.multiplier_at(video, muts, VariantKind::Thumbnail, &thumb, t)
            * self.multiplier_at(video, muts, VariantKind::Title, &title, t)
    }

    /// Every title/thumbnail change of a video at or before `until`, with before/after truth.
    pub fn changes_of(&self, video: &Video, muts: &Mutations, until: DateTime<Utc>) -> Vec<ChangeTruth> {
        let events = self.change_events(video, muts);
        let mut out = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if e.0 > until {
                break;
            }
            let (previous, _) = Self::live_variant(&events[..i], e.1, e.0);
            let multiplier = self.multiplier_at(video, muts, e.1, &e.3, e.0);
            let previous_multiplier = self.multiplier_at(video, muts, e.1, &previous, e.0);
            let share = video.impression_share;
            out.push(ChangeTruth {
                video_id: video.id.clone(),
                channel_id: self.channel_id_of(video),
                at: e.0,
                kind: e.1,
                source: e.2,
                multiplier,
                previous_multiplier,
                views_lift: (share * multiplier + 1.0 - share) / (share * previous_multiplier + 1.0 - share),
                previous_variant: previous,
                variant: e.3.clone(),
                title: e
                    .4
                    .clone()
                    .or_else(|| (e.1 == VariantKind::Title).then(|| self.creator_title(&video.key, &e.3))),
            });
        }
        out
    }

    /// Multiplier overrides recorded for a video.
    pub fn overrides_of(&self, video: &Video, muts: &Mutations) -> Vec<MultiplierOverride> {
        muts.overrides.get(&video.key).cloned().unwrap_or_default()
    }

    /// Records a thumbnail upload made through the Data API at `at`.
    pub fn set_thumbnail(&self, muts: &mut Mutations, video: &Video, image: Vec<u8>, at: DateTime<Utc>) -> String {
        let variant = thumbnail_variant_id(&image);
        muts.images.entry(variant.clone()).or_insert_with(|| std::sync::Arc::new(image));
        muts.changes.entry(video.key).or_default().push(ApiChange {
            at,
            kind: VariantKind::Thumbnail,
            variant: variant.clone(),
            title: None,
        });
        variant
    }

    /// Records a title edit made through the Data API at `at`; `None` if the title is unchanged.
    pub fn set_title(&self, muts: &mut Mutations, video: &Video, title: &str, at: DateTime<Utc>) -> Option<String> {
        if self.live_state(video, muts, at).title == title {
            return None;
        }
        // Setting a title back to a creator variant's text restores that variant, so reverting
        // an A/B test brings back the original multiplier.
        let creator = ["c0", "c1"].into_iter().find(|v| self.creator_title(&video.key, v) == title);
        let variant = creator.map_or_else(|| title_variant_id(title), str::to_owned);
        muts.changes.entry(video.key).or_default().push(ApiChange {
            at,
            kind: VariantKind::Title,
            variant: variant.clone(),
            title: Some(title.to_owned()),
        });
        Some(variant)
    }

    /// Sets a variant's multiplier from `at` on (the past keeps the old one).
    pub fn set_multiplier(
        &self,
        muts: &mut Mutations,
        video: &Video,
        kind: VariantKind,
        variant: &str,
        multiplier: f64,
        at: DateTime<Utc>,
    ) {
        muts.overrides.entry(video.key).or_default().push(MultiplierOverride {
            at,
            kind,
            variant: variant.to_owned(),
            multiplier,
        });
    }

    /// The look of a generated (creator) thumbnail variant: one picture per video and variant.
    pub fn thumbnail_look(&self, video: &Video, variant: &str) -> u64 {
        video.key.h(self.params.seed, &format!("look-{variant}"))
    }

    /// Text of the live title variant, for the truth of creator titles.
    pub fn title_of_variant(&self, video: &Video, variant: &str) -> String {
        self.creator_title(&video.key, variant)
    }
}
