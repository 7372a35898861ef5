-- The 送信者名 from campaign.accepted: completion, failure and paused mails are addressed to it (送信者名 様).
ALTER TABLE campaigns ADD COLUMN sender_name text NOT NULL DEFAULT '';
