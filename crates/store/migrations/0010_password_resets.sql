-- Password resets sent by mail, by the SHA-256 of their single-use token.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id    {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at {time} NOT NULL,
    expires_at {time} NOT NULL,
    used_at    {time}
);
CREATE INDEX password_resets_user ON password_resets (user_id);
