-- Email verification. `email_verified_at` is NULL while the address is unconfirmed: such an
-- account cannot log in. Accounts that existed before verification did are taken as verified.
ALTER TABLE users ADD COLUMN email_verified_at {time};
UPDATE users SET email_verified_at = created_at;

-- Verification links sent by mail, by the SHA-256 of their single-use token.
CREATE TABLE email_verifications (
    token_hash TEXT PRIMARY KEY,
    user_id    {int} NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at {time} NOT NULL,
    expires_at {time} NOT NULL,
    used_at    {time}
);
CREATE INDEX email_verifications_user ON email_verifications (user_id);
