-- A delay notice came back for the delivery (the notifier's delivery.delayed): shown as 遅延中 in the campaign's
-- progress until a final bounce (delivery.bounced) or never (delivered after all).
ALTER TABLE deliveries ADD COLUMN delayed boolean NOT NULL DEFAULT false;
