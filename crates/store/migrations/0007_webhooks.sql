-- A user's webhook: the weekly outliers are POSTed to `url` (on a host the operator allows),
-- signed with a secret that is kept sealed (AEAD) because signing needs it back.
CREATE TABLE user_webhooks (
    user_id       {int} PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    secret_key_id TEXT NOT NULL,
    secret_sealed {bytes} NOT NULL,
    created_at    {time} NOT NULL
);

-- One row per user and week: the attempts so far and how the last one ended, so a retried
-- digest job never delivers a delivered week again and the user can see what happened.
CREATE TABLE webhook_deliveries (
    user_id         {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    week            TEXT NOT NULL,
    url             TEXT NOT NULL,
    outliers        INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    status_code     INTEGER,
    error           TEXT,
    last_attempt_at {time} NOT NULL,
    delivered_at    {time},
    PRIMARY KEY (user_id, week)
);
