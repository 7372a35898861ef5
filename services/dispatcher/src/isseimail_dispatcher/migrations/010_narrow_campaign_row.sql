-- Every outcome group updates the campaign row's counters (about 50,000 times for 1,000,000 recipients), and an
-- UPDATE writes the whole row again. With the rendered template (a few KB of JSON, compressed inline) in the
-- row, each version was 1.5-3.5 KB, and with the workers' connections updating it at once the page could
-- seldom be pruned: one campaign row took 29 MB of heap (and as much WAL) after 155,000 of 1,000,000 mails.
-- The template is now kept out of line (TOAST, never inline) and every version reuses it untouched: the same
-- 1,000,000-recipient run leaves 31 MB for the whole campaign (about 190 MB extrapolated before);
-- test_dispatch_counters.py: 2,000 groups from 8 connections, 72 pages before, at most 20 now. Counters kept
-- on other rows (one per worker) would remove the shared row altogether: the next step if it shows again.
ALTER TABLE campaigns ALTER COLUMN template SET STORAGE EXTERNAL;
ALTER TABLE campaigns SET (toast_tuple_target = 128, fillfactor = 50);
