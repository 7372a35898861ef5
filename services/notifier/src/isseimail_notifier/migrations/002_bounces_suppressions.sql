-- Credential mails keep their body Fernet-encrypted at rest; completion mails may carry one CSV.
ALTER TABLE mail_log ADD COLUMN encrypted boolean NOT NULL DEFAULT false;
ALTER TABLE mail_log ADD COLUMN attachment_name text;
ALTER TABLE mail_log ADD COLUMN attachment bytea;

-- What the notifier knows of a campaign (from campaign.accepted): whom to tell about bounces.
CREATE TABLE campaigns (
    campaign_id  uuid PRIMARY KEY,
    sender_email text NOT NULL,
    subject      text NOT NULL,
    accepted_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per failed recipient (a 5xx while sending, or a bounce later); reported in digests.
CREATE TABLE failures (
    id           bigserial PRIMARY KEY,
    campaign_id  uuid NOT NULL,
    delivery_id  bigint NOT NULL,
    source       text NOT NULL CHECK (source IN ('smtp', 'bounce')),
    recipient    text NOT NULL,
    row_number   int,
    status       text,
    smtp_code    int,
    reason       text NOT NULL,
    hard         boolean NOT NULL,
    diagnostic   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    reported_by  text,                  -- cause of the mail that reported it; NULL = not yet reported
    UNIQUE (campaign_id, delivery_id, source)
);
CREATE INDEX failures_unreported ON failures (campaign_id) WHERE reported_by IS NULL;

-- When the last failure report for a campaign went out: the next waits for the digest window.
CREATE TABLE failure_digests (
    campaign_id  uuid PRIMARY KEY,
    last_sent_at timestamptz NOT NULL,
    mails        int NOT NULL DEFAULT 0
);

-- Every message the bounce listener accepted, with what the parser made of it.
CREATE TABLE bounces (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    mail_from    text NOT NULL,
    rcpt         text NOT NULL,
    campaign_id  uuid NOT NULL,
    delivery_id  bigint NOT NULL,
    size         int NOT NULL,
    raw          bytea NOT NULL,
    is_bounce    boolean NOT NULL,
    recipient    text,
    status       text,
    reason       text NOT NULL,
    hard         boolean NOT NULL,
    diagnostic   text NOT NULL,
    note         text
);
CREATE INDEX bounces_campaign ON bounces (campaign_id);

-- Addresses not to mail again. Hard bounces suppress at once; soft ones after repeats.
CREATE TABLE suppressions (
    address         text PRIMARY KEY,   -- lower-case
    reason          text NOT NULL,
    hard            boolean NOT NULL,
    bounces         int NOT NULL DEFAULT 1,
    active          boolean NOT NULL,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    source_campaign uuid
);
CREATE INDEX suppressions_active ON suppressions (address) WHERE active;

CREATE TABLE suppression_audit (
    id       bigserial PRIMARY KEY,
    address  text NOT NULL,
    action   text NOT NULL,
    reason   text NOT NULL,
    actor    text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
