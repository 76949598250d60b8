-- One typical-band snapshot per channel: the JSON of core's ChannelBandSnapshot (long-form and
-- Shorts curves kept apart inside), and the time up to which measurements were applied to it.
CREATE TABLE channel_bands (
    channel_id TEXT PRIMARY KEY REFERENCES channels(id),
    snapshot   TEXT NOT NULL,
    applied_through {time} NOT NULL,
    updated_at {time} NOT NULL
);

-- What the weekly runs found. One row per (video, kind, week): re-running a week adds nothing.
CREATE TABLE outliers (
    id          {id},
    video_id    TEXT NOT NULL REFERENCES videos(id),
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    kind        TEXT NOT NULL,            -- channel | thumbnail | title
    week        TEXT NOT NULL,            -- ISO week, e.g. 2026-W03
    score       {real} NOT NULL, -- channel: views ÷ band median; change: 1 + lift
    lift        {real},         -- change outliers: observed ÷ predicted − 1
    ci_low      {real},
    ci_high     {real},
    age_hours   {real},         -- channel outliers: the age judged at
    views       {int} NOT NULL,
    changed_at  {time},              -- change outliers: when the change was made
    thumb_key   TEXT,                     -- the archived thumbnail shown in the digest
    explanation TEXT NOT NULL,
    found_at    {time} NOT NULL,
    UNIQUE (video_id, kind, week)
);
CREATE INDEX outliers_week ON outliers (week, channel_id);

-- Digests sent: one per user and week, so a retried digest job never sends twice.
CREATE TABLE digests_sent (
    user_id  {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    week     TEXT NOT NULL,
    outliers INTEGER NOT NULL,
    delivery TEXT NOT NULL,
    sent_at  {time} NOT NULL,
    PRIMARY KEY (user_id, week)
);
