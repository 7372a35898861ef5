-- Applications for a 1DayPass; an administrator decides each one once.
CREATE TABLE applications (
    id              bigserial PRIMARY KEY,
    applicant_name  text NOT NULL,
    applicant_email text NOT NULL,
    department      text NOT NULL,
    use_date        date NOT NULL,
    purpose         text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by      bigint REFERENCES admins (id),
    decided_at      timestamptz,
    reject_reason   text,
    client_ip       inet,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applications_state ON applications (state, id);

-- One pass per application (the UNIQUE is what makes a second issuance impossible).
CREATE TABLE passes (
    id             bigserial PRIMARY KEY,
    application_id bigint NOT NULL UNIQUE REFERENCES applications (id),
    user_id        text NOT NULL UNIQUE CHECK (user_id ~ '^[0-9]{6}$'),
    password_hash  text NOT NULL,
    use_date       date NOT NULL,
    state          text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'consumed')),
    consumed_at    timestamptz,
    campaign_id    uuid,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Failed (and successful) logins, for the lockout per user ID / admin e-mail and per client address.
CREATE TABLE login_attempts (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL CHECK (kind IN ('pass', 'admin')),
    subject   text NOT NULL,
    client_ip inet,
    success   boolean NOT NULL,
    counts    boolean NOT NULL  -- whether this failure counts towards the lockout
);
CREATE INDEX login_attempts_subject ON login_attempts (kind, subject, at) WHERE counts;
CREATE INDEX login_attempts_client ON login_attempts (client_ip, at) WHERE counts;
