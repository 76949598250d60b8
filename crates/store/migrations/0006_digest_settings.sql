-- Whether the user wants the weekly digest (on by default; off after unsubscribing).
ALTER TABLE users ADD COLUMN digest_enabled {bool} NOT NULL DEFAULT TRUE;

-- Unsubscribe links: each digest carries a fresh random token; only its SHA-256 is kept. The
-- token is the link's whole authority (it works without logging in, as mail clients' one-click
-- unsubscribe needs), and it can do nothing but turn that user's digest off.
CREATE TABLE digest_unsubscribe_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at {time} NOT NULL
);
CREATE INDEX digest_unsubscribe_tokens_user ON digest_unsubscribe_tokens (user_id);
