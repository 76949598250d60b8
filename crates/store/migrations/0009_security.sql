-- When the billing state last applied to a user was true at Stripe (its event's creation time):
-- an event older than that arrives late and does not undo a newer state.
ALTER TABLE users ADD COLUMN billing_state_at {time};

-- API tokens expire (NULL: a token made before expiry existed, which lives until revoked) and are
-- scoped: 'read' tokens may only read.
ALTER TABLE api_tokens ADD COLUMN expires_at {time};
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'write';
