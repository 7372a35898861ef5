-- Where each delivery went (from delivery.succeeded): a bounce's VERP tag names the delivery, and this
-- row names the address, so a bounce can never suppress an address it merely mentions.
CREATE TABLE deliveries (
    campaign_id  uuid NOT NULL,
    delivery_id  bigint NOT NULL,
    recipient    text NOT NULL,
    row_number   int,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, delivery_id)
);
CREATE INDEX deliveries_created ON deliveries (created_at);

ALTER TABLE bounces ADD COLUMN delivered_to text;
