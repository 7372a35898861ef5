-- Completion and progress from counters on the campaign row (O(1) per check) instead of counting the
-- campaign's deliveries after every batch; each committed outcome group adds to them in its transaction.
ALTER TABLE campaigns
    ADD COLUMN sent    integer NOT NULL DEFAULT 0,
    ADD COLUMN failed  integer NOT NULL DEFAULT 0,
    ADD COLUMN bounced integer NOT NULL DEFAULT 0,
    ADD COLUMN delayed integer NOT NULL DEFAULT 0;   -- delayed and not (yet) bounced
UPDATE campaigns c SET sent = k.sent, failed = k.failed, bounced = k.bounced, delayed = k.delayed
FROM (SELECT campaign_id, count(*) FILTER (WHERE state = 'sent') AS sent,
             count(*) FILTER (WHERE state = 'failed') AS failed, count(*) FILTER (WHERE bounced) AS bounced,
             count(*) FILTER (WHERE delayed AND NOT bounced) AS delayed
      FROM deliveries GROUP BY campaign_id) k
WHERE k.campaign_id = c.campaign_id;

-- No index may name `state` (not even in a partial index's predicate): every outcome changes it, and a
-- changed indexed column turns the update into a non-HOT one with a new entry in every index. Rows waiting
-- for a retry are exactly those with next_attempt_at set (a sent or failed update leaves it NULL).
DROP INDEX deliveries_campaign_state;
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
-- Room on each page for the new versions (a row is updated about twice: claimed, then its outcome), so the
-- updates stay on the page; HOT pruning reclaims the old versions as the pages are visited again.
ALTER TABLE deliveries SET (fillfactor = 50);
