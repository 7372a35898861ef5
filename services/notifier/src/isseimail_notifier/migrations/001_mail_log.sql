-- Every system mail: recorded in the same transaction as the event that caused it, then sent by
-- the mail sender exactly once (its row is locked while sending and marked sent in that transaction).
CREATE TABLE mail_log (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL,
    cause       text NOT NULL,          -- event_id (or other key) that caused it: one mail per cause and recipient
    recipient   text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    message_id  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    attempts    int NOT NULL DEFAULT 0,
    next_try_at timestamptz NOT NULL DEFAULT now(),
    last_error  text,
    UNIQUE (cause, kind, recipient)
);
CREATE INDEX mail_log_unsent ON mail_log (next_try_at) WHERE sent_at IS NULL;
