-- Where deliveries went, one row per deliveries.settled event (a group of up to a few hundred recipients)
-- instead of one row per recipient: a bounce's VERP tag or an unsubscribe token names a delivery id, and
-- delivered_to() finds its address through the GiST index on the group's id range. The per-recipient
-- `deliveries` table stays for delivery.succeeded events of dispatchers from before the groups.
CREATE TABLE delivered_groups (
    id           bigserial PRIMARY KEY,
    campaign_id  uuid NOT NULL,
    ids          int8range NOT NULL,       -- [lowest, highest] delivery id in the group
    delivery_ids bigint[] NOT NULL,
    recipients   text[] NOT NULL,
    row_numbers  int[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivered_groups_ids ON delivered_groups USING gist (ids);
CREATE INDEX delivered_groups_campaign ON delivered_groups (campaign_id);
CREATE INDEX delivered_groups_created ON delivered_groups (created_at);

CREATE FUNCTION delivered_to(campaign uuid, delivery bigint)
RETURNS TABLE (recipient text, row_number int) LANGUAGE sql STABLE AS $$
    SELECT g.recipients[p], g.row_numbers[p]
    FROM delivered_groups g, LATERAL array_position(g.delivery_ids, delivery) AS p
    WHERE g.ids @> delivery AND g.campaign_id = campaign AND p IS NOT NULL
    UNION ALL
    SELECT d.recipient, d.row_number FROM deliveries d WHERE d.campaign_id = campaign AND d.delivery_id = delivery
    LIMIT 1
$$;
