-- Deliveries a delay notice (DSN Action: delayed, "will continue trying") was received for: not failures,
-- shown to the sender as 遅延中 until the final DSN turns them into a failure (the row is then removed).
CREATE TABLE delayed_deliveries (
    campaign_id  uuid NOT NULL,
    delivery_id  bigint NOT NULL,
    recipient    text NOT NULL,
    row_number   int,
    status       text,
    diagnostic   text NOT NULL DEFAULT '',
    notices      int NOT NULL DEFAULT 1,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, delivery_id)
);
