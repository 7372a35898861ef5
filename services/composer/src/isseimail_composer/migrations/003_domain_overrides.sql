-- An administrator's override of the send-time refusal for a sender domain whose DKIM or DMARC check fails.
-- Rows are never deleted: withdrawing sets withdrawn_*, so the table is the audit trail (who, when, why).
CREATE TABLE domain_overrides (
    id              bigserial PRIMARY KEY,
    domain          text NOT NULL CHECK (domain = lower(domain) AND length(domain) BETWEEN 1 AND 253),
    reason          text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_by      text NOT NULL CHECK (length(created_by) BETWEEN 1 AND 254),
    created_at      timestamptz NOT NULL DEFAULT now(),
    withdrawn_by    text CHECK (length(withdrawn_by) BETWEEN 1 AND 254),
    withdrawn_at    timestamptz,
    withdraw_reason text CHECK (length(withdraw_reason) <= 500),
    CHECK ((withdrawn_at IS NULL) = (withdrawn_by IS NULL))
);
-- At most one live override per domain.
CREATE UNIQUE INDEX domain_overrides_live ON domain_overrides (domain) WHERE withdrawn_at IS NULL;
CREATE INDEX domain_overrides_domain ON domain_overrides (domain, created_at DESC);
