-- Server-side sessions of the gateway (the cookie holds only a random id; its SHA-256 is stored here).
-- A session ends on logout (revoked_at), at expires_at (a pass session: the end of its day of use), and
-- a pass session is narrowed to reading its campaign's progress once the pass is consumed (campaign_id).
CREATE TABLE sessions (
    id_hash     bytea PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('pass', 'admin')),
    pass_id     bigint REFERENCES passes (id),
    admin_id    bigint REFERENCES admins (id),
    campaign_id uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CHECK ((kind = 'pass') = (pass_id IS NOT NULL) AND (kind = 'admin') = (admin_id IS NOT NULL))
);
CREATE INDEX sessions_pass ON sessions (pass_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);
