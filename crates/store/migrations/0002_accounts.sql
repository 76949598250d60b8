-- Accounts: sessions, API tokens, login throttling, monthly video credits, Stripe ids and events,
-- audit log.
-- Secrets are never stored: sessions and tokens are kept as SHA-256 hashes of high-entropy values.

ALTER TABLE users ADD COLUMN stripe_customer_id TEXT;
ALTER TABLE users ADD COLUMN stripe_subscription_id TEXT;
CREATE UNIQUE INDEX users_stripe_customer ON users (stripe_customer_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at {time} NOT NULL,
    expires_at {time} NOT NULL,
    revoked_at {time}
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           {id},
    user_id      {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    -- The first characters of the token, shown in lists so a user can tell tokens apart.
    prefix       TEXT NOT NULL,
    created_at   {time} NOT NULL,
    last_used_at {time},
    revoked_at   {time}
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- One row per failed log-in, keyed by account or client address; shared by every web process.
CREATE TABLE login_failures (
    key       TEXT NOT NULL,
    failed_at {time} NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, failed_at);

-- One row per individually tracked video charged to a user; kept when the video is untracked so
-- that untracking does not refund the month's credit.
CREATE TABLE video_credits (
    user_id    {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    video_id   TEXT NOT NULL,
    charged_at {time} NOT NULL
);
CREATE INDEX video_credits_user ON video_credits (user_id, charged_at);

-- Stripe webhook events already applied (idempotency by event id).
CREATE TABLE stripe_events (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    received_at {time} NOT NULL
);

CREATE TABLE audit_log (
    id       {id},
    user_id  {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- Who did it: the user, an admin, or NULL for the system (billing webhooks, CLI).
    actor_id {int},
    action   TEXT NOT NULL,
    detail   TEXT NOT NULL,
    at       {time} NOT NULL
);
CREATE INDEX audit_log_user ON audit_log (user_id, at);
