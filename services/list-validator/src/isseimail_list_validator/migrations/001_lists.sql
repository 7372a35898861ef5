-- Uploaded recipient lists, their rows and one result per (list, distinct domain).
CREATE TABLE lists (
    list_id uuid PRIMARY KEY,
    pass_id bigint NOT NULL,
    user_id text NOT NULL DEFAULT '',
    filename text NOT NULL DEFAULT '',
    encoding text NOT NULL,
    has_header boolean NOT NULL,
    status text NOT NULL CHECK (status IN ('validating', 'valid', 'invalid')),
    row_count integer NOT NULL,
    domain_count integer NOT NULL,
    domains_pending integer NOT NULL,
    unverified_policy text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX lists_pass ON lists (pass_id);
CREATE INDEX lists_validating ON lists (dispatched_at) WHERE status = 'validating';

CREATE TABLE list_rows (
    list_id uuid NOT NULL REFERENCES lists ON DELETE CASCADE,
    row_no integer NOT NULL,
    address text NOT NULL,          -- as the user wrote it (trimmed)
    email text,                     -- wire form, when the syntax is valid
    domain text,                    -- A-label domain, when the syntax is valid
    company text NOT NULL,
    department1 text NOT NULL,
    department2 text NOT NULL,
    contact text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'ok', 'invalid', 'unverified')),
    reason text NOT NULL,           -- reason code (reasons.py); stored as if the domain were fine, changed if not
    duplicate_of integer,
    PRIMARY KEY (list_id, row_no)
);
CREATE INDEX list_rows_domain ON list_rows (list_id, domain);

CREATE TABLE list_domains (
    list_id uuid NOT NULL REFERENCES lists ON DELETE CASCADE,
    domain text NOT NULL,
    status text NOT NULL DEFAULT 'pending',  -- pending or a domain_check code
    detail text NOT NULL DEFAULT '',
    checked_at timestamptz,
    PRIMARY KEY (list_id, domain)
);

-- SMTP probe outcomes per address (only when the probe is enabled).
CREATE TABLE list_probes (
    list_id uuid NOT NULL REFERENCES lists ON DELETE CASCADE,
    row_no integer NOT NULL,
    code text NOT NULL,
    PRIMARY KEY (list_id, row_no)
);
