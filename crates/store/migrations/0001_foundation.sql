-- tubewatch schema: one source for both backends. `src/schema.rs` renders the words in braces per
-- dialect: {time} (SQLite: integer milliseconds since the Unix epoch, so comparisons are exact;
-- PostgreSQL: TIMESTAMPTZ), {id} (an identity primary key), {int}, {bool}, {bytes}, {real}, and
-- {without_rowid} (SQLite's clustered tables; nothing on PostgreSQL).

CREATE TABLE channels (
    id              TEXT PRIMARY KEY,
    title           TEXT NOT NULL DEFAULT '',
    handle          TEXT,
    latest_video_id TEXT,
    checked_at {time},
    created_at {time} NOT NULL
);

CREATE TABLE videos (
    id             TEXT PRIMARY KEY,
    channel_id     TEXT NOT NULL REFERENCES channels(id),
    published_at {time} NOT NULL,
    is_short       {bool} NOT NULL DEFAULT FALSE,
    title          TEXT NOT NULL,
    thumb_sha256   TEXT,
    thumb_phash    TEXT,
    thumb_blob_key TEXT,
    created_at {time} NOT NULL
);
CREATE INDEX videos_channel ON videos (channel_id, published_at);

-- The schedule and the work queue: one row per thing to watch, shared by every user watching it.
CREATE TABLE targets (
    id            {id},
    kind          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'active',
    next_due_at {time} NOT NULL,
    lease_owner   TEXT,
    lease_until {time},
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_error_at {time},
    created_at {time} NOT NULL,
    UNIQUE (kind, subject)
);
CREATE INDEX targets_due ON targets (next_due_at) WHERE state = 'active';

CREATE TABLE views (
    video_id    TEXT NOT NULL REFERENCES videos(id),
    slot        {time} NOT NULL,
    measured_at {time} NOT NULL,
    views       {int} NOT NULL,
    PRIMARY KEY (video_id, slot)
){without_rowid};

CREATE TABLE changes (
    id               {id},
    video_id         TEXT NOT NULL REFERENCES videos(id),
    kind             TEXT NOT NULL,
    slot             {time} NOT NULL,
    detected_at {time} NOT NULL,
    before_title     TEXT,
    after_title      TEXT,
    before_thumb_key TEXT,
    after_thumb_key  TEXT,
    UNIQUE (video_id, kind, slot)
);

CREATE TABLE users (
    id            {id},
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    plan          TEXT NOT NULL DEFAULT 'free',
    is_admin      {bool} NOT NULL DEFAULT FALSE,
    created_at {time} NOT NULL
);

CREATE TABLE user_channels (
    user_id    {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id TEXT NOT NULL REFERENCES channels(id),
    added_at {time} NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);

-- added_at counts against the monthly video limit.
CREATE TABLE user_videos (
    user_id  {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    video_id TEXT NOT NULL REFERENCES videos(id),
    added_at {time} NOT NULL,
    PRIMARY KEY (user_id, video_id)
);
