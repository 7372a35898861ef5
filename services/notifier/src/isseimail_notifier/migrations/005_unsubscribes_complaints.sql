-- Suppression per sender organisation. A bounce means the address does not take mail: it is suppressed for
-- everyone (scope '*'). An unsubscribe or a spam complaint is about one sender: it is suppressed for that
-- sender organisation (scope = the From domain, lower-case A-labels).
ALTER TABLE suppressions ADD COLUMN scope text NOT NULL DEFAULT '*';
ALTER TABLE suppressions ADD COLUMN kind text NOT NULL DEFAULT 'bounced'
    CHECK (kind IN ('bounced', 'unsubscribed', 'complained'));
ALTER TABLE suppressions DROP CONSTRAINT suppressions_pkey;
ALTER TABLE suppressions ADD PRIMARY KEY (address, scope);
ALTER TABLE suppression_audit ADD COLUMN scope text;

-- Every feedback report (ARF, RFC 5965) the listener accepted, readable or not: nothing acknowledged is lost.
-- campaign_id/delivery_id/recipient are set only when an authenticated tag (VERP or unsubscribe token)
-- named a delivery we know.
CREATE TABLE complaints (
    id             bigserial PRIMARY KEY,
    received_at    timestamptz NOT NULL DEFAULT now(),
    mail_from      text NOT NULL,
    rcpt           text NOT NULL,
    size           int NOT NULL,
    raw            bytea NOT NULL,
    parsed         boolean NOT NULL,     -- false: not a readable feedback report, kept for an operator
    feedback_type  text,
    user_agent     text,
    campaign_id    uuid,
    delivery_id    bigint,
    recipient      text,
    organisation   text,
    note           text
);
CREATE INDEX complaints_campaign ON complaints (campaign_id, delivery_id) WHERE recipient IS NOT NULL;
CREATE INDEX campaigns_accepted ON campaigns (accepted_at);
