-- Cancelled recipients counted on the campaign row like the other outcomes (progress reads counters only).
ALTER TABLE campaigns ADD COLUMN cancelled integer NOT NULL DEFAULT 0;
UPDATE campaigns c SET cancelled = k.n
FROM (SELECT campaign_id, count(*) AS n FROM deliveries WHERE state = 'cancelled' GROUP BY campaign_id) k
WHERE k.campaign_id = c.campaign_id;
