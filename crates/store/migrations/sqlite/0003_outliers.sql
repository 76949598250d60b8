-- Weekly outliers, SQLite dialect (times in integer milliseconds). Kept in step with
-- migrations/postgres/0003_outliers.sql.

-- One typical-band snapshot per channel: the JSON of core's ChannelBandSnapshot (long-form and
-- Shorts curves kept apart inside), and the time up to which measurements were applied to it.
CREATE TABLE channel_bands (
    channel_id TEXT PRIMARY KEY REFERENCES channels(id),
    snapshot   TEXT NOT NULL,
    applied_through INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- What the weekly runs found. One row per (video, kind, week): re-running a week adds nothing.
CREATE TABLE outliers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id    TEXT NOT NULL REFERENCES videos(id),
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    kind        TEXT NOT NULL,            -- channel | thumbnail | title
    week        TEXT NOT NULL,            -- ISO week, e.g. 2026-W03
    score       REAL NOT NULL,            -- channel: views ÷ band median; change: 1 + lift
    lift        REAL,                     -- change outliers: observed ÷ predicted − 1
    ci_low      REAL,
    ci_high     REAL,
    age_hours   REAL,                     -- channel outliers: the age judged at
    views       INTEGER NOT NULL,
    changed_at  INTEGER,                  -- change outliers: when the change was made
    thumb_key   TEXT,                     -- the archived thumbnail shown in the digest
    explanation TEXT NOT NULL,
    found_at    INTEGER NOT NULL,
    UNIQUE (video_id, kind, week)
);
CREATE INDEX outliers_week ON outliers (week, channel_id);

-- Digests sent: one per user and week, so a retried digest job never sends twice.
CREATE TABLE digests_sent (
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    week     TEXT NOT NULL,
    outliers INTEGER NOT NULL,
    delivery TEXT NOT NULL,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, week)
);
