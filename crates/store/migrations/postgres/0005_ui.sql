-- The web UI, PostgreSQL dialect. Kept in step with migrations/sqlite/0005_ui.sql.

-- When each user last loaded the dashboard, and where its "since your last visit" window starts.
CREATE TABLE dashboard_visits (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    seen_at TIMESTAMPTZ NOT NULL,
    since   TIMESTAMPTZ NOT NULL
);

-- "What changed since": changes and outliers by the time they were found.
CREATE INDEX changes_detected ON changes (detected_at);
CREATE INDEX outliers_found ON outliers (found_at);
