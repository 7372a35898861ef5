-- DKIM signing keys per sender domain, made by the system (dkim_store.py). A domain has at most one key
-- per algorithm in each live state: 'next' (published in DNS, not yet signing), 'active' (signing) and
-- any number of 'retired' ones (no longer signing; their TXT stays published a while so mail already sent
-- still verifies). The private key is stored only as a Fernet token (ISSEIMAIL_DKIM_KEY_SECRET) and is
-- erased when the key retires.
CREATE TABLE dkim_keys (
    id           bigserial PRIMARY KEY,
    domain       text NOT NULL,            -- A-labels, lower case
    selector     text NOT NULL,
    algorithm    text NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
    state        text NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    public_key   text NOT NULL,            -- the p= value of the TXT record
    private_key  text,                     -- Fernet token; NULL once retired
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at   timestamptz,
    UNIQUE (domain, selector),
    CHECK (state = 'retired' OR private_key IS NOT NULL)
);
CREATE UNIQUE INDEX dkim_keys_one_active ON dkim_keys (domain, algorithm) WHERE state = 'active';
CREATE UNIQUE INDEX dkim_keys_one_next ON dkim_keys (domain, algorithm) WHERE state = 'next';
