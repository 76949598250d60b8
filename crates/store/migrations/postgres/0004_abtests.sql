-- A/B tests of thumbnails and titles, PostgreSQL dialect. Kept in
-- step with migrations/sqlite/0004_abtests.sql.

-- One connected YouTube account per user. Tokens are sealed by the caller with an AEAD; the
-- database only ever sees ciphertext and the id of the key that sealed it (key rotation).
CREATE TABLE youtube_connections (
    user_id           BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    channel_id        TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    refresh_key_id    TEXT NOT NULL,
    refresh_sealed    BYTEA NOT NULL,
    access_key_id     TEXT,
    access_sealed     BYTEA,
    access_expires_at TIMESTAMPTZ,
    state             TEXT NOT NULL DEFAULT 'active',
    state_reason      TEXT,
    connected_at      TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE abtests (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id              BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    video_id             TEXT NOT NULL,
    video_published_at   TIMESTAMPTZ NOT NULL,
    kind                 TEXT NOT NULL,
    state                TEXT NOT NULL,
    state_reason         TEXT,
    starts_at            TIMESTAMPTZ NOT NULL,
    ends_at              TIMESTAMPTZ NOT NULL,
    rotation_minutes     INTEGER NOT NULL,
    final_action         TEXT NOT NULL,
    original_title       TEXT,
    original_thumb_key   TEXT,
    original_thumb_phash TEXT,
    power_json           TEXT NOT NULL,
    result_json          TEXT,
    quota_used           BIGINT NOT NULL DEFAULT 0,
    outside_change       TEXT,
    outside_change_at    TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL,
    finished_at          TIMESTAMPTZ,
    notified_at          TIMESTAMPTZ
);
CREATE INDEX abtests_user ON abtests (user_id, created_at);
CREATE INDEX abtests_video ON abtests (video_id);

CREATE TABLE abtest_variants (
    test_id        BIGINT NOT NULL REFERENCES abtests(id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL,
    thumb_blob_key TEXT,
    thumb_phash    TEXT,
    title          TEXT,
    PRIMARY KEY (test_id, idx)
);

-- The schedule, fixed at creation; each period records when its swap really happened, how it
-- went, and whether the analysis must leave the period out.
CREATE TABLE abtest_periods (
    test_id    BIGINT NOT NULL REFERENCES abtests(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    starts_at  TIMESTAMPTZ NOT NULL,
    ends_at    TIMESTAMPTZ NOT NULL,
    variant    INTEGER NOT NULL,
    swapped_at TIMESTAMPTZ,
    outcome    TEXT,
    excluded   BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (test_id, idx)
);

-- Hourly cumulative views of the tested video during the test (finer than tracking after day 7).
CREATE TABLE abtest_views (
    test_id     BIGINT NOT NULL REFERENCES abtests(id) ON DELETE CASCADE,
    slot        TIMESTAMPTZ NOT NULL,
    measured_at TIMESTAMPTZ NOT NULL,
    views       BIGINT NOT NULL,
    PRIMARY KEY (test_id, slot)
);
