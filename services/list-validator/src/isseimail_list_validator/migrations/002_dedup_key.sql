-- Duplicates are found in the database once a streamed upload's rows are all in (no per-list structure in
-- the service's memory). The key is the address as AddressResult.key defines it; it is stored only where it
-- differs from `email` (a legacy carrier address, quoted on the wire), so the check reads
-- coalesce(dedup_key, email).
ALTER TABLE list_rows ADD COLUMN dedup_key text;
