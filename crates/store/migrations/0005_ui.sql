-- When each user last loaded the dashboard, and where its "since your last visit" window starts.
CREATE TABLE dashboard_visits (
    user_id {int} PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    seen_at {time} NOT NULL,
    since   {time} NOT NULL
);

-- "What changed since": changes and outliers by the time they were found.
CREATE INDEX changes_detected ON changes (detected_at);
CREATE INDEX outliers_found ON outliers (found_at);
