-- An administrator may pause, resume and cancel a campaign (campaign_control.py); each change is audited.
ALTER TABLE campaigns DROP CONSTRAINT IF EXISTS campaigns_status_check;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_status_check
    CHECK (status IN ('accepted', 'dispatching', 'paused', 'completed', 'cancelled'));
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('pending', 'sending', 'sent', 'retrying', 'failed', 'cancelled'));
CREATE TABLE campaign_controls (
    id          bigserial PRIMARY KEY,
    campaign_id uuid NOT NULL REFERENCES campaigns,
    action      text NOT NULL CHECK (action IN ('pause', 'resume', 'cancel')),
    from_status text NOT NULL,
    reason      text NOT NULL,
    actor       text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_controls_campaign ON campaign_controls (campaign_id, id);
