-- Campaign drafts: one row per draft, owned by the pass that created it; frozen once its pass is consumed.
CREATE TABLE campaigns (
    id             uuid PRIMARY KEY,
    pass_id        bigint NOT NULL,
    user_id        text NOT NULL,
    list_id        uuid NOT NULL,
    sender_email   text NOT NULL,
    sender_name    text NOT NULL,
    subject        text NOT NULL,
    body           text NOT NULL,
    charset        text NOT NULL CHECK (charset IN ('utf-8', 'iso-2022-jp')),
    state          text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'frozen', 'failed')),
    failure        text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaigns_pass ON campaigns (pass_id);

CREATE TABLE attachments (
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    position    int NOT NULL CHECK (position BETWEEN 1 AND 5),
    filename    text NOT NULL,
    content     bytea NOT NULL,
    size        int NOT NULL,
    PRIMARY KEY (campaign_id, position)
);

-- The frozen campaign: the rendered template and the recipient rows as read once from the list validator.
CREATE TABLE snapshots (
    campaign_id     uuid PRIMARY KEY REFERENCES campaigns (id),
    pass_id         bigint NOT NULL,
    list_id         uuid NOT NULL,
    sender_email    text NOT NULL,
    sender_name     text NOT NULL,
    subject         text NOT NULL,
    recipient_count int NOT NULL,
    template        text NOT NULL,  -- CampaignTemplate JSON, served verbatim
    frozen_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE snapshot_rows (
    campaign_id uuid NOT NULL REFERENCES snapshots (campaign_id) DEFERRABLE INITIALLY DEFERRED,
    row_no      int NOT NULL CHECK (row_no >= 1),
    email       text NOT NULL,
    company     text NOT NULL,
    department1 text NOT NULL,
    department2 text NOT NULL,
    contact     text NOT NULL,
    PRIMARY KEY (campaign_id, row_no)
);

-- Immutable: what was accepted for sending is what the dispatcher reads, whatever happens later.
CREATE FUNCTION refuse_snapshot_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'campaign snapshots are immutable (% on %)', TG_OP, TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER snapshots_immutable BEFORE UPDATE OR DELETE ON snapshots
    FOR EACH ROW EXECUTE FUNCTION refuse_snapshot_change();
CREATE TRIGGER snapshot_rows_immutable BEFORE UPDATE OR DELETE ON snapshot_rows
    FOR EACH ROW EXECUTE FUNCTION refuse_snapshot_change();
-- A frozen draft (and its attachments) cannot be changed or reset either.
CREATE FUNCTION refuse_frozen_draft_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'frozen' THEN
        RAISE EXCEPTION 'campaign % is frozen', OLD.id;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
CREATE TRIGGER campaigns_frozen BEFORE UPDATE OR DELETE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION refuse_frozen_draft_change();
