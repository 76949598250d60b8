-- The channel owner's daily reach (YouTube Reporting API, report `channel_reach_basic_a1`), read
-- for A/B tests on a grant with `yt-analytics.readonly`.

-- Per connected channel: its reporting job and how far its reports were read. `reports_through`
-- is the creation time of the newest report read together with every report created before or
-- with it: the next poll asks for reports created after it.
CREATE TABLE reach_jobs (
    channel_id      TEXT PRIMARY KEY,
    job_id          TEXT NOT NULL,
    job_created_at  {time} NOT NULL,
    reports_through {time},
    last_day        TEXT,
    updated_at      {time} NOT NULL
);

-- Thumbnail impressions and their click-through rate per video and Pacific day (`day` is
-- YYYY-MM-DD; `day_start`/`day_end` are the report's bounds). A report read again, or a later
-- backfill of the same day, replaces the day.
CREATE TABLE reach_days (
    video_id    TEXT NOT NULL,
    day         TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    day_start   {time} NOT NULL,
    day_end     {time} NOT NULL,
    impressions {int} NOT NULL,
    ctr         {real} NOT NULL,
    PRIMARY KEY (video_id, day)
){without_rowid};

-- Each test's reach state: not_granted | waiting_for_first_report | receiving | failed | revoked,
-- with its reason (when the job was created, the last day received, the last error).
ALTER TABLE abtests ADD COLUMN reach_state TEXT NOT NULL DEFAULT 'not_granted';
ALTER TABLE abtests ADD COLUMN reach_reason TEXT;
ALTER TABLE abtests ADD COLUMN reach_updated_at {time};
