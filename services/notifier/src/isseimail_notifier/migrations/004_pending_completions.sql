-- campaign.completed can overtake the campaign's last delivery.failed events (handlers run concurrently):
-- its mail waits here until every failure it counts is known, or ISSEIMAIL_COMPLETION_WAIT_SECONDS pass.
CREATE TABLE pending_completions (
    campaign_id  uuid PRIMARY KEY,
    event        text NOT NULL,        -- the CampaignCompleted payload as JSON
    created_at   timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz
);
