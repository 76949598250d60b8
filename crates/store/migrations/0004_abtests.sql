-- A/B tests of thumbnails and titles.

-- One connected YouTube account per user. Tokens are sealed by the caller with an AEAD; the
-- database only ever sees ciphertext and the id of the key that sealed it (key rotation).
CREATE TABLE youtube_connections (
    user_id           {int} PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    channel_id        TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    refresh_key_id    TEXT NOT NULL,
    refresh_sealed    {bytes} NOT NULL,
    access_key_id     TEXT,
    access_sealed     {bytes},
    access_expires_at {time},
    state             TEXT NOT NULL DEFAULT 'active',
    state_reason      TEXT,
    connected_at      {time} NOT NULL,
    updated_at        {time} NOT NULL
);

CREATE TABLE abtests (
    id                   {id},
    user_id              {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    video_id             TEXT NOT NULL,
    video_published_at   {time} NOT NULL,
    kind                 TEXT NOT NULL,
    state                TEXT NOT NULL,
    state_reason         TEXT,
    starts_at            {time} NOT NULL,
    ends_at              {time} NOT NULL,
    rotation_minutes     INTEGER NOT NULL,
    final_action         TEXT NOT NULL,
    original_title       TEXT,
    original_thumb_key   TEXT,
    original_thumb_phash TEXT,
    power_json           TEXT NOT NULL,
    result_json          TEXT,
    quota_used           {int} NOT NULL DEFAULT 0,
    outside_change       TEXT,
    outside_change_at    {time},
    created_at           {time} NOT NULL,
    finished_at          {time},
    notified_at          {time}
);
CREATE INDEX abtests_user ON abtests (user_id, created_at);
CREATE INDEX abtests_video ON abtests (video_id);

CREATE TABLE abtest_variants (
    test_id        {int} NOT NULL REFERENCES abtests(id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL,
    thumb_blob_key TEXT,
    thumb_phash    TEXT,
    title          TEXT,
    PRIMARY KEY (test_id, idx)
){without_rowid};

-- The schedule, fixed at creation; each period records when its swap really happened, how it
-- went, and whether the analysis must leave the period out.
CREATE TABLE abtest_periods (
    test_id    {int} NOT NULL REFERENCES abtests(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    starts_at  {time} NOT NULL,
    ends_at    {time} NOT NULL,
    variant    INTEGER NOT NULL,
    swapped_at {time},
    outcome    TEXT,
    excluded   {bool} NOT NULL DEFAULT FALSE,
    PRIMARY KEY (test_id, idx)
){without_rowid};

-- Hourly cumulative views of the tested video during the test (finer than tracking after day 7).
CREATE TABLE abtest_views (
    test_id     {int} NOT NULL REFERENCES abtests(id) ON DELETE CASCADE,
    slot        {time} NOT NULL,
    measured_at {time} NOT NULL,
    views       {int} NOT NULL,
    PRIMARY KEY (test_id, slot)
){without_rowid};
