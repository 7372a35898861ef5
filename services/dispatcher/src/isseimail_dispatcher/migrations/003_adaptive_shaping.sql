-- Adaptive shaping: a domain's lowered rate after rate-limit replies, in its token bucket row so that every
-- worker obeys it (see adaptive.py; shaped_per_minute must compute what adaptive.effective_per_minute does).
ALTER TABLE domain_buckets
    ADD COLUMN lowered_per_minute double precision,   -- set by the last decrease; NULL: never throttled
    ADD COLUMN throttled_at       timestamptz,        -- last rate-limit reply; the quiet window counts from here
    ADD COLUMN decreased_at       timestamptz,
    ADD COLUMN throttle_events    bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_reply         text;               -- the last rate-limit reply, for operators
CREATE INDEX domain_buckets_throttled ON domain_buckets (throttled_at) WHERE throttled_at IS NOT NULL;

-- The rate in force: the configured one (ceiling), or the lowered one plus one step per full quiet window.
CREATE FUNCTION shaped_per_minute(
    lowered double precision, throttled_at timestamptz, ceiling double precision,
    step double precision, window_seconds double precision, at timestamptz
) RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN lowered IS NULL OR throttled_at IS NULL THEN ceiling
           ELSE LEAST(ceiling, lowered + step * floor(
                GREATEST(0, EXTRACT(EPOCH FROM at - throttled_at))::double precision / window_seconds))
           END
$$;
