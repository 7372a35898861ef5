-- An administrator may add an address to the suppression list by hand (with a reason, audited).
ALTER TABLE suppressions DROP CONSTRAINT IF EXISTS suppressions_kind_check;
ALTER TABLE suppressions ADD CONSTRAINT suppressions_kind_check
    CHECK (kind IN ('bounced', 'unsubscribed', 'complained', 'manual'));
-- The administrator's console pages a campaign's failures in order.
CREATE INDEX IF NOT EXISTS failures_campaign ON failures (campaign_id, id);
