-- tubewatch schema, SQLite dialect. Times are integer milliseconds since the Unix epoch (UTC)
-- so that comparisons are exact. Kept in step with migrations/postgres.

CREATE TABLE channels (
    id              TEXT PRIMARY KEY,
    title           TEXT NOT NULL DEFAULT '',
    handle          TEXT,
    latest_video_id TEXT,
    checked_at      INTEGER,
    created_at      INTEGER NOT NULL
);

CREATE TABLE videos (
    id             TEXT PRIMARY KEY,
    channel_id     TEXT NOT NULL REFERENCES channels(id),
    published_at   INTEGER NOT NULL,
    is_short       INTEGER NOT NULL DEFAULT 0,
    title          TEXT NOT NULL,
    thumb_sha256   TEXT,
    thumb_phash    TEXT,
    thumb_blob_key TEXT,
    created_at     INTEGER NOT NULL
);
CREATE INDEX videos_channel ON videos (channel_id, published_at);

-- The schedule and the work queue: one row per thing to watch, shared by every user watching it.
CREATE TABLE targets (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'active',
    next_due_at   INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_until   INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_error_at INTEGER,
    created_at    INTEGER NOT NULL,
    UNIQUE (kind, subject)
);
CREATE INDEX targets_due ON targets (next_due_at) WHERE state = 'active';

CREATE TABLE views (
    video_id    TEXT NOT NULL REFERENCES videos(id),
    slot        INTEGER NOT NULL,
    measured_at INTEGER NOT NULL,
    views       INTEGER NOT NULL,
    PRIMARY KEY (video_id, slot)
) WITHOUT ROWID;

CREATE TABLE changes (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id         TEXT NOT NULL REFERENCES videos(id),
    kind             TEXT NOT NULL,
    slot             INTEGER NOT NULL,
    detected_at      INTEGER NOT NULL,
    before_title     TEXT,
    after_title      TEXT,
    before_thumb_key TEXT,
    after_thumb_key  TEXT,
    UNIQUE (video_id, kind, slot)
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    plan          TEXT NOT NULL DEFAULT 'free',
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE user_channels (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id TEXT NOT NULL REFERENCES channels(id),
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);

-- added_at counts against the monthly video limit.
CREATE TABLE user_videos (
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    video_id TEXT NOT NULL REFERENCES videos(id),
    added_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, video_id)
);
