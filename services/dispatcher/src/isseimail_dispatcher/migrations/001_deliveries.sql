-- Campaigns as the dispatcher sees them, one delivery row per recipient, the batches that carry them
-- to the workers, and the fleet-wide politeness state (token buckets and connection leases).
CREATE TABLE campaigns (
    campaign_id  uuid PRIMARY KEY,
    pass_id      bigint NOT NULL,
    sender_email text NOT NULL,
    subject      text NOT NULL,
    template     text NOT NULL,            -- CampaignTemplate JSON, rendered once by the composer
    status       text NOT NULL DEFAULT 'accepted'
                 CHECK (status IN ('accepted', 'dispatching', 'paused', 'completed')),
    total        integer NOT NULL,
    accepted_at  timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);

CREATE TABLE batches (
    id            bigserial PRIMARY KEY,
    campaign_id   uuid NOT NULL REFERENCES campaigns,
    domain        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    claimed_by    uuid,                    -- the worker process sending it now
    claimed_until timestamptz,             -- its claim lapses if it dies; the sweeper republishes
    done_at       timestamptz
);
CREATE INDEX batches_unpublished ON batches (id) WHERE published_at IS NULL;
CREATE INDEX batches_open ON batches (claimed_until) WHERE done_at IS NULL AND claimed_by IS NOT NULL;

CREATE TABLE deliveries (
    id               bigserial PRIMARY KEY,
    campaign_id      uuid NOT NULL REFERENCES campaigns,
    row_number       integer NOT NULL,     -- CSV row; 0 is the sender's own copy
    email            text NOT NULL,
    domain           text NOT NULL,
    recipient        jsonb NOT NULL,       -- the snapshot row, for stamping the addressee block
    batch_id         bigint NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'sent', 'retrying', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    next_attempt_at  timestamptz,
    finished_at      timestamptz,
    smtp_code        integer,
    enhanced_status  text,
    diagnostic       text,
    bounced          boolean NOT NULL DEFAULT false,
    UNIQUE (campaign_id, row_number)
);
CREATE INDEX deliveries_batch ON deliveries (batch_id);
CREATE INDEX deliveries_campaign_state ON deliveries (campaign_id, state);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'retrying';

CREATE TABLE domain_buckets (
    domain      text PRIMARY KEY,
    tokens      double precision NOT NULL,
    refilled_at timestamptz NOT NULL
);

CREATE TABLE domain_leases (
    domain     text NOT NULL,
    slot       integer NOT NULL,
    holder     uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (domain, slot)
);
